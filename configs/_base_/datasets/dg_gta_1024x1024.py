# Domain generalisation at 1024x1024: trained on GTA5 alone (rare class sampling kept, no target
# images), validated on Cityscapes during training, tested on dg_test_sets.py.
_base_ = ['./uda_gta_to_cityscapes_1024x1024.py', './dg_test_sets.py']
train_dataloader = dict(dataset=dict(target=None))
