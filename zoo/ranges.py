"""The ranges the options take, owned once: the API checks them here, and the command line builds
its Click types from the same bounds (cli/app.py `ranged`), so `zoo train --lr 10` and
`zoo.train(lr=10)` refuse the same value."""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.errors import ConfigError

# NumPy's seed (keras.utils.set_random_seed seeds it) is an unsigned 32-bit number: -1 was a traceback
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Range:
    kind: type  # int: whole numbers only; float: any number
    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def text(self) -> str:
        """As the refusal says it: `>= 1`, `in (0, 10)`, `in [0, 1)`."""
        low, high = _number(self.low), _number(self.high)
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {low}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


def _number(x) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else f"{x}"


WHOLE = Range(int, 1)
FRACTION = Range(float, 0, 1, high_open=True)
RANGES = {
    "seed": Range(int, 0, SEED_MAX),
    "epochs": WHOLE, "batch_size": WHOLE, "limit": WHOLE, "patience": WHOLE,
    "lr": Range(float, 0, 10, low_open=True, high_open=True),
    "val_split": FRACTION, "crop": FRACTION, "label_smoothing": FRACTION,
    "augment": Range(int, 0),
    "until": Range(float, 0, 1, low_open=True),
    "top_k": WHOLE, "calibration_samples": WHOLE,
}


def check(name: str, value, *, required: bool = False) -> None:
    """Refuse a value outside `name`'s range, in one line that names the option as the command line
    spells it (`val-split`); None (the recipe decides) passes unless the value is `required`."""
    if value is None and not required:
        return
    bounds = RANGES[name]
    if not bounds.holds(value):
        what = "a whole number" if bounds.kind is int else "a number"
        raise ConfigError(f"{name.replace('_', '-')} must be {what} {bounds.text()}, got {value!r}")
