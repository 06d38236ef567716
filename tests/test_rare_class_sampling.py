"""Rare class sampling: class probabilities, candidates, sampled frequencies, re-crop loop."""
import json
import math

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from mmseg.structures import SegDataSample
from mmseg_iccld.datasets.rare_class_sampling import (candidates_per_class, class_frequencies,
                                                      class_probabilities, label_key,
                                                      load_stats_file)
from mmseg_iccld.datasets.uda_dataset import MAX_RECROPS, UDADataset

# Four source images; with min_pixels=50 each is a candidate of exactly one class, so the
# loaded image tells which class was drawn.
STATS = [
    {'file': 'gta/labels/a_labelTrainIds.png', '0': 1000, '1': 10},
    {'file': 'gta/labels/b_labelTrainIds.png', '0': 800},
    {'file': 'gta/labels/c_labelTrainIds.png', '1': 200, '0': 20},
    {'file': 'gta/labels/d_labelTrainIds.png', '2': 100, '1': 30},
]
NAMES = ['a', 'b', 'c', 'd']
CLASS_OF_IMAGE = {0: 0, 1: 0, 2: 1, 3: 2}


def samples_with_class(stats):
    """DAFormer's samples_with_class.json built from sample_class_stats.json."""
    out = {}
    for entry in stats:
        for key, n in entry.items():
            if key != 'file':
                out.setdefault(key, []).append([entry['file'], n])
    return out


def hand_probs(temperature):
    """p_c = softmax((1 - f_c) / T) for STATS, written out (classes 0, 1, 2)."""
    total = 1820 + 240 + 100
    f = [1820 / total, 240 / total, 100 / total]
    e = [math.exp((1 - fc) / temperature) for fc in f]
    return [x / sum(e) for x in e]


def write_stats(root, stats):
    root.mkdir(parents=True, exist_ok=True)
    (root / 'sample_class_stats.json').write_text(json.dumps(stats))
    (root / 'samples_with_class.json').write_text(json.dumps(samples_with_class(stats)))


class ScriptedSource:
    """A source dataset whose sample ``i`` has a scripted number of pixels of a class.

    ``counts`` gives, load after load, how many pixels of ``cls`` the packed label holds,
    standing in for a random crop; every load is recorded in ``calls``.
    """

    def __init__(self, root, names, cls=1, counts=None):
        self.data_root = str(root)
        self.metainfo = dict(classes=('c0', 'c1', 'c2'))
        self.names = names
        self.cls = cls
        self.counts = list(counts or [])
        self.calls = []

    def __len__(self):
        return len(self.names)

    def get_data_info(self, i):
        return dict(seg_map_path=f'/data/labels/{self.names[i]}_labelTrainIds.png')

    def __getitem__(self, i):
        self.calls.append(i)
        n = self.counts[len(self.calls) - 1] if self.counts else 0
        label = torch.zeros(1, 8, 8, dtype=torch.uint8)
        label.view(-1)[:n] = self.cls
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        return dict(inputs=torch.full((3, 8, 8), i, dtype=torch.uint8), data_samples=sample)


def test_probabilities_match_hand_softmax():
    freqs = class_frequencies(STATS)
    # Sorted by ascending frequency, as DAFormer orders them.
    assert list(freqs) == [2, 1, 0]
    assert freqs[0] == pytest.approx(1820 / 2160)
    assert freqs[1] == pytest.approx(240 / 2160)
    assert freqs[2] == pytest.approx(100 / 2160)
    classes, probs = class_probabilities(freqs, 0.5)
    expected = hand_probs(0.5)
    np.testing.assert_allclose(probs, [expected[c] for c in classes], rtol=1e-12)
    # To 4 digits: e^1.9074 = 6.7356, e^1.7778 = 5.9167, e^0.3148 = 1.3700; sum 14.0223.
    np.testing.assert_allclose(probs, [0.4803, 0.4219, 0.0977], atol=1e-4)


def test_small_temperature_is_finite_and_favours_rare_classes():
    _, probs = class_probabilities(class_frequencies(STATS), 0.01)
    assert np.all(np.isfinite(probs)) and probs.sum() == pytest.approx(1.0)
    # (1 - f_2) / T - (1 - f_0) / T = (1820 - 100) / 2160 / 0.01 = 79.6
    assert probs[0] / probs[2] == pytest.approx(math.exp((1720 / 2160) / 0.01))
    with pytest.raises(ValueError, match='class_temp'):
        class_probabilities(class_frequencies(STATS), 0.0)


def test_ignore_index_and_unknown_ids_are_left_out():
    stats = [{'file': 'x.png', '0': 30, '1': 10, '255': 1000}]
    assert class_frequencies(stats, num_classes=19) == {1: 0.25, 0: 0.75}
    assert 255 in class_frequencies(stats)
    with pytest.raises(ValueError, match=r"x\.json.*'road'"):
        class_frequencies([{'file': 'y.png', 'road': 3}], path='x.json')
    with pytest.raises(ValueError, match='no labelled pixel'):
        class_frequencies([{'file': 'y.png', '255': 3}], num_classes=19)


def test_candidates_need_strictly_more_than_min_pixels():
    swc = samples_with_class(STATS)
    cands = candidates_per_class(swc, [0, 1, 2], min_pixels=50)
    assert cands == {0: ['a_labelTrainIds.png', 'b_labelTrainIds.png'],
                     1: ['c_labelTrainIds.png'], 2: ['d_labelTrainIds.png']}
    # 100 pixels of class 2 is not more than 100.
    cands = candidates_per_class(swc, [0, 1], min_pixels=10)
    assert cands[1] == ['c_labelTrainIds.png', 'd_labelTrainIds.png']
    with pytest.raises(ValueError, match=r'samples_with_class\.json: class 2 has no image '
                                         r'with more than 100 pixels'):
        candidates_per_class(swc, [0, 1, 2], min_pixels=100)


def test_label_key_is_the_base_name():
    assert label_key('data/gta/labels/00001_labelTrainIds.png') == '00001_labelTrainIds.png'
    assert label_key('C:\\gta\\labels\\7.png') == '7.png'


def test_missing_and_broken_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_stats_file(str(tmp_path), 'samples_with_class.json')
    msg = str(err.value)
    assert str(tmp_path / 'samples_with_class.json') in msg
    assert 'tools/convert_datasets/gta.py' in msg and 'synthia.py' in msg
    (tmp_path / 'sample_class_stats.json').write_text('[{"file": ')
    with pytest.raises(ValueError, match='sample_class_stats.json is not valid JSON'):
        load_stats_file(str(tmp_path), 'sample_class_stats.json')


def test_sampled_frequencies_follow_p(tmp_path):
    """Classes and images drawn by the dataset follow p_c and the uniform image choice.

    Each count is Binomial(N, q); a correct sampler lands within 5 standard deviations
    with probability > 1 - 6e-7 per check, so the test fails only for a wrong sampler.
    """
    write_stats(tmp_path, STATS)
    source = ScriptedSource(tmp_path, NAMES)
    rcs = dict(class_temp=0.5, min_pixels=50, min_crop_ratio=0)
    dataset = UDADataset(source, ScriptedSource(tmp_path, ['t0', 't1']), rcs)
    np.random.seed(0)
    n = 20000
    for _ in range(n):
        dataset.get_rare_class_sample()
    loaded = np.bincount(source.calls, minlength=4) / n
    p = hand_probs(0.5)
    # Class 0 has two candidate images (a, b), each drawn half the time.
    expected = np.array([p[0] / 2, p[0] / 2, p[1], p[2]])
    tol = 5 * np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(loaded - expected) < tol), (loaded, expected)


def test_recrop_stops_once_the_crop_holds_enough(tmp_path):
    stats = [{'file': 'a_labelTrainIds.png', '1': 60}]
    write_stats(tmp_path, stats)
    # Needed: more than 10 * 0.5 = 5 pixels of class 1; 5 is not enough, 6 is.
    source = ScriptedSource(tmp_path, ['a'], cls=1, counts=[0, 5, 6, 40, 40])
    rcs = dict(class_temp=0.01, min_pixels=10, min_crop_ratio=0.5)
    dataset = UDADataset(source, ScriptedSource(tmp_path, ['t']), rcs)
    sample = dataset.get_rare_class_sample()
    assert source.calls == [0, 0, 0]
    assert int((sample['data_samples'].gt_sem_seg.data == 1).sum()) == 6


def test_recrop_gives_up_after_ten_reloads(tmp_path):
    write_stats(tmp_path, [{'file': 'a_labelTrainIds.png', '1': 60}])
    counts = [1] * (MAX_RECROPS + 1) + [50]
    source = ScriptedSource(tmp_path, ['a'], cls=1, counts=counts)
    rcs = dict(class_temp=0.01, min_pixels=10, min_crop_ratio=0.5)
    dataset = UDADataset(source, ScriptedSource(tmp_path, ['t']), rcs)
    sample = dataset.get_rare_class_sample()
    # The first load plus ten re-loads; the last crop is kept even though it is too small.
    assert MAX_RECROPS == 10 and len(source.calls) == 11
    assert int((sample['data_samples'].gt_sem_seg.data == 1).sum()) == 1


def test_zero_crop_ratio_loads_once(tmp_path):
    write_stats(tmp_path, [{'file': 'a_labelTrainIds.png', '1': 60}])
    source = ScriptedSource(tmp_path, ['a'], cls=1, counts=[0, 50])
    rcs = dict(class_temp=0.01, min_pixels=10, min_crop_ratio=0)
    UDADataset(source, ScriptedSource(tmp_path, ['t']), rcs).get_rare_class_sample()
    assert source.calls == [0]


def test_target_is_drawn_uniformly_with_rcs(tmp_path):
    write_stats(tmp_path, [{'file': 'a_labelTrainIds.png', '1': 60}])
    target = ScriptedSource(tmp_path, ['t0', 't1', 't2'])
    rcs = dict(class_temp=0.01, min_pixels=10, min_crop_ratio=0)
    dataset = UDADataset(ScriptedSource(tmp_path, ['a']), target, rcs)
    np.random.seed(1)
    n = 6000
    for i in range(n):
        item = dataset[i]
        assert int(item['target_inputs'][0, 0, 0]) == target.calls[-1]
    freq = np.bincount(target.calls, minlength=3) / n
    # Binomial(n, 1/3) within 5 standard deviations, as above.
    assert np.all(np.abs(freq - 1 / 3) < 5 * np.sqrt(2 / 9 / n)), freq


def test_sampling_is_reproducible_with_a_seed(tmp_path):
    write_stats(tmp_path, STATS)
    rcs = dict(class_temp=0.5, min_pixels=50, min_crop_ratio=0)
    runs = []
    for _ in range(2):
        source = ScriptedSource(tmp_path, NAMES)
        dataset = UDADataset(source, ScriptedSource(tmp_path, ['t0', 't1']), rcs)
        np.random.seed(123)
        for i in range(50):
            dataset[i]
        runs.append(source.calls)
    assert runs[0] == runs[1] and len(set(runs[0])) > 1


def test_source_without_data_root_is_refused(tmp_path):
    source = ScriptedSource(tmp_path, ['a'])
    source.data_root = None
    with pytest.raises(ValueError, match=r'source dataset \(ScriptedSource\) has none'):
        UDADataset(source, ScriptedSource(tmp_path, ['t']), dict(class_temp=0.01))
