"""Open an image lazily, then bring its pixels to "L" or "RGB": `open_image`, `convert`.

`open_image(path)` reads the header only (size, mode): the transform chooses its crop first, may
ask a JPEG for a reduced-scale decode (`img.draft`), and only then calls `convert`, which loads
the pixels. Anything that is not an image Pillow can open (a 0-byte file, text, a
decompression bomb over `PIL.Image.MAX_IMAGE_PIXELS`) raises `BadImage(path, reason)`;
pixel data that turns out to be broken (a truncated JPEG) raises `BadImage` from `convert`.
The dataset turns both into a `BadSample`; nothing here prints a Pillow warning.

`convert(img, channels)` rules, for every Pillow mode (channels 1 -> "L", 3 -> "RGB"):
- "L", "RGB": as they are; "L" <-> "RGB" for a grey image in a colour set and back (luma
  ITU-R 601, Pillow's own rule).
- 16- and 32-bit integer ("I;16", "I;16B", "I;16L", "I"): the type's range is scaled to 8 bits,
  v * 255 / 65535 rounded, so two 16-bit images of different brightness stay different (Pillow's
  own convert clips everything above 255 to white). "I" values outside 0..65535 are scaled
  from the image's own min..max.
- float ("F"): values within [0, 1] are scaled by 255; any other range from the image's own
  min..max (NaN -> 0). Never rounded to {0, 1}.
- "1": 0/255. "P", "PA", "LA", "RGBA", "La", "RGBa" and a palette with a transparent colour:
  composited over BACKGROUND (white), so transparent pixels do not show whatever colour
  happens to be stored under them. "CMYK", "YCbCr", "LAB", "HSV": Pillow's conversion to RGB.
- animated images (GIF, APNG, WebP): the first frame.
EXIF orientation is not applied (neither the ConvNeXt/timm pipeline nor torchvision applies it).

Pillow's DecompressionBombWarning is turned into a BadImage with `warnings.catch_warnings`,
which is process-wide: decode in processes (DataLoader workers), not in several threads of one
process, or a raw warning may slip through.

Decoder threads: Pillow's AVIF decoder uses os.cpu_count() threads by default; it is limited
to one here, so memory per DataLoader worker does not grow with the machine's core count
(JPEG, PNG, WebP, GIF and TIFF decode single-threaded in Pillow anyway).
"""
from __future__ import annotations

import os
import warnings
from typing import IO

import numpy as np
from PIL import Image

BACKGROUND = 255  # what a transparent pixel becomes (white)
_INT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


class BadImage(Exception):
    """A file that cannot be decoded; `path` and a one-line `reason`."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def limit_threads() -> None:
    """One decoder thread per process (see the module docstring)."""
    try:
        from PIL import AvifImagePlugin
    except ImportError:  # an older Pillow without AVIF
        return
    AvifImagePlugin.DEFAULT_MAX_THREADS = 1


limit_threads()


def open_image(path: str | os.PathLike, fp: IO[bytes] | None = None) -> Image.Image:
    """The image at `path` (or in `fp`, named `path` in messages), header read, pixels not.

    Use it as a context manager (`with open_image(p) as img:`) so the file is closed."""
    name = os.fsdecode(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp if fp is not None else path)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise BadImage(name, _bomb_reason(fp if fp is not None else path)) from None
        except Image.UnidentifiedImageError:
            size = _size(path, fp)
            raise BadImage(name, "an empty file (0 bytes)" if size == 0 else
                           "not an image Pillow can read") from None
        except OSError as e:
            raise BadImage(name, f"cannot open: {e.strerror or e}") from None
        except Exception as e:  # a plugin choking on a malformed header (ValueError, SyntaxError)
            raise BadImage(name, f"malformed header: {type(e).__name__}: {e}") from None
    return img


def _size(path, fp) -> int | None:
    try:
        if fp is not None:
            return len(fp.getbuffer()) if hasattr(fp, "getbuffer") else None
        return os.path.getsize(path)
    except OSError:
        return None


def _bomb_reason(src) -> str:
    """Name the size without decoding (Pillow refuses before reading pixels)."""
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                if hasattr(src, "seek"):
                    src.seek(0)
                with Image.open(src) as im:
                    w, h = im.size
            finally:
                Image.MAX_IMAGE_PIXELS = saved
        return (f"decompression bomb: {w}x{h} = {w * h:,} pixels, over Pillow's limit of "
                f"{limit:,} (PIL.Image.MAX_IMAGE_PIXELS)")
    except Exception:
        return f"decompression bomb: over Pillow's limit of {limit:,} pixels"


def convert(img: Image.Image, channels: int) -> Image.Image:
    """Load `img`'s pixels and return them as "L" (channels=1) or "RGB" (channels=3)."""
    if channels not in (1, 3):
        raise ValueError(f"convert: channels must be 1 or 3, not {channels}")
    name = getattr(img, "filename", "") or "<image>"
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
        out = _to_l_or_rgb(img)
    except BadImage:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise BadImage(name, f"decompression bomb: {img.size[0]}x{img.size[1]} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise BadImage(name, _decode_reason(e)) from None
    want = "L" if channels == 1 else "RGB"
    return out if out.mode == want else out.convert(want)


def _decode_reason(e: Exception) -> str:
    text = str(e)
    if "truncated" in text or isinstance(e, EOFError):
        return f"truncated image data ({text or type(e).__name__})"
    return f"cannot decode: {type(e).__name__}: {text}"


def _to_l_or_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode in _INT_MODES:
        a = np.asarray(img).astype(np.int64)
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 65535:
            a8 = (a * 255 + 32767) // 65535
        else:
            a8 = _stretch(a.astype(np.float64), lo, hi)
        return Image.fromarray(a8.astype(np.uint8), "L")
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        a = np.where(np.isfinite(a), a, np.nan)
        lo, hi = np.nanmin(a, initial=np.inf), np.nanmax(a, initial=-np.inf)
        if not np.isfinite(lo):
            a8 = np.zeros(a.shape, np.uint8)
        elif lo >= 0 and hi <= 1:
            a8 = np.rint(np.nan_to_num(a) * 255)
        else:
            a8 = _stretch(np.nan_to_num(a, nan=lo), lo, hi)
        return Image.fromarray(a8.astype(np.uint8), "L")
    if mode == "1":
        return img.convert("L")
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in img.info
        if not has_alpha:
            return img.convert("RGB")
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("LA", "La", "RGBA", "RGBa"):
        base = "L" if mode[0] == "L" else "RGB"
        if mode in ("La", "RGBa"):  # premultiplied: undo it first
            img = img.convert(base + "A")
        bg = Image.new(base, img.size, BACKGROUND if base == "L" else (BACKGROUND,) * 3)
        bg.paste(img.convert(base), mask=img.getchannel("A"))
        return bg
    try:
        return img.convert("RGB")
    except ValueError as e:
        raise BadImage(getattr(img, "filename", "") or "<image>",
                       f"pixel mode {mode} cannot be converted to RGB ({e})") from None


def _stretch(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo)))


def to_tensor(img: Image.Image):
    """An "L" or "RGB" image as a uint8 torch tensor (C, H, W): a channels-first view of the
    pixels (not made contiguous here: collate's torch.stack copies it once anyway)."""
    import torch

    a = np.asarray(img, dtype=np.uint8)
    t = torch.from_numpy(a.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)


