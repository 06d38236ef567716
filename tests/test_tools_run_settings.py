"""A finished run is reused only when it was trained with the settings its config gives now
(mmseg_iccld/apis/run_settings.py and its use in tools/analysis_tools/uda_results.py)."""
import json
from types import SimpleNamespace

import pytest

from mmseg_iccld.apis import run_settings, tool_runs
from tools.analysis_tools import uda_results

CONFIG = """model = dict(type='DACS', alpha={alpha}, pseudo_margins=(0, 0, 0, 0))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=6e-4))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300)
randomness = dict(seed=0)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval={interval}))
custom_hooks = [{hooks}]
"""
PHASE_HOOK = "dict(type='ICCLDPhaseHook', switch_iter=150)"
# the hooks tools/train.py appends to every run, as the runner's dump holds them
REPORTING = "dict(type='CheckpointFitHook', strict=True), dict(type='NonFiniteReportHook')"


def write(path, alpha=0.98, interval=300, hooks=PHASE_HOOK):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG.format(alpha=alpha, interval=interval, hooks=hooks))
    return str(path)


def test_differences_name_each_changed_leaf():
    old = dict(model=dict(alpha=0.999, head=dict(lr=[1, 2])), seed=0)
    new = dict(model=dict(alpha=0.98, head=dict(lr=[1, 3]), extra=1), seed=0)
    assert run_settings.differences(old, new) == [
        'model.alpha: 0.999 -> 0.98', 'model.extra: None -> 1', 'model.head.lr.1: 2 -> 3']
    assert run_settings.differences(dict(a=[1]), dict(a=[1, 2])) == ['a: [1] -> [1, 2]']
    assert run_settings.differences(old, old) == []


def test_options_parse_as_train_py_parses_them():
    assert run_settings.parse_options(['model.alpha=0.98', 'x.y=(1,2)', 'z=True']) == {
        'model.alpha': 0.98, 'x.y': (1, 2), 'z': True}
    assert run_settings.parse_options([]) == {}


def test_a_run_trained_as_the_config_gives_now_passes(tmp_path):
    config = write(tmp_path / 'configs' / 'm.py')
    # the dump differs in what does not change training: checkpoint interval, reporting hooks
    dumped = write(tmp_path / 'run' / 'm.py', interval=150, hooks=f'{PHASE_HOOK}, {REPORTING}')
    run_settings.check_trained_as_now(dumped, config, [])
    # a run older than the runner's dump cannot be compared; it is taken as it is
    run_settings.check_trained_as_now(str(tmp_path / 'old' / 'm.py'), config, [])


def test_a_run_of_other_settings_is_refused_with_what_changed(tmp_path):
    config = write(tmp_path / 'configs' / 'm.py')
    dumped = write(tmp_path / 'run' / 'm.py', alpha=0.999, hooks=f'{PHASE_HOOK}, {REPORTING}')
    with pytest.raises(ValueError) as error:
        run_settings.check_trained_as_now(dumped, config, [])
    assert 'model.alpha: 0.999 -> 0.98' in str(error.value)
    assert dumped in str(error.value) and 'interval' not in str(error.value)
    # the options of the command are part of what the run would be trained with now
    run_settings.check_trained_as_now(dumped, config, ['model.alpha=0.999'])
    with pytest.raises(ValueError, match='custom_hooks.0.switch_iter: 150 -> 300'):
        run_settings.check_trained_as_now(dumped, config, ['model.alpha=0.999',
                                                         'custom_hooks.0.switch_iter=300'])


def test_settings_digest_follows_the_settings_only(tmp_path):
    config = write(tmp_path / 'a.py')
    same = run_settings.settings_digest(run_settings.settings_now(config, []))
    assert same == run_settings.settings_digest(run_settings.settings_now(
        write(tmp_path / 'b.py', interval=50), []))
    assert same != run_settings.settings_digest(run_settings.settings_now(config,
                                                                      ['model.alpha=0.9']))


def test_uda_results_refuses_a_stale_run_and_retrains_it_when_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(uda_results, 'ROOT', str(tmp_path))
    write(tmp_path / uda_results.METHODS['daformer'], hooks='')
    work_dir = tmp_path / 'runs' / 'daformer_seed0'
    write(work_dir / 'daformer_tiny.py', alpha=0.999, hooks=REPORTING)
    (work_dir / 'test').mkdir()
    (work_dir / 'test' / 'metrics.json').write_text('{"mIoU": 70.0}')
    args = uda_results.parse_args(['--iters', '300', '--work-root', 'runs'])
    # the run's seed, length and checkpoint interval come from the command's options
    monkeypatch.setattr(uda_results, 'train_options', lambda *a: [])
    with pytest.raises(ValueError, match='model.alpha: 0.999 -> 0.98'):
        uda_results.train_and_test('daformer', 0, args)
    commands = []

    def fake_run(command, log_path):
        commands.append(command[1])
        (work_dir / 'last_checkpoint').write_text('runs/daformer_seed0/iter_300.pth')
        (work_dir / 'test' / 'metrics.json').write_text(json.dumps(dict(mIoU=71.0)))

    monkeypatch.setattr(tool_runs, 'run', fake_run)
    fresh = uda_results.parse_args(['--iters', '300', '--work-root', 'runs', '--fresh'])
    assert uda_results.train_and_test('daformer', 0, fresh)['mIoU'] == 71.0
    assert commands == ['tools/train.py', 'tools/test.py']
    # trained with what the config gives now: reused as it is
    write(work_dir / 'daformer_tiny.py', hooks=REPORTING)
    commands.clear()
    assert uda_results.train_and_test('daformer', 0, args)['mIoU'] == 71.0
    assert commands == []


@pytest.mark.parametrize('table', ['synthetic_uda', 'synthetic_uda_hr'])
def test_the_headline_tables_hold_runs_of_the_configs_as_they_are(table):
    """docs/results' tables state what each config trains to: a config edited since its
    table was made (a default changed, a schedule) makes the table stale until retrained."""
    with open(uda_results.ROOT + f'/docs/results/{table}.json') as f:
        report = json.load(f)
    assert set(report['settings']) == set(report['configs']) == set(report['runs'])
    assert {m: uda_results.METHODS[m] for m in report['configs']} == report['configs']
    options = SimpleNamespace(cfg_options=report['cfg_options'])
    stale = [f"{method} ({report['configs'][method]})" for method, digest
             in report['settings'].items()
             if digest != uda_results.method_digest(method, options)]
    assert not stale, (f'docs/results/{table}.json was made with other settings than these '
                       f'configs give now: {stale}; retrain them with its command')
