"""What a results table was made with: the packages whose versions change the numbers, the
CPU, the instruction set of the kernels of torch, numpy and OpenCV, and a fingerprint of the
generated benchmark.

Training on the CPU is deterministic for one machine and one install, not across installs
(docs/method.md 8.3): another version of an unpinned package, or another CPU's kernels, can
change the draws, the data or the rounding, and a seed's run ends elsewhere. Runs are paired
by seed, and reused from an earlier report, only where the packages, the kernels and the
benchmark match.
"""
import hashlib
import os
import os.path as osp
import platform
import sys
from importlib import metadata
from typing import Dict, Optional, Sequence

# distributions whose versions change a run's numbers (the model, its draws, the data)
PACKAGES = ('torch', 'mmcv', 'mmengine', 'mmsegmentation', 'diffusers', 'kornia', 'numpy',
            'opencv-python', 'pillow')


def package_versions() -> Dict[str, Optional[str]]:
    """Python's and each of ``PACKAGES``' installed version (None where not installed)."""
    versions = {'python': sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's processor or machine."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def kernel_isa() -> str:
    """The instruction set the CPU kernels of torch, numpy and OpenCV dispatch to on this
    machine (``'AVX2'``, ``'AVX512'``, ``'DEFAULT'``...; ``'torch AVX2, numpy AVX512, OpenCV
    AVX512'`` where they differ): kernels of different sets round differently. Each library
    dispatches on its own and each can be held below the CPU's set (``scripts/avx2_kernels.sh``)."""
    import cv2
    import numpy
    import torch
    features = numpy._core._multiarray_umath.__cpu_features__
    sets = {
        'torch': torch.backends.cpu.get_cpu_capability(),
        # numpy >= 2.4 names the AVX-512 level X86_V4, earlier releases AVX512_SKX
        'numpy': ('AVX512' if features.get('X86_V4') or features.get('AVX512_SKX') else
                  'AVX2' if features.get('AVX2') else 'DEFAULT'),
        # OpenCV's feature ids (cvdef.h): 11 AVX2, 13 AVX-512F
        'OpenCV': ('AVX512' if cv2.checkHardwareSupport(13) else
                   'AVX2' if cv2.checkHardwareSupport(11) else 'DEFAULT'),
    }
    if len(set(sets.values())) == 1:
        return sets['torch']
    return ', '.join(f'{name} {isa}' for name, isa in sets.items())


def tree_fingerprint(root: str, skip_suffixes: Sequence[str] = ()) -> Optional[str]:
    """SHA-256 of a folder's files: for each file in the order of its relative POSIX path,
    the path, a NUL byte and the SHA-256 digest of its content; None when ``root`` is not a
    folder. Independent of timestamps and of the order the files were written in.

    Args:
        root: The folder.
        skip_suffixes: File name endings left out.
    """
    if not osp.isdir(root):
        return None
    paths = []
    for folder, _, files in os.walk(root):
        paths += [osp.relpath(osp.join(folder, name), root).replace(os.sep, '/')
                  for name in files if not name.endswith(tuple(skip_suffixes))]
    digest = hashlib.sha256()
    for path in sorted(paths):
        with open(osp.join(root, path), 'rb') as f:
            content = hashlib.sha256(f.read()).digest()
        digest.update(path.encode() + b'\0' + content)
    return digest.hexdigest()


def run_environment(data_root: str) -> dict:
    """``packages``, ``cpu`` (model and cores), ``kernels`` (:func:`kernel_isa`) and ``data``
    (:func:`tree_fingerprint` of ``data_root``'s images and labels; its ``.json`` class
    statistics are derived from the labels and hold the folder's path)."""
    return dict(packages=package_versions(), cpu=f'{cpu_model()}, {os.cpu_count()} cores',
                kernels=kernel_isa(), data=tree_fingerprint(data_root, skip_suffixes=('.json', )))


def same_environment(recorded: Optional[dict], current: dict) -> bool:
    """Whether a report's ``environment`` has the current packages, kernels and benchmark (the
    CPU's name is recorded, not compared); a report without one is not comparable."""
    return bool(recorded) and all(recorded.get(key) == current[key]
                                  for key in ('packages', 'kernels', 'data'))


def environment_line(environment: Optional[dict]) -> str:
    """One line of markdown naming the environment, or '' for a report without one."""
    if not environment:
        return ''
    packages = ', '.join(f'{name} {version}' for name, version in
                         environment['packages'].items() if version is not None)
    data = environment['data'][:16] if environment.get('data') else 'absent'
    kernels = f" ({environment['kernels']} kernels)" if environment.get('kernels') else ''
    return (f"Made on {environment['cpu']}{kernels} with {packages}; generated benchmark "
            f"sha256 {data}.")
