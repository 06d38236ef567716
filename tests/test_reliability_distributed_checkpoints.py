"""A checkpoint of a distributed run, whatever DDP wrappers named its weights, gives the tools
the predictions of the same checkpoint written without them."""
import json
import os.path as osp
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image
from test_tools_infer import (DAFORMER, checkpoints, files_below, infer_main,  # noqa: F401
                              val_folder, wrapper_predictions)
from test_tools_test import ROAD, data_options, predictions_below, run_tool, save_checkpoint

TEACHER = 'teacher.module.'


def distributed_layout(state: dict) -> OrderedDict:
    """``state`` keyed as a raw state dict of the UDA model under mmengine's
    ``MMSeparateDistributedDataParallel``: the wrapper of the whole model (``module.``), the
    DDP of the trainable student (``model.module.``), and a teacher copied from the wrapped
    student (``teacher.module.module.``)."""
    renamed = OrderedDict()
    for key, value in state.items():
        if key.startswith('model.'):
            key = 'model.module.' + key[len('model.'):]
        elif key.startswith(TEACHER):
            key = TEACHER + 'module.' + key[len(TEACHER):]
        renamed['module.' + key] = value
    return renamed


def test_model_keys_are_matched_only_where_one_checkpoint_key_fits():
    from mmseg_iccld.engine.wrapped_keys import weights_for
    expected = {'backbone.w': 0, 'head.w': 0, 'teacher.module.w': 0}
    state = {'head.module.w': 1, 'module.teacher.module.module.w': 2}
    assert weights_for(state, expected) == {'head.w': 1, 'teacher.module.w': 2}
    # two candidates for one model key, and a key of no model: neither is guessed, both stay
    # under their names for the check to report
    state = {'module.backbone.w': 1, 'backbone.module.w': 2, 'head.w': 3, 'extra.module.b': 4}
    assert weights_for(state, expected) == {'head.w': 3, 'module.backbone.w': 1,
                                            'backbone.module.w': 2, 'extra.module.b': 4}
    # the student and the EMA teacher of a UDA checkpoint, each for the student's network
    state = {'model.module.backbone.w': 1, 'model.module.head.w': 2, 'teacher.steps': 9,
             'teacher.module.module.backbone.w': 3, 'teacher.module.module.head.w': 4}
    network = {'backbone.w': 0, 'head.w': 0}
    assert weights_for(state, network, 'model.') == {'backbone.w': 1, 'head.w': 2}
    assert weights_for(state, network, TEACHER) == {'backbone.w': 3, 'head.w': 4}


def test_tools_test_scores_a_distributed_checkpoint_as_the_undistributed_one(
        synthetic_benchmark, tmp_path):
    plain = str(tmp_path / 'plain.pth')
    save_checkpoint(DAFORMER, plain)
    saved = torch.load(plain, weights_only=False)
    head = TEACHER + 'decode_head.conv_seg.'  # a teacher unlike its student: road everywhere
    saved['state_dict'][head + 'weight'].zero_()
    saved['state_dict'][head + 'bias'].zero_()
    saved['state_dict'][head + 'bias'][ROAD] = 10.0
    torch.save(saved, plain)
    saved['state_dict'] = distributed_layout(saved['state_dict'])
    assert 'module.model.module.backbone.layers.0.0.projection.weight' in saved['state_dict']
    distributed = str(tmp_path / 'distributed.pth')
    torch.save(saved, distributed)
    runs = {}
    for weights in ('student', 'teacher'):
        for kind, checkpoint in (('plain', plain), ('distributed', distributed)):
            work = tmp_path / f'{weights}_{kind}'
            result = run_tool('tools/test.py', DAFORMER, checkpoint, '--weights', weights,
                              '--work-dir', str(work), '--out', str(work / 'pred'),
                              *data_options(synthetic_benchmark))
            assert result.returncode == 0, result.stderr[-3000:]
            with open(work / 'metrics.json') as f:
                metrics = json.load(f)
            predictions = {p: np.array(Image.open(work / 'pred' / p))
                           for p in predictions_below(work / 'pred')}
            assert len(predictions) == 4
            runs[weights, kind] = metrics, predictions
    for weights in ('student', 'teacher'):
        (metrics, predictions), (plain_metrics, plain_predictions) = (
            runs[weights, 'distributed'], runs[weights, 'plain'])
        assert metrics['metrics'] == plain_metrics['metrics']
        assert metrics['per_class_iou'] == plain_metrics['per_class_iou']
        assert sorted(predictions) == sorted(plain_predictions)
        for name, prediction in predictions.items():
            np.testing.assert_array_equal(prediction, plain_predictions[name])
    # the student's are those of the whole UDA model, the teacher's road everywhere
    reference = wrapper_predictions(DAFORMER, plain, synthetic_benchmark)
    for name, prediction in runs['student', 'distributed'][1].items():
        expected = reference[osp.basename(name)].pred_sem_seg.data[0].numpy()
        np.testing.assert_array_equal(prediction, expected)
        assert len(np.unique(prediction)) > 1
    assert all((p == ROAD).all() for p in runs['teacher', 'distributed'][1].values())


def test_tools_infer_predicts_with_a_distributed_checkpoint_as_with_the_undistributed_one(
        infer_main, capsys, checkpoints, synthetic_benchmark, tmp_path):
    saved = torch.load(checkpoints['dacs'], weights_only=False)
    saved['state_dict'] = distributed_layout(saved['state_dict'])
    distributed = str(tmp_path / 'distributed.pth')
    torch.save(saved, distributed)
    labels = {}
    for kind, checkpoint in (('plain', checkpoints['dacs']), ('distributed', distributed)):
        out = tmp_path / kind
        infer_main([DAFORMER, checkpoint, val_folder(synthetic_benchmark), '--out', str(out)])
        labels[kind] = {p: np.array(Image.open(out / p)) for p in files_below(out)
                        if p.startswith('labels/')}
    assert len(labels['plain']) == 4 and sorted(labels['distributed']) == sorted(labels['plain'])
    for name, label in labels['distributed'].items():
        np.testing.assert_array_equal(label, labels['plain'][name])
