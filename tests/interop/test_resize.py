"""Weights across input sizes, channels and classes (archdsl/interop/resize.py), each formula
checked against an independent implementation written here from its definition:

- timm's `resample_abs_pos_embed` (bicubic, antialias=True): PyTorch's antialiased bicubic is
  PIL's (a = -0.5, the filter window clipped at the borders and renormalised); PIL's own
  float-image resize is the reference;
- timm's `resize_rel_pos_bias_table`: the source offsets spread by the geometric progression
  whose sum reaches the target's half-width (solved here with scipy's brentq) and scipy's
  linear RegularGridInterpolator onto the target's integer offsets, clamped to the range;
- timm's `adapt_input_conv`: sum for 1 channel; tile and scale by 3/C for C channels."""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.interpolate import RegularGridInterpolator
from scipy.optimize import brentq

import archdsl
from archdsl.interop.resize import adapt_input_conv, resample_pos_embed, resize_bias_table
from archdsl.interop.weights import load_weights
from archdsl.lang.errors import ArchError, WeightsError


def pil_resample(pe: torch.Tensor, prefix: int, new: int) -> torch.Tensor:
    old = math.isqrt(pe.shape[1] - prefix)
    grid = pe[0, prefix:].reshape(old, old, -1).numpy()
    chans = [np.asarray(Image.fromarray(grid[:, :, c].astype(np.float32), mode="F").resize((new, new), Image.BICUBIC))
             for c in range(grid.shape[2])]
    out = torch.from_numpy(np.stack(chans, axis=-1).reshape(1, new * new, -1))
    return torch.cat((pe[:, :prefix], out), dim=1)


@pytest.mark.parametrize("old, new, prefix", [(14, 24, 1), (4, 6, 1), (7, 5, 0)])
def test_position_embedding_resample_is_pils_bicubic(old, new, prefix):
    pe = torch.randn(1, prefix + old * old, 8, generator=torch.Generator().manual_seed(old))
    got = resample_pos_embed(pe, (new, new), prefix)
    assert got.shape == (1, prefix + new * new, 8)
    torch.testing.assert_close(got[:, :prefix], pe[:, :prefix])  # the class token is kept as it is
    torch.testing.assert_close(got, pil_resample(pe, prefix, new), rtol=1e-4, atol=1e-5)


def reference_bias_table(table: torch.Tensor, window: int) -> torch.Tensor:
    src, dst = math.isqrt(table.shape[0]), 2 * window - 1
    n = src // 2  # with one offset each way the ratio does not matter
    q = brentq(lambda r: (1 - r ** n) / (1 - r) - dst // 2, 1.0 + 1e-9, 10.0) if n > 1 else 2.0
    half = np.cumsum([q ** i for i in range(n)])  # 1, 1+q, 1+q+q^2, ...
    coords = np.concatenate((-half[::-1], [0.0], half))
    targets = np.arange(-(dst // 2), dst // 2 + 1, dtype=np.float64).clip(coords[0], coords[-1])
    ty, tx = np.meshgrid(targets, targets, indexing="ij")
    out = []
    for h in range(table.shape[1]):
        f = RegularGridInterpolator((coords, coords), table[:, h].double().reshape(src, src).numpy())
        out.append(f(np.stack((ty, tx), axis=-1)).reshape(-1))
    return torch.from_numpy(np.stack(out, axis=1)).float()


@pytest.mark.parametrize("old, new", [(7, 12), (2, 3), (7, 7)])
def test_relative_position_bias_table_resize_is_timms(old, new):
    table = torch.randn((2 * old - 1) ** 2, 3, generator=torch.Generator().manual_seed(new))
    got = resize_bias_table(table, new)
    assert got.shape == ((2 * new - 1) ** 2, 3)
    if old == new:
        assert got is table
        return
    # timm stops its bisection for the ratio at 1e-6, brentq finds the root: offsets agree to ~1e-6
    torch.testing.assert_close(got, reference_bias_table(table, new), rtol=1e-4, atol=1e-4)
    centre = (2 * new - 1) ** 2 // 2  # offset (0, 0) keeps its bias
    torch.testing.assert_close(got[centre], table[(2 * old - 1) ** 2 // 2])


@pytest.mark.parametrize("channels", [1, 2, 4, 8])
def test_input_conv_adapts_as_timm(channels):
    w = torch.randn(16, 3, 4, 4)
    got = adapt_input_conv(w, channels)
    if channels == 1:
        want = w[:, 0:1] + w[:, 1:2] + w[:, 2:3]
    else:
        want = torch.cat([w] * (channels // 3 + 1), dim=1)[:, :channels] * (3 / channels)
    torch.testing.assert_close(got, want)


# ---------------------------------------------------------------- through load_weights and transfer
def test_load_weights_fits_another_input_channels_and_classes(capsys):
    torch.manual_seed(0)
    src = archdsl.build("deit_s", input=(3, 32, 32), depths=(1,))
    sd = src.state_dict()
    model = archdsl.build("deit_s", input=(1, 48, 48), depths=(1,), classes=7, device="meta")
    load_weights(model, sd)
    out = capsys.readouterr().out
    assert "position embedding resampled 2x2 -> 3x3 (bicubic, 1 class token kept)" in out
    assert "input conv: 3 -> 1 input channels (summed over RGB)" in out
    assert "a new head: 1000 -> 7 classes" in out and len(model.weights_changes) == 4
    own = model.state_dict()
    torch.testing.assert_close(own["stem.3.pos_embed"], pil_resample(sd["stem.3.pos_embed"], 1, 3), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(own["stem.0.weight"], sd["stem.0.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(own["stages.0.blocks.0.attn.qkv.weight"], sd["stages.0.blocks.0.attn.qkv.weight"])
    assert own["head.fc.weight"].shape == (7, 384) and not own["head.fc.weight"].is_meta
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)


def test_transfer_resamples_deits_position_embedding_instead_of_copying_rows():
    """issue 23: DeiT carried to a larger input got its pos_embed copied row by row."""
    torch.manual_seed(0)
    kw = dict(depths=(1,))
    src = archdsl.build("deit_s", input=(3, 32, 32), **kw)
    model, report = archdsl.transfer(archdsl.load("deit_s", input=(3, 32, 32), **kw),
                                     archdsl.load("deit_s", input=(3, 64, 64), **kw), src, quiet=True)
    pe = model.state_dict()["stem.3.pos_embed"]
    torch.testing.assert_close(pe, pil_resample(src.state_dict()["stem.3.pos_embed"], 1, 4), rtol=1e-4, atol=1e-5)
    assert [e.how for e in report.resampled] == ["position embedding resampled 2x2 -> 4x4 (bicubic, 1 class token kept)"]
    assert not report.adapted  # an interpolation is no overlap copy (issue: it was listed as adapted)


def test_transfer_resizes_swin_tables_and_the_model_rebuilds_its_index():
    torch.manual_seed(0)
    kw = dict(depths=(2, 1, 1, 1), widths=(32, 64, 128, 256))
    a = archdsl.load("swin_t", input=(3, 64, 64), **kw, **{"swin.wattn.kernel": 2})
    b = archdsl.load("swin_t", input=(3, 96, 96), **kw, **{"swin.wattn.kernel": 3})
    src = archdsl.build(a)
    model, report = archdsl.transfer(a, b, src, quiet=True)
    tables = [e for e in report.resampled if e.path.endswith("relative_position_bias_table")]
    assert not report.adapted
    assert len(tables) == 5 and not report.fresh
    key = "stages.0.blocks.1.attn.relative_position_bias_table"
    torch.testing.assert_close(model.state_dict()[key], reference_bias_table(src.state_dict()[key], 3),
                               rtol=1e-4, atol=1e-5)
    attn = model.get_submodule("stages.0.blocks.1.attn")
    assert attn.window == 3 and attn.relative_position_index.shape == (9, 9)
    assert int(attn.relative_position_index.max()) == 24
    assert torch.isfinite(model(torch.randn(1, 3, 96, 96))).all()


def test_bad_fits_are_errors_with_a_hint():
    sd = archdsl.build("deit_s", input=(3, 32, 32), depths=(1,), device="meta").state_dict()
    sd = {k: torch.zeros(v.shape) for k, v in sd.items()}
    sd["stem.0.weight"] = torch.zeros(384, 4, 16, 16)  # 4 channels cannot become 2
    model = archdsl.build("deit_s", input=(2, 32, 32), depths=(1,), device="meta")
    with pytest.raises(WeightsError) as e:
        load_weights(model, sd)
    assert e.value.code == "E802" and "only RGB weights" in e.value.message and e.value.hint
    # a window that does not tile the map is refused when the model is built, with windows that do
    with pytest.raises(ArchError) as e:
        archdsl.build("swin_t", input=(3, 384, 384), device="meta")
    assert e.value.code == "E407" and "wattn.kernel=" in e.value.hint and e.value.span is not None
    # another family's checkpoint: the keys do not map
    resnet = archdsl.build("resnet18", device="meta").state_dict()
    with pytest.raises(WeightsError) as e:
        load_weights(archdsl.build("convnext_atto", device="meta"), resnet)
    assert "missing" in e.value.message and "unexpected" in e.value.message


# ---------------------------------------------------------------- non-square grids
def timm_resample(pe: torch.Tensor, new_size: tuple[int, int], prefix: int, old_size=None) -> torch.Tensor:
    """timm's resample_abs_pos_embed(posemb, new_size=(h, w), num_prefix_tokens=prefix), written
    here: the grid (square unless old_size) as an image, F.interpolate bicubic antialiased, back."""
    import torch.nn.functional as F

    h, w = old_size or (math.isqrt(pe.shape[1] - prefix),) * 2
    grid = pe[:, prefix:].reshape(1, h, w, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new_size, mode="bicubic", antialias=True, align_corners=False)
    return torch.cat((pe[:, :prefix], grid.permute(0, 2, 3, 1).reshape(1, new_size[0] * new_size[1], -1)), dim=1)


def test_deit_at_a_non_square_input_resamples_onto_its_own_grid(capsys):
    """issue: input 3x224x320 was E802 `not both square grids`; the spec knows the grid, 14x20."""
    torch.manual_seed(0)
    sd = archdsl.build("deit_s", depths=(1,)).state_dict()
    model = archdsl.build("deit_s", input=(3, 224, 320), depths=(1,), device="meta")
    assert model.get_submodule("stem.3").grid == (14, 20)
    load_weights(model, sd)
    assert "position embedding resampled 14x14 -> 14x20 (bicubic, 1 class token kept)" in capsys.readouterr().out
    pe = model.state_dict()["stem.3.pos_embed"]
    assert pe.shape == (1, 1 + 14 * 20, 384)
    torch.testing.assert_close(pe, timm_resample(sd["stem.3.pos_embed"], (14, 20), 1), rtol=1e-5, atol=1e-6)
    assert model(torch.randn(1, 3, 224, 320)).shape == (1, 1000)


def test_transfer_knows_the_sources_grid_too():
    """transfer builds the source: a 2x3 grid (32x48 input) carries to 3x2 (48x32), the same
    length, resampled rather than copied row by row."""
    torch.manual_seed(0)
    a = archdsl.load("deit_s", input=(3, 32, 48), depths=(1,))
    b = archdsl.load("deit_s", input=(3, 48, 32), depths=(1,))
    src = archdsl.build(a)
    model, report = archdsl.transfer(a, b, src, quiet=True)
    want = timm_resample(src.state_dict()["stem.3.pos_embed"], (3, 2), 1, old_size=(2, 3))
    torch.testing.assert_close(model.state_dict()["stem.3.pos_embed"], want, rtol=1e-5, atol=1e-6)
    assert [e.how for e in report.resampled] == ["position embedding resampled 2x3 -> 3x2 (bicubic, 1 class token kept)"]
    text = str(report)
    assert "1 resampled" in text and "resampled (interpolated onto the new grid or window" in text
    assert "adapted (" not in text  # an interpolation is not listed as an overlap copy
    # a checkpoint alone says nothing of its grid: a non-square one is refused, with a hint
    with pytest.raises(WeightsError) as e:
        load_weights(archdsl.build("deit_s", input=(3, 48, 64), depths=(1,), device="meta"), src.state_dict())
    assert e.value.code == "E802" and "no square grid" in e.value.message and "transfer" in e.value.hint
