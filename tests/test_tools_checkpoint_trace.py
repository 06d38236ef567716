"""tools/analysis_tools/checkpoint_trace.py: every checkpoint of a run tested once, in
iteration order, and its table."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmseg_iccld.apis import tool_runs
from tools.analysis_tools import checkpoint_trace

ROOT = Path(__file__).resolve().parents[1]


def make_run(path: Path, iters=(1000, 250, 500)) -> Path:
    path.mkdir(parents=True)
    (path / 'iccld_hr_tiny.py').write_text('')
    for it in iters:
        (path / f'iter_{it}.pth').write_bytes(b'')
    (path / 'last_checkpoint').write_text(str(path / f'iter_{max(iters)}.pth'))
    (path / 'iter_x.pth').write_bytes(b'')  # not a checkpoint of an iteration
    return path


def metrics_file(miou: float, fence: float, person) -> str:
    return json.dumps(dict(metrics=dict(mIoU=miou), per_class_iou=dict(
        road=90.0, wall=None, fence=fence, person=person)))


def test_checkpoints_are_ordered_by_iteration_not_by_name(tmp_path):
    run = make_run(tmp_path / 'run')
    found = checkpoint_trace.checkpoints(str(run))
    assert [it for it, _ in found] == [250, 500, 1000]
    assert found[0][1] == str(run / 'iter_250.pth')


def test_run_folder_errors_name_the_folder_and_what_is_wrong(tmp_path):
    with pytest.raises(NotADirectoryError, match='missing: no such run folder'):
        checkpoint_trace.run_config(str(tmp_path / 'missing'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match=r'empty: expected the one config .* found none'):
        checkpoint_trace.run_config(str(empty))
    (empty / 'a.py').write_text('')
    (empty / 'b.py').write_text('')
    with pytest.raises(ValueError, match='found a.py, b.py'):
        checkpoint_trace.run_config(str(empty))
    with pytest.raises(FileNotFoundError, match=r'empty: no checkpoint iter_<N>\.pth'):
        checkpoint_trace.checkpoints(str(empty))
    # the command line says the same in one line, with status 1
    result = subprocess.run(
        [sys.executable, 'tools/analysis_tools/checkpoint_trace.py', str(tmp_path / 'missing')],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert 'missing: no such run folder' in result.stderr


def test_each_checkpoint_is_tested_once_with_the_options_and_tabled(tmp_path, monkeypatch):
    run = make_run(tmp_path / 'iccld_hr_seed1')
    # iteration 500 was tested before: its metrics are read, not made again
    (run / 'trace' / 'iter_500').mkdir(parents=True)
    (run / 'trace' / 'iter_500' / 'metrics.json').write_text(metrics_file(75.5, 45.25, 40.0))
    made = {250: (70.0, 52.5, None), 1000: (73.69, 40.08, 42.01)}
    commands = []

    def fake_run(command, log_path):
        commands.append(command)
        checkpoint = Path(command[3])
        test_dir = Path(command[command.index('--work-dir') + 1])
        it = int(checkpoint.stem.split('_')[1])
        (test_dir / 'metrics.json').write_text(metrics_file(*made[it]))

    monkeypatch.setattr(tool_runs, 'run', fake_run)
    out = tmp_path / 'report'
    checkpoint_trace.main([str(run), '--cfg-options', 'model.model.test_cfg.num_inference_steps=0',
                           '--out', str(out)])
    assert [Path(c[3]).name for c in commands] == ['iter_250.pth', 'iter_1000.pth']
    for command in commands:
        assert command[1:3] == ['tools/test.py', str(run / 'iccld_hr_tiny.py')]
        assert command[-2:] == ['--cfg-options', 'model.model.test_cfg.num_inference_steps=0']
    report = json.loads((tmp_path / 'report.json').read_text())
    by_iter = report['runs'][str(run)]
    assert list(by_iter) == ['250', '500', '1000']
    assert by_iter['500'] == dict(mIoU=75.5, per_class=dict(road=90.0, fence=45.25, person=40.0))
    assert by_iter['250']['per_class'] == dict(road=90.0, fence=52.5)
    table = (tmp_path / 'report.md').read_text().splitlines()
    # wall has an IoU in no row and is left out; a class missing in one row is n/a there
    assert table[2] == '| run | iteration | mIoU | road | fence | person |'
    assert table[4] == f'| {run} | 250 | 70.00 | 90.00 | 52.50 | n/a |'
    assert table[5] == f'| {run} | 500 | 75.50 | 90.00 | 45.25 | 40.00 |'
    assert table[6] == f'| {run} | 1000 | 73.69 | 90.00 | 40.08 | 42.01 |'
    assert 'num_inference_steps=0' in table[0]
    # a second call tests nothing again
    commands.clear()
    checkpoint_trace.main([str(run), '--out', str(out)])
    assert commands == []


def test_teacher_traces_keep_apart_from_the_student_traces(tmp_path, monkeypatch):
    run = make_run(tmp_path / 'hrda_seed5', iters=(250, 500))
    # the student's tests are there already; the teacher's must not be read from them
    (run / 'trace' / 'iter_250').mkdir(parents=True)
    (run / 'trace' / 'iter_250' / 'metrics.json').write_text(metrics_file(70.0, 50.0, 40.0))
    commands = []

    def fake_run(command, log_path):
        commands.append(command)
        test_dir = Path(command[command.index('--work-dir') + 1])
        tested = json.loads(metrics_file(60.0, 30.0, 20.0))
        tested['weights'] = command[command.index('--weights') + 1]
        (test_dir / 'metrics.json').write_text(json.dumps(tested))

    monkeypatch.setattr(tool_runs, 'run', fake_run)
    checkpoint_trace.main([str(run), '--weights', 'teacher', '--out', str(tmp_path / 'teacher')])
    assert [Path(c[c.index('--work-dir') + 1]) for c in commands] == [
        run / 'trace_teacher' / 'iter_250', run / 'trace_teacher' / 'iter_500']
    assert all(c[c.index('--weights') + 1] == 'teacher' for c in commands)
    report = json.loads((tmp_path / 'teacher.json').read_text())
    assert report['weights'] == 'teacher' and report['name'] == 'trace_teacher'
    assert [r['mIoU'] for r in report['runs'][str(run)].values()] == [60.0, 60.0]
    assert "the teacher's weights tested" in (tmp_path / 'teacher.md').read_text()
    # metrics of the student in the folder asked for are an error, not a teacher's result
    with pytest.raises(ValueError, match=r'trace/iter_250/metrics\.json: tests the student, '
                       'not the teacher'):
        checkpoint_trace.trace(str(run), 'trace', [], 'teacher')

