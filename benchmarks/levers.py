"""The training levers of RESULTS.md's lever table, each against its off state, in fresh processes.

    ZOO_DATA_DIR=../shared/data python benchmarks/levers.py [--model lenet5] [--epochs 3]
        [--repeats 3] [--limit 20000] [--levers onednn shards ...] [--probe]

`--probe` also checks the speed probe's choice; `--levers` with no names skips the lever table.

A lever is two variants of one `zoo.train` call: environment switches (TensorFlow reads
them once per process, so every variant runs in a fresh Python process) or options. Each
repetition runs every variant of every lever once, interleaved, and measures training
samples per second over the epochs after the first (which pays for tracing). Medians are
printed with the ratio on/off, and each repetition beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _machine import describe
from zoo.machine import cpu_cores
from _timing import epoch_timer, rate

# name: (what it is, (on: env, options), (off: env, options))
LEVERS = {
    "onednn": ("oneDNN kernels (TF_ENABLE_ONEDNN_OPTS)",
               ({"TF_ENABLE_ONEDNN_OPTS": "1"}, {}), ({"TF_ENABLE_ONEDNN_OPTS": "0"}, {})),
    "shards": ("the batch split in 2 shards (zoo.training.sharding)",
               ({"ZOO_CPU_SHARDS": "2"}, {}), ({"ZOO_CPU_SHARDS": "1"}, {})),
    "steps": ("steps_per_execution 32 vs 1",
              ({}, {"steps_per_execution": 32}), ({}, {"steps_per_execution": 1})),
    "determinism": ("op determinism off vs on (ZOO_DETERMINISTIC)",
                    ({}, {}), ({"ZOO_DETERMINISTIC": "1"}, {})),
    "batch512": ("batch 512 vs 128 (samples/s only: 512 needs another learning rate)",
                 ({}, {"batch_size": 512}), ({}, {"batch_size": 128})),
}


def _child(options: dict) -> int:
    """One zoo.train in this process; print its samples/s over the epochs after the first."""
    import tempfile

    from zoo.backend import keras

    keras()  # zoo's quiet import of TensorFlow first; the timer then uses the same keras

    import zoo

    clock = epoch_timer()
    with tempfile.TemporaryDirectory() as out:
        run = zoo.train(options.pop("model"), out=out, verbose=0, val_split=0.0, calibrate=False,
                        callbacks=[clock], **options)
    examples = run.card["dataset"]["train_used"]
    print(json.dumps({"samples_per_second": rate(examples, clock.seconds)}))
    return 0


def _variant(model: str, epochs: int, limit: int, env: dict, options: dict) -> float:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    request = {"model": model, "epochs": epochs, "limit": limit, "seed": 0, **options}
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(request)], env=environment,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_second"]


def probe_check(model: str, epochs: int, limit: int, repeats: int) -> None:
    """The speed probe's choice (zoo.training.probe) against each fixed setting it chooses between,
    in fresh processes: a first run that probes (into an empty cache), then runs that read its
    answer, interleaved with the fixed settings. Goal: within 5% of the best fixed one."""
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        env = {"ZOO_CACHE_DIR": cache, "ZOO_CPU_SHARDS": ""}
        first = _variant(model, epochs, limit, env, {})
        choice = json.loads(Path(cache, "speed.json").read_text())
        (entries,) = choice.values()  # this machine's: one model and batch size
        (entry,) = entries.values()
        why = entry["why"]
        cores = str(cpu_cores())
        fixed = {"1 shard, TensorFlow's pools (ZOO_CPU_SHARDS=1)": {"ZOO_CPU_SHARDS": "1"},
                 f"{cores} shards, one thread per op (ZOO_CPU_SHARDS={cores})": {"ZOO_CPU_SHARDS": cores}}
        rates = {name: [] for name in [*fixed, "probed (its cached choice)"]}
        for _ in range(repeats):
            for name, switch in fixed.items():
                rates[name].append(_variant(model, epochs, limit, switch, {}))
            rates["probed (its cached choice)"].append(_variant(model, epochs, limit, env, {}))
    print(f"\nthe probe: {why}; its own probing run {first:,.0f} samples/s")
    print(f"{'setting':<62}{'samples/s':>10}  each repetition")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        print(f"{name:<62}{medians[name]:>10,.0f}  " + " ".join(f"{v:,.0f}" for v in values))
    best = max(medians[name] for name in fixed)
    ratio = medians["probed (its cached choice)"] / best
    print(f"probed / best fixed: {ratio:.2f} (goal >= 0.95: {'met' if ratio >= 0.95 else 'not met'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=20_000)
    parser.add_argument("--levers", nargs="*", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--probe", action="store_true", help="also check the speed probe's choice against "
                        "the fixed settings")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(json.loads(args.child))
    print(describe())
    if args.probe:
        probe_check(args.model, args.epochs, args.limit, args.repeats)
    results = {(name, side): [] for name in args.levers for side in ("on", "off")}
    for _ in range(args.repeats):
        for name in args.levers:  # interleaved: every variant once per repetition
            _, on, off = LEVERS[name]
            for side, (env, options) in (("on", on), ("off", off)):
                results[(name, side)].append(_variant(args.model, args.epochs, args.limit, env, options))
    print(f"\n{args.model}: {args.limit:,} MNIST images x {args.epochs} epochs (samples/s after the first), "
          f"median of {args.repeats}")
    print(f"{'lever':<62}{'on':>10}{'off':>10}{'on/off':>8}  each repetition (on | off)")
    for name in args.levers:
        what = LEVERS[name][0]
        on, off = (statistics.median(results[(name, side)]) for side in ("on", "off"))
        each = " ".join(f"{v:,.0f}" for v in results[(name, "on")]) + " | " + \
            " ".join(f"{v:,.0f}" for v in results[(name, "off")])
        print(f"{what:<62}{on:>10,.0f}{off:>10,.0f}{on / off:>8.2f}  {each}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
