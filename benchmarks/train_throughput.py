"""Training throughput on MNIST: zoo's training path beside plain Keras and a PyTorch eager loop.

    ZOO_DATA_DIR=../shared/data python benchmarks/train_throughput.py [--models lenet5 mnist_cnn]
        [--epochs 3] [--repeats 3]

Each repetition runs every contender once, interleaved, on the same 60,000
MNIST images (batch 128, Adam 1e-3 with zoo's cosine decay to 1%, so that the
final accuracies are comparable; no augmentation, no validation split), and
measures training samples per second over the epochs after the first (which
pays for tracing). Medians are printed with ratios to plain Keras, and each
contender's final test accuracy. Every Keras contender runs in a fresh process,
because TensorFlow reads its switches once: "zoo" as the zoo command runs,
"zoo, 1 shard" with zoo.training.sharding off (ZOO_CPU_SHARDS=1), "plain keras" the keras.io
script with oneDNN switched on as zoo does, "keras, TF defaults" the same script as
a user's own gets it (oneDNN off on this AMD CPU). PyTorch runs only when it is
installed (`pip install torch==2.13.0`, the CPU build; not part of the test install).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np

from _machine import describe
from _timing import epoch_timer, rate

BATCH, LR = 128, 1e-3
ALPHA = 0.01  # every contender decays the learning rate as zoo does: cosine, to 1% at the end


def zoo_path(model: str, epochs: int, data) -> tuple[float, float]:
    """zoo.train itself (tf.data, steps_per_execution, callbacks), as a user runs it."""
    import zoo

    timer = epoch_timer()
    with tempfile.TemporaryDirectory() as out:
        # the others' loss: no label smoothing (the MNIST recipes smooth), no augmentation
        run = zoo.train(model, epochs=epochs, batch_size=BATCH, lr=LR, augment=0, label_smoothing=0,
                        val_split=0.0, out=out, verbose=0, callbacks=[timer])
        return rate(len(data[1]), timer.seconds), run.metrics["test_accuracy"]


def plain_keras(model: str, epochs: int, data) -> tuple[float, float]:
    """The keras.io recipe: model.fit on NumPy arrays."""
    import keras

    import zoo

    x, y, xt, yt = data
    net = zoo.create_model(model)
    steps = -(-len(y) // BATCH)
    schedule = keras.optimizers.schedules.CosineDecay(LR, decay_steps=steps * epochs, alpha=ALPHA)
    net.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])
    timer = epoch_timer()
    net.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[timer])
    accuracy = float((net.predict(xt, batch_size=1024, verbose=0).argmax(1) == yt).mean())
    return rate(len(y), timer.seconds), accuracy


def in_child(contender: str, env: dict):
    """Run a Keras contender in a fresh process with `env`: TensorFlow reads its switches
    (oneDNN, thread pools) once, when its runtime starts, so each setting needs its own process."""

    def run(model: str, epochs: int, data) -> tuple[float, float]:
        import json
        import os
        import subprocess

        child_env = {key: value for key, value in os.environ.items()
                     if key not in ("TF_ENABLE_ONEDNN_OPTS", "ZOO_CPU_SHARDS")}
        child_env.update(TF_CPP_MIN_LOG_LEVEL="3", **env)
        out = subprocess.run([sys.executable, __file__, "--child", contender, "--models", model,
                              "--epochs", str(epochs)], env=child_env, capture_output=True, text=True,
                             check=True).stdout
        rate, accuracy = json.loads(out.strip().splitlines()[-1])
        return rate, accuracy

    return run


def _mnist():
    """MNIST as every contender takes it: pixels scaled to [0, 1], int32 labels."""
    from zoo.data.datasets import load_dataset

    mnist = load_dataset("mnist", kind="image")
    return (mnist.x_train.astype(np.float32) / 255, mnist.y_train.astype(np.int32),
            mnist.x_test.astype(np.float32) / 255, mnist.y_test.astype(np.int32))


def _child(contender: str, model: str, epochs: int) -> int:
    """Run one contender in this process (see in_child) and print its result as JSON."""
    import json

    if contender == "zoo":
        from zoo.backend import keras

        keras()  # as the zoo command imports it: quiet, oneDNN on
    else:
        import keras  # noqa: F401 - TensorFlow as it comes, with only the switches in_child set
    data = _mnist()
    print(json.dumps({"zoo": zoo_path, "keras": plain_keras}[contender](model, epochs, data)))
    return 0


def pytorch_eager(model: str, epochs: int, data) -> tuple[float, float]:
    """The same network in PyTorch, trained by a plain eager loop."""
    import torch
    from torch import nn

    x, y, xt, yt = data
    torch.manual_seed(0)
    if model == "lenet5":
        net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
    else:
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 10),
        )
    xs = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    ys = torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    steps = -(-len(ys) // BATCH)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * epochs, eta_min=LR * ALPHA)
    loss_fn = nn.CrossEntropyLoss()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(ys))
        for i in range(0, len(ys), BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad()
            loss_fn(net(xs[idx]), ys[idx]).backward()
            opt.step()
            schedule.step()
        seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        pred = net(torch.from_numpy(xt.transpose(0, 3, 1, 2).copy())).argmax(1).numpy()
    return rate(len(y), seconds), float((pred == yt).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "mnist_cnn"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child, args.models[0], args.epochs)
    print(describe())  # the CPU changes between sessions: compare figures within one run only

    data = _mnist()
    contenders = {
        "zoo": in_child("zoo", {}),
        "zoo, 1 shard": in_child("zoo", {"ZOO_CPU_SHARDS": "1"}),  # zoo.training.sharding off
        "plain keras": in_child("keras", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
        "keras, TF defaults": in_child("keras", {}),
    }
    try:
        import torch  # noqa: F401

        contenders["pytorch eager"] = pytorch_eager
    except ImportError:
        print("(PyTorch is not installed: pip install torch==2.13.0 to compare with it)")

    for model in args.models:
        results = {name: [] for name in contenders}
        for _ in range(args.repeats):
            for name, fn in contenders.items():  # interleaved, so drift hits every contender alike
                results[name].append(fn(model, args.epochs, data))
        base = statistics.median(r[0] for r in results["plain keras"])
        print(f"\n{model}: MNIST 60,000 x {args.epochs} epochs, batch {BATCH}, Adam {LR}, "
              f"median of {args.repeats}")
        default = statistics.median(r[0] for r in results["keras, TF defaults"])
        print("x keras: against plain Keras with oneDNN on; x default: against the same script with "
              "TensorFlow's defaults")
        print(f"{'contender':<20}{'samples/s':>12}{'x keras':>9}{'x default':>10}{'accuracy':>10}  each repetition")
        for name, rows in results.items():
            rate = statistics.median(r[0] for r in rows)
            accuracy = statistics.median(r[1] for r in rows)
            each = " ".join(f"{r[0]:,.0f}" for r in rows)  # the machine's noise, in plain sight
            print(f"{name:<20}{rate:>12,.0f}{rate / base:>9.2f}{rate / default:>10.2f}{accuracy:>10.2%}  {each}")
        _share_of_peak(model, {name: statistics.median(r[0] for r in rows) for name, rows in results.items()})
    return 0


def _share_of_peak(model: str, rates: dict[str, float]) -> None:
    """Each contender's training FLOP/s as a share of the CPU's float32 peak (zoo.machine: cores x
    clock x FMA units x lanes x 2, from /proc/cpuinfo's flags and clock), and zoo against PyTorch."""
    from zoo.machine import cpu
    from zoo.models.registry import get_entry

    machine = cpu()
    macs = get_entry(model).counts["macs"]
    # a training step is about 3 forward passes (forward, input gradient, weight gradient) of 2 FLOP a MAC
    flop = 3 * 2 * macs
    peak = machine.peak_gflops()
    print(f"peak: {machine.peak_formula()}; a training sample is 3 x 2 x {macs:,} MACs = {flop / 1e6:.2f} MFLOP")
    for name, samples in rates.items():
        share = f", {samples * flop / 1e9 / peak:.1%} of peak" if peak else ""
        print(f"  {name:<20}{samples * flop / 1e9:>7.1f} GFLOP/s{share}")
    if "pytorch eager" in rates:
        ratio = rates["zoo"] / rates["pytorch eager"]
        print(f"zoo / pytorch eager: {ratio:.2f}x (goal >= 1.2x: {'met' if ratio >= 1.2 else 'not met'})")


if __name__ == "__main__":
    sys.exit(main())
