"""tools/analysis_tools/profile_step.py on the tiny ICCLD: the phases and networks of one iteration, with
the call counts the method implies, and the host reads of the loss code."""
import json

import pytest

from tools.analysis_tools import profile_step

TINY = 'configs/synthetic/iccld_tiny.py'


def _profile(tmp_path, phase):
    out = tmp_path / f'phase{phase}'
    profile_step.main([TINY, '--phase', str(phase), '--iters', '1', '--warmup', '1',
                       '--out', str(out)])
    assert (tmp_path / f'phase{phase}.md').read_text().startswith(f'`{TINY}` (phase {phase})')
    report = json.loads((tmp_path / f'phase{phase}.json').read_text())
    assert report['phase'] == phase
    return report


def test_phase2_profile_has_every_part_and_the_network_calls(tmp_path):
    report = _profile(tmp_path, 2)
    phases = {p['name']: p for p in report['phases']}
    for name in ('source forward (+ feature distance)', 'mixed forward',
                 'target forward (ICCLD phase 2)', 'teacher pseudo-labels',
                 'ClassMix + color jitter + blur', 'discriminator step (ICCLD phase 2)',
                 'teacher EMA update'):
        assert phases[name]['calls_per_iter'] == 1, name
    # one backward per domain
    assert phases['loss check + backward']['calls_per_iter'] == 3
    # the phases do not overlap, so together they fit in the iteration
    assert 0.5 < sum(p['share'] for p in report['phases']) <= 1.0 + 1e-6
    networks = {n['name']: n['calls_per_iter'] for n in report['networks']}
    assert networks['student backbone'] == 3  # source, mixed, target
    # per domain one noise prediction (eq. 2) and the K = 3 steps of the sampler's chain
    assert networks['student UNet eps_theta'] == 12
    assert networks['student decode head'] == 2  # the target has no L_seg
    assert networks['teacher UNet eps_theta'] == 3  # K = 3 DDIM steps of pseudo-labelling
    assert networks['frozen ImageNet backbone'] == 1
    # discriminator: one generator KL per domain, then its own step on all three
    assert networks['discriminator'] == 4
    guard = [r for r in report['host_reads'] if 'loss_guard.py' in r['site']]
    assert sum(r['per_iter'] for r in guard) == 4  # one check per loss dict
    assert report['operators'] and report['wall_s_per_iter'] > 0


def test_phase1_profile_is_dacs(tmp_path):
    report = _profile(tmp_path, 1)
    phases = {p['name'] for p in report['phases']}
    assert 'target forward (ICCLD phase 2)' not in phases
    assert 'discriminator step (ICCLD phase 2)' not in phases
    networks = {n['name']: n['calls_per_iter'] for n in report['networks']}
    assert networks['student backbone'] == 2
    assert 'student UNet eps_theta' not in networks and 'teacher UNet eps_theta' not in networks


def test_unknown_config_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        profile_step.main(['configs/iccld/nope.py', '--out', str(tmp_path / 'x')])
    assert 'configs/iccld/nope.py does not exist' in capsys.readouterr().err
