# Source before training or testing to hold the CPU kernels of torch (ATen, oneDNN, MKL), numpy
# and OpenCV to AVX2 on a machine that has AVX-512. Each library picks its kernels by the CPU,
# and kernels of different instruction sets round differently (docs/method.md 8.3): with this,
# a machine with AVX-512 generates the benchmark, trains and tests as one with AVX2 alone does,
# so its runs are comparable with an AVX2 machine's (the `kernels` of a report's environment).
# Slower where AVX-512 would help; nothing changes on an AVX2 machine.
export ATEN_CPU_CAPABILITY=avx2
export ONEDNN_MAX_CPU_ISA=AVX2
export MKL_ENABLE_INSTRUCTIONS=AVX2
export NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"
export OPENCV_CPU_DISABLE=AVX512F,AVX512BW,AVX512CD,AVX512DQ,AVX512VL,AVX512-SKX
