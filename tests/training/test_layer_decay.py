"""Layer-wise lr decay (`layer_decay D [group G]`) equals the official ConvNeXt fine-tuning.

The official code is re-implemented below as facebookresearch/ConvNeXt writes it
(optim_factory.py `get_num_layer_for_convnext`, `LayerDecayValueAssigner`,
`get_parameter_groups`; main.py's assigner values with num_layers 12; utils.py
`cosine_scheduler`; engine.py `param_group["lr"] = lr_schedule_values[it] *
param_group["lr_scale"]`), applied to the independent reference ConvNeXt
(tests/reference_models.py, official parameter names), and its names mapped onto archdsl's
through the `official` weight layout.
"""
import math
import shutil

import numpy as np
import pytest
import torch

import archdsl
from archdsl.interop.weights import native_name
from archdsl.lang.recipe import TrainRecipe
from archdsl.training.layer_decay import assign_layers, describe
from archdsl.training.schedule import build_optimizer, build_scheduler, param_groups, schedule_lr
from reference_models import ConvNeXt


# ---------------------------------------------------------------- the official code
def get_num_layer_for_convnext(var_name):
    num_max_layer = 12
    if var_name.startswith("downsample_layers"):
        stage_id = int(var_name.split('.')[1])
        if stage_id == 0:
            layer_id = 0
        elif stage_id == 1 or stage_id == 2:
            layer_id = stage_id + 1
        elif stage_id == 3:
            layer_id = 12
        return layer_id
    elif var_name.startswith("stages"):
        stage_id = int(var_name.split('.')[1])
        block_id = int(var_name.split('.')[2])
        if stage_id == 0 or stage_id == 1:
            layer_id = stage_id + 1
        elif stage_id == 2:
            layer_id = 3 + block_id // 3
        elif stage_id == 3:
            layer_id = 12
        return layer_id
    else:
        return num_max_layer + 1


def official_groups(model, layer_decay, weight_decay):
    """name -> (lr_scale, weight_decay), as create_optimizer -> get_parameter_groups builds them
    (skip list empty: the official ConvNeXt has no no_weight_decay())."""
    num_layers = 12
    values = list(layer_decay ** (num_layers + 1 - i) for i in range(num_layers + 2))
    out = {}
    for name, param in model.named_parameters():
        if len(param.shape) == 1 or name.endswith(".bias"):
            this_weight_decay = 0.
        else:
            this_weight_decay = weight_decay
        out[name] = (values[get_num_layer_for_convnext(name)], this_weight_decay)
    return out


def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0):
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(0, base_value, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = np.array(
        [final_value + 0.5 * (base_value - final_value) * (1 + math.cos(math.pi * i / (len(iters)))) for i in iters])
    return np.concatenate((warmup_schedule, schedule))


# ---------------------------------------------------------------- archdsl against it
@pytest.mark.parametrize("spec,decay", [("convnext_b", 0.7), ("convnext_b", 0.8), ("convnext_s", 0.7)])
def test_every_parameter_gets_the_official_lr_scale_and_weight_decay(spec, decay):
    # the official rule reads names and ndim only: the reference is ConvNeXt-S/B/L/XL's depths at
    # narrow widths (it cannot be built on the meta device)
    reference = ConvNeXt(num_classes=10, depths=(3, 3, 27, 3), dims=(8, 16, 32, 64))
    official = {native_name(n, "official"): v for n, v in official_groups(reference, decay, 0.05).items()}
    assert None not in official

    model = archdsl.build(spec, device="meta", classes=10)
    names = {id(p): n for n, p in model.named_parameters()}
    recipe = TrainRecipe(optimizer="adamw", lr=5e-5, wd=0.05, layer_decay=decay)
    mine = {}
    for g in param_groups(model, recipe):
        assert g["lr"] == 5e-5 * g["lr_scale"]
        for p in g["params"]:
            mine[names[id(p)]] = (g["lr_scale"], g["weight_decay"])
    assert mine == official  # every parameter, exactly: the same floats
    assert len({s for s, _ in mine.values()}) == 14


def test_the_run_says_the_decay():
    model = archdsl.build("convnext_b", device="meta", classes=10)
    line = describe(assign_layers(model, 3), 0.7, 3)
    assert line.startswith("layer decay 0.7 over 14 layers (layers of up to 3 blocks, within a stage): stem x0.0097, stages.0 x0.014, "
                           "stages.1 x0.02, stages.2.blocks.0-2 x0.028, ")
    assert line.endswith("stages.2.blocks.24-26 x0.49, stages.3 x0.7, head x1")


def test_group_1_is_beits_per_block_decay_on_a_vit():
    """BEiT's get_num_layer_for_vit: cls_token, pos_embed, patch_embed 0; blocks.J J + 1; the
    rest (final norm, head) num_layers + 1."""
    model = archdsl.build("deit_s", device="meta", classes=10)
    layers = assign_layers(model, 1)
    for name, layer in layers.of.items():
        if name.startswith("stem."):
            assert layer == 0
        elif name.startswith("stages.0.blocks."):
            assert layer == int(name.split(".")[3]) + 1
        else:
            assert name.startswith("head.") and layer == 13
    assert len(layers.labels) == 14


def test_a_downsample_joins_its_stages_first_layer_and_stages_never_share_one():
    model = archdsl.build("convnext_atto", device="meta", classes=10, depths="2,2,5,2")
    layers = assign_layers(model, 3)
    assert layers.labels == ["stem", "stages.0", "stages.1", "stages.2.blocks.0-2", "stages.2.blocks.3-4",
                             "stages.3", "head"]
    of = layers.of
    assert of["downsample.2.0.weight"] == of["stages.2.blocks.0.dwconv.weight"] == 3
    assert of["stages.2.blocks.4.dwconv.weight"] == 4 and of["downsample.3.1.weight"] == 5


def tiny() -> torch.nn.Module:
    return archdsl.build("convnext_atto", widths="8,16,32,64", depths="1,1,3,1", classes=10)


def group_lrs(recipe: TrainRecipe, steps_per_epoch: int) -> list[list[tuple[float, float]]]:
    """(lr, lr_scale) of every group at every step, stepping the optimizer as training does."""
    opt = build_optimizer(tiny(), recipe)
    sched = build_scheduler(opt, recipe, steps_per_epoch)
    out = []
    for _ in range(recipe.epochs * steps_per_epoch):
        out.append([(g["lr"], g["lr_scale"]) for g in opt.param_groups])
        opt.step()
        sched.step()
    return out


def test_each_groups_lr_is_the_official_cosine_times_its_scale_min_lr_included():
    r = TrainRecipe(epochs=3, lr=5e-5, wd=1e-8, schedule="cosine", min_lr=1e-6, layer_decay=0.7, layer_group=1)
    official = cosine_scheduler(5e-5, 1e-6, 3, 4)
    got = group_lrs(r, 4)
    assert len({s for _, s in got[0]}) == 8  # stem, 6 blocks, head
    for t, groups in enumerate(got):
        for lr, scale in groups:
            assert lr == pytest.approx(official[t] * scale, rel=1e-12, abs=0)
    stem = min(s for _, s in got[0])
    assert got[-1][0][0] < 1e-6 and got[-1][0][0] == pytest.approx(official[-1] * stem, rel=1e-12)


def test_warmup_and_step_schedules_scale_with_the_layer_too():
    warm = group_lrs(TrainRecipe(epochs=2, lr=1.0, schedule="cosine", warmup=1, layer_decay=0.5), 3)
    for t, factor in enumerate([0.25, 0.5, 0.75, 1.0]):  # lr * (t + 1) / (W + 1), then the peak
        assert all(lr == pytest.approx(factor * s, rel=1e-12) for lr, s in warm[t])
    step = group_lrs(TrainRecipe(epochs=2, lr=1.0, optimizer="sgd", schedule="step", milestones=(1,),
                                 layer_decay=0.5), 2)
    assert all(lr == pytest.approx(0.1 * s, rel=1e-12) for lr, s in step[-1])


def test_the_reported_lr_is_the_schedules_the_heads_group():
    r = TrainRecipe(epochs=1, lr=2e-3, schedule="constant", layer_decay=0.7)
    opt = build_optimizer(tiny(), r)
    assert opt.param_groups[0]["lr_scale"] < 1 and schedule_lr(opt) == 2e-3


def test_a_run_resumed_from_a_checkpoint_ends_bit_identical(tmp_path):
    """Two epochs with layer decay and a scaled cosine floor; the same run resumed from its
    second-newest checkpoint (mid epoch 2) ends with the same weights."""
    from torch.utils.data import TensorDataset

    from archdsl.training import load_checkpoint, train
    from archdsl.training import checkpoint as ckpt

    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 32, 32, generator=g)
    y = (x.mean((1, 2, 3)) > 0.5).long()
    data = (TensorDataset(x[:32], y[:32]), TensorDataset(x[32:], y[32:]))
    args = dict(epochs=2, quiet=True, widths="8,16,32,64", depths="1,1,2,1", train_batch=8,
                train_schedule="cosine", train_min_lr=1e-4, train_layer_decay=0.7, train_checkpoint_every=3)
    full = tmp_path / "full"
    train("convnext_atto", data, out=full, **args)
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    newest = ckpt.all_steps(cut)[-1]
    shutil.rmtree(newest)
    train("convnext_atto", data, out=cut, resume=True, **args)
    a, b = load_checkpoint(full), load_checkpoint(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_recipe_lines_parse_print_and_refuse_bad_values_at_their_place(tmp_path):
    from archdsl.lang.flatten import recipe_settings

    text = "network r extends convnext_atto\ntrain {\n    layer_decay VALUE\n    head_init_scale 0.001\n}\n"
    spec = tmp_path / "r.arch"
    spec.write_text(text.replace("VALUE", "0.65 group 1"))
    r = archdsl.load(str(spec)).train
    assert (r.layer_decay, r.layer_group, r.head_init_scale) == (0.65, 1, 0.001)
    lines = {s.key.text: " ".join(w.text for g in s.groups for w in g) for s in recipe_settings(r)}
    assert lines["layer_decay"] == "0.65 group 1" and lines["head_init_scale"] == "0.001"
    assert archdsl.load("convnext_atto", **{"train.layer_decay": "1.2"}).train.layer_decay == 1.2  # as main.py
    for value, column, field in (("0", 17, "layer_decay"), ("-0.7", 17, "layer_decay"),
                                 ("0.7 group 0", 27, "layer_group"), ("11", 17, "layer_decay")):
        spec.write_text(text.replace("VALUE", value))
        with pytest.raises(archdsl.ArchError, match=f"bad value for train `{field}`: must be in") as e:
            archdsl.load(str(spec))
        assert (e.value.code, e.value.line, e.value.column) == ("E603", 3, column), value
    spec.write_text(text.replace("VALUE", "0.7").replace("0.001", "-1"))
    with pytest.raises(archdsl.ArchError, match="`head_init_scale`: must be in \\[0, 10\\]") as e:
        archdsl.load(str(spec))
    assert (e.value.line, e.value.column) == (4, 21)
    spec.write_text(text.replace("VALUE", "0.7 groups 1"))
    with pytest.raises(archdsl.ArchError, match="unknown option `groups` for `layer_decay`") as e:
        archdsl.load(str(spec))
    assert (e.value.code, e.value.line, e.value.column) == ("E602", 3, 21)
    assert str(e.value.span).endswith("r.arch:3:21")


def test_a_model_without_stages_of_blocks_is_a_clear_error():
    from archdsl.lang.errors import TrainError

    with pytest.raises(TrainError, match="needs stages of blocks") as e:
        param_groups(torch.nn.Linear(2, 2), TrainRecipe(layer_decay=0.7))
    assert e.value.code == "E761" and "leave layer_decay at 1" in e.value.hint
    model = archdsl.build("convnext_atto", device="meta", classes=10)
    model.extra = torch.nn.Linear(2, 2, device="meta")
    with pytest.raises(TrainError, match="cannot place parameter `extra.weight`"):
        param_groups(model, TrainRecipe(layer_decay=0.7))
