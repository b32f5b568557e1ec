"""Trust: calibration of the default runs, and digits photographed on paper.

    ZOO_DATA_DIR=../shared/data python benchmarks/trust.py [--home DIR] [--photos N] [--models ...]

Trains each model with its default recipe and seed 0 into --home (a run already there
is reused), then prints, per model: test accuracy, the test ECE before and after the
temperature, T, and how many test examples changed their top-1 class (goal: none).

For LeNet-5 it then photographs the first N MNIST test digits (zoo.data.digits.photograph:
dark ink on a light, noisy, unevenly lit page, 3-7x larger than 28 pixels, off centre),
writes them as PNG files and reads them with `zoo.predict`, as `zoo predict` does, from
model.keras and from the int8 edge TPU export. It also reads the plain MNIST test digits
through the same path (which brings every image into MNIST's form) and compares that with
the model on the raw arrays: the form must leave MNIST's own digits as they are.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe

GOALS = {"lenet5": 0.015, "mnist_cnn": 0.015, "mnist_cnn_dropout": 0.015, "text_cnn": 0.03}
DATA = {"text_cnn": "bbc-news"}


def _run(name: str, home: Path):
    import os

    import zoo
    from zoo.targets import Run

    if (home / name / "card.json").is_file():
        return Run.open(home / name)
    data = DATA.get(name)
    options = {"data": str(Path(os.environ["ZOO_DATA_DIR"]) / data)} if data else {}
    return zoo.train(name, name=name, out=str(home), seed=0, verbose=0, **options)


def calibration_rows(models, home: Path) -> list[dict]:
    rows = []
    for name in models:
        run = _run(name, home)
        record = run.card["calibration"]
        rows.append({"model": name, "accuracy": run.metrics["test_accuracy"],
                     "ece_before": record["test_ece"]["before"], "ece_after": record["test_ece"]["after"],
                     "temperature": record.get("temperature"), "top1_changed": record["top1_changed"],
                     "goal": GOALS[name], "seconds": run.card["training"]["seconds"]})
    return rows


def photo_rows(home: Path, count: int) -> list[dict]:
    import numpy as np
    from PIL import Image

    import zoo
    from zoo.data.datasets import load_dataset
    from zoo.data.digits import photograph
    from zoo.data.inputs import prepare_inputs
    from zoo.runs import load_model

    run = _run("lenet5", home)
    mnist = load_dataset("mnist", kind="image")
    x, y = mnist.x_test[:count, :, :, 0], mnist.y_test[:count]
    edgetpu = run.path / "export" / "model_int8_edgetpu.tflite"
    if not edgetpu.is_file():
        zoo.export(run, target="edgetpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photos, plain = [], []
        for i, digit in enumerate(x):
            photos.append(str(Path(tmp) / f"photo-{i}.png"))
            Image.fromarray(photograph(digit, seed=i)).save(photos[-1])
            plain.append(str(Path(tmp) / f"mnist-{i}.png"))
            Image.fromarray(digit).save(plain[-1])

        def read(artifact, files):
            started = time.perf_counter()
            results = zoo.predict(artifact, files, top_k=1)
            labels = np.array([int(r["predictions"][0]["label"]) if "predictions" in r else -1 for r in results])
            return float((labels == y).mean()), (time.perf_counter() - started) / len(files) * 1000

        model = load_model(run.path)
        raw = float((model.predict(x[..., None] / np.float32(255), verbose=0).argmax(1) == y).mean())
        # before: the same photos resized to 28×28 as they are, as zoo predict did before zoo.data.digits
        plain_spec = {**run.card["preprocessing"], "normalize": None}
        resized = prepare_inputs(photos, {"preprocessing": plain_spec}, run.path)
        before = float((model.predict(np.stack([p.x for p in resized]), verbose=0).argmax(1) == y).mean())
        rows.append({"what": "photos, plain resize (zoo before), model.keras", "accuracy": before,
                     "ms_per_image": None, "goal": "-"})
        for label, artifact in (("model.keras", run.path / "model.keras"), ("int8 edge TPU", edgetpu)):
            accuracy, ms = read(artifact, photos)
            rows.append({"what": f"photos, {label}", "accuracy": accuracy, "ms_per_image": ms, "goal": ">= 97%"})
        accuracy, ms = read(run.path / "model.keras", plain)
        rows.append({"what": "MNIST digits through the photo path, model.keras", "accuracy": accuracy,
                     "ms_per_image": ms, "goal": f"within 0.1 point of {raw:.2%}"})
        rows.append({"what": "MNIST digits as arrays (plain path), model.keras", "accuracy": raw,
                     "ms_per_image": None, "goal": "-"})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="where the runs are (or go); default: a temporary folder")
    parser.add_argument("--photos", type=int, default=10_000, help="MNIST test digits to photograph")
    parser.add_argument("--models", nargs="*", default=list(GOALS))
    args = parser.parse_args()
    print(describe())
    home_tmp = None if args.home else tempfile.TemporaryDirectory()
    home = Path(args.home or home_tmp.name)

    rows = calibration_rows(args.models, home)
    print(f"\n{'model':<20}{'accuracy':>10}{'ECE before':>12}{'ECE after':>11}{'ratio':>8}{'T':>8}"
          f"{'top-1 changed':>15}{'goal':>8}{'train s':>9}")
    met = True
    for r in rows:
        ok = r["ece_after"] <= r["goal"] and r["top1_changed"] == 0
        met &= ok
        temperature = f"{r['temperature']:.3f}" if r["temperature"] else "-"
        print(f"{r['model']:<20}{r['accuracy']:>10.2%}{r['ece_before']:>12.2%}{r['ece_after']:>11.2%}"
              f"{r['ece_before'] / max(r['ece_after'], 1e-9):>7.1f}x{temperature:>8}{r['top1_changed']:>15}"
              f"{'<= ' + format(r['goal'], '.1%'):>8}{r['seconds']:>9.0f}  {'met' if ok else 'MISSED'}")
    if "lenet5" in args.models:
        photos = photo_rows(home, args.photos)
        print(f"\n{args.photos:,} MNIST test digits, LeNet-5 run, read with zoo.predict:")
        for r in photos:
            ms = f"{r['ms_per_image']:.1f} ms/image" if r["ms_per_image"] else ""
            print(f"  {r['what']:<52}{r['accuracy']:>8.2%}  {ms:<16} goal {r['goal']}")
        before, keras, edgetpu, through, raw = (r["accuracy"] for r in photos)
        met &= keras >= 0.97 and edgetpu >= 0.97 and abs(through - raw) <= 0.001
        print(f"  photos read {keras / max(before, 1e-9):.1f}x as often right as with a plain resize")
        print(f"  the photo path moves MNIST's own accuracy by {100 * (through - raw):+.2f} points")
    print("\nall goals met" if met else "\nsome goals missed")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
