"""Schedules hit their values at given optimizer steps; the optimizer groups weight decay."""
import math

import pytest
import torch

import archdsl
from archdsl.lang.recipe import TrainRecipe
from archdsl.training.schedule import build_optimizer, build_scheduler, param_groups


def lrs(recipe: TrainRecipe, steps_per_epoch: int) -> list[float]:
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, recipe)
    sched = build_scheduler(opt, recipe, steps_per_epoch)
    out = []
    for _ in range(recipe.epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_linear_warmup_then_cosine():
    r = TrainRecipe(epochs=3, lr=1.0, schedule="cosine", warmup=1, min_lr=0.1)
    got = lrs(r, steps_per_epoch=4)  # 12 steps, 4 of warm-up, 8 of cosine
    assert got[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])  # lr * (t + 1) / (W + 1), then the peak
    assert got[4 + 4] == pytest.approx(0.55)  # half-way through the cosine: (lr + min_lr) / 2
    assert got[-1] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 7 / 8)) / 2)
    assert all(a > b for a, b in zip(got[4:], got[5:]))


def test_fractional_warmup_epochs():
    r = TrainRecipe(epochs=2, lr=2.0, schedule="cosine", warmup=0.5)
    got = lrs(r, steps_per_epoch=10)  # 5 warm-up steps
    assert got[0] == pytest.approx(2.0 / 6) and got[5] == pytest.approx(2.0)


def test_step_schedule_milestones_in_epochs():
    r = TrainRecipe(epochs=4, lr=1.0, optimizer="sgd", schedule="step", milestones=(2, 3), gamma=0.1)
    assert lrs(r, steps_per_epoch=2) == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_step_schedule_after_warmup():
    r = TrainRecipe(epochs=2, lr=1.0, optimizer="sgd", schedule="step", milestones=(1,), warmup=0.5)
    assert lrs(r, steps_per_epoch=4) == pytest.approx([1 / 3, 2 / 3, 1, 1, 0.1, 0.1, 0.1, 0.1])


def test_constant():
    assert lrs(TrainRecipe(epochs=2, lr=0.5), 3) == pytest.approx([0.5] * 6)


def test_scheduler_state_round_trips():
    r = TrainRecipe(epochs=3, lr=1.0, schedule="cosine", warmup=1)
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, r)
    sched = build_scheduler(opt, r, 4)
    for _ in range(6):
        opt.step()
        sched.step()
    opt2 = build_optimizer(model, r)
    sched2 = build_scheduler(opt2, r, 4)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    for _ in range(5):
        opt.step(); sched.step(); opt2.step(); sched2.step()  # noqa: E702
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]


def test_adamw_skips_decay_on_1d_params_sgd_decays_all():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    adamw = param_groups(model, TrainRecipe(optimizer="adamw", wd=0.05))
    assert [len(g["params"]) for g in adamw] == [1, 3]
    assert [g["weight_decay"] for g in adamw] == [0.05, 0.0]
    sgd = param_groups(model, TrainRecipe(optimizer="sgd", wd=1e-4))
    assert len(sgd) == 1 and len(sgd[0]["params"]) == 4
    opt = build_optimizer(model, TrainRecipe(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True))
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]


def test_optimizers_are_fused_where_torch_has_the_kernel():
    model = torch.nn.Linear(4, 4)
    for name in ("adamw", "sgd"):
        opt = build_optimizer(model, TrainRecipe(optimizer=name, lr=0.1, momentum=0.9))
        assert opt.defaults["fused"] is True, name
    with torch.device("meta"):
        meta = torch.nn.Linear(4, 4)
    assert not build_optimizer(meta, TrainRecipe(optimizer="adamw", lr=0.1)).defaults["fused"]


def test_step_every_epoch_is_torchvisions_mobilenet_v2_schedule():
    """`schedule step every 1 gamma 0.98`: StepLR(step_size=1, gamma=0.98) stepped per epoch, as
    torchvision's reference recipe (--lr-step-size 1 --lr-gamma 0.98): constant within an epoch."""
    recipe = archdsl.load("mobilenet_v2").train
    assert (recipe.schedule, recipe.every, recipe.gamma, recipe.milestones) == ("step", 1, 0.98, ())
    r = recipe.model_copy(update={"epochs": 3})
    got = lrs(r, steps_per_epoch=2)
    assert got == pytest.approx([0.045, 0.045, 0.045 * 0.98, 0.045 * 0.98, 0.045 * 0.98**2, 0.045 * 0.98**2])


@pytest.mark.parametrize("line,message", [
    ("schedule step 30 every 1", "at its milestones or `every N` epochs, not both"),
    ("schedule cosine every 2", "`every` is a step schedule's"),
])
def test_every_misuse(line, message):
    text = f"network t\ninput 3x8x8\nblock b {{\n conv3\n}}\nstages {{\n 8 b x1\n}}\nhead gap, linear\ntrain {{\n {line}\n}}\n"
    with pytest.raises(archdsl.ArchError, match=message):
        archdsl.loads(text)
