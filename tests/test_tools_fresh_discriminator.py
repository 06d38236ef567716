"""tools/analysis_tools/fresh_discriminator.py: a switch checkpoint for a phase-2 variant whose
discriminator has another shape."""
import pytest
import torch
from mmengine.runner import set_random_seed
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.models.discriminators import DomainDiscriminator
from tools._common import load_config
from tools.analysis_tools import fresh_discriminator

CONFIG = 'configs/synthetic/iccld_tiny.py'
LATENT = ['model.adv_input=latent', 'model.discriminator.in_channels=32']


def switch_checkpoint(path, phase=1, dis_state=None):
    """A checkpoint laid out as a switch checkpoint: the default f_dis (19 channels)."""
    torch.manual_seed(7)
    discriminator = DomainDiscriminator(19, channels=(64, 128, 256), pool=False)
    state = {'model.phase': torch.tensor(phase), 'model.backbone.w': torch.randn(3, 4)}
    state.update({f'discriminator.{k}': v for k, v in discriminator.state_dict().items()})
    checkpoint = dict(state_dict=state, meta=dict(iter=1000),
                      optimizer=dict(model=dict(state={}, param_groups=[]),
                                     discriminator=dict(state=dis_state or {},
                                                        param_groups=[])))
    torch.save(checkpoint, path)
    return checkpoint


def test_the_variants_initialised_discriminator_replaces_the_untrained_one(tmp_path, capsys):
    src, out = tmp_path / 'iter_1000.pth', tmp_path / 'variant' / 'iter_1000.pth'
    before = switch_checkpoint(src)
    fresh_discriminator.main([CONFIG, str(src), str(out), '--seed', '3', '--cfg-options',
                              *LATENT])
    written = torch.load(out, map_location='cpu', weights_only=False)
    # the reference: the variant's UDA model built and initialised under seed 3; its f_dis
    # reads z0's 32 channels (three convolutions and the classifier: 8 tensors)
    cfg = load_config(CONFIG, {'model.adv_input': 'latent', 'model.discriminator.in_channels': 32})
    register_all_modules()
    set_random_seed(3)
    model = MODELS.build(cfg.model)
    model.init_weights()
    reference = model.discriminator.state_dict()
    state = written['state_dict']
    assert state['discriminator.features.0.weight'].shape == (64, 32, 3, 3)
    for key, value in reference.items():
        assert torch.equal(state[f'discriminator.{key}'], value)
    assert torch.equal(state['model.backbone.w'], before['state_dict']['model.backbone.w'])
    assert int(state['model.phase']) == 1 and written['meta'] == dict(iter=1000)
    assert 'seed 3, 8 tensors' in capsys.readouterr().out


@pytest.mark.parametrize('phase, dis_state, message', [
    (2, None, 'not an ICCLD checkpoint in phase 1'),
    (1, {0: dict(step=torch.tensor(1.0))}, 'has been trained')])
def test_a_trained_discriminator_is_refused(tmp_path, capsys, phase, dis_state, message):
    src, out = tmp_path / 'iter_1000.pth', tmp_path / 'out.pth'
    switch_checkpoint(src, phase=phase, dis_state=dis_state)
    with pytest.raises(SystemExit):
        fresh_discriminator.main([CONFIG, str(src), str(out), '--cfg-options', *LATENT])
    assert message in capsys.readouterr().err and not out.exists()
