"""`head_init_scale S` as the official ConvNeXt runs it: the head's weight and bias are multiplied
by S after init (models/convnext.py `self.head.weight.data.mul_(head_init_scale)`), then the
fine-tuning checkpoint is loaded, its head dropped only where the shapes differ (main.py): S
shapes a fresh head and is overwritten by a head that fits.

The runs train with lr 0 (and min_lr 0), so the weights they end with are the ones they started from."""
import pytest
import torch
from safetensors.torch import save_file
from torch.utils.data import TensorDataset

import archdsl
from archdsl.cli.train import _init_from
from archdsl.lang.errors import TrainError
from archdsl.training import train
from archdsl.training.head_init import scale_head
from archdsl.training.state import seed_everything

TINY = {"widths": "8,16,32,64", "depths": "1,1,1,1"}


def data(classes: int):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 1, 32, 32, generator=g)
    y = torch.arange(24) % classes
    return TensorDataset(x[:16], y[:16]), TensorDataset(x[16:], y[16:])


def run(tmp_path, name: str, init=None, scale: float = 0.001):
    return train("convnext_atto", data(3), epochs=1, out=tmp_path / name, train_batch=8, train_lr=0.0, train_min_lr=0.0,
                 train_head_init_scale=scale, init_from=init, **TINY)


def own_init(network) -> dict:
    """The weights the run builds before anything is applied (the trainer seeds, then builds)."""
    seed_everything(0)
    return archdsl.build(network, check_memory=False).state_dict()


def test_scale_head_multiplies_weight_and_bias_as_the_official():
    torch.manual_seed(0)
    a = archdsl.build("convnext_atto", classes=5, **TINY)
    torch.nn.init.normal_(a.head.fc.bias)  # the spec's init zeroes it; make the bias visible
    before = {k: v.clone() for k, v in a.state_dict().items()}
    path, _ = scale_head(a, 0.001)
    after = a.state_dict()
    assert path == "head.fc"
    for k in before:
        if k.startswith("head.fc."):
            assert torch.equal(after[k], before[k].mul_(0.001)), k
        else:
            assert torch.equal(after[k], before[k]), k


def test_a_fresh_head_starts_scaled(tmp_path, capsys):
    r = run(tmp_path, "fresh")
    start = own_init(r.network)
    got = r.model.state_dict()
    assert torch.equal(got["head.fc.weight"], start["head.fc.weight"] * 0.001)
    assert torch.equal(got["stages.0.blocks.0.dwconv.weight"], start["stages.0.blocks.0.dwconv.weight"])
    assert "head init scale 0.001: head.fc starts at 0.001 x its init" in capsys.readouterr().err


def trained_elsewhere(tmp_path, classes: int):
    """Weights of the same network for `classes` classes, and `--init-from` reading them."""
    source = archdsl.build("convnext_atto", classes=classes, input="1x32x32", **TINY).state_dict()
    weights = tmp_path / f"w{classes}.safetensors"
    save_file({k: v.contiguous() for k, v in source.items()}, str(weights))
    return source, _init_from(weights, None, quiet=True)


def test_init_from_a_head_that_fits_overrides_the_scale(tmp_path, capsys):
    source, init = trained_elsewhere(tmp_path, 3)
    r = run(tmp_path, "fits", init)
    assert torch.equal(r.model.state_dict()["head.fc.weight"], source["head.fc.weight"])
    assert "no effect, head.fc was loaded from --init-from (its shape fits)" in capsys.readouterr().err


def test_init_from_another_class_count_keeps_the_scaled_fresh_head(tmp_path, capsys):
    source, init = trained_elsewhere(tmp_path, 7)
    r = run(tmp_path, "fresh_head", init)
    got, start = r.model.state_dict(), own_init(r.network)
    assert torch.equal(got["head.fc.weight"], start["head.fc.weight"] * 0.001)
    assert torch.equal(got["stages.0.blocks.0.dwconv.weight"], source["stages.0.blocks.0.dwconv.weight"])
    printed = capsys.readouterr().err
    assert "head.fc is fresh (the --init-from weights do not fit it), so it starts at 0.001 x" in printed


def test_a_head_without_a_final_linear_is_a_clear_error():
    model = archdsl.build("convnext_atto", classes=5, **TINY)
    model.head.fc = torch.nn.LayerNorm(5)
    with pytest.raises(TrainError, match="ends its head in `head.fc`, a LayerNorm") as e:
        scale_head(model, 0.001)
    assert e.value.code == "E761" and "head_init_scale at 1" in e.value.hint
