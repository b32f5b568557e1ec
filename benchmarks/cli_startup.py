"""Wall time of `zoo --help` and `zoo list` (goal: <= 0.5 s each), beside a bare `python -c pass` and `import tensorflow`.

    python benchmarks/cli_startup.py [--repeat 7]

Runs are interleaved; medians are printed with their ratio to bare Python.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _machine import describe

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "zoo --help": [sys.executable, "-m", "zoo.cli", "--help"],
    "zoo summary --help": [sys.executable, "-m", "zoo.cli", "summary", "--help"],
    "zoo list": [sys.executable, "-m", "zoo.cli", "list"],
    "import tensorflow": [sys.executable, "-c", "import tensorflow"],
}
GOAL_S = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(describe())  # the CPU changes between sessions: compare figures within one run only
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeat):
        for name, cmd in CASES.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<22}{'median s':>10}{'x python':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<22}{median:>10.3f}{median / base:>10.1f}")
    help_s, list_s = statistics.median(times["zoo --help"]), statistics.median(times["zoo list"])
    for name, seconds in (("zoo --help", help_s), ("zoo list", list_s)):
        verdict = "meets" if seconds <= GOAL_S else "misses"
        print(f"{name} {verdict} the {GOAL_S} s goal ({seconds:.3f} s); "
              f"{statistics.median(times['import tensorflow']) / seconds:.0f}x faster than importing TensorFlow")
    return 0 if max(help_s, list_s) <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
