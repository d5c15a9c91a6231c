"""The built GraphModule: names from the spec, readable code, and the things people do to a
model (deepcopy, state_dict round trip, torch.compile, meta device, init as the spec says)."""
from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import fx, nn

import archdsl
from training_loop import training_losses

TINY = {"input": "3x32x32", "classes": 10, "widths": "8,16,32,64", "depths": "1,1,2,1"}


def test_module_paths_follow_the_spec():
    model = archdsl.build("convnext_t", device="meta")
    names = dict(model.named_modules())
    for path in ("stem.0", "stem.1", "stages.2.blocks.5.dwconv", "stages.2.blocks.5.pwconv1",
                 "stages.2.blocks.5.layerscale", "downsample.1.0", "downsample.1.1", "head.norm", "head.fc"):
        assert path in names, path
    assert isinstance(names["stages.2.blocks.5.dwconv"], nn.Conv2d)
    assert names["stages.2.blocks.5.dwconv"].groups == 384
    assert isinstance(names["stages.2.blocks.5.pwconv1"], nn.Linear)  # channels-last, as the official code
    assert "downsample.0" not in names  # none in front of the first stage
    resnet = dict(archdsl.build("resnet50", device="meta").named_modules())
    assert "stages.0.blocks.0.shortcut.0" in resnet and "stages.0.blocks.1.shortcut.0" not in resnet
    assert {"stages.1.blocks.0.conv1", "stages.1.blocks.0.bn3", "stages.1.blocks.0.relu3"} <= set(resnet)
    assert resnet["stages.1.blocks.0.conv2"].stride == (2, 2)  # v1.5: stride in the 3x3


def test_inserting_an_op_renames_nothing_after_it():
    base = archdsl.build("convnext_atto", device="meta", **TINY)
    text = """network more extends convnext_atto
block convnext {
    residual { dwconv7
        ln
        pwconv 4x
        gelu
        dropout 0.1
        pwconv 1x
        layerscale 1e-6
        droppath }
}"""
    more = archdsl.build(archdsl.loads(text), device="meta", **TINY)
    assert set(base.state_dict()) == set(more.state_dict())


def test_code_is_readable():
    code = archdsl.build("convnext_atto", device="meta", **TINY).code
    assert "stages_0_blocks_0_dwconv" in code and "permute(0, 2, 3, 1)" in code
    assert "scaled_linear" in code  # pwconv2 + layer scale fused


def test_graph_module_survives_deepcopy_state_dict_and_compile():
    torch.manual_seed(0)
    model = archdsl.build("convnext_atto", **TINY).eval()
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    assert isinstance(model, fx.GraphModule)
    torch.testing.assert_close(copy.deepcopy(model)(x), expected)

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = archdsl.build("convnext_atto", **TINY).eval()
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(fresh(x), expected)

    compiled = torch.compile(model, backend="aot_eager")
    torch.testing.assert_close(compiled(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("how", ["deepcopy", "copy", "pickle", "torch.save"])
def test_a_copy_keeps_its_sections_bound_to_itself_and_what_archdsl_set(how):
    """fx rebuilds a GraphModule to copy it: the copy's `stages`, `get_submodule("stages.0")`
    and a hook on a stage must work on the copy (and leave the original's graph alone), and
    `feature_info` and the class name must survive, whichever way the model was copied."""
    import pickle

    def copied(model):
        if how == "deepcopy":
            return copy.deepcopy(model)
        if how == "copy":
            return copy.copy(model)
        if how == "pickle":
            return pickle.loads(pickle.dumps(model))
        buf = io.BytesIO()
        torch.save(model, buf)
        buf.seek(0)
        return torch.load(buf, weights_only=False)

    torch.manual_seed(0)
    model = archdsl.build("convnext_atto", **TINY).eval()
    twin = copied(model)
    assert type(twin).__name__ == "ConvnextAtto" and len(twin.stages) == 4 and len(twin.stages[2].blocks) == 2
    assert twin.stages[1] is twin.get_submodule("stages.1") and twin.stages[2].blocks[-1] is twin.stages[2].blocks[1]
    again = copied(twin)  # a copy of a copy is whole too
    assert again.stages[3].blocks[0] is again.get_submodule("stages.3.blocks.0")
    again.stages[3].register_forward_hook(lambda m, args, y: None)
    seen = {}
    twin.stages[1].register_forward_hook(lambda m, args, y: seen.setdefault("y", y))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x))
    assert seen["y"].shape == (2, 16, 4, 4)
    assert not any(n.op == "call_module" and n.target == "stages.1" for n in model.graph.nodes)
    backbone = archdsl.build("convnext_atto", features=True, out_indices=(1, 3), device="meta", **TINY)
    assert copied(backbone).feature_info == backbone.feature_info


def test_meta_device_allocates_nothing():
    model = archdsl.build("convnext_xl", device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 350_196_968


def test_init_follows_the_spec():
    torch.manual_seed(0)
    convnext = archdsl.build("convnext_t")
    fc1 = convnext.get_submodule("stages.2.blocks.0.pwconv1")
    assert abs(fc1.weight.std().item() - 0.02) < 0.001 and fc1.bias.abs().max() == 0
    gamma = convnext.get_submodule("stages.0.blocks.0.layerscale").gamma
    assert torch.all(gamma == 1e-6)
    resnet = archdsl.build("resnet50")
    conv = resnet.get_submodule("stages.0.blocks.0.conv2")  # 64 -> 64, 3x3: fan_out = 64*9
    assert abs(conv.weight.std().item() - (2 / (64 * 9)) ** 0.5) < 0.003
    bn = resnet.get_submodule("stem.1")
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0) and torch.all(bn.running_var == 1)
    assert resnet.get_submodule("stem.0").bias is None  # a conv feeding bn has no bias


def test_stochastic_depth_grows_linearly_over_all_blocks():
    model = archdsl.build("convnext_t", device="meta")
    rates = [m.p for name, m in model.named_modules() if name.endswith("droppath")]
    assert len(rates) == 18
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.1)
    steps = [b - a for a, b in zip(rates, rates[1:])]
    assert max(steps) - min(steps) < 1e-9
    assert archdsl.build("convnext_t", device="meta", **{"train.droppath": 0.3}) \
        .get_submodule("stages.3.blocks.2.droppath").p == pytest.approx(0.3)


def test_droppath_drops_whole_samples_in_training_only():
    from compiler.modules import DropPath

    torch.manual_seed(0)
    dp = DropPath(0.5).train()
    y = dp(torch.ones(64, 4, 2, 2))
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert torch.all(per_sample.min(1).values == per_sample.max(1).values)
    assert torch.equal(dp.eval()(torch.ones(3, 4)), torch.ones(3, 4))


def test_model_trains():
    torch.manual_seed(0)
    model = archdsl.build("resnet50", input="3x16x16", classes=4, widths="16,32,64,128", depths="1,1,1,1")
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 4, (16,))
    losses = training_losses(model, x, y, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), 15)
    assert losses[-1] < 0.5 * losses[0]
