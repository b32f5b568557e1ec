"""Named augmentation presets: what real handwriting does and MNIST's digits do not.

    zoo train lenet --augment handwriting     # the preset; --augment 2 is still a 2-pixel shift

MNIST's digits were written by 500 people, scanned at one resolution and centred one way, so a model
trained on them alone reads 91-96% of digits written elsewhere (benchmarks/robustness.py). The preset
draws, per image and on the fly in the tf.data pipeline (nothing stored, every epoch new), what those
digits do differently, in the spirit of MNIST-C's corruptions (Mu & Gilmer, 2019), which it is
measured against:

- a small rotation, shear, change of size and aspect, and off-centring: one affine map per image,
  sampled bilinearly (`tf.raw_ops.ImageProjectiveTransformV3`);
- thinner and thicker strokes: grey erosion or dilation by a 2×2 or 3×3 square (1 or 2 pixels);
- blur, low resolution and compression: a Gaussian blur, the digit's 20×20 box reduced to 7-16
  pixels and enlarged back, or a JPEG encoder at quality 30-80 and back;
- a digit stretched to fill a square box, as datasets that normalize each digit to its frame hold
  them (UCI's optical digits, Semeion: a narrow 1 made wide), and a bilevel scan's hard edges.

The last two were added after reading real sets from outside MNIST (benchmarks/robustness.py):
LeNet-5 on 15 epochs read UCI's 8×8 digits 95.3% -> 96.2% and Semeion's 87.4% -> 88.8% with them,
MNIST's test split 99.27% -> 99.26%; a smooth elastic distortion (Simard et al. 2003, 2.5 px on half
the drawn images) was tried beside them and read UCI at 95.1% and Semeion at 85.9%: left out.

Images are light ink on black (MNIST's form, scaled to 0-1): dilation makes ink wider, and what the
affine map brings in from outside is black. Every draw is stateless, from one seed pair per batch,
so a run's --seed gives the same batches again.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from zoo.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """What one named preset draws; the card records these numbers beside the name."""

    name: str
    rotation: float  # degrees, each way
    shear: float  # the x offset per unit of y, each way (0.3 is about 17 degrees)
    scale: tuple[float, float]  # the digit's size, relative
    aspect: float  # width over height varies by up to this factor each way
    shift: float  # pixels of off-centring, each way, on each axis
    stroke: tuple[float, ...]  # probability of: erode 2 px, erode 1 px, as is, dilate 1 px, dilate 2 px
    low_resolution: float  # share of images whose 20-pixel box is reduced to `box_sizes` and enlarged back
    box_sizes: tuple[int, int]  # the smallest and largest reduced box, in pixels
    blur: float  # share of images blurred
    blur_sigma: tuple[float, float]  # the Gaussian's standard deviation, in pixels
    share: float = 1.0  # of each batch, drawn from the preset; the rest is shifted as --augment rest_shift
    rest_shift: int = 0
    jpeg: float = 0.0  # share of images through a JPEG encoder and back
    jpeg_quality: tuple[int, int] = (30, 80)  # its quality, drawn per batch
    square: float = 0.0  # share of images whose ink box is stretched toward a square, as datasets that
    # normalize each digit to fill its frame do (UCI's optical digits, Semeion): a narrow 1 made wide
    square_limit: float = 1.0  # at most this factor on either axis (a bar-shaped 1 stays a bar)
    binary: float = 0.0  # share of images thresholded at half the ink's level: a bilevel scan's hard edges

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


PRESETS = {
    "handwriting": Preset(
        name="handwriting", rotation=18.0, shear=0.3, scale=(0.8, 1.1), aspect=1.5, shift=3.0,
        stroke=(0.3, 0.2, 0.1, 0.2, 0.2), low_resolution=0.3, box_sizes=(7, 16), blur=0.2,
        blur_sigma=(0.5, 1.5), share=0.6, rest_shift=2, jpeg=0.15, jpeg_quality=(30, 80), square=0.5,
        square_limit=3.0, binary=0.1),
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"--augment {name!r}: not a number of pixels nor a preset; the presets: "
                          + ", ".join(PRESETS)) from None


def parse(value) -> int | str | None:
    """--augment as given: None (the recipe), a whole number of pixels (a shift), or a preset's name."""
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    return preset(text).name


def affine(images, angle, shear, scale_x, scale_y, shift_x, shift_y):
    """Each image (B, H, W, C) rotated by `angle` degrees (counter-clockwise as shown), sheared by
    `shear` (x offset per unit of y), scaled and shifted (pixels; +y is down), about the field's
    centre, sampled bilinearly, black coming in. Each argument is one number per image."""
    import math

    import tensorflow as tf

    size = tf.shape(images)[1:3]
    angle = -tf.cast(angle, tf.float32) * (math.pi / 180)  # rows grow downwards: a visual turn is negative
    shear, sx, sy, tx, ty = (tf.cast(v, tf.float32) for v in (shear, scale_x, scale_y, shift_x, shift_y))
    cos, sin = tf.cos(angle), tf.sin(angle)
    # forward map A = rotation · shear · scale; the transform wants A⁻¹ applied to (output - centre - t)
    a, b = cos * sx, (cos * shear - sin) * sy
    c, d = sin * sx, (sin * shear + cos) * sy
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    cx, cy = (tf.cast(size[1], tf.float32) - 1) / 2, (tf.cast(size[0], tf.float32) - 1) / 2
    ox, oy = -cx - tx, -cy - ty
    zeros = tf.zeros_like(ia)
    transforms = tf.stack([ia, ib, ia * ox + ib * oy + cx, ic, id_, ic * ox + id_ * oy + cy, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(images=images, transforms=transforms, output_shape=size,
                                                 fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")


def random_shift(images, max_shift: int, seed: int | None):
    """Move each image by its own random whole-pixel offset (up to max_shift each way), zero fill.

    Two gathers on a padded batch: far cheaper on a CPU than an interpolating
    `RandomTranslation`, and whole pixels are what digit augmentation needs.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
    offsets = tf.random.stateless_uniform([batch, 2], seed=seed, minval=0, maxval=2 * max_shift + 1,
                                          dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)[None, :]
    cols = offsets[:, 1:] + tf.range(width)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def _random_affine(images, p: Preset, seed):
    import math

    import tensorflow as tf

    draw = tf.random.stateless_uniform([tf.shape(images)[0], 6], seed=seed, minval=-1.0, maxval=1.0)
    low, high = p.scale
    zoom = low + (high - low) * (draw[:, 2] + 1) / 2
    aspect = tf.exp(draw[:, 3] * math.log(p.aspect))
    return affine(images, draw[:, 0] * p.rotation, draw[:, 1] * p.shear, zoom * tf.sqrt(aspect),
                  zoom / tf.sqrt(aspect), draw[:, 4] * p.shift, draw[:, 5] * p.shift)


def _ink_span(ink, axis: int):
    """First and last index along `axis` (1 rows, 2 columns) where a (B, H, W) boolean mask has ink."""
    import tensorflow as tf

    lines = tf.cast(tf.reduce_any(ink, axis=3 - axis), tf.int32)  # (B, H) for rows, (B, W) for columns
    n = tf.shape(lines)[1]
    first = tf.argmax(lines, axis=1, output_type=tf.int32)
    last = n - 1 - tf.argmax(tf.reverse(lines, [1]), axis=1, output_type=tf.int32)
    return tf.cast(first, tf.float32), tf.cast(last, tf.float32)


def square_box(x, limit: float):
    """Each digit's ink box stretched toward a square, by at most `limit` on its shorter side, about the
    box's centre, which moves to the field's: how a dataset that stretches every digit to fill its frame
    shows a narrow 1 or a flat 4. A blank image stays blank."""
    import tensorflow as tf

    ink = x[..., 0] > 0.25 * tf.reduce_max(x, axis=[1, 2, 3])[:, None, None]
    top, bottom = _ink_span(ink, 1)
    left, right = _ink_span(ink, 2)
    height, width = bottom - top + 1, right - left + 1
    sx = tf.clip_by_value(height / width, 1.0, limit)
    sy = tf.clip_by_value(width / height, 1.0, limit)
    size = tf.cast(tf.shape(x)[1:3], tf.float32)
    # affine scales about the field's centre c: out = S(in - c) + c + t, so t = S(c - b) scales about b
    tx = sx * ((size[1] - 1) / 2 - (left + right) / 2)
    ty = sy * ((size[0] - 1) / 2 - (top + bottom) / 2)
    zeros = tf.zeros_like(sx)
    return affine(x, zeros, zeros, sx, sy, tx, ty)


def binarize(x):
    """Ink at or above half of each image's brightest level set to that level, the rest black: a bilevel
    scan's hard edges (the level is kept; `to_mnist` stretches every file's ink to full anyway)."""
    import tensorflow as tf

    peak = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    return tf.where((x >= 0.5 * peak) & (peak > 0), peak, tf.zeros_like(x))


def _shifted(x, dy: int, dx: int):
    """x moved by (dy, dx) whole pixels, black coming in: out[i, j] = x[i + dy, j + dx]."""
    import tensorflow as tf

    h, w = tf.shape(x)[1], tf.shape(x)[2]
    padded = tf.pad(x, [[0, 0], [max(-dy, 0), max(dy, 0)], [max(-dx, 0), max(dx, 0)], [0, 0]])
    top, left = max(dy, 0), max(dx, 0)
    return padded[:, top : top + h, left : left + w]


def _grey(x, size: int, dilate: bool):
    """Grey dilation (or erosion) by a size×size square, as maxima (minima) of shifted copies: far
    cheaper here than a stride-1 max_pool2d on one channel (0.2 against 3.6 ms a batch of 128)."""
    import tensorflow as tf

    pick = tf.maximum if dilate else tf.minimum
    offsets = range(-(size // 2), size - size // 2)  # 2: (-1, 0); 3: (-1, 0, 1)
    rows = functools.reduce(pick, [_shifted(x, 0, d) for d in offsets])
    return functools.reduce(pick, [_shifted(rows, d, 0) for d in offsets])


def stroke(x, pixels: int):
    """Strokes `pixels` wider (dilation) or narrower (erosion, negative): a square of |pixels| + 1.
    An eroded stroke keeps only its dimmer edge, where a thinner pen draws full ink: it is stretched
    back to the image's brightest level, as `to_mnist` stretches every photo's ink."""
    import tensorflow as tf

    if pixels >= 0:
        return x if pixels == 0 else _grey(x, pixels + 1, True)
    thin = _grey(x, 1 - pixels, False)
    peak = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    return thin * tf.math.divide_no_nan(peak, tf.reduce_max(thin, axis=[1, 2, 3], keepdims=True))


def low_resolution(x, box):
    """The 20-pixel box reduced to `box` pixels (area-averaged, the field with it) and enlarged back
    (bilinear): a digit scanned or photographed that small."""
    import tensorflow as tf

    size = tf.shape(x)[1:3]
    small = tf.maximum(tf.cast(tf.round(tf.cast(size, tf.float32) * tf.cast(box, tf.float32) / 20.0), tf.int32), 1)
    return tf.image.resize(tf.image.resize(x, small, method="area"), size, method="bilinear")


def blur(x, sigma):
    """A 7-tap Gaussian, one axis then the other, as weighted sums of shifted copies."""
    import tensorflow as tf

    taps = tf.range(-3, 4, dtype=tf.float32)
    weights = tf.exp(-(taps**2) / (2 * sigma**2))
    weights /= tf.reduce_sum(weights)
    rows = tf.add_n([weights[d + 3] * _shifted(x, 0, d) for d in range(-3, 4)])
    return tf.add_n([weights[d + 3] * _shifted(rows, d, 0) for d in range(-3, 4)])


def jpeg(x, quality):
    """Each image through a JPEG encoder at `quality` (1-100) and back: the blocks and ringing of a
    compressed photo or scan (libjpeg, as Pillow's: 0.17 of a level apart on an MNIST digit)."""
    import tensorflow as tf

    def each():
        return tf.map_fn(lambda image: tf.image.adjust_jpeg_quality(image, quality), x, fn_output_signature=tf.float32)

    # an empty share (the last, short batch) is passed as it is: map_fn cannot stack nothing of unknown shape
    return tf.cond(tf.shape(x)[0] > 0, each, lambda: tf.identity(x))


def _chunks(batch, shares):
    """Where each share of a batch begins and ends. Batches are shuffled every epoch, so a fixed run of
    positions is a random set of examples: each variant is computed on its own images only."""
    import tensorflow as tf

    edges = tf.cast(tf.round(tf.cast(batch, tf.float32) * tf.cumsum([0.0, *shares]) / sum(shares)), tf.int32)
    return [(edges[i], edges[i + 1]) for i in range(len(shares))]


def _by_shares(x, turn, shares, ops):
    """x rolled by `turn` along the batch, each run of positions `shares` give through its op (None: as
    it is), then rolled back: which images an op gets changes per batch, and they stay in the labels' order."""
    import tensorflow as tf

    x = tf.roll(x, turn, axis=0)
    x = tf.concat([op(x[a:b]) if op else x[a:b] for op, (a, b) in zip(ops, _chunks(tf.shape(x)[0], shares))], axis=0)
    return tf.roll(x, -turn, axis=0)


def apply(images, p: Preset, seed):
    """A batch (B, H, W, 1) of 0-1 images, light ink on black, each drawn anew from the preset."""
    import tensorflow as tf

    seeds = tf.random.stateless_uniform([4, 2], seed=seed, minval=-(2**31), maxval=2**31 - 1, dtype=tf.int32)
    drawn = tf.cast(tf.round(tf.cast(tf.shape(images)[0], tf.float32) * p.share), tf.int32)
    rest = random_shift(images[drawn:], p.rest_shift, seeds[2]) if p.rest_shift else images[drawn:]
    x = images[:drawn]
    if p.square:  # before the affine map, so that a squared digit is still turned, sheared and moved;
        # at the front of the batch, and the stroke shares below start there: rolled first, as below
        turn = tf.cast(tf.random.stateless_uniform([], seed=seeds[3]) * tf.cast(drawn, tf.float32), tf.int32)
        x = _by_shares(x, turn, (p.square, 1 - p.square), (lambda part: square_box(part, p.square_limit), None))
    x = _random_affine(x, p, seeds[0])
    x = tf.concat([stroke(x[a:b], pixels) for pixels, (a, b) in zip((-2, -1, 0, 1, 2), _chunks(drawn, p.stroke))],
                  axis=0)

    # rolled by a random count (and back after), so that which stroke a blurred or reduced image has changes per batch
    draws = tf.random.stateless_uniform([4], seed=seeds[1])
    roll = tf.cast(draws[0] * tf.cast(drawn, tf.float32), tf.int32)
    low, high = p.box_sizes
    box = low + draws[1] * (high - low)
    lo, hi = p.blur_sigma
    worst, best = p.jpeg_quality
    quality = tf.cast(tf.round(worst + draws[3] * (best - worst)), tf.int32)
    x = _by_shares(x, roll, (p.low_resolution, p.blur, p.jpeg, p.binary, 1 - p.low_resolution - p.blur - p.jpeg - p.binary),
                   (lambda part: low_resolution(part, box), lambda part: blur(part, lo + draws[2] * (hi - lo)),
                    lambda part: jpeg(part, quality), binarize, None))
    return tf.concat([tf.clip_by_value(x, 0.0, 1.0), rest], axis=0)
