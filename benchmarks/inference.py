"""Inference speed of one run side by side: Keras predict, a direct Keras call, LiteRT float32 and int8.

    python benchmarks/inference.py [RUN] [--repeats 200]

RUN defaults to saved_models/lenet5 (train it with `zoo train lenet`). The
artifacts are exported (and verified) first if missing. Prints examples per
second at batch 1 and 256, and each row's ratio to Keras `model.predict` and to a
direct `model(x)` call. The cases are timed in turn, round after round, the same
number of calls each, and compared by their medians.
"""

from __future__ import annotations

import argparse
import sys

from _machine import describe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="lenet5")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(describe())  # the CPU changes between sessions: compare figures within one run only


    from zoo import runs, targets
    from zoo.data.recorded import run_dataset
    from zoo.deploy.exporter import export
    from zoo.deploy.runtime import load_runner

    folder = targets.resolve(args.run, targets.RUNS).run_folder()
    card = runs.read_card(folder)
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
    from zoo.deploy.benchmark import interleaved

    results = {}
    for batch in (1, 256):  # every case in turn, round after round, the same number of calls each
        repeats = args.repeats if batch == 1 else max(10, args.repeats // 10)
        for name, ms in interleaved(cases, x[:batch], repeats).items():
            results[(name, batch)] = batch / (ms / 1000)
    print(f"{card['run']} ({card['model']}), examples per second (median of calls taken in turn)")
    print(f"{'runtime':<22}{'batch 1':>12}{'x predict':>11}{'x call':>9}{'batch 256':>12}{'x predict':>11}{'x call':>9}")
    for name in cases:
        row = f"{name:<22}"
        for batch in (1, 256):
            value = results[(name, batch)]
            row += (f"{value:>12,.0f}{value / results[('keras model.predict', batch)]:>11.1f}"
                    f"{value / results[('keras model(x)', batch)]:>9.1f}")
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
