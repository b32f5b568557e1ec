"""A photo of a handwritten digit, brought into the form MNIST's digits have.

MNIST was made a certain way (LeCun, Cortes & Burges): each digit's ink was
fitted into a 20×20 box keeping its aspect ratio, and the box placed in a 28×28
field so that the ink's centre of mass falls on the field's centre, light ink on
black. Measured on the 10,000 test digits: the ink's bounding box has a longer
side of exactly 20 pixels in 9,997 of them, and the centre of mass lies at
(13.99, 14.01) with a spread of 0.29 pixel, which is what whole-pixel shifts give.

A model trained on MNIST has never seen anything else, so a phone photo of a
digit on paper (dark ink, light page, the digit anywhere and any size) reads at
chance until it is brought into that form. `to_mnist` does so:

1. tell dark ink from light ink by the image's border (the page), and invert if the
   border is the light side;
2. split ink from page with Otsu's threshold on the histogram, then remove the page:
   its level and its noise (the page's median plus 4 robust standard deviations)
   become black, and the ink is stretched to full brightness;
3. drop specks: ink components smaller than 2% of the largest one;
4. crop to the ink, fit it into 20×20 keeping its aspect ratio, and centre it by
   mass in 28×28.

An MNIST digit comes out of this as it went in, bar a few faint specks (the test
set reads within 0.1 point through this path and the plain one: benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zoo.errors import DataError

CANVAS = 28  # MNIST's field
BOX = 20  # the box MNIST fits each digit's ink into
CENTRE = 14.0  # where MNIST's centres of mass lie (measured: 13.99, 14.01)
NOISE_SIGMAS = 4.0  # page noise removed: its median plus this many robust standard deviations
MIN_CONTRAST = 40.0  # ink must stand this many levels (of 255) above the page's noise
SPECK = 0.02  # ink components smaller than this fraction of the largest are specks
FORM = {"name": "mnist", "ink": "light on black", "box": BOX, "canvas": CANVAS, "centre": "mass"}


def in_mnist_form(images: np.ndarray, share: float = 0.99) -> bool:
    """Whether 28×28 images are in MNIST's form: light ink on black, each image's ink (its non-zero
    pixels) inside a 20×20 box. All 60,000 MNIST training digits are; Fashion-MNIST's clothes, the
    same size and file format, fill the field, and a photo brought into this form would not look
    like them. Up to 2,000 images, spread over the set, are looked at."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (CANVAS, CANVAS) or not len(images):
        return False
    sample = images[np.linspace(0, len(images) - 1, min(len(images), 2000)).astype(int)] > 0

    def span(ink_along):  # per image: last minus first index with ink, + 1 (0 for a blank image)
        first = ink_along.argmax(1)
        last = ink_along.shape[1] - 1 - ink_along[:, ::-1].argmax(1)
        return np.where(ink_along.any(1), last - first + 1, 0)

    side = np.maximum(span(sample.any(2)), span(sample.any(1)))
    return float((side <= BOX).mean()) >= share


class NoInk(DataError):
    """An image with nothing on it that stands out from its background."""


@dataclass
class Normalized:
    pixels: np.ndarray  # (28, 28) uint8, light ink on black
    steps: list[str]  # what was done, in words
    warnings: list[str] = field(default_factory=list)


def otsu_threshold(values: np.ndarray) -> float:
    """The level that splits 0-255 values into two classes of greatest between-class variance
    (Otsu 1979): the classes are values <= t and values > t."""
    hist = np.bincount(np.clip(np.rint(values), 0, 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight_low = np.cumsum(hist)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(hist * levels)
    mean_low = np.divide(mass_low, weight_low, out=np.zeros(256), where=weight_low > 0)
    mean_high = np.divide(mass_low[-1] - mass_low, weight_high, out=np.zeros(256), where=weight_high > 0)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(np.argmax(between))


def _border(gray: np.ndarray) -> np.ndarray:
    width = max(1, round(0.02 * min(gray.shape)))
    return np.concatenate([gray[:width].ravel(), gray[-width:].ravel(),
                           gray[:, :width].ravel(), gray[:, -width:].ravel()])


def _fit(ink: np.ndarray) -> np.ndarray:
    """Ink cropped to its box, scaled so that its longer side is BOX pixels (aspect kept)."""
    from PIL import Image

    height, width = ink.shape
    scale = BOX / max(height, width)
    if scale == 1.0:
        return ink
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0, 255)


def to_mnist(gray: np.ndarray, name: str = "image") -> Normalized:
    """A grayscale image (H, W) of 0-255 values as a 28×28 MNIST-form digit.

    Raises:
        NoInk: nothing stands out from the background (a blank page, an even tone).
    """
    from scipy import ndimage

    x = np.asarray(gray, dtype=np.float64)
    steps = [f"grayscale {x.shape[1]}×{x.shape[0]}"]
    low, high = np.percentile(x, [1, 99])
    if np.median(_border(x)) > (low + high) / 2:
        x = 255.0 - x
        steps.append("inverted: dark ink on a light background")
    threshold = otsu_threshold(x)
    page, ink_pixels = x[x <= threshold], x[x > threshold]
    level = float(np.median(page)) if page.size else 0.0
    noise = 1.4826 * float(np.median(np.abs(page - level))) if page.size else 0.0  # the MAD as a sigma
    floor = level + NOISE_SIGMAS * noise
    bright = float(np.percentile(ink_pixels, 99)) if ink_pixels.size else floor
    contrast = bright - floor if page.size and ink_pixels.size else 0.0  # one even tone: nothing to split
    if contrast < MIN_CONTRAST:
        raise NoInk(f"{name}: no ink found: nothing in the image stands out from its background "
                    f"(contrast {max(contrast, 0):.0f} of 255, needs {MIN_CONTRAST:.0f}); nothing to predict")
    ink = np.clip((x - floor) / (bright - floor), 0.0, 1.0) * 255.0
    steps.append(f"background removed: Otsu threshold {threshold:.0f}, page {level:.0f} ± {noise:.1f} "
                 f"set to black, ink {bright:.0f} stretched to 255")

    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = np.flatnonzero(sizes >= SPECK * sizes.max()) + 1
    if len(keep) < count:
        steps.append(f"{count - len(keep)} speck(s) removed")
    mask = np.isin(labels, keep)
    ink = np.where(mask, ink, 0.0)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    warnings = []
    if top == 0 and left == 0 and bottom == x.shape[0] and right == x.shape[1]:
        warnings.append(f"{name}: the ink touches every border of the image: the digit may be cut off, "
                        "or the picture holds more than one digit; this prediction may be wrong")
    fitted = _fit(ink[top:bottom, left:right])
    steps.append(f"cropped to the ink ({right - left}×{bottom - top}) and fitted into "
                 f"{fitted.shape[1]}×{fitted.shape[0]} (box {BOX}×{BOX})")

    canvas = np.zeros((CANVAS, CANVAS))
    h, w = fitted.shape
    y0, x0 = (CANVAS - h) // 2, (CANVAS - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = fitted
    com_y, com_x = ndimage.center_of_mass(canvas)
    dy, dx = int(round(CENTRE - com_y)), int(round(CENTRE - com_x))
    canvas = ndimage.shift(canvas, (dy, dx), order=0, mode="constant", cval=0.0)
    steps.append(f"centred by mass in {CANVAS}×{CANVAS} (moved {dx:+d}, {dy:+d})")
    return Normalized(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), steps, warnings)


def photograph(digit: np.ndarray, seed: int) -> np.ndarray:
    """A synthetic phone photo of an MNIST digit written on paper: what the tests and the
    benchmark read through `to_mnist`.

    The digit (28×28, light ink on black) is drawn 3 to 7 times larger in dark ink
    (level 20-80) on a light page (180-235) that is 1.3 to 2.2 times the digit's size,
    somewhere off its centre, lit unevenly (up to 10% brighter on one side) and with
    sensor noise (a standard deviation of 3-8 levels). Returns (H, W) uint8; the same
    seed gives the same photo.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    size = int(round(CANVAS * rng.uniform(3.0, 7.0)))
    ink = np.asarray(Image.fromarray(np.asarray(digit, np.uint8).reshape(CANVAS, CANVAS))
                     .resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64) / 255.0
    height, width = (int(size * rng.uniform(1.3, 2.2)) for _ in range(2))
    top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    coverage = np.zeros((height, width))
    coverage[top : top + size, left : left + size] = np.clip(ink, 0.0, 1.0)
    paper, dark = rng.uniform(180, 235), rng.uniform(20, 80)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    light = 1.0 + rng.uniform(0.0, 0.1) * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    pixels = (paper * (1 - coverage) + dark * coverage) * light + rng.normal(0, rng.uniform(3, 8), (height, width))
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
