"""archdsl's compiled Swin and ViT against the independent plain-PyTorch models in
tests/reference_transformers.py, loaded through `load_weights` (official Swin layout, timm
ViT layout) with non-trivial weights: eval logits agree to 1e-5 relative."""
from __future__ import annotations

import pytest
import torch

import archdsl
from archdsl import ArchError
from archdsl.interop.weights import load_weights
from reference_transformers import SwinTransformer, randomize_, swin_t, vit_s16


def assert_same_outputs(reference, model, x):
    model.eval()
    with torch.no_grad():
        want, got = reference(x), model(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def test_swin_t_matches_the_official_layout_at_224():
    """The full Swin-T at 224: stages 1-3 shift (56, 28, 14 against window 7); stage 4 is one window."""
    torch.manual_seed(0)
    reference = randomize_(swin_t(), seed=0)
    block = reference.layers[0].blocks[1]
    assert block.shift_size == 3 and (block.attn_mask == -100).any()
    model = load_weights(archdsl.build("swin_t"), reference.state_dict(), layout="official")
    assert_same_outputs(reference, model, torch.randn(1, 3, 224, 224))


def test_swin_variant_at_small_size_matches():
    """Two stages at 56x56 with window 7: 8x8 windows, shifted in stage 1; window 7 on a 7x7
    map in stage 2 (the window is the map, no shift). Another width and head count."""
    reference = randomize_(SwinTransformer(img_size=56, embed_dim=64, depths=(2, 2), num_heads=(2, 4)), seed=1)
    text = """network small extends swin_t
input 3x56x56
stages {
    64  swin x2
    128 swin x2
}"""
    model = load_weights(archdsl.build(archdsl.loads(text)), reference.state_dict(), layout="official")
    assert model.get_submodule("stages.0.blocks.1.attn").shift == 3
    assert model.get_submodule("stages.1.blocks.1.attn").shift == 0
    assert_same_outputs(reference, model, torch.randn(2, 3, 56, 56))


def test_swin_built_on_meta_loads_and_runs():
    """Built without memory, then loaded: the derived buffers are computed on loading."""
    reference = randomize_(SwinTransformer(img_size=56, embed_dim=32, depths=(2, 2), num_heads=(1, 2)), seed=6)
    text = "network small extends swin_t\ninput 3x56x56\nstages {\n 32 swin x2\n 64 swin x2\n}"
    model = load_weights(archdsl.build(archdsl.loads(text), device="meta"), reference.state_dict(), "official")
    assert not any(b.is_meta for b in model.buffers())
    assert_same_outputs(reference, model, torch.randn(2, 3, 56, 56))


def test_vit_s16_matches_the_timm_layout():
    reference = randomize_(vit_s16(), seed=2)
    model = load_weights(archdsl.build("deit_s"), reference.state_dict(), layout="timm")
    assert_same_outputs(reference, model, torch.randn(2, 3, 224, 224))


def test_position_embedding_from_another_input_is_resampled(capsys):
    """A 224 checkpoint loads into a 32x32 model: its 14x14 position embedding is resampled
    to 2x2 (class token kept), as timm does, and the load says so (tests/interop/test_resize.py
    checks the values)."""
    reference = vit_s16()
    model = archdsl.build("deit_s", input="3x32x32", classes=1000, device="meta")
    load_weights(model, reference.state_dict(), layout="timm")
    assert model.state_dict()["stem.3.pos_embed"].shape == (1, 5, 384)
    assert "stem.3.pos_embed <- pos_embed  (position embedding resampled 14x14 -> 2x2" in capsys.readouterr().out


@pytest.mark.parametrize("layout, family, make, name", [
    ("official", "swin", swin_t, "swin_t"), ("timm", "vit", vit_s16, "deit_s")])
def test_every_rule_is_used_and_the_mapping_is_one_to_one(layout, family, make, name):
    """Each Swin / ViT rule renames a key of the reference checkpoint; the renamed keys are
    exactly the model's, each once; only the derived Swin buffers are left out."""
    from archdsl.interop.weights import LAYOUTS, native_name

    used, names = set(), []
    for key in make().state_dict():
        rule = next(r for r in LAYOUTS[layout] if r.apply(key) is not None)
        used.add(rule)
        if native_name(key, layout):
            names.append(native_name(key, layout))
        else:
            assert key.endswith(("relative_position_index", "attn_mask")), key
    assert sorted(names) == sorted(archdsl.build(name, device="meta").state_dict())
    assert {r for r in used if r.family == family} == {r for r in LAYOUTS[layout] if r.family == family}


# ---------------------------------------------------------------- HF transformers, as extra evidence
# The references above are ours; Hugging Face's SwinForImageClassification and
# ViTForImageClassification (built from a config: nothing is downloaded) are not. The
# reference's random weights go into the HF model (its q, k, v are the thirds of qkv): the
# same logits say the references compute what those models compute.


def _into_hugging_face(hf, reference, names: list[tuple[str, str]]) -> None:
    import re

    ref_sd, loaded = reference.state_dict(), {}
    for key in hf.state_dict():
        ref_key, part = key, None
        if m := re.fullmatch(r"(.*)attention\.([qkv])_proj\.(weight|bias)", key):
            ref_key, part = f"{m[1]}attn.qkv.{m[3]}", "qkv".index(m[2])
        for pattern, repl in names:
            ref_key = re.sub(pattern, repl, ref_key)
        loaded[key] = ref_sd[ref_key] if part is None else ref_sd[ref_key].chunk(3)[part]
    hf.load_state_dict(loaded, strict=True)
    derived = ("relative_position_index", "attn_mask")
    assert len(loaded) == len([k for k in ref_sd if not k.endswith(derived)]) + sum(
        k.endswith("qkv.weight") or k.endswith("qkv.bias") for k in ref_sd) * 2  # every weight used


def test_reference_swin_agrees_with_hugging_face():
    transformers = pytest.importorskip("transformers")
    config = transformers.SwinConfig(image_size=56, embed_dim=32, depths=[2, 2], num_heads=[2, 4], window_size=7,
                                     num_labels=10, layer_norm_eps=1e-5)
    hf = transformers.SwinForImageClassification(config).eval()
    reference = randomize_(SwinTransformer(img_size=56, embed_dim=32, depths=(2, 2), num_heads=(2, 4),
                                           num_classes=10), seed=4)
    _into_hugging_face(hf, reference, [
        (r"^swin\.embeddings\.patch_embeddings\.projection", "patch_embed.proj"),
        (r"^swin\.embeddings\.norm", "patch_embed.norm"), (r"^swin\.encoder\.layers", "layers"),
        (r"layernorm_before", "norm1"), (r"layernorm_after", "norm2"), (r"attention\.o_proj", "attn.proj"),
        (r"attention\.relative_position_bias\.", "attn."), (r"^swin\.layernorm", "norm"), (r"^classifier", "head")])
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        torch.testing.assert_close(hf(pixel_values=x).logits, reference(x), rtol=1e-5, atol=1e-5)


def test_reference_vit_agrees_with_hugging_face():
    transformers = pytest.importorskip("transformers")
    from reference_transformers import VisionTransformer

    config = transformers.ViTConfig(image_size=64, patch_size=16, hidden_size=96, num_hidden_layers=2,
                                    num_attention_heads=3, intermediate_size=384, num_labels=10, layer_norm_eps=1e-6)
    hf = transformers.ViTForImageClassification(config).eval()
    reference = randomize_(VisionTransformer(img_size=64, embed_dim=96, depth=2, num_heads=3, num_classes=10), seed=5)
    _into_hugging_face(hf, reference, [
        (r"^vit\.embeddings\.cls_token", "cls_token"), (r"^vit\.embeddings\.position_embeddings", "pos_embed"),
        (r"^vit\.embeddings\.patch_embeddings\.projection", "patch_embed.proj"), (r"^vit\.layers", "blocks"),
        (r"layernorm_before", "norm1"), (r"layernorm_after", "norm2"), (r"attention\.o_proj", "attn.proj"),
        (r"^vit\.layernorm", "norm"), (r"^classifier", "head")])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(hf(pixel_values=x).logits, reference(x), rtol=1e-5, atol=1e-5)
