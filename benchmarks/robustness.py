"""Robustness: the shipped MNIST models on corrupted test digits and on real handwriting from elsewhere.

    ZOO_DATA_DIR=../shared/data python benchmarks/robustness.py [--before REV] [--limit N] [--models ...]

In the spirit of MNIST-C (Mu & Gilmer, 2019): MNIST's test split is corrupted one way at a time and
each model reads all of it. The models read the corrupted 28×28 arrays as they are, as they would
from an app that already holds MNIST-form pixels; the photographed ones ("uneven light", "photo",
"ruled paper") are whole pages read through `zoo.data.digits.to_mnist`, as `zoo predict` reads a
photo. Each model is read twice: with the weights this checkout ships ("after") and with those
of git revision --before ("before": the weights before the handwriting recipe), side by side.

Real handwriting from outside MNIST: scikit-learn's copy of the UCI "Optical Recognition of
Handwritten Digits" test set (Alpaydin & Kaynak, 1998; 1,797 digits by 43 writers, 32×32 bitmaps
reduced to 8×8 blocks of 0-16), read through `to_mnist` as a user's 8×8 image file would be. It
is there when scikit-learn is installed (`pip install scikit-learn`; not a dependency of zoo).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import describe

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "93c9095"  # the last commit whose weights were trained with 2-pixel shifts alone
MODELS = ("lenet5", "mnist_cnn", "mnist_cnn_dropout")
GOAL, GOAL_8PX = 0.97, 0.90


def _dilate(x, size):
    from scipy import ndimage

    return np.stack([ndimage.grey_dilation(image, size=(size, size)) for image in x])


def _erode(x, size):
    """Grey erosion, the ink stretched back to the image's brightest level: a thinner pen draws full
    ink, and to_mnist stretches a photo's ink to 255 (an eroded MNIST stroke keeps only its dim edge)."""
    from scipy import ndimage

    out = []
    for image in x:
        thin = ndimage.grey_erosion(image, size=(size, size)).astype(np.float64)
        out.append(thin * (image.max() / thin.max()) if thin.max() > 0 else thin)
    return np.stack(out)


def _blur(x, sigma):
    from scipy import ndimage

    return np.stack([ndimage.gaussian_filter(image.astype(np.float64), sigma) for image in x])


def _low_resolution(x, box):
    """The digit's 20-pixel box reduced to `box` pixels (the field with it, area-averaged) and enlarged
    back (bilinear), as a digit scanned or photographed that small would be."""
    from PIL import Image

    small = round(28 * box / 20)
    return np.stack([np.asarray(Image.fromarray(image).resize((small, small), Image.Resampling.BOX)
                                .resize((28, 28), Image.Resampling.BILINEAR)) for image in x])


def _rotate(x, degrees):
    from scipy import ndimage

    return np.stack([ndimage.rotate(image.astype(np.float64), degrees, reshape=False, order=1) for image in x])


def _shift(x, pixels, seed=0):
    """Each digit moved `pixels` along each axis, in one of the four diagonal directions at random."""
    from scipy import ndimage

    signs = np.random.default_rng(seed).choice([-1, 1], size=(len(x), 2))
    return np.stack([ndimage.shift(image, tuple(pixels * sign), order=0) for image, sign in zip(x, signs)])


def _jpeg(x, quality):
    from zoo.data.digits import jpeg_round_trip

    return np.stack([jpeg_round_trip(image, quality) for image in x])


def _photos(x, **options):
    """Each digit photographed on a page (zoo.data.digits.photograph) and read back through to_mnist."""
    from zoo.data.digits import NoInk, photograph, to_mnist

    out, refused = [], 0
    for i, image in enumerate(x):
        try:
            out.append(to_mnist(photograph(image, seed=i, **options)).pixels)
        except NoInk:
            out.append(np.zeros((28, 28), np.uint8))
            refused += 1
    return np.stack(out), refused


CORRUPTIONS = {
    "clean": lambda x: x,
    "stroke +1 px": lambda x: _dilate(x, 2),
    "stroke +2 px": lambda x: _dilate(x, 3),
    "stroke -1 px (ink stretched back)": lambda x: _erode(x, 2),
    "stroke -2 px (ink stretched back)": lambda x: _erode(x, 3),
    "gaussian blur (sigma 1)": lambda x: _blur(x, 1.0),
    "low resolution: box 16 px": lambda x: _low_resolution(x, 16),
    "low resolution: box 12 px": lambda x: _low_resolution(x, 12),
    "low resolution: box 8 px": lambda x: _low_resolution(x, 8),
    "rotation +15°": lambda x: _rotate(x, 15),
    "rotation -15°": lambda x: _rotate(x, -15),
    "shift 3 px": lambda x: _shift(x, 3),
    "jpeg quality 50": lambda x: _jpeg(x, 50),
}
PHOTOGRAPHED = {
    "photo (as the tests make them)": lambda x: _photos(x),
    "uneven light (up to 60% darker) and a shadow": lambda x: _photos(x, light=0.6, shadow=True),
    "ruled paper, jpeg 60": lambda x: _photos(x, lines="ruled", jpeg=60),
    "squared paper": lambda x: _photos(x, lines="squared"),
    "small digit on a large page": lambda x: _photos(x, size=(1.5, 2.5), page=(4, 6), light=0.5),
}
CORRUPTIONS.update(PHOTOGRAPHED)


def real_handwriting():
    """UCI optical digits (scikit-learn's copy): (8×8 images as 0-255 MNIST-form pixels, labels), or None."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    from zoo.data.digits import to_mnist

    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    return np.stack([to_mnist(image).pixels for image in images]), digits.target


def _models(names, revision: str | None):
    """model name -> (before, after) Keras models: the shipped weights, and those at `revision`."""
    import zoo

    models = {}
    for name in names:
        after = zoo.create_model(name, weights="mnist")
        before = None
        if revision:
            path = f"zoo/weights/{name}.mnist.weights.h5"
            blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{path}"], capture_output=True)
            if blob.returncode == 0:
                with tempfile.NamedTemporaryFile(suffix=".weights.h5") as f:
                    f.write(blob.stdout)
                    f.flush()
                    before = zoo.create_model(name)
                    before.load_weights(f.name)
            else:
                print(f"  (no {path} at {revision}: 'before' left out)", file=sys.stderr)
        models[name] = (before, after)
    return models


def _accuracy(model, x, y) -> float:
    predicted = model.predict(x.astype(np.float32)[..., None] / 255.0, batch_size=1000, verbose=0).argmax(1)
    return float((predicted == y).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="git revision of the earlier weights ('' to skip)")
    parser.add_argument("--limit", type=int, default=10_000, help="MNIST test digits per corruption")
    parser.add_argument("--photos", type=int, default=2_000,
                        help="test digits per photographed set (a page takes ~15 ms to make and read)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    print(describe())
    from zoo.data.datasets import load_dataset

    mnist = load_dataset("mnist", kind="image")
    x, y = mnist.x_test[: args.limit, :, :, 0], mnist.y_test[: args.limit]
    models = _models(args.models, args.before or None)
    sets = []
    for name, corrupt in CORRUPTIONS.items():
        start = time.perf_counter()
        made = corrupt(x[: args.photos] if name in PHOTOGRAPHED else x)
        refused = 0
        if isinstance(made, tuple):
            made, refused = made
        sets.append((name, np.clip(np.rint(made), 0, 255).astype(np.uint8), y[: len(made)], refused,
                     time.perf_counter() - start))
    real = real_handwriting()
    if real is not None:
        sets.append(("real: UCI optical digits, 8×8 (1,797, 43 writers)", real[0], real[1], 0, 0.0))

    header = f"| corruption | {' | '.join(f'{m} before | {m} after' for m in args.models)} | goal |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    misses = 0
    for name, images, labels, refused, _ in sets:
        goal = GOAL_8PX if "8 px" in name else GOAL
        cells = []
        for model in args.models:
            before, after = models[model]
            b = _accuracy(before, images, labels) if before is not None else None
            a = _accuracy(after, images, labels)
            misses += name != "clean" and a < goal
            cells += ["-" if b is None else f"{b:.2%}", f"**{a:.2%}**" if a >= goal else f"{a:.2%}"]
        note = f" ({refused} refused)" if refused else ""
        print(f"| {name}{note} | {' | '.join(cells)} | {'-' if name == 'clean' else f'>= {goal:.0%}'} |")
    print(f"\n{len(x):,} MNIST test digits per corruption ({min(args.photos, len(x)):,} photographed); {misses} model-corruption pairs under their goal "
          "(after). Bold: goal met.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
