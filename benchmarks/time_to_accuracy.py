"""Time to accuracy: `zoo train lenet` as a user runs it, test accuracy against wall time.

    ZOO_DATA_DIR=../shared/data python benchmarks/time_to_accuracy.py [--model lenet] [--epochs N]
        [--target 0.99] [--plot curve.png] [-- extra zoo.train options as key=value]

The clock starts when this process starts, before TensorFlow is imported, so the
times are what `time zoo train lenet` would see. After every epoch the model is
scored on the MNIST test split (that scoring is paused out of the clock), and the
script prints the curve and the first time the target accuracy was reached.
Training is the default recipe, so the final row is what `zoo train lenet`
reports (the best-validation-loss checkpoint it keeps may differ by an epoch).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from _machine import describe  # noqa: E402


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--plot", help="also draw the curve into this PNG")
    parser.add_argument("options", nargs="*", help="more zoo.train options, key=value (batch_size=256)")
    args = parser.parse_args()
    print(describe())  # the CPU changes between sessions: compare figures within one run only

    from zoo.backend import keras

    k = keras()
    import numpy as np

    import zoo
    from zoo.data.datasets import load_dataset

    mnist = load_dataset("mnist", kind="image")
    x_test, y_test = mnist.x_test.astype(np.float32) / 255, mnist.y_test
    curve = []  # (seconds since start, epoch, test accuracy)
    paused = [0.0]

    class Score(k.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            accuracy = float((self.model.predict(x_test, batch_size=1024, verbose=0).argmax(1) == y_test).mean())
            curve.append((now - STARTED - paused[0], epoch + 1, accuracy))
            paused[0] += time.perf_counter() - now

    options = {key: _value(value) for key, value in (item.split("=", 1) for item in args.options)}
    if args.epochs:
        options["epochs"] = args.epochs
    with tempfile.TemporaryDirectory() as out:
        run = zoo.train(args.model, out=out, verbose=0, callbacks=[Score()], **options)
    finished = time.perf_counter() - STARTED - paused[0]

    print(f"{run.card['model']}: test accuracy against wall time (process start = 0 s)")
    print(f"{'epoch':>5} {'seconds':>8} {'test accuracy':>14}")
    for seconds, epoch, accuracy in curve:
        print(f"{epoch:>5} {seconds:>8.1f} {accuracy:>14.2%}")
    print(f"whole run, model saved: {finished:.1f} s, final test accuracy {run.metrics['test_accuracy']:.2%}")
    reached = next((c for c in curve if c[2] >= args.target), None)
    print(f"first >= {args.target:.1%}: " + (f"{reached[0]:.1f} s (epoch {reached[1]})" if reached else "not reached"))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([c[0] for c in curve], [100 * c[2] for c in curve], marker="o")
        ax.axhline(100 * args.target, color="grey", linestyle="--")
        ax.set(xlabel="seconds since the process started", ylabel="MNIST test accuracy (%)",
               title=f"zoo train {args.model}: time to accuracy")
        fig.tight_layout()
        fig.savefig(args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
