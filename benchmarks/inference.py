"""Inference speed of one run side by side: Keras predict, a direct Keras call, LiteRT float32 and int8.

    python benchmarks/inference.py [RUN] [--repeats 200]

RUN defaults to saved_models/lenet5 (train it with `zoo train lenet`). The
artifacts are exported (and verified) first if missing. Prints examples per
second at batch 1 and 256, and each row's ratio to Keras `model.predict`.
"""

from __future__ import annotations

import argparse
import sys

from _machine import describe


def rate(fn, x, batch: int, repeats: int) -> float:
    """Examples per second: the median over `repeats` calls at this batch size (after warm-up)."""
    from zoo.benchmarking import latency_ms_of

    return batch / (latency_ms_of(fn, x[:batch], repeats) / 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="lenet5")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(describe())  # the CPU changes between sessions: compare figures within one run only

    import json

    from zoo import runs
    from zoo.evaluation import run_dataset
    from zoo.exporter import export
    from zoo.runtime import load_runner

    folder = runs.find_run(args.run)
    card = json.loads((folder / runs.CARD_FILE).read_text())
    for quantize in ("none", "int8"):
        name = "model_float32.tflite" if quantize == "none" else "model_int8.tflite"
        if not (folder / "export" / name).is_file():
            export(folder, format="tflite", quantize=quantize)
    prep, data = run_dataset(folder, card)
    x = prep(data.x_test[:256])

    keras_model = load_runner(folder / runs.MODEL_FILE).model
    cases = {
        "keras model.predict": lambda b: keras_model.predict(b, verbose=0),
        "keras model(x)": lambda b: keras_model(b, training=False),
        "litert float32": load_runner(folder / "export" / "model_float32.tflite").run_batch,
        "litert int8": load_runner(folder / "export" / "model_int8.tflite").run_batch,
    }
    results = {}
    for batch in (1, 256):
        repeats = args.repeats if batch == 1 else max(10, args.repeats // 10)
        for name, fn in cases.items():
            reps = max(5, repeats // 10) if name == "keras model.predict" else repeats
            results[(name, batch)] = rate(fn, x, batch, reps)
    print(f"{card['run']} ({card['model']}), examples per second (median of repeated calls)")
    print(f"{'runtime':<22}{'batch 1':>12}{'x predict':>11}{'batch 256':>12}{'x predict':>11}")
    for name in cases:
        one, many = results[(name, 1)], results[(name, 256)]
        base1, base256 = results[("keras model.predict", 1)], results[("keras model.predict", 256)]
        print(f"{name:<22}{one:>12,.0f}{one / base1:>11.1f}{many:>12,.0f}{many / base256:>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
