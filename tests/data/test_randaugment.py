"""RandAugment against timm 0.3.2's definition, re-implemented here independently:

- the whole policy (op choice, p=0.5, magnitude noise, level->argument, fill, resampling) as a
  small re-implementation of timm's AugmentOp/RandAugment fed the same random stream: the
  images must be pixel-equal, RGB and grey;
- the colour ops against numpy versions of PIL's ImageEnhance/ImageOps definitions
  (within one grey level) on real JPEGs;
- the op-choice, application-probability and magnitude distributions statistically.
"""
import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import stats

from archdsl.data.randaugment import RandAugment, RandAugmentConfig, parse_config, OPS, fill_color
from archdsl.lang.errors import RecipeError


def jpeg(w=96, h=80, seed=0, mode="RGB"):
    """A decoded quality-90 JPEG with learnable content: colour gradients and filled shapes."""
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // w, y * 255 // h, 255 - (x + y) * 255 // (w + h)], -1).astype(np.uint8)
    img = Image.fromarray(a)
    d = ImageDraw.Draw(img)
    for _ in range(5):
        x0, y0 = int(r.integers(0, w - 8)), int(r.integers(0, h - 8))
        box = [x0, y0, x0 + int(r.integers(6, w // 2)), y0 + int(r.integers(6, h // 2))]
        colour = tuple(int(v) for v in r.integers(0, 256, 3))
        (d.ellipse if r.random() < 0.5 else d.rectangle)(box, fill=colour)
    buf = io.BytesIO()
    img.convert(mode).save(buf, "JPEG", quality=90)
    return Image.open(io.BytesIO(buf.getvalue())).convert(mode)


# ---- timm 0.3.2 RandAugment, written out from auto_augment.py ------------------------------

INC = ["AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
       "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
       "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"]
PLAIN = ["AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
         "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel",
         "TranslateYRel"]


def timm_args(name, m, rng):
    neg = lambda v: -v if rng.random() > 0.5 else v  # noqa: E731  (timm _randomly_negate)
    if name == "Rotate":
        return neg(m / 10 * 30)
    if name in ("ShearX", "ShearY"):
        return neg(m / 10 * 0.3)
    if name in ("TranslateXRel", "TranslateYRel"):
        return neg(m / 10 * 0.45)
    if name.endswith("Increasing") and name[:-10] in ("Color", "Contrast", "Brightness", "Sharpness"):
        return 1.0 + neg(m / 10 * 0.9)
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return m / 10 * 1.8 + 0.1
    if name == "PosterizeIncreasing":
        return 4 - int(m / 10 * 4)
    if name == "Posterize":
        return int(m / 10 * 4)
    if name == "SolarizeIncreasing":
        return 256 - int(m / 10 * 256)
    if name == "Solarize":
        return int(m / 10 * 256)
    if name == "SolarizeAdd":
        return int(m / 10 * 110)
    return None


def timm_op(img, name, v, fill, resample):
    from PIL import ImageEnhance, ImageOps
    base = name.replace("Increasing", "")
    if base in ("ShearX", "ShearY", "TranslateXRel", "TranslateYRel"):
        w, h = img.size
        matrix = {"ShearX": (1, v, 0, 0, 1, 0), "ShearY": (1, 0, 0, v, 1, 0),
                  "TranslateXRel": (1, 0, v * w, 0, 1, 0), "TranslateYRel": (1, 0, 0, 0, 1, v * h)}[base]
        return img.transform(img.size, Image.AFFINE, matrix, resample=resample, fillcolor=fill)
    if base == "Rotate":
        return img.rotate(v, resample=resample, fillcolor=fill)
    if base in ("Color", "Contrast", "Brightness", "Sharpness"):
        return getattr(ImageEnhance, base)(img).enhance(v)
    if base == "Posterize":  # PIL of 2020: posterize(img, 0) -> black (mask ~255)
        mask = ~(2 ** (8 - v) - 1)
        return img if v >= 8 else img.point([i & mask for i in range(256)] * len(img.getbands()))
    if base == "Solarize":
        return ImageOps.solarize(img, v)
    if base == "SolarizeAdd":
        return img.point([min(255, i + v) if i < 128 else i for i in range(256)] * len(img.getbands()))
    return {"AutoContrast": ImageOps.autocontrast, "Equalize": ImageOps.equalize,
            "Invert": ImageOps.invert}[base](img)


def timm_randaugment(img, rng, names, m=9, mstd=0.5, n=2, fill=(124, 116, 104), interpolation="bicubic"):
    chosen = [rng.choice(names) for _ in range(n)]  # np.random.choice(ops, n, replace=True)
    for name in chosen:
        if rng.random() > 0.5:
            continue
        mag = min(10.0, max(0.0, rng.gauss(m, mstd) if mstd > 0 else m))
        v = timm_args(name, mag, rng)
        resample = None
        if name in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"):
            resample = (rng.choice([Image.BILINEAR, Image.BICUBIC]) if interpolation == "random"
                        else {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[interpolation])
        img = timm_op(img, name, v, fill, resample)
    return img


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_policy_is_pixel_equal_to_timm(mode):
    fill = (124, 116, 104) if mode == "RGB" else round(0.299 * 124 + 0.587 * 116 + 0.114 * 104)
    ra = RandAugment("rand-m9-mstd0.5-inc1", fill=fill_color((0.485, 0.456, 0.406), len(mode)))
    assert ra.fill == fill
    ops_seen = set()
    for seed in range(60):
        img = jpeg(seed=seed % 4, mode=mode)
        ours = ra(img, random.Random(seed))
        ref = timm_randaugment(img, random.Random(seed), INC, fill=fill)
        assert np.array_equal(np.asarray(ours), np.asarray(ref)), seed
        ops_seen |= {s.name for s in ra.draw(random.Random(seed)) if s.applied}
    assert len(ops_seen) >= 12  # the comparison went through most of the ops


def test_other_strings_match_timm_too():
    ra = RandAugment("rand-m5-n3", interpolation="random")  # plain op list, no noise, 3 ops
    for seed in range(30):
        img = jpeg(seed=seed % 3)
        ref = timm_randaugment(img, random.Random(seed), PLAIN, m=5, mstd=0, n=3, interpolation="random")
        assert np.array_equal(np.asarray(ra(img, random.Random(seed))), np.asarray(ref)), seed


# ---- the colour ops against PIL's definitions in numpy -------------------------------------

def blend(degenerate, img, f):  # PIL Image.blend: in1 + f * (in2 - in1), truncated, clipped
    out = degenerate.astype(np.float32) + np.float32(f) * (img.astype(np.float32) - degenerate)
    return np.clip(np.trunc(out), 0, 255)


def grey(a):  # PIL convert("L"): ITU-R 601 with 16-bit fixed point
    return ((a[..., 0].astype(np.int64) * 19595 + a[..., 1] * 38470 + a[..., 2] * 7471 + 0x8000) >> 16)


def ref_colour_op(name, a, v):
    a = a.astype(np.int64)
    chans = a[..., None] if a.ndim == 2 else a
    if name == "Brightness":
        return blend(np.zeros_like(a), a, v)
    if name == "Contrast":
        mean = int((grey(a) if a.ndim == 3 else a).mean() + 0.5)
        return blend(np.full_like(a, mean), a, v)
    if name == "Color":
        g = grey(a)[..., None].repeat(3, -1) if a.ndim == 3 else a
        return blend(g, a, v)
    if name == "Sharpness":  # SMOOTH = [[1,1,1],[1,5,1],[1,1,1]] / 13, border pixels kept
        p = chans.astype(np.float64)
        s = p.copy()
        k = np.ones((3, 3)); k[1, 1] = 5
        acc = sum(k[i, j] * p[i:p.shape[0] - 2 + i, j:p.shape[1] - 2 + j] for i in range(3) for j in range(3))
        s[1:-1, 1:-1] = np.clip(np.floor(acc / 13 + 0.5), 0, 255)
        return blend(s.reshape(a.shape), a, v)
    if name == "Posterize":
        return chans.reshape(a.shape) & ~(2 ** (8 - v) - 1)
    if name == "Solarize":
        return np.where(a < v, a, 255 - a)
    if name == "AutoContrast":
        out = np.empty_like(chans)
        for c in range(chans.shape[-1]):
            x = chans[..., c]
            lo, hi = x.min(), x.max()
            out[..., c] = x if hi <= lo else np.clip((x * (255.0 / (hi - lo)) - lo * (255.0 / (hi - lo))).astype(np.int64), 0, 255)
        return out.reshape(a.shape)
    if name == "Equalize":
        out = np.empty_like(chans)
        for c in range(chans.shape[-1]):
            x = chans[..., c]
            h = np.bincount(x.ravel(), minlength=256)
            nz = h[h > 0]
            step = (nz.sum() - nz[-1]) // 255
            if len(nz) <= 1 or step == 0:
                out[..., c] = x
                continue
            lut = (step // 2 + np.concatenate([[0], np.cumsum(h)[:-1]])) // step
            out[..., c] = np.minimum(lut, 255)[x]
        return out.reshape(a.shape)
    raise AssertionError(name)


COLOUR_CASES = [("Brightness", "BrightnessIncreasing"), ("Contrast", "ContrastIncreasing"),
                ("Color", "ColorIncreasing"), ("Sharpness", "SharpnessIncreasing"),
                ("Posterize", "PosterizeIncreasing"), ("Solarize", "SolarizeIncreasing"),
                ("AutoContrast", "AutoContrast"), ("Equalize", "Equalize")]


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("base,name", COLOUR_CASES, ids=[c[0] for c in COLOUR_CASES])
def test_colour_ops_match_pil_definition(base, name, mode):
    for seed, m in enumerate((0.0, 3.0, 7.5, 9.0, 10.0)):
        img = jpeg(w=72, h=56, seed=seed, mode=mode)
        rng = random.Random(seed)
        v = timm_args(name, m, rng)
        ours = np.asarray(OPS[name](img, v, None, None)).astype(np.int64)
        ref = ref_colour_op(base, np.asarray(img), v)
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() <= 1, (name, m, v)


def test_color_is_identity_on_grey_and_posterize_zero_bits_is_black():
    img = jpeg(mode="L")
    for v in (0.1, 1.9):
        assert np.array_equal(np.asarray(OPS["ColorIncreasing"](img, v, None, None)), np.asarray(img))
    assert np.asarray(OPS["PosterizeIncreasing"](jpeg(), 0, None, None)).max() == 0


# ---- the random decisions, statistically ---------------------------------------------------

def test_op_choice_probability_and_magnitude_distributions():
    ra = RandAugment(parse_config("rand-m9-mstd0.5-inc1"))
    steps = [s for seed in range(700) for s in ra.draw(random.Random(seed))]
    assert len(steps) == 1400  # two ops per image, with replacement
    counts = np.array([sum(s.name == n for s in steps) for n in INC])
    assert stats.chisquare(counts).pvalue > 1e-3  # uniform over the 15 ops
    same = sum(a.name == b.name for a, b in zip(steps[::2], steps[1::2]))
    assert stats.binomtest(same, 700, 1 / 15).pvalue > 1e-3  # with replacement: a repeat 1 in 15
    applied = [s for s in steps if s.applied]
    assert stats.binomtest(len(applied), len(steps), 0.5).pvalue > 1e-3
    # magnitude, recovered from the continuous ops: clip(N(9, 0.5), 0, 10)
    mags = []
    for s in applied:
        if s.name == "Rotate":
            mags.append(abs(s.arg) / 3)
        elif s.name in ("ShearX", "ShearY"):
            mags.append(abs(s.arg) / 0.03)
        elif s.name in ("TranslateXRel", "TranslateYRel"):
            mags.append(abs(s.arg) / 0.045)
        elif s.name.endswith("Increasing") and s.name[:-10] in ("Color", "Contrast", "Brightness", "Sharpness"):
            mags.append(abs(s.arg - 1) / 0.09)
    mags = np.array(mags)
    assert len(mags) > 250 and mags.min() >= 0 and mags.max() <= 10 + 1e-9
    at_top = np.isclose(mags, 10)
    assert stats.binomtest(int(at_top.sum()), len(mags), stats.norm.sf(2.0)).pvalue > 1e-3
    below = mags[~at_top]
    truncated = stats.truncnorm(-np.inf, 2.0, loc=9, scale=0.5)
    assert stats.kstest(below, truncated.cdf).pvalue > 1e-3
    signs = [s.arg < 0 for s in applied if s.name in ("Rotate", "ShearX", "ShearY")]
    assert stats.binomtest(sum(signs), len(signs), 0.5).pvalue > 1e-3


def test_fill_is_the_mean_and_geometric_ops_use_the_interpolation():
    img = Image.new("RGB", (64, 64), (255, 255, 255))
    out = OPS["Rotate"](img, 30.0, (124, 116, 104), Image.BICUBIC)
    assert out.getpixel((0, 0)) == (124, 116, 104)
    ra = RandAugment("rand-m9-inc1", interpolation="bilinear")
    geo = [s for seed in range(200) for s in ra.draw(random.Random(seed)) if s.applied and s.resample is not None]
    assert geo and {s.resample for s in geo} == {Image.BILINEAR}


# ---- config strings --------------------------------------------------------------------------

@pytest.mark.parametrize("text,expect", [
    ("rand-m9-mstd0.5-inc1", RandAugmentConfig(9, 2, 0.5, True)),
    ("rand-m9-mstd0.5", RandAugmentConfig(9, 2, 0.5, False)),
    ("rand-m7-n3", RandAugmentConfig(7, 3, 0.0, False)),
    ("rand", RandAugmentConfig(10, 2, 0.0, False)),
    ("rand-n1-m0-mstd1-inc1", RandAugmentConfig(0, 1, 1.0, True)),
])
def test_config_strings(text, expect):
    cfg = parse_config(text)
    assert cfg == expect
    assert parse_config(str(cfg)) == cfg
    assert RandAugment(cfg).config.ops == tuple(INC if expect.increasing else PLAIN)


@pytest.mark.parametrize("text", ["rand-m9-inc0", "auto-m9", "rand-m11", "rand-q3", "rand-m9x",
                                  "rand-mfoo", "rand-w0", "rand-m9-m8", "rand-n0"])
def test_bad_config_strings_are_recipe_errors(text):
    with pytest.raises(RecipeError) as e:
        parse_config(text)
    assert e.value.code == "E610" and "RandAugment" in e.value.message and e.value.hint
