# Domain generalisation on the generated benchmarks: trained on the GTA5-like source alone
# (uda_synthetic.py's loader without its target, rare class sampling kept), validated on the
# Cityscapes-like target; `tools/test.py` then tests on two domains never trained on: that
# target and the night and fog scenes of the clear-to-adverse benchmark
# (tools/make_synthetic_uda.py --adverse data/synthetic_adverse/acdc), at the same scale.
_base_ = ['./uda_synthetic.py']
train_dataloader = dict(dataset=dict(target=None))
test_sets = dict(
    cityscapes=dict(type='CityscapesDataset', data_root='data/synthetic/cityscapes',
                    data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')),
    acdc=dict(type='ACDCDataset', data_root='data/synthetic_adverse/acdc', split='val',
              conditions=('fog', 'night')))
