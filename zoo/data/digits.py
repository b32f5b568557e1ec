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

1. tell dark ink from light ink: a small image by its border (the page); a photo by which way
   its pixels stand out from the page around them, since a border can lie in a shadow;
2. even out the page's light: estimate the page at a scale larger than any stroke (a grey
   closing over a third of the image) and divide it out, so that a gradient, a shadow and its
   edge are gone before ink is told from page (one Otsu threshold over a whole page split its
   light, not its ink: of 2,000 pages up to 60% darker on one side and shadowed, it refused 262
   and LeNet-5 read 21.3%; this reads 98.3% with the same weights, none refused);
3. remove the page: its median and noise (4 robust standard deviations of the noise as the
   sensor gave it, more where the page was dim) become black, ruled or squared paper's lines
   are taken out, and the ink is stretched to full brightness;
4. drop specks (ink components of less than 2% of the largest one's ink) and marks away from the
   digit or running into the image's border;
5. crop to the ink, fit it into 20×20 keeping its aspect ratio, and centre it by mass in 28×28.

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
LOCAL_MIN = 64  # images at least this many pixels on each side get their lighting estimated locally
NEAR = 0.5  # ink further than this share of the digit's size from its largest stroke is not the digit
LINE_SPAN = 0.75  # a straight run across this share of the image is a ruled line, not a stroke
SLACK = 2  # pixels a ruled line may wander each way along its run (a degree over 240 pixels)
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


def _robust_sigma(values: np.ndarray, centre: float | None = None) -> float:
    """The median absolute deviation from `centre` (default: the median) as a Gaussian's sigma."""
    centre = float(np.median(values)) if centre is None else centre
    return 1.4826 * float(np.median(np.abs(values - centre)))


def _dark_ink(x: np.ndarray) -> bool:
    """Whether the ink is darker than the page. Small images (MNIST's own) are told by their border,
    the page. A photo's border can lie in a shadow or the dim side of the page, so there each pixel
    is compared with the page around it (a median over a third of the image, taken at 32 pixels'
    resolution and enlarged back): ink is what stands out, and it stands out to one side, while
    light and shadow are spread to both."""
    if min(x.shape) < LOCAL_MIN:
        low, high = np.percentile(x, [1, 99])
        return bool(np.median(_border(x)) > (low + high) / 2)
    from PIL import Image
    from scipy import ndimage

    factor = 32 / min(x.shape)
    small_size = (max(1, round(x.shape[1] * factor)), max(1, round(x.shape[0] * factor)))
    small = np.asarray(Image.fromarray(x.astype(np.float32), mode="F").resize(small_size, Image.Resampling.BOX))
    page_small = ndimage.median_filter(small, size=11, mode="nearest")
    page = np.asarray(Image.fromarray(page_small, mode="F").resize((x.shape[1], x.shape[0]),
                                                                      Image.Resampling.BILINEAR), dtype=np.float64)
    residual = x - page
    spread = NOISE_SIGMAS * _robust_sigma(residual)
    return bool(np.clip(-residual - spread, 0, None).sum() > np.clip(residual - spread, 0, None).sum())


def _stroke_width(inked: np.ndarray) -> float:
    """The pen's width: twice the median distance to the ink's edge along its ridges (the local maxima of
    the distance transform), which a few broad blobs (a shadow's corner) do not move. 0 without ink."""
    from scipy import ndimage

    if not inked.any():
        return 0.0
    distance = ndimage.distance_transform_edt(inked)
    ridge = inked & (distance >= ndimage.maximum_filter(distance, 3)) & (distance > 1)
    return 2 * float(np.median(distance[ridge])) if ridge.any() else 2.0


def _background(x: np.ndarray, dark_ink: bool) -> tuple[np.ndarray, str | None] | None:
    """The page as light alone would show it, estimated at a scale larger than any stroke: a grey
    closing (dark ink on a light page) or opening (light ink on dark) over a third of the image's
    shorter side, which takes away every structure narrower than that and keeps gradients, shadows
    and their edges (a shadow's edge that meets the image's border leaves a wedge: `_near_the_digit`
    drops it). None for images too small to hold a stroke and a page apart (under 64 pixels:
    MNIST's own 28×28 digits, whose page is already flat); no words for an even white page."""
    from scipy import ndimage

    if min(x.shape) < LOCAL_MIN:
        return None
    smooth = ndimage.gaussian_filter(x, 1.0)  # the page's noise, not its minimum, decides the estimate
    morph = ndimage.grey_closing if dark_ink else ndimage.grey_opening
    window = min(x.shape) // 3
    page = morph(smooth, size=(window, window))
    low, high = np.percentile(page, [1, 99])
    if high - low < 1 and low >= 254.5:  # an even white page (a drawing pad's): dividing by it changes nothing
        return page, None
    return page, f"lighting evened out: page estimated over {window}×{window} px (it ranged {low:.0f}-{high:.0f})"


def _flatten(x: np.ndarray, dark_ink: bool) -> tuple[np.ndarray, np.ndarray | float, str | None]:
    """Ink as light on black, the page's lighting taken out, and how much each pixel's noise was
    amplified doing so. A photo's light multiplies what the paper reflects, so dark ink is read as
    the share of the page's light it takes away: the same ink reads the same in a shadow, where the
    sensor's noise, the same in levels everywhere, is a larger share of a dimmer page. Light ink on
    a dark ground (a screen, a board) is what stands above the ground."""
    estimate = _background(x, dark_ink)
    if estimate is None:
        return (255.0 - x if dark_ink else x), 1.0, None
    page, step = estimate
    if dark_ink:
        page = np.maximum(page, 1.0)
        return np.clip(1.0 - x / page, 0.0, 1.0) * 255.0, float(np.median(page)) / page, step
    return np.clip(x - page, 0.0, 255.0), 1.0, step


def _ruled_lines(ink: np.ndarray, floor: np.ndarray | float) -> tuple[np.ndarray, int]:
    """Ruled or squared paper's lines: straight runs across three quarters of the image or more,
    within a degree of level or upright (2 pixels of slack each way). Two or more parallel ones are
    paper; one alone is paper only if it is thinner than half the ink's strokes (a printed rule is a
    hairline beside a pen's stroke, while a tightly cropped 7's bar is as wide as its stem). A digit
    has no stroke that long once it has a margin. Returns the lines' part of the ink and how many."""
    from scipy import ndimage

    lines, found = np.zeros_like(ink), 0
    if min(ink.shape) < LOCAL_MIN:
        return lines, 0
    stroke = None
    for along in (1, 0):  # rows (ruled), then columns (squared)
        length = int(LINE_SPAN * ink.shape[along])
        smooth = ndimage.uniform_filter1d(ink, 9, axis=along)  # a faint line's noise averaged along it
        widened = ndimage.maximum_filter1d(smooth, 1 + 2 * SLACK, axis=1 - along)
        size = (1, length) if along == 1 else (length, 1)
        opened = ndimage.grey_opening(widened, size=size)
        run = np.minimum(opened, ink)
        crossed = (np.minimum(opened, smooth) > floor).mean(axis=along) > 0.5  # per row (column): a line crosses it
        bands, count = ndimage.label(crossed)
        if count == 1:
            if stroke is None:
                stroke = _stroke_width(ink > floor)
            if np.count_nonzero(crossed) > stroke / 2:
                continue
        if count:
            lines, found = np.maximum(lines, run), found + count
    return lines, found


def _near_the_digit(labels: np.ndarray, keep: np.ndarray, main: int) -> np.ndarray:
    """The components that come within half the digit's size of its largest one and do not run into
    the image's border (the parts of a broken 5 or 4 do; a shadow's corner or a smudge across the
    page does not)."""
    from scipy import ndimage

    boxes = ndimage.find_objects(labels)
    rows, cols = boxes[main - 1]
    reach = NEAR * max(rows.stop - rows.start, cols.stop - cols.start)
    height, width = labels.shape

    def edge(box):  # a mark that runs into the image's border, where a shadow's corner leaves one
        return box[0].start == 0 or box[1].start == 0 or box[0].stop == height or box[1].stop == width

    near = [k for k in keep
            if k == main or not edge(boxes[k - 1])
            and boxes[k - 1][0].start < rows.stop + reach and boxes[k - 1][0].stop > rows.start - reach
            and boxes[k - 1][1].start < cols.stop + reach and boxes[k - 1][1].stop > cols.start - reach]
    return np.asarray(near, dtype=np.int64)


def to_mnist(gray: np.ndarray, name: str = "image") -> Normalized:
    """A grayscale image (H, W) of 0-255 values as a 28×28 MNIST-form digit.

    Raises:
        NoInk: nothing stands out from the background (a blank page, an even tone).
    """
    from scipy import ndimage

    x = np.asarray(gray, dtype=np.float64)
    steps = [f"grayscale {x.shape[1]}×{x.shape[0]}"]
    dark_ink = _dark_ink(x)
    if dark_ink:
        steps.append("inverted: dark ink on a light background")
    x, gain, evened = _flatten(x, dark_ink)
    if evened:
        steps.append(evened)
    # a photo's page is most of it: its median and spread (the MAD as a sigma, of the noise as the
    # sensor gave it) are the page's. A small image can be mostly ink (an 8×8 scan of a 0): there
    # Otsu's threshold tells its page apart
    is_page = np.ones(x.shape, bool) if min(x.shape) >= LOCAL_MIN else x <= otsu_threshold(x)
    is_page = is_page if is_page.any() else np.ones(x.shape, bool)  # one even tone: all page
    level = float(np.median(x[is_page]))
    noise = _robust_sigma(((x - level) / gain)[is_page], centre=0.0)
    # higher where the page was dim; at least half a level above it: a page with no noise at all
    # (a drawing pad's white) is flattened to 0 with float dust, 3e-15, that must not count as ink
    # (it made 39 "ruled lines" of a 7 drawn in the browser)
    floor = level + max(NOISE_SIGMAS * noise, 0.5) * gain
    lines, ruled = _ruled_lines(x, floor)
    if ruled:
        x = x - lines
        steps.append(f"{ruled} ruled line(s) taken out")
    standing = x > floor
    bright = float(np.percentile(x[standing], 99)) if standing.any() else float(np.max(floor))
    contrast = bright - float(np.median(np.broadcast_to(floor, x.shape)[standing])) if standing.any() else 0.0
    if contrast < MIN_CONTRAST:
        raise NoInk(f"{name}: no ink found: nothing in the image stands out from its background "
                    f"(contrast {max(contrast, 0):.0f} of 255, needs {MIN_CONTRAST:.0f}); nothing to predict")
    ink = np.clip((x - floor) / np.maximum(bright - floor, 1e-6), 0.0, 1.0) * 255.0
    steps.append(f"background removed: page {level:.0f} ± {noise:.1f} set to black, ink {bright:.0f} "
                 "stretched to 255")

    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    mass = ndimage.sum_labels(ink, labels, index=np.arange(1, count + 1))
    keep = np.flatnonzero(mass >= SPECK * mass.max()) + 1
    if len(keep) < count:
        steps.append(f"{count - len(keep)} speck(s) removed")
    near = _near_the_digit(labels, keep, int(np.argmax(mass)) + 1)
    if len(near) < len(keep):
        steps.append(f"{len(keep) - len(near)} mark(s) away from the digit left out")
    mask = np.isin(labels, near)
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


def photograph(digit: np.ndarray, seed: int, *, light: float = 0.1, shadow: bool = False,
               lines: str | None = None, jpeg: int | None = None, size: tuple[float, float] = (3.0, 7.0),
               page: tuple[float, float] = (1.3, 2.2)) -> np.ndarray:
    """A synthetic phone photo of an MNIST digit written on paper: what the tests and the
    benchmarks read through `to_mnist`.

    The digit (28×28, light ink on black) is drawn `size` (3 to 7) times larger in dark ink
    (level 20-80) on a light page (180-235) that is `page` (1.3 to 2.2) times the digit's size,
    somewhere off its centre, lit unevenly (up to `light`, 10%, darker on one side) and with
    sensor noise (a standard deviation of 3-8 levels). Harder pages on request: a soft-edged
    `shadow` over part of it (40-60% darker), `lines` ("ruled" or "squared": lines 1-3 pixels
    wide, 40-90 levels darker than the page, under the ink), and `jpeg` compression at that
    quality. Returns (H, W) uint8; the same seed and options give the same photo.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    side = int(round(CANVAS * rng.uniform(*size)))
    ink = np.asarray(Image.fromarray(np.asarray(digit, np.uint8).reshape(CANVAS, CANVAS))
                     .resize((side, side), Image.Resampling.BICUBIC), dtype=np.float64) / 255.0
    height, width = (int(side * rng.uniform(*page)) for _ in range(2))
    top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    coverage = np.zeros((height, width))
    coverage[top : top + side, left : left + side] = np.clip(ink, 0.0, 1.0)
    paper, dark = rng.uniform(180, 235), rng.uniform(20, 80)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    illumination = 1.0 - rng.uniform(0.0, light) * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    noise = rng.normal(0, rng.uniform(3, 8), (height, width))
    surface = np.full((height, width), paper)
    if lines is not None:  # drawn on the page, under the ink
        spacing = side * rng.uniform(0.45, 0.9)
        thickness, depth = max(1, int(round(side / 100 * rng.uniform(1, 3)))), rng.uniform(40, 90)
        offset = rng.uniform(0, spacing)
        ruled = ((yy + offset) % spacing) < thickness
        if lines == "squared":
            ruled |= ((xx + offset) % spacing) < thickness
        surface = np.where(ruled, paper - depth, surface)
    if shadow:  # a half-plane through a point on the page, its edge a few percent of the page wide
        theta, (cy, cx) = rng.uniform(0, 2 * np.pi), (rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width)
        distance = (np.cos(theta) * (xx - cx) + np.sin(theta) * (yy - cy)) / (0.03 * max(height, width))
        illumination = illumination * (1.0 - rng.uniform(0.4, 0.6) / (1.0 + np.exp(-distance)))
    pixels = (surface * (1 - coverage) + dark * coverage) * illumination + noise
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return pixels if jpeg is None else jpeg_round_trip(pixels, jpeg)


def jpeg_round_trip(gray: np.ndarray, quality: int) -> np.ndarray:
    """A grayscale uint8 image through Pillow's JPEG encoder at `quality` and back."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("L"))
