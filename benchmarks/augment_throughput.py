"""What the handwriting preset costs in training throughput, against today's 2-pixel shifts.

    ZOO_DATA_DIR=../shared/data python benchmarks/augment_throughput.py [--models lenet5] [--epochs 3] [--repeats 3]

Trains each model with `--augment 2` (the recipe's shift) and `--augment handwriting`, interleaved
A, B, A, B... in one process, the same seed and data, and prints each run's samples per second
(the card's: training examples over the fit's wall time) and the median ratio. Goal: the preset
within 15% of the shift (ratio >= 0.85). The pipeline draws its augmentation on the tf.data
threads while the step runs, so what it costs is the CPU it takes from the step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from _machine import describe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(describe())
    import zoo

    print("| model | --augment 2 (samples/s) | --augment handwriting (samples/s) | ratio (median) | goal |")
    print("|---|---|---|---|---|")
    for model in args.models:
        rates = {2: [], "handwriting": []}
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.repeats):
                for augment in rates:
                    run = zoo.train(model, augment=augment, epochs=args.epochs, out=tmp, name=f"{model}-{augment}-{i}",
                                    verbose=0, calibrate=False)
                    rates[augment].append(run.card["training"]["samples_per_second"])
        ratio = statistics.median(h / s for h, s in zip(rates["handwriting"], rates[2]))
        cells = [" / ".join(f"{r:,.0f}" for r in rates[a]) for a in rates]
        print(f"| {model} | {cells[0]} | {cells[1]} | {ratio:.2f} | >= 0.85: {'met' if ratio >= 0.85 else 'not met'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
