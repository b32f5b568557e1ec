"""Reading image files safely: one decoder for training data and for prediction.

Pillow refuses to decode an image whose header promises more pixels than it
thinks safe (a decompression bomb: a 947 KB PNG can claim 30000×30000); zoo
turns that, and any file Pillow cannot read, into one `DataError` line. A
phone photo is turned the way its EXIF tag says (the way a viewer shows it),
and a transparent background is laid on white, as a viewer shows it.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np

from zoo.errors import DataError, TooLarge

# A photo larger than this is reduced (in the JPEG decoder where it can) before any work:
# a digit filling a tenth of a 1024-pixel side still spans 100 pixels, five times MNIST's 20.
MAX_SIDE = 1024


def _too_large(path, exc: Exception | None, pixels: int | None = None, limit: int | None = None) -> TooLarge:
    from PIL import Image

    found = re.search(r"\((\d+) pixels\)", str(exc)) if exc is not None else None
    pixels = int(found.group(1)) if found else pixels
    size = f"{pixels:,} pixels" if pixels else "its size"
    return TooLarge(f"{path}: too large to decode safely ({size}; the limit is "
                     f"{limit or Image.MAX_IMAGE_PIXELS:,}); shrink the image and try again")


def open_image(path: Path | bytes, mode: str, *, max_side: int | None = None, name: str | None = None,
               max_pixels: int | None = None):
    """The image at `path` (or an image file's bytes, called `name` in errors), decoded, upright,
    in `mode` ("L" or "RGB"); reduced to fit `max_side` if given. An image whose header gives more
    than `max_pixels` (default: Pillow's limit) is refused before it is decoded. Raises DataError
    for a file that cannot or should not be decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    source = io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else path
    path = name or path
    # between 1x and 2x Pillow's limit it only warns; a warning here is a refusal too. The filter is
    # process-wide and catch_warnings is not thread-safe, so a caller in threads (zoo serve) gives a
    # max_pixels below Pillow's limit instead, which refuses those images on their header
    below = max_pixels is not None and max_pixels <= Image.MAX_IMAGE_PIXELS
    try:
        with contextlib.nullcontext() if below else warnings.catch_warnings():
            if not below:
                warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                if max_pixels is not None and image.size[0] * image.size[1] > max_pixels:
                    raise _too_large(path, None, image.size[0] * image.size[1], max_pixels)
                if max_side is not None:
                    image.draft(mode, (max_side, max_side))  # JPEG: decode at 1/2, 1/4 or 1/8 size
                image = ImageOps.exif_transpose(image)
                if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                    rgba = image.convert("RGBA")
                    image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    image.alpha_composite(rgba)
                image = image.convert(mode)
                if max_side is not None and max(image.size) > max_side:
                    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                image.load()
                return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # the lower limit is the one
        raise _too_large(path, exc, limit=min(max_pixels or Image.MAX_IMAGE_PIXELS, Image.MAX_IMAGE_PIXELS)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(source, io.BytesIO) and isinstance(exc, UnidentifiedImageError):  # not "<_io.BytesIO ...>"
            raise DataError(f"{path}: not an image file Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP)") from None
        raise DataError(f"{path}: not a readable image ({exc})") from None


def read_resized(path: Path | bytes, shape, **opened) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 pixels (height, width, channels) of the image at `path` (or of its bytes: `opened`
    takes open_image's name and max_pixels), resized to `shape` (bilinear, as training read its
    images), and the image's own (width, height)."""
    from PIL import Image

    height, width, channels = shape
    image = open_image(path, "L" if channels == 1 else "RGB", **opened)
    array = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)
    return (array[..., None] if channels == 1 else array), image.size
