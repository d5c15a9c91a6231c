"""Attention in the language: window attention with its shift on odd blocks, heads that
follow the width, windows that shrink to small maps, tokens, and a Swin variant written in a
few lines that counts right (against the independent reference) and trains."""
from __future__ import annotations

import pytest
import torch

import archdsl
from reference_transformers import SwinTransformer
from training_loop import training_losses

MY_SWIN = """network my_swin extends swin_t
input 3x384x384
set swin.wattn.kernel 12
set depths 2,2,18,2
"""


def attn(model, stage: int, block: int):
    return model.get_submodule(f"stages.{stage}.blocks.{block}.attn")


def test_one_block_definition_shifts_every_other_block_and_follows_the_width():
    model = archdsl.build("swin_t", device="meta")
    assert [attn(model, 2, j).shift for j in range(6)] == [0, 3, 0, 3, 0, 3]
    assert [attn(model, i, 1).heads for i in range(4)] == [3, 6, 12, 24]
    assert (attn(model, 3, 1).window, attn(model, 3, 1).shift) == (7, 0)  # 7x7 map: one window, no shift
    assert attn(model, 0, 1).relative_position_bias_table.shape == (169, 3)
    swin_b = archdsl.build("swin_b", device="meta")
    assert [attn(swin_b, i, 0).heads for i in range(4)] == [4, 8, 16, 32]


def test_a_variant_in_a_few_lines_counts_as_the_reference_does():
    """Window 12 at 384 (Swin-B/384's window) and a deeper stage 3: the count equals the
    independent reference built the same way."""
    report = archdsl.analyze(archdsl.loads(MY_SWIN))
    with torch.device("meta"):
        reference = SwinTransformer(img_size=384, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), window_size=12)
    assert report.params == sum(p.numel() for p in reference.parameters())
    model = archdsl.build(archdsl.loads(MY_SWIN), device="meta")
    assert attn(model, 0, 1).window == 12 and attn(model, 0, 1).shift == 6
    assert attn(model, 3, 0).window == 12  # 12x12 map: the window is the map


def test_a_variant_trains():
    """A small Swin (2 stages, window 4 on the 8x8 first stage: shifted) fits a fixed batch."""
    torch.manual_seed(0)
    text = """network tiny_swin extends swin_t
input 3x32x32
classes 4
set swin.wattn.kernel 4
stages {
    32 swin x2
    64 swin x2
}"""
    model = archdsl.build(archdsl.loads(text))
    assert attn(model, 0, 1).shift == 2 and attn(model, 0, 1).attn_mask.min() == -100
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 4, (16,))
    losses = training_losses(model, x, y, torch.optim.AdamW(model.parameters(), lr=2e-3), 12)
    assert losses[-1] < 0.5 * losses[0]
    assert model.get_submodule("stages.0.blocks.1.attn").relative_position_bias_table.grad.abs().sum() > 0


def test_window_attention_macs_by_hand():
    """Stage 1 of Swin-T: 56x56 tokens of 96 channels in 7x7 windows."""
    report = archdsl.analyze("swin_t")
    layer = next(r for r in report.layers if r.path == "stages.0.blocks.0.attn")
    tokens, c = 56 * 56, 96
    assert layer.macs == 3 * tokens * c * c + tokens * c * c + 2 * tokens * 49 * c
    assert layer.params == 4 * c * c + 4 * c + 169 * 3
    vit = next(r for r in archdsl.analyze("deit_s").layers if r.path == "stages.0.blocks.0.attn")
    assert vit.macs == 4 * 197 * 384 * 384 + 2 * 197 * 197 * 384 and vit.shape == (384, 197)


def test_sequence_shapes_flow_through_token_ops():
    report = archdsl.analyze("deit_s")
    shapes = {r.path: r.shape for r in report.layers}
    assert shapes["stem.1"] == (384, 196) and shapes["stem.2"] == (384, 197) and shapes["head.clspool"] == (384,)
    assert shapes["stages.0.blocks.0.pwconv1"] == (1536, 197)
    model = archdsl.build("deit_s", input="3x32x32", classes=10)
    assert model.get_submodule("stem.3").pos_embed.shape == (1, 5, 384)  # 2x2 patches + the class token
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("text, code, words", [
    ("block vit {\n residual {\n  ln\n  mhsa d64\n  bn\n }\n}", "E405", "does not work on a sequence of 197 tokens"),
    ("block vit {\n residual {\n  ln\n  mhsa d64\n  pwconv s2\n }\n}", "E405", "on a sequence of tokens"),
    ("head ln, maxpool3 s2, gap, linear", "E405", "needs a feature map"),  # gap now takes tokens: their mean
    ("head ln, linear", "E405", "needs a vector"),
    ("block vit {\n residual {\n  ln\n  mhsa d64\n  clstoken\n }\n}", "E310", "one per block"),
    ("stem conv16 s16, tokens, posembed\nhead ln, clspool, linear", "E310", "none was added"),
])
def test_mistakes_with_tokens_are_located(text, code, words):
    with pytest.raises(archdsl.ArchError) as err:
        archdsl.check(archdsl.loads("network bad extends deit_s\n" + text))
    e = err.value.errors[0]
    assert e.code == code and words in e.message and e.line is not None and e.hint


def test_windows_that_do_not_tile_the_map_name_the_ones_that_would():
    with pytest.raises(archdsl.ArchError) as err:
        archdsl.check("swin_t", input="3x32x32")
    e = err.value.errors[0]
    assert e.code == "E407" and "8x8 map" in e.message
    # every stage's map (8, 4, 2, 1) is tiled by 4 and by 8; 4 keeps stage 1 windowed and shifted
    assert "(8x8, 4x4, 2x2, 1x1): `wattn4` does" in e.hint and "as does `wattn8`" in e.hint
    archdsl.check("swin_t", input="3x32x32", **{"swin.wattn.kernel": 4})


@pytest.mark.parametrize("size, window", [(384, 12), (224, 7), (320, 10), (256, 8)])
def test_a_window_for_another_input_is_the_one_swin_would_use(size, window):
    """The window that tiles every stage's map with the last stage one window, as Swin is made:
    7 at 224 (maps 56..7) and, as the official Swin-B 384 uses, 12 at 384 (maps 96..12), not the
    largest divisor of the first map (48 at 384, which the last maps could not use as windows)."""
    kernel = 12 if size == 224 else 7
    with pytest.raises(archdsl.ArchError) as err:
        archdsl.check("swin_t", input=f"3x{size}x{size}", **{"swin.wattn.kernel": kernel})
    (e,) = err.value.errors  # one error for the line, however many stages it fails in
    assert e.code == "E407" and f"`wattn{window}` does (on the command line `--set swin.wattn.kernel={window}`)" in e.hint
    archdsl.check("swin_t", input=f"3x{size}x{size}", **{"swin.wattn.kernel": window})


def test_a_window_error_from_a_childs_input_names_where_the_input_is_set(tmp_path):
    """The failing line is the parent's `wattn7`; what makes it fail is the child's `input`."""
    child = tmp_path / "swin_bad.arch"
    child.write_text("network swin_bad extends swin_t\ninput 3x256x256\n")
    with pytest.raises(archdsl.ArchError) as err:
        archdsl.check(str(child))
    (e,) = err.value.errors
    assert e.code == "E407" and e.span.path.endswith("swin_t.arch")
    assert e.message.endswith(f"; the input 3x256x256 is set at {child}:2:7)")
    assert "--set swin.wattn.kernel=8" in e.hint
