"""Time to accuracy: the whole `zoo train lenet` against its peers, each a fresh process.

    ZOO_DATA_DIR=../shared/data python benchmarks/time_to_accuracy.py [--repeats 3] [--target 0.99]
        [--peers pytorch keras] [-- extra zoo train options]

zoo's side is the command a user types, `zoo train lenet` with its default recipe, timed from
the moment this script launches it to the moment it exits with a finished run (trained, calibrated,
tested, plotted, saved); its card gives the test accuracy that run holds. The peers
(`benchmarks/peers/`) are LeNet-5 written as their own docs show, Adam 1e-3 and batch 128, no zoo
code: a PyTorch eager loop (its MNIST example) and a plain Keras `fit` (keras.io, TensorFlow's own
defaults). Each is timed from its launch to the end of the first epoch whose test accuracy reaches
the target; the seconds a peer spends scoring the test split after each epoch are taken out of its
clock, so the peers are timed generously. zoo's runs share a speed-probe cache that starts empty:
the first probes its batch split (about 2 s) as a user's first training on a machine does. Every repetition runs every contender once, interleaved,
so the machine's drift hits them alike; medians are compared, with each run beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe

HERE = Path(__file__).resolve().parent
PEERS = {"pytorch": "pytorch_loop.py", "keras": "keras_fit.py"}


def run_zoo(model: str, options: list[str], seed: int, cache: str) -> dict:
    """`cache`: the speed probe's folder, empty before the first run: that run probes, as a user's
    first training on a machine does, and the later ones read its answer."""
    env = {**os.environ, "ZOO_CACHE_DIR": cache}
    env.pop("ZOO_CPU_SHARDS", None)
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "zoo.cli", "train", model, "--out", out, "--seed", str(seed),
                               *options], capture_output=True, text=True, env=env)
        seconds = time.monotonic() - started
        if done.returncode:
            raise SystemExit(f"zoo train failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        card = json.loads(next(Path(out).glob("*/card.json")).read_text())
    training = card["training"]
    return {"seconds": seconds, "accuracy": card["metrics"]["test_accuracy"], "epochs": training["epochs"],
            "fit": training["seconds"], "ece": card["calibration"].get("test_ece", {}).get("after"),
            "speed": card.get("distribution", {}).get("speed")}


def run_peer(name: str, target: float, max_epochs: int, seed: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for switch in ("TF_ENABLE_ONEDNN_OPTS", "ZOO_CPU_SHARDS"):  # as a user's own script gets TensorFlow
        env.pop(switch, None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(HERE / "peers" / PEERS[name]), str(target), str(max_epochs),
                           str(seed)], capture_output=True, text=True, env=env, cwd=HERE / "peers")
    if done.returncode:
        raise SystemExit(f"peer {name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    epochs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    curve = [(e["epoch"], e["clock"] - started - e["scored_before"], e["accuracy"]) for e in epochs]
    reached = next((c for c in curve if c[2] >= target), None)
    return {"seconds": reached[1] if reached else None, "epochs": reached[0] if reached else None,
            "accuracy": reached[2] if reached else max(c[2] for c in curve), "curve": curve}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--max-epochs", type=int, default=20, help="a peer gives up after this many")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("options", nargs="*", help="more `zoo train` options, after --")
    args = parser.parse_args()
    print(describe())  # the CPU changes between sessions: compare figures within one run only
    peers = list(args.peers)
    if "pytorch" in peers:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("(PyTorch is not installed: pip install torch==2.13.0 to compare with it)")
            peers.remove("pytorch")
    results: dict[str, list[dict]] = {"zoo": [], **{name: [] for name in peers}}
    cache = tempfile.mkdtemp(prefix="zoo-speed-")
    for repeat in range(args.repeats):  # interleaved
        results["zoo"].append(run_zoo(args.model, args.options, seed=repeat, cache=cache))
        for name in peers:
            results[name].append(run_peer(name, args.target, args.max_epochs, seed=repeat))
        print(f"repetition {repeat + 1}: " + "; ".join(
            f"{name} {r[-1]['seconds']:.1f} s" if r[-1]["seconds"] else f"{name} not reached"
            for name, r in results.items()), flush=True)

    print(f"\n{args.model}: seconds from launch to a finished run (zoo) or to the end of the epoch that first "
          f"reaches {args.target:.1%} test accuracy (peers, scoring taken out); seeds 0-{args.repeats - 1}, "
          f"median of {args.repeats}")
    medians = {name: statistics.median(r["seconds"] for r in rows) for name, rows in results.items()
               if all(r["seconds"] for r in rows)}
    fastest = min((m for name, m in medians.items() if name != "zoo"), default=None)
    print(f"{'contender':<10}{'seconds':>9}{'x fastest peer':>16}  {'epochs':<10}{'test accuracy':<28}each run (s)")
    for name, rows in results.items():
        median = medians.get(name)
        ratio = f"{median / fastest:.2f}" if median and fastest else "-"
        shown = f"{median:.1f}" if median else "not reached"
        accuracy = " ".join(f"{r['accuracy']:.2%}" for r in rows)
        epochs = " ".join(str(r["epochs"]) for r in rows)
        each = " ".join(f"{r['seconds']:.1f}" if r["seconds"] else "-" for r in rows)
        print(f"{name:<10}{shown:>9}{ratio:>16}  {epochs:<10}{accuracy:<28}{each}")
    zoo_rows = results["zoo"]
    print("zoo's runs: fit " + " ".join(f"{r['fit']:.1f}" for r in zoo_rows) + " s of the whole; ECE after "
          "calibration " + " ".join(f"{r['ece']:.2%}" for r in zoo_rows if r["ece"] is not None))
    print("zoo's batch split, run by run: " + "; ".join(r["speed"]["why"] for r in zoo_rows if r["speed"]))
    if fastest and "zoo" in medians:
        goal = medians["zoo"] <= 0.5 * fastest and min(r["accuracy"] for r in zoo_rows) >= 0.991
        print(f"goal: zoo <= 0.5x the fastest peer with every run >= 99.1%: {'met' if goal else 'not met'} "
              f"({medians['zoo'] / fastest:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
