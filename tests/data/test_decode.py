"""decode.py: every Pillow mode to L/RGB as an independent formula says, and every broken file
as a BadImage with a one-line reason (no Pillow warning printed)."""
import io
import os
import warnings

import numpy as np
import pytest
from conftest import image
from PIL import Image

from archdsl.data.decode import BadImage, convert, open_image


def saved(img, tmp_path, name, **kw):
    path = str(tmp_path / name)
    img.save(path, **kw)
    return path


def load(path, channels):
    with open_image(path) as img:
        return np.asarray(convert(img, channels))


def test_truncated_jpeg_is_bad_at_decode_not_at_open(tmp_path):
    path = saved(image(1, (64, 48)), tmp_path, "t.jpg", quality=90)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with open_image(path) as img:  # the header is intact
        assert img.size == (64, 48)
        with pytest.raises(BadImage) as e:
            convert(img, 3)
    assert "truncated" in e.value.reason and e.value.path == path


@pytest.mark.parametrize("content, words", [(b"", "an empty file (0 bytes)"),
                                            (b"hello, not an image\n" * 3, "not an image")])
def test_empty_and_non_image_files(tmp_path, content, words):
    path = str(tmp_path / "x.jpg")
    open(path, "wb").write(content)
    with pytest.raises(BadImage) as e:
        open_image(path)
    assert e.value.reason == words or words in e.value.reason


@pytest.mark.parametrize("limit", [2000, 1000])  # 64x48 = 3072 pixels: Pillow's warning, then its error
def test_decompression_bomb_is_a_clean_reason_and_no_warning(tmp_path, monkeypatch, limit):
    path = saved(image(2, (64, 48)), tmp_path, "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BadImage) as e:
            open_image(path)
    assert not caught
    assert e.value.reason == (f"decompression bomb: 64x48 = 3,072 pixels, over Pillow's limit of "
                              f"{limit:,} (PIL.Image.MAX_IMAGE_PIXELS)")


def test_cmyk_to_rgb_by_the_cmyk_formula(tmp_path):
    rng = np.random.default_rng(0)
    cmyk = rng.integers(0, 256, size=(6, 5, 4)).astype(np.uint8)
    path = saved(Image.fromarray(cmyk, "CMYK"), tmp_path, "c.tif")
    got = load(path, 3).astype(float)
    c, k = cmyk[..., :3].astype(float), cmyk[..., 3:].astype(float)
    want = (255 - c) * (255 - k) / 255
    assert np.abs(got - want).max() <= 1
    path = saved(Image.fromarray(cmyk, "CMYK"), tmp_path, "c.jpg", quality=95)  # CMYK JPEG
    assert load(path, 3).shape == (6, 5, 3)


def test_16_bit_pngs_are_scaled_not_clipped(tmp_path):
    dark = np.linspace(1000, 8000, 40).reshape(5, 8).astype(np.uint16)
    bright = np.linspace(40000, 65000, 40).reshape(5, 8).astype(np.uint16)
    out = []
    for name, a in (("dark.png", dark), ("bright.png", bright)):
        path = saved(Image.fromarray(a), tmp_path, name)
        with open_image(path) as img:
            assert img.mode.startswith("I")
        got = load(path, 1)
        np.testing.assert_array_equal(got, np.floor(a.astype(float) * 255 / 65535 + 0.5))
        out.append(got)
    assert out[0].max() < out[1].min() and len(np.unique(out[0])) > 20  # distinguishable, graded
    rgb = load(path, 3)
    assert rgb.shape == (5, 8, 3) and (rgb[..., 0] == out[1]).all()


def test_32_bit_int_outside_16_bits_is_stretched(tmp_path):
    a = np.array([[-100000, 0], [50000, 300000]], dtype=np.int32)
    got = load(saved(Image.fromarray(a, "I"), tmp_path, "i.tif"), 1)
    want = np.rint((a - a.min()) * 255 / (a.max() - a.min()))
    np.testing.assert_array_equal(got, want)


def test_float_tiff_is_scaled_not_rounded_to_0_or_1(tmp_path):
    unit = np.linspace(0.05, 0.95, 12).reshape(3, 4).astype(np.float32)
    got = load(saved(Image.fromarray(unit, "F"), tmp_path, "f.tif"), 1)
    np.testing.assert_array_equal(got, np.rint(unit.astype(np.float64) * 255))
    assert len(np.unique(got)) == 12
    wide = np.array([[-5.0, 0.0], [np.nan, 15.0]], dtype=np.float32)
    got = load(saved(Image.fromarray(wide, "F"), tmp_path, "g.tif"), 1)
    assert got.tolist() == [[0, 64], [0, 255]]  # (v + 5) / 20 * 255; NaN as the minimum


def test_animated_gif_gives_its_first_frame(tmp_path):
    red, blue = Image.new("RGB", (8, 6), (255, 0, 0)), Image.new("RGB", (8, 6), (0, 0, 255))
    path = str(tmp_path / "a.gif")
    red.save(path, save_all=True, append_images=[blue], duration=50, loop=0)
    with open_image(path) as img:
        assert img.is_animated and img.n_frames == 2
        img.seek(1)
        got = np.asarray(convert(img, 3))
    assert (got == [255, 0, 0]).all()


def test_transparency_is_composited_on_white(tmp_path):
    pal = Image.new("P", (4, 1))
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.putdata([0, 1, 0, 1])
    pal.info["transparency"] = 0
    path = saved(pal, tmp_path, "p.png", transparency=0)
    assert load(path, 3).tolist() == [[[255, 255, 255], [10, 200, 30]] * 2]
    rgba = Image.fromarray(np.array([[[10, 20, 30, 0], [10, 20, 30, 255], [200, 100, 0, 128]]],
                                    np.uint8), "RGBA")
    got = load(saved(rgba, tmp_path, "rgba.png"), 3)[0]
    assert got[0].tolist() == [255, 255, 255] and got[1].tolist() == [10, 20, 30]
    want = np.array([200, 100, 0]) * 128 / 255 + 255 * (1 - 128 / 255)
    assert np.abs(got[2] - want).max() <= 1
    la = Image.fromarray(np.array([[[40, 0], [40, 255]]], np.uint8), "LA")
    assert load(saved(la, tmp_path, "la.png"), 1).tolist() == [[255, 40]]


def test_bilevel_grey_in_colour_and_colour_in_grey(tmp_path):
    one = Image.fromarray(np.array([[0, 1, 1]], bool)).convert("1")
    assert load(saved(one, tmp_path, "b.png"), 1).tolist() == [[0, 255, 255]]
    grey = Image.fromarray(np.array([[3, 77, 250]], np.uint8), "L")
    rgb = load(saved(grey, tmp_path, "g.png"), 3)
    assert rgb.tolist() == [[[3] * 3, [77] * 3, [250] * 3]]
    colour = np.array([[[200, 100, 50], [0, 255, 0]]], np.uint8)
    got = load(saved(Image.fromarray(colour), tmp_path, "c.png"), 1).astype(float)
    luma = colour @ np.array([299, 587, 114]) / 1000  # ITU-R 601
    assert np.abs(got - luma).max() <= 1


def test_open_from_bytes_names_the_member(tmp_path):
    buf = io.BytesIO(b"")
    with pytest.raises(BadImage) as e:
        open_image("shard.tar:000000001.jpg", fp=buf)
    assert e.value.path == "shard.tar:000000001.jpg" and "empty" in e.value.reason
    b = io.BytesIO()
    image(3).save(b, format="JPEG")
    with open_image("m.jpg", fp=io.BytesIO(b.getvalue())) as img:
        assert np.asarray(convert(img, 3)).shape == (16, 24, 3)
    assert os.path.exists(tmp_path)
