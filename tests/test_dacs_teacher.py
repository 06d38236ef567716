"""The DACS EMA teacher against DAFormer's formula."""
import torch
import torch.nn as nn
from mmcv.cnn.bricks.drop import DropPath

from mmseg_iccld.models.uda.teacher import EMATeacher, disable_dropout


class TinyNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 1)
        self.bn = nn.BatchNorm2d(3)
        self.drop = nn.Dropout(0.5)
        self.drop_path = DropPath(0.5)


def _set_params(net: nn.Module, value: float) -> None:
    with torch.no_grad():
        for i, p in enumerate(net.parameters()):
            p.copy_(torch.full_like(p, value + i))


def test_first_update_copies_then_ema_follows_formula_at_two_iterations():
    student = TinyNet()
    _set_params(student, 1.0)
    teacher = EMATeacher(student, alpha=0.999)
    _set_params(teacher.module, -50.0)  # the copy must overwrite whatever it holds
    assert int(teacher.steps) == 0

    teacher.update_parameters(student)  # iteration 0, before the first forward
    for p_t, p_s in zip(teacher.module.parameters(), student.parameters()):
        assert torch.equal(p_t, p_s)
    assert int(teacher.steps) == 1

    # after the optimizer step of iteration 0: alpha = min(1 - 1/2, 0.999) = 0.5
    before = [p.clone() for p in teacher.module.parameters()]
    _set_params(student, 3.0)
    teacher.update_parameters(student)
    for i, (p_t, old) in enumerate(zip(teacher.module.parameters(), before)):
        expected = 0.5 * old + 0.5 * (3.0 + i)
        assert torch.allclose(p_t, expected)
    # conv.weight started at 1 -> 0.5 * 1 + 0.5 * 3 = 2
    assert torch.allclose(teacher.module.conv.weight, torch.full((3, 2, 1, 1), 2.0))

    # after iteration 1: alpha = min(1 - 1/3, 0.999) = 2/3
    _set_params(student, 8.0)
    teacher.update_parameters(student)
    assert torch.allclose(teacher.module.conv.weight, torch.full((3, 2, 1, 1), 2 / 3 * 2 + 8 / 3))
    assert int(teacher.steps) == 3


def test_alpha_reaches_its_cap():
    teacher = EMATeacher(TinyNet(), alpha=0.999)
    assert teacher.alpha_at(1) == 0.5
    assert teacher.alpha_at(9) == 0.9
    assert teacher.alpha_at(999) == 0.999
    assert teacher.alpha_at(5000) == 0.999


def test_buffers_are_copied_from_the_student():
    student = TinyNet()
    teacher = EMATeacher(student, alpha=0.9)
    teacher.update_parameters(student)
    student.bn.running_mean.fill_(4.0)
    student.bn.num_batches_tracked.fill_(7)
    teacher.update_parameters(student)
    assert torch.equal(teacher.module.bn.running_mean, torch.full((3, ), 4.0))
    assert int(teacher.module.bn.num_batches_tracked) == 7


def test_train_mode_keeps_dropout_and_drop_path_off():
    teacher = EMATeacher(TinyNet())
    teacher.train()
    assert teacher.module.bn.training
    assert not teacher.module.drop.training
    assert not teacher.module.drop_path.training
    assert all(not p.requires_grad for p in teacher.parameters())

    net = TinyNet().train()
    disable_dropout(net)
    x = torch.ones(4, 3, 2, 2)
    assert torch.equal(net.drop(x), x) and torch.equal(net.drop_path(x), x)


def test_steps_survive_a_state_dict_round_trip():
    student = TinyNet()
    teacher = EMATeacher(student)
    teacher.update_parameters(student)
    teacher.update_parameters(student)
    restored = EMATeacher(TinyNet())
    restored.load_state_dict(teacher.state_dict())
    assert int(restored.steps) == 2
