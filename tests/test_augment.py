"""The handwriting preset: each augmentation does what its name says, measured on known images with
oracles outside the code (pixel counts worked by hand, SciPy's grey morphology and rotation, moments)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.data import augment


def _bar(height=14, width=3, size=28):
    image = np.zeros((size, size), np.float32)
    top, left = (size - height) // 2, (size - width) // 2
    image[top : top + height, left : left + width] = 1.0
    return image


def _batch(*images):
    return np.stack(images)[..., None].astype(np.float32)


def _principal_angle(image) -> float:
    """The ink's principal axis, in degrees counter-clockwise from the x axis as the image is shown
    (rows grow downwards), from its second moments."""
    ys, xs = np.nonzero(image > 0.5)
    weights = image[ys, xs]
    x, y = xs - np.average(xs, weights=weights), -(ys - np.average(ys, weights=weights))
    cov = np.cov(np.stack([x, y]), aweights=weights)
    values, vectors = np.linalg.eigh(cov)
    vx, vy = vectors[:, np.argmax(values)]
    return float(np.degrees(np.arctan2(vy, vx))) % 180


@pytest.mark.parametrize("pixels, count", [(-2, 12 * 1), (-1, 13 * 2), (0, 14 * 3), (1, 15 * 4), (2, 16 * 5)])
def test_stroke_width_by_the_count_of_ink_pixels(pixels, count):
    # a 14×3 bar: a (|p|+1)-square dilation adds |p| rows and columns, an erosion takes them (worked by hand)
    from scipy import ndimage

    out = np.asarray(augment.stroke(_batch(_bar()), pixels))[0, ..., 0]
    assert int((out > 0.5).sum()) == count
    oracle = (ndimage.grey_dilation if pixels > 0 else ndimage.grey_erosion)(_bar(), size=(abs(pixels) + 1,) * 2)
    assert int((oracle > 0.5).sum()) == count


@pytest.mark.parametrize("degrees", [15.0, -15.0, 30.0])
def test_rotation_turns_the_principal_axis(degrees):
    from scipy import ndimage

    bar = _bar(height=3, width=20)  # lying along x: principal axis 0 degrees
    assert _principal_angle(bar) == pytest.approx(0, abs=0.5)
    out = augment.affine(_batch(bar), [degrees], [0.0], [1.0], [1.0], [0.0], [0.0]).numpy()[0, ..., 0]
    assert _principal_angle(out) == pytest.approx(degrees % 180, abs=1.0)
    # SciPy turns the same way (its angle is counter-clockwise as shown)
    assert _principal_angle(ndimage.rotate(bar, degrees, reshape=False, order=1)) == pytest.approx(degrees % 180, abs=1.0)


def test_shear_aspect_and_shift_move_the_ink_as_named():
    upright = _bar(height=20, width=2)
    sheared = augment.affine(_batch(upright), [0.0], [0.3], [1.0], [1.0], [0.0], [0.0]).numpy()[0, ..., 0]
    # x offset 0.3 per unit of y: an upright bar leans by atan(0.3) = 16.7 degrees from the vertical
    assert abs(_principal_angle(sheared) - 90) == pytest.approx(np.degrees(np.arctan(0.3)), abs=1.5)
    square = np.zeros((28, 28), np.float32)
    square[9:19, 9:19] = 1.0
    wide = augment.affine(_batch(square), [0.0], [0.0], [1.5], [0.75], [0.0], [0.0]).numpy()[0, ..., 0] > 0.5
    rows, cols = np.flatnonzero(wide.any(1)), np.flatnonzero(wide.any(0))
    assert (cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1) == pytest.approx((15, 7.5), abs=1.0)
    from scipy import ndimage

    moved = augment.affine(_batch(square), [0.0], [0.0], [1.0], [1.0], [3.0], [-2.0]).numpy()[0, ..., 0]
    dy, dx = np.subtract(ndimage.center_of_mass(moved), ndimage.center_of_mass(square))
    assert (dx, dy) == pytest.approx((3.0, -2.0), abs=0.01)


def test_blur_spreads_a_dot_by_its_sigma_and_keeps_its_ink():
    dot = np.zeros((28, 28), np.float32)
    dot[14, 14] = 1.0
    out = augment.blur(_batch(dot), 1.0).numpy()[0, ..., 0]
    assert out.sum() == pytest.approx(1.0, abs=1e-5)
    ys = np.arange(28)
    variance = float((out.sum(1) * (ys - 14) ** 2).sum())
    assert variance == pytest.approx(1.0, abs=0.02)  # a 7-tap Gaussian of sigma 1 (truncated at 3 sigma)


def test_low_resolution_keeps_no_detail_finer_than_its_box():
    # alternate columns (the finest detail 28 pixels can hold) vanish at an 8-pixel box; a wide block stays
    stripes = np.zeros((28, 28), np.float32)
    stripes[4:24, 4:24:2] = 1.0
    out = augment.low_resolution(_batch(stripes), 8).numpy()[0, ..., 0]
    assert np.ptp(out[10:18, 8:20], axis=1).max() < 0.25  # the stripes averaged into grey
    assert 0.3 < out[10:18, 8:20].mean() < 0.7
    block = np.zeros((28, 28), np.float32)
    block[6:22, 6:22] = 1.0
    assert augment.low_resolution(_batch(block), 8).numpy()[0, 14, 14, 0] == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("height, width, box", [(20, 6, (20, 15)), (6, 20, (15, 20)), (20, 10, (20, 20)),
                                                (12, 12, (12, 12))])
def test_square_box_stretches_the_shorter_side_up_to_its_limit(height, width, box):
    # worked by hand: the shorter side grows to the longer, at most 2.5 times; the box ends up centred
    bar = _bar(height=height, width=width)
    bar = np.roll(bar, (3, -4), axis=(0, 1))  # off centre: the box's own centre is the one kept
    out = augment.square_box(_batch(bar), 2.5).numpy()[0, ..., 0] > 0.5
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == pytest.approx(box, abs=1)
    assert ((rows[0] + rows[-1]) / 2, (cols[0] + cols[-1]) / 2) == pytest.approx((13.5, 13.5), abs=0.6)
    assert not augment.square_box(_batch(np.zeros((28, 28), np.float32)), 2.5).numpy().any()  # blank stays blank


def test_binarize_splits_at_half_the_images_own_level():
    image = np.array([[0.0, 0.1, 0.29], [0.3, 0.45, 0.6]], np.float32)  # brightest 0.6: the split at 0.3
    out = augment.binarize(image[None, ..., None]).numpy()[0, ..., 0]
    np.testing.assert_allclose(out, [[0.0, 0.0, 0.0], [0.6, 0.6, 0.6]])


def test_the_preset_keeps_each_image_with_its_label():
    # 64 images, each a centred block of its own brightness: after the preset, the brightest pixel of
    # each still ranks the images in the same order (labels are not touched, so images must not move)
    import tensorflow as tf

    levels = np.linspace(0.2, 1.0, 64, dtype=np.float32)
    images = np.zeros((64, 28, 28, 1), np.float32)
    images[:, 8:20, 8:20, 0] = levels[:, None, None]
    quiet = augment.Preset(name="t", share=0.75, rest_shift=1, rotation=10, shear=0.1, scale=(0.9, 1.1), aspect=1.1, shift=2,
                           stroke=(0.2, 0.2, 0.2, 0.2, 0.2), low_resolution=0.0, box_sizes=(12, 16), blur=0.0,
                           blur_sigma=(0.5, 1.0), square=0.3, square_limit=2.0, binary=0.2)
    out = augment.apply(tf.constant(images), quiet, tf.constant([3, 4])).numpy()
    assert np.array_equal(np.argsort(out.max(axis=(1, 2, 3))), np.arange(64))
    again = augment.apply(tf.constant(images), quiet, tf.constant([3, 4])).numpy()
    assert np.array_equal(out, again)  # stateless: the same seed, the same batch


def test_augment_option_takes_pixels_or_a_preset_name():
    from zoo.cli import main
    from zoo.errors import ConfigError

    assert augment.parse("2") == 2 and augment.parse(3) == 3 and augment.parse("handwriting") == "handwriting"
    with pytest.raises(ConfigError, match=r"^--augment 'wobbly': not a number of pixels nor a preset; "
                                          r"the presets: handwriting$"):
        augment.parse("wobbly")
    result = CliRunner().invoke(main, ["train", "lenet", "--augment", "wobbly"])
    assert result.exit_code == 2
    assert ("Invalid value for '--augment': 'wobbly' is not a number of pixels nor a preset (handwriting)"
            in result.stderr)
    result = CliRunner().invoke(main, ["train", "lenet", "--augment", "-1"])
    assert result.exit_code == 2 and "-1 is not in the range x>=0" in result.stderr


def test_the_card_records_the_preset_and_a_shift_still_works(tmp_path):
    from zoo.cli import main
    from zoo.targets import Run
    from zoo.training.fit import train

    result = CliRunner().invoke(main, ["train", "lenet", "--augment", "handwriting", "--epochs", "1", "--limit", "1000",
                                       "--no-calibrate", "--out", str(tmp_path), "--name", "hw"])
    assert result.exit_code == 0, result.output
    hyper = Run.open(tmp_path / "hw").card["hyperparameters"]
    assert hyper["augment_preset"] == "handwriting" and hyper["augment_shift"] == 0
    assert hyper["augment"] == {"name": "handwriting", "rotation": 18.0, "shear": 0.3, "scale": [0.8, 1.1],
                                "aspect": 1.5, "shift": 3.0, "stroke": [0.3, 0.2, 0.1, 0.2, 0.2], "low_resolution": 0.3,
                                "box_sizes": [7, 16], "blur": 0.2, "blur_sigma": [0.5, 1.5], "share": 0.6,
                                "rest_shift": 2, "jpeg": 0.15, "jpeg_quality": [30, 80], "square": 0.5,
                                "square_limit": 3.0, "binary": 0.1}
    shifted = train("lenet", augment=2, epochs=1, limit=1_000, out=str(tmp_path), verbose=0, calibrate=False)
    assert (shifted.card["hyperparameters"]["augment_preset"], shifted.card["hyperparameters"]["augment_shift"]) == (None, 2)
    assert "augment" not in shifted.card["hyperparameters"]


@pytest.mark.parametrize("name", ["lenet5.mnist", "mnist_cnn.mnist", "mnist_cnn_dropout.mnist"])
def test_shipped_digit_weights_were_trained_with_the_preset(name):
    from zoo.models import pretrained

    card = pretrained.find(name).card
    assert card["hyperparameters"]["augment_preset"] == "handwriting"
    # every number of the preset as it stands: weights trained before a change to it fail here
    assert card["hyperparameters"]["augment"] == augment.PRESETS["handwriting"].to_dict()
    assert "--augment handwriting" in card["weights"]["recipe"]
    assert card.test_accuracy >= 0.991 and card.test_ece <= 0.015


def test_jpeg_is_what_pillow_makes_of_the_same_digit():
    # the oracle: Pillow's JPEG encoder and decoder at the same quality (both libjpeg)
    import io

    from PIL import Image

    from zoo.data.datasets import load_dataset

    digits = load_dataset("mnist", kind="image").x_test[:8, :, :, 0]
    for digit in digits:
        buffer = io.BytesIO()
        Image.fromarray(digit).save(buffer, format="JPEG", quality=40)
        oracle = np.asarray(Image.open(buffer), dtype=np.float64)
        out = np.asarray(augment.jpeg(_batch(digit / 255.0), 40))[0, ..., 0] * 255
        assert np.abs(out - oracle).mean() < 1.0  # rounding: they differ by a level here and there
        assert np.abs(out - digit).mean() > 1.0  # it did compress: blocks and ringing
    assert np.asarray(augment.jpeg(np.zeros((0, 28, 28, 1), np.float32), 40)).shape == (0, 28, 28, 1)
