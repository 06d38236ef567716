"""ICCLD's two training phases: the checkpointed phase buffer decides training and prediction
alike."""
import pytest
import torch

from test_iccld_model import build_model, make_batch, predict_logits, train_mask_projection


def test_phase_is_a_checkpointed_buffer():
    model = build_model()
    assert int(model.phase) == 1 and not model.in_phase2
    assert model.set_phase(2) and not model.set_phase(2)  # whether the phase changed
    state = model.state_dict()
    assert int(state['phase']) == 2
    fresh = build_model()
    fresh.load_state_dict(state)
    assert fresh.in_phase2 and int(fresh.phase) == 2
    with pytest.raises(ValueError, match='1 or 2'):
        model.set_phase(3)


def test_a_loaded_phase_decides_the_training_pass_and_the_prediction():
    trained = build_model(phase=2)
    train_mask_projection(trained)
    inputs, samples = make_batch()
    fresh = build_model(phase=1)
    fresh.load_state_dict(trained.state_dict())
    # prediction: K DDIM steps, as the model that was saved
    assert fresh.num_inference_steps == 3
    torch.testing.assert_close(predict_logits(fresh, inputs, samples),
                               predict_logits(trained, inputs, samples))
    # training: the diffusion runs, with its draw
    output = fresh.train().uda_loss(inputs, samples)
    assert output.draw is not None and 'loss_ldm' in output.losses
    fresh.set_phase(1)
    assert fresh.num_inference_steps == 0 and fresh.uda_loss(inputs, samples).draw is None
