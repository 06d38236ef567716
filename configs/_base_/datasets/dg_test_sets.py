# The test sets of domain generalisation from GTA5, as HRDA's extension reports it: the
# validation splits of Cityscapes, BDD100K and Mapillary Vistas (its 66 classes mapped to the
# 19). `tools/test.py` evaluates each in one call, with the test_dataloader's pipeline (the
# config's Cityscapes test scale). Layouts: docs/datasets.md, section 7.
test_sets = dict(
    cityscapes=dict(
        type='CityscapesDataset',
        data_root='data/cityscapes',
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')),
    bdd100k=dict(
        type='BDD100KDataset',
        data_root='data/bdd100k',
        data_prefix=dict(img_path='images/10k/val', seg_map_path='labels/sem_seg/masks/val')),
    mapillary=dict(
        type='MapillaryCityscapesDataset',
        data_root='data/mapillary',
        # the Vistas 2.0 download; the v1.2 download has its labels in validation/labels
        data_prefix=dict(img_path='validation/images', seg_map_path='validation/v1.2/labels')))
