"""The results tools: the per-method summary of tools/analysis_tools/uda_results.py and the README table of
tools/analysis_tools/results_table.py, which must match the result files the repository holds."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmseg_iccld.apis import run_environment, tool_runs
from tools.analysis_tools import results_table, uda_results

ROOT = Path(__file__).resolve().parents[1]


def test_method_plan_takes_per_method_seeds():
    plan = uda_results.method_plan(['daformer', 'hrda:0', 'mic:1,2'], [0, 1, 2])
    assert plan == {'daformer': [0, 1, 2], 'hrda': [0], 'mic': [1, 2]}
    with pytest.raises(ValueError, match='unknown method'):
        uda_results.method_plan(['dacs2'], [0])
    with pytest.raises(ValueError, match='seeds must be integers'):
        uda_results.method_plan(['hrda:a'], [0])


def test_iccld_runs_switch_to_phase2_halfway_and_the_control_never():
    options = uda_results.train_options('iccld', 300, 7)
    assert 'randomness.seed=7' in options
    assert 'train_cfg.max_iters=300' in options
    assert 'custom_hooks.0.switch_iter=150' in options
    # ICCLD runs keep the switch checkpoint (phase 1 of a seed is shared by its variants)
    assert 'default_hooks.checkpoint.interval=150' in options
    control = uda_results.train_options('iccld_step1', 300, 7)
    assert 'custom_hooks.0.switch_iter=300' in control
    assert 'default_hooks.checkpoint.interval=150' in control
    assert uda_results.METHODS['iccld_step1'] == uda_results.METHODS['iccld']
    hr_control = uda_results.train_options('iccld_hr_step1', 300, 7)
    assert 'custom_hooks.0.switch_iter=300' in hr_control
    assert 'default_hooks.checkpoint.interval=150' in hr_control
    assert uda_results.METHODS['iccld_hr_step1'] == uda_results.METHODS['iccld_hr']
    daformer = uda_results.train_options('daformer', 300, 7)
    assert not any('switch_iter' in o for o in daformer)
    assert 'default_hooks.checkpoint.interval=300' in daformer


def test_phase1_checkpoint_and_trained_config_lookup(tmp_path, monkeypatch):
    monkeypatch.setattr(uda_results, 'ROOT', str(tmp_path))
    args = uda_results.parse_args(['--iters', '300', '--work-root', 'runs'])
    assert uda_results.phase1_checkpoint('iccld', 4, args) == ''
    donor = tmp_path / 'runs' / 'iccld_step1_seed4' / 'iter_150.pth'
    donor.parent.mkdir(parents=True)
    donor.write_bytes(b'')
    assert uda_results.phase1_checkpoint('iccld', 4, args) == 'runs/iccld_step1_seed4/iter_150.pth'
    assert uda_results.phase1_checkpoint('iccld', 5, args) == ''
    # ICCLD-HR's phase 1 is neither ICCLD's nor ICCLD-HR + MIC's
    assert uda_results.phase1_checkpoint('iccld_hr', 4, args) == ''
    hr = tmp_path / 'runs' / 'iccld_hr_seed4' / 'iter_150.pth'
    hr.parent.mkdir(parents=True)
    hr.write_bytes(b'')
    assert uda_results.phase1_checkpoint('iccld_hr', 4, args) == 'runs/iccld_hr_seed4/iter_150.pth'
    # ICCLD-HR's control continues the same phase 1
    assert uda_results.phase1_checkpoint('iccld_hr_step1', 4, args) == \
        'runs/iccld_hr_seed4/iter_150.pth'
    assert uda_results.phase1_checkpoint('iccld_hr_mic', 4, args) == ''
    assert 'custom_hooks.0.switch_iter=150' in uda_results.train_options('iccld_hr_mic', 300, 4)
    # a run is tested with the config its runner dumped, else with the method's config
    run = 'runs/iccld_x_seed4'
    assert uda_results.trained_config('iccld', run) == 'configs/synthetic/iccld_tiny.py'
    (tmp_path / run).mkdir(parents=True)
    (tmp_path / run / 'iccld_tiny.py').write_text('')
    assert uda_results.trained_config('iccld', run) == f'{run}/iccld_tiny.py'


def test_summary_mean_and_sample_std_by_hand():
    runs = {'a': {'0': dict(mIoU=50.0), '1': dict(mIoU=54.0), '2': dict(mIoU=58.0)},
            'b': {'0': dict(mIoU=61.5)}}
    summary = uda_results.summarise(runs)
    # mean 54, deviations -4, 0, 4: sample variance (16 + 0 + 16) / 2 = 16
    assert summary['a']['mean'] == pytest.approx(54.0)
    assert summary['a']['std'] == pytest.approx(4.0)
    assert (summary['a']['min'], summary['a']['max']) == (50.0, 58.0)
    assert summary['b'] == dict(mean=61.5, std=0.0, min=61.5, max=61.5, seeds=['0'], n=1)


def test_per_class_iou_drops_classes_without_an_iou():
    metrics = dict(per_class_iou={'road': 28.83, 'wall': None, 'sky': 97.96})
    assert uda_results.per_class_iou(metrics) == {'road': 28.83, 'sky': 97.96}


def test_readme_section_is_replaced_between_the_markers():
    text = f'head\n{results_table.BEGIN}\nold\n{results_table.END}\ntail\n'
    new = results_table.replace_section(text, 'new\n', 'README.md')
    assert new == f'head\n{results_table.BEGIN}\nnew\n{results_table.END}\ntail\n'
    with pytest.raises(ValueError, match='README.md: no'):
        results_table.replace_section('no markers', 'x', 'README.md')


def test_readme_results_match_the_result_files():
    """README.md and docs/results/README.md hold exactly what the result files say."""
    out = subprocess.run([sys.executable, 'tools/analysis_tools/results_table.py', '--check'], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_runs_are_reused_only_from_a_report_with_the_same_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(uda_results, 'ROOT', str(tmp_path))
    environment = uda_results.current_environment()
    config = tmp_path / uda_results.METHODS['daformer']
    config.parent.mkdir(parents=True)
    config.write_text("model = dict(type='DACS', alpha=0.98)\n")
    settings = uda_results.method_digest('daformer', uda_results.parse_args([]))
    report = dict(date='2026-01-01 00:00 UTC', iters=300, cfg_options=[],
                  configs={'daformer': uda_results.METHODS['daformer']},
                  environment=environment, settings={'daformer': settings},
                  runs={'daformer': {'1': dict(mIoU=70.5, per_class={})}})
    (tmp_path / 'old.json').write_text(json.dumps(report))
    args = uda_results.parse_args(['--iters', '300', '--reuse-report', 'old.json'])
    run = uda_results.reusable_run('daformer', 1, args)
    assert run['mIoU'] == 70.5 and run['reused_from'] == 'old.json (2026-01-01 00:00 UTC)'
    # made with another diffusers, other kernels, on another benchmark, or without a record:
    # not reused
    packages = dict(environment['packages'], diffusers='0.0.1')
    other_kernels = 'AVX512' if environment['kernels'] != 'AVX512' else 'AVX2'
    for other_environment in (dict(environment, packages=packages),
                              dict(environment, kernels=other_kernels),
                              dict(environment, data='0' * 64), None):
        (tmp_path / 'old.json').write_text(json.dumps(dict(report,
                                                           environment=other_environment)))
        assert uda_results.reusable_run('daformer', 1, args) is None
    # made with other settings of the same config file (its alpha then), or without a record
    for other_settings in ({'daformer': '0' * 64}, None):
        (tmp_path / 'old.json').write_text(json.dumps(dict(report, settings=other_settings)))
        assert uda_results.reusable_run('daformer', 1, args) is None
    config.write_text("model = dict(type='DACS', alpha=0.999)\n")
    (tmp_path / 'old.json').write_text(json.dumps(report))
    assert uda_results.reusable_run('daformer', 1, args) is None
    config.write_text("model = dict(type='DACS', alpha=0.98)\n")
    assert uda_results.reusable_run('daformer', 1, args)['mIoU'] == 70.5
    assert uda_results.reusable_run('daformer', 2, args) is None  # not in the report
    assert uda_results.reusable_run('iccld', 1, args) is None
    other = uda_results.parse_args(['--iters', '400', '--reuse-report', 'old.json'])
    assert uda_results.reusable_run('daformer', 1, other) is None
    variant = uda_results.parse_args(['--iters', '300', '--reuse-report', 'old.json',
                                      '--cfg-options', 'model.alpha=0.99'])
    assert uda_results.reusable_run('daformer', 1, variant) is None
    # the report of that option, once the option is the config's default: the same settings,
    # reused; with several reports, from the first that holds the run
    digest = uda_results.method_digest('daformer', variant)
    (tmp_path / 'option.json').write_text(json.dumps(dict(
        report, cfg_options=['model.alpha=0.99'], settings={'daformer': digest},
        runs={'daformer': {'1': dict(mIoU=71.5, per_class={}),
                           '2': dict(mIoU=72.5, per_class={})}})))
    config.write_text("model = dict(type='DACS', alpha=0.99)\n")
    both = uda_results.parse_args(['--iters', '300', '--reuse-report', 'old.json',
                                   'option.json'])
    assert uda_results.reusable_run('daformer', 1, both) == dict(
        mIoU=71.5, per_class={}, reused_from='option.json (2026-01-01 00:00 UTC)')
    assert uda_results.reusable_run('daformer', 2, both)['mIoU'] == 72.5
    config.write_text("model = dict(type='DACS', alpha=0.98)\n")
    assert uda_results.reusable_run('daformer', 1, both)['mIoU'] == 70.5
    assert uda_results.reusable_run('daformer', 2, both) is None
    # a run of its own under --work-root wins over the report
    metrics = tmp_path / args.work_root / 'daformer_seed1' / 'test' / 'metrics.json'
    metrics.parent.mkdir(parents=True)
    metrics.write_text('{}')
    assert uda_results.reusable_run('daformer', 1, args) is None


def test_a_trained_run_whose_test_failed_is_tested_again_not_retrained(tmp_path, monkeypatch):
    monkeypatch.setattr(uda_results, 'ROOT', str(tmp_path))
    args = uda_results.parse_args(['--iters', '300', '--work-root', 'runs'])
    work_dir = tmp_path / 'runs' / 'daformer_seed3'
    work_dir.mkdir(parents=True)
    (work_dir / 'iter_300.pth').write_bytes(b'')
    config = tmp_path / uda_results.METHODS['daformer']
    config.parent.mkdir(parents=True)
    config.write_text('')
    commands = []

    def fake_run(command, log_path):
        commands.append(command[1])
        (work_dir / 'test').mkdir(exist_ok=True)
        (work_dir / 'test' / 'metrics.json').write_text('{"mIoU": 61.0}')

    monkeypatch.setattr(tool_runs, 'run', fake_run)
    metrics = uda_results.train_and_test('daformer', 3, args)
    assert commands == ['tools/test.py']
    assert metrics['mIoU'] == 61.0 and metrics['train_seconds'] is None
    # without the final checkpoint the run trains first
    (work_dir / 'iter_300.pth').unlink()
    (work_dir / 'test' / 'metrics.json').unlink()
    (work_dir / 'last_checkpoint').write_text('runs/daformer_seed3/iter_300.pth')
    commands.clear()
    uda_results.train_and_test('daformer', 3, args)
    assert commands == ['tools/train.py', 'tools/test.py']


def test_a_k_test_is_made_once_with_its_steps_and_again_when_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(uda_results, 'ROOT', str(tmp_path))
    args = uda_results.parse_args(['--iters', '300', '--work-root', 'runs'])
    run = tmp_path / 'runs' / 'iccld_seed2'
    run.mkdir(parents=True)
    (run / 'iccld_tiny.py').write_text('')  # the runner's dump
    commands = []

    def fake_run(command, log_path):
        commands.append(command[1:])
        test_dir = tmp_path / command[command.index('--work-dir') + 1]
        assert log_path == str(test_dir / 'test.out')
        (test_dir / 'metrics.json').write_text(json.dumps(dict(metrics=dict(mIoU=70.0 + len(
            commands)))))

    monkeypatch.setattr(tool_runs, 'run', fake_run)
    ckpt = 'runs/iccld_seed2/iter_300.pth'
    assert uda_results.test_at_k('iccld', 2, 3, ckpt, args) == 71.0
    assert commands == [['tools/test.py', 'runs/iccld_seed2/iccld_tiny.py', ckpt, '--work-dir',
                         'runs/iccld_seed2/test_k3', '--cfg-options',
                         'model.model.test_cfg.num_inference_steps=3']]
    assert uda_results.test_at_k('iccld', 2, 3, ckpt, args) == 71.0  # read, not tested again
    assert len(commands) == 1
    fresh = uda_results.parse_args(['--iters', '300', '--work-root', 'runs', '--fresh'])
    assert uda_results.test_at_k('iccld', 2, 3, ckpt, fresh) == 72.0
    assert len(commands) == 2


def test_benchmark_fingerprint_is_the_sha256_of_paths_and_contents(tmp_path):
    (tmp_path / 'b').mkdir()
    (tmp_path / 'b' / 'y.png').write_bytes(b'\x89PNG')
    (tmp_path / 'a.json').write_bytes(b'{}')
    expected = hashlib.sha256(
        b'a.json\0' + hashlib.sha256(b'{}').digest() +
        b'b/y.png\0' + hashlib.sha256(b'\x89PNG').digest()).hexdigest()
    assert run_environment.tree_fingerprint(str(tmp_path)) == expected
    (tmp_path / 'b' / 'y.png').write_bytes(b'\x89PNh')  # one byte differs
    assert run_environment.tree_fingerprint(str(tmp_path)) != expected
    assert run_environment.tree_fingerprint(str(tmp_path / 'absent')) is None
    # left-out endings do not count
    changed = run_environment.tree_fingerprint(str(tmp_path))
    (tmp_path / 'a.json').write_bytes(b'{"path": "elsewhere"}')
    assert run_environment.tree_fingerprint(str(tmp_path), skip_suffixes=('.json', )) == \
        hashlib.sha256(b'b/y.png\0' + hashlib.sha256(b'\x89PNh').digest()).hexdigest()
    assert run_environment.tree_fingerprint(str(tmp_path)) != changed


def test_reports_name_the_packages_cpu_and_benchmark_they_were_made_with():
    environment = run_environment.run_environment('absent-folder')
    assert environment['packages']['torch'] == torch_version()
    assert environment['data'] is None
    assert environment['kernels'] == run_environment.kernel_isa()
    line = run_environment.environment_line(dict(environment, kernels='AVX2', data='ab' * 32))
    assert f"torch {torch_version()}" in line and 'sha256 abababababababab.' in line
    assert ' (AVX2 kernels) with ' in line
    assert run_environment.environment_line(None) == ''


def kernel_isa_with(script: str) -> str:
    """``kernel_isa()`` in a fresh interpreter after ``script`` ran in its shell."""
    code = 'from mmseg_iccld.apis.run_environment import kernel_isa; print(kernel_isa())'
    env = {k: v for k, v in os.environ.items()
           if k not in ('ATEN_CPU_CAPABILITY', 'NPY_DISABLE_CPU_FEATURES', 'OPENCV_CPU_DISABLE')}
    out = subprocess.run(['bash', '-c', f'{script} "{sys.executable}" -c \'{code}\''], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def machine_kernels() -> str:
    """The kernels all three libraries pick on this CPU when nothing holds them back; skips the
    test on a CPU without AVX2, where the records below have nothing to tell apart."""
    machine = kernel_isa_with('')
    if machine not in ('AVX2', 'AVX512'):
        pytest.skip(f'the CPU has no AVX2 (kernels: {machine})')
    return machine


def test_the_kernels_record_names_each_library_whose_instruction_set_differs():
    """torch, numpy and OpenCV each pick their kernels by the CPU: the record names the one
    set they share, or each library's where they differ; scripts/avx2_kernels.sh holds all
    three to AVX2, whichever of the two sets the CPU has."""
    machine = machine_kernels()
    assert kernel_isa_with('ATEN_CPU_CAPABILITY=default') == \
        f'torch DEFAULT, numpy {machine}, OpenCV {machine}'
    assert kernel_isa_with('source scripts/avx2_kernels.sh;') == 'AVX2'
    assert kernel_isa_with('source scripts/avx2_kernels.sh; ATEN_CPU_CAPABILITY=default') == \
        'torch DEFAULT, numpy AVX2, OpenCV AVX2'


def test_the_kernels_record_names_torch_alone_above_the_others():
    """torch asked for AVX-512 kernels while numpy and OpenCV are held to AVX2. torch takes
    ``ATEN_CPU_CAPABILITY`` at its word, without asking the CPU, so the case only exists on a
    CPU that can run those kernels."""
    machine = machine_kernels()
    if machine != 'AVX512':
        pytest.skip(f'the CPU has no AVX-512 (kernels: {machine}): torch cannot run them here')
    assert kernel_isa_with('source scripts/avx2_kernels.sh; ATEN_CPU_CAPABILITY=avx512') == \
        'torch AVX512, numpy AVX2, OpenCV AVX2'


def torch_version() -> str:
    """torch's own version string (the wheel's local part, ``+cpu``, included)."""
    return torch.__version__
