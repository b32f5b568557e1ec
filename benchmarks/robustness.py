"""Robustness: the shipped MNIST models on corrupted test digits and on real handwriting from elsewhere.

    ZOO_DATA_DIR=../shared/data python benchmarks/robustness.py [--before REV ...] [--limit N] [--models ...]

In the spirit of MNIST-C (Mu & Gilmer, 2019): MNIST's test split is corrupted one way at a time and
each model reads all of it. The models read the corrupted 28×28 arrays as they are, as they would
from an app that already holds MNIST-form pixels; the photographed ones ("uneven light", "photo",
"ruled paper") are whole pages read through `zoo.data.digits.to_mnist`, as `zoo predict` reads a
photo. Each model is read twice: with the weights this checkout ships ("after") and with those
of each git revision --before names (by default the weights before the handwriting recipe, and
those of its first version), side by side.

Real handwriting from outside MNIST: scikit-learn's copy of the UCI "Optical Recognition of
Handwritten Digits" test set (Alpaydin & Kaynak, 1998; 1,797 digits by 43 writers, 32×32 bitmaps
reduced to 8×8 blocks of 0-16), read through `to_mnist` as a user's 8×8 image file would be. It
is there when scikit-learn is installed (`pip install scikit-learn`; not a dependency of zoo).
More sets, when given their files (none ships with zoo: download them from the UCI Machine Learning
Repository and a copy of usps.h5): `--optdigits optdigits.tra` (UCI's training part, 3,823 digits
by 30 other writers), `--semeion semeion.data` (Semeion Handwritten Digit,
1,593 digits by ~80 writers, bilevel 16×16, each stretched to fill its box) and `--usps usps.h5`
(USPS test split, 2,007 digits from postal envelopes, 16×16 greys). Like the UCI digits, they are
read through `to_mnist` as a user's image files would be, and no model was trained on any of them.
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
# the last commit whose weights were trained with 2-pixel shifts alone, and the last with the first
# handwriting preset (before its squared boxes and bilevel scans)
BEFORE = ("93c9095", "4b2bea9")
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


def _read_as_files(images):
    """Each image brought into MNIST's form by to_mnist, as `zoo predict` reads a user's image file."""
    from zoo.data.digits import to_mnist

    return np.stack([to_mnist(image).pixels for image in images])


def _from_counts(counts):
    """UCI's 8×8 blocks of 0-16 set pixels as 0-255 greys."""
    return np.rint(counts * (255 / 16)).astype(np.uint8)


def uci_digits():
    """UCI optical digits (scikit-learn's copy): (8×8 images as 0-255 pixels, labels), or None."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    digits = load_digits()
    return _from_counts(digits.images), digits.target


def optdigits(path):
    """A UCI optical digits file as UCI gives it (optdigits.tra: 3,823 digits by 30 writers other than
    the test set's 43): per line 64 counts of 0-16, then the label."""
    rows = np.loadtxt(path, delimiter=",", dtype=np.int64)
    return _from_counts(rows[:, :64].reshape(-1, 8, 8)), rows[:, 64]


def semeion(path):
    """The Semeion Handwritten Digit set (Tactile Srl and Semeion, 1994; UCI, CC BY 4.0): 1,593 digits
    by about 80 people, each written twice (once carefully, once fast), scanned, stretched to fill a
    16×16 box and thresholded. A line: 256 pixels (0/1), then the label one-hot in 10 columns."""
    rows = np.loadtxt(path, usecols=range(266))
    return (rows[:, :256].reshape(-1, 16, 16) * 255).astype(np.uint8), rows[:, 256:].argmax(1)


def usps(path):
    """USPS test split (Hull, 1994): 2,007 digits from envelopes scanned by the US Postal Service,
    deslanted and size-normalized to 16×16 greys, as the usps.h5 copy (test/data in 0-1) holds them."""
    import h5py

    with h5py.File(path, "r") as f:
        return (np.rint(f["test/data"][:] * 255).reshape(-1, 16, 16).astype(np.uint8), f["test/target"][:])


def real_handwriting(args):
    """(row name, MNIST-form images, labels) of each real set at hand."""
    sets = []
    uci = uci_digits()
    if uci is not None:
        sets.append(("real: UCI optical digits, 8×8 (1,797, 43 writers)", *uci))
    if args.optdigits:
        images, labels = optdigits(args.optdigits)
        sets.append((f"real: UCI optical digits, {Path(args.optdigits).name} ({len(labels):,})", images, labels))
    if args.semeion:
        sets.append(("real: Semeion, 16×16 bilevel (1,593, ~80 writers)", *semeion(args.semeion)))
    if args.usps:
        sets.append(("real: USPS test, 16×16 (2,007, postal envelopes)", *usps(args.usps)))
    return [(name, _read_as_files(images), labels) for name, images, labels in sets]


def _models(names, revisions):
    """model name -> Keras models: those with the weights at each revision (None where a revision has
    none), then the shipped weights."""
    import zoo

    models = {}
    for name in names:
        earlier = []
        for revision in revisions:
            path = f"zoo/weights/{name}.mnist.weights.h5"
            blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{path}"], capture_output=True)
            model = None
            if blob.returncode == 0:
                with tempfile.NamedTemporaryFile(suffix=".weights.h5") as f:
                    f.write(blob.stdout)
                    f.flush()
                    model = zoo.create_model(name)
                    model.load_weights(f.name)
            else:
                print(f"  (no {path} at {revision}: left out)", file=sys.stderr)
            earlier.append(model)
        models[name] = (*earlier, zoo.create_model(name, weights="mnist"))
    return models


def _accuracy(model, x, y) -> float:
    predicted = model.predict(x.astype(np.float32)[..., None] / 255.0, batch_size=1000, verbose=0).argmax(1)
    return float((predicted == y).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", nargs="*", default=list(BEFORE),
                        help="git revisions of earlier weights, each a column (none: the shipped weights alone)")
    parser.add_argument("--limit", type=int, default=10_000, help="MNIST test digits per corruption")
    parser.add_argument("--photos", type=int, default=2_000,
                        help="test digits per photographed set (a page takes ~15 ms to make and read)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--optdigits", metavar="FILE", help="optdigits.tra (UCI's training part: other writers)")
    parser.add_argument("--semeion", metavar="FILE", help="semeion.data (UCI's Semeion Handwritten Digit)")
    parser.add_argument("--usps", metavar="FILE", help="usps.h5 (USPS digits: test/data, test/target)")
    args = parser.parse_args()
    print(describe())
    from zoo.data.datasets import load_dataset

    mnist = load_dataset("mnist", kind="image")
    x, y = mnist.x_test[: args.limit, :, :, 0], mnist.y_test[: args.limit]
    models = _models(args.models, args.before)
    sets = []
    for name, corrupt in CORRUPTIONS.items():
        start = time.perf_counter()
        made = corrupt(x[: args.photos] if name in PHOTOGRAPHED else x)
        refused = 0
        if isinstance(made, tuple):
            made, refused = made
        sets.append((name, np.clip(np.rint(made), 0, 255).astype(np.uint8), y[: len(made)], refused,
                     time.perf_counter() - start))
    sets += [(name, images, labels, 0, 0.0) for name, images, labels in real_handwriting(args)]

    columns = [*(f"at {revision}" for revision in args.before), "now"]
    header = f"| corruption | {' | '.join(f'{m} {c}' for m in args.models for c in columns)} | goal |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    misses = 0
    for name, images, labels, refused, _ in sets:
        goal = GOAL_8PX if "8 px" in name else GOAL
        cells = []
        for model in args.models:
            *earlier, now = models[model]
            a = _accuracy(now, images, labels)
            misses += name != "clean" and a < goal
            cells += ["-" if m is None else f"{_accuracy(m, images, labels):.2%}" for m in earlier]
            cells.append(f"**{a:.2%}**" if a >= goal else f"{a:.2%}")
        note = f" ({refused} refused)" if refused else ""
        print(f"| {name}{note} | {' | '.join(cells)} | {'-' if name == 'clean' else f'>= {goal:.0%}'} |")
    print(f"\n{len(x):,} MNIST test digits per corruption ({min(args.photos, len(x)):,} photographed); {misses} model-corruption pairs under their goal "
          "(now). Bold: goal met.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
