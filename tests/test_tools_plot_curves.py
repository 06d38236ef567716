"""tools/analysis_tools/plot_curves.py on scalars written by mmengine's own LocalVisBackend; the documented
ways of switching visualization backends on."""
import os.path as osp
import runpy

import pytest
from mmengine.visualization import Visualizer
from PIL import Image

from mmseg_iccld.apis.config_loading import load_config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = runpy.run_path(osp.join(REPO, 'tools/analysis_tools/plot_curves.py'), run_name='plot_curves')


def write_run(work_dir: str, timestamp: str, records) -> None:
    """Scalars as the runner logs them: mmengine's Visualizer with a LocalVisBackend."""
    visualizer = Visualizer(name=f'plot_curves_{timestamp}',
                            vis_backends=[dict(type='LocalVisBackend')],
                            save_dir=osp.join(work_dir, timestamp))
    for step, scalars in records:
        visualizer.add_scalars(scalars, step=step)


def train(loss: float, it: int, **extra) -> dict:
    return {'lr': 1e-4, 'loss': loss, 'src.decode.loss_ce': loss / 2, 'src.decode.acc_seg': 50.0,
            'mix.decode.loss_ce': loss / 4, 'pseudo_weight': 0.5, 'iter': it, **extra}


@pytest.fixture
def work_dir(tmp_path):
    root = str(tmp_path / 'work')
    write_run(root, '20250101_000000', [
        (1, train(4.0, 1)), (2, train(3.0, 2)), (2, {'mIoU': 10.0, 'aAcc': 50.0}),
        (3, train(2.0, 3, **{'tgt.loss_ldm': 1.0, 'dis.acc_src': 0.5, 'lambda_adv': 0.1}))])
    # resumed from iteration 2: its iteration 3 replaces the first run's
    write_run(root, '20250102_000000', [
        (3, train(2.5, 3, **{'tgt.loss_ldm': 0.9, 'dis.acc_src': 0.6, 'lambda_adv': 0.1,
                             'masked.decode.loss_ce': 0.3})),
        (4, train(1.5, 4, **{'tgt.loss_ldm': 0.8, 'dis.acc_src': 0.7, 'lambda_adv': 0.2,
                             'masked.decode.loss_ce': 0.2})),
        (4, {'mIoU': 20.0, 'aAcc': 60.0})])
    return root


def test_runs_are_merged_in_order_and_grouped_in_panels(work_dir):
    files = TOOL['find_scalar_files'](work_dir)
    assert files == [osp.join(work_dir, ts, 'vis_data', 'scalars.json')
                     for ts in ('20250101_000000', '20250102_000000')]
    series = TOOL['read_scalars'](files)
    assert series['loss'] == {1: 4.0, 2: 3.0, 3: 2.5, 4: 1.5}
    assert series['tgt.loss_ldm'] == {3: 0.9, 4: 0.8}
    assert series['mIoU'] == {2: 10.0, 4: 20.0}
    assert 'step' not in series
    assert TOOL['group_panels'](list(series)) == [
        ('total loss', ['loss']),
        ('source losses (src.*)', ['src.decode.loss_ce']),
        ('mixed losses (mix.*)', ['mix.decode.loss_ce']),
        ('target losses (tgt.*)', ['tgt.loss_ldm']),
        ('masked losses (masked.*)', ['masked.decode.loss_ce']),
        ('pseudo-label weight', ['pseudo_weight']),
        ('discriminator accuracy', ['dis.acc_src']),
        ('lambda_adv', ['lambda_adv']),
        ('validation mIoU', ['mIoU'])]
    assert TOOL['read_scalars'](TOOL['find_scalar_files'](work_dir, '20250101_000000'))[
        'loss'] == {1: 4.0, 2: 3.0, 3: 2.0}
    assert TOOL['moving_average']([1.0, 3.0, float('nan'), 5.0], 2) == [1.0, 2.0, 3.0, 5.0]


def test_png_and_the_keys_found_are_printed(work_dir, capsys):
    TOOL['main']([work_dir])
    out = capsys.readouterr().out
    assert 'discriminator accuracy: dis.acc_src\n' in out
    assert 'validation mIoU: mIoU\n' in out
    assert 'not plotted: lr, src.decode.acc_seg, iter, aAcc\n' in out
    with Image.open(osp.join(work_dir, 'curves.png')) as png:
        assert png.format == 'PNG'
        assert png.size == (1560, 1020)  # 3 columns x 3 rows of 5.2 x 3.4 inches at 100 dpi


def test_missing_and_broken_logs_are_clear_errors(tmp_path, capsys):
    for args, expected in (
            ([str(tmp_path / 'nowhere')], f'work dir {tmp_path / "nowhere"} does not exist'),
            ([str(tmp_path)], f'no {tmp_path}/*/vis_data/scalars.json: was the run logged')):
        with pytest.raises(SystemExit):
            TOOL['main'](args)
        assert expected in capsys.readouterr().err
    broken = tmp_path / 'run' / 'vis_data'
    broken.mkdir(parents=True)
    (broken / 'scalars.json').write_text('{"loss": 1.0, "step": 1}\n{"loss": 2.0\n')
    with pytest.raises(SystemExit):
        TOOL['main']([str(tmp_path)])
    assert f'{broken / "scalars.json"}:2: not a scalar record' in capsys.readouterr().err


def test_visualization_backends_switch_on_from_a_config(tmp_path):
    snippet = tmp_path / 'with_tensorboard.py'
    snippet.write_text(
        f"_base_ = ['{REPO}/configs/synthetic/daformer_tiny.py']\n"
        "visualizer = dict(vis_backends=[dict(type='LocalVisBackend'),\n"
        "                                dict(type='TensorboardVisBackend'),\n"
        "                                dict(type='WandbVisBackend')])\n")
    cfg = load_config(str(snippet), {})
    visualizer = Visualizer(name='plot_curves_backends', save_dir=str(tmp_path / 'v'),
                            vis_backends=cfg.visualizer.vis_backends)
    assert [type(b).__name__ for b in visualizer._vis_backends.values()] == [
        'LocalVisBackend', 'TensorboardVisBackend', 'WandbVisBackend']
    # the --cfg-options form replaces the one default backend
    cfg = load_config(f'{REPO}/configs/synthetic/daformer_tiny.py',
                            {'visualizer.vis_backends.0.type': 'TensorboardVisBackend'})
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['TensorboardVisBackend']
