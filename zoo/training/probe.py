"""The speed settings of training, chosen by measuring this machine once and kept per CPU.

What trains LeNet-5 fastest is not one setting everywhere: the batch split across cores
(zoo.training.sharding) gave 1.2-1.35x on an AMD EPYC without AVX-512 and 0.93x on one with it
(benchmarks/RESULTS.md). So the first training of a model on a machine measures its own training
step both ways, split into one shard per core and whole, in this process and within about 2 s,
and keeps the winner in the user's cache folder (platformdirs), keyed by the CPU model, its cores
and vector flags, and TensorFlow's version, then by the model, its batch size and mixed precision
(`cache_entry`). Later runs read the choice instead of measuring.

TensorFlow fixes two things when its runtime starts, before any model exists: the oneDNN switch
(read at import) and the thread pools. So the probe cannot try them within a process:
- oneDNN stays on (zoo.backend): it won 1.8-2.7x on every CPU measured here; TF_ENABLE_ONEDNN_OPTS=0
  turns it off.
- The pools follow the choice: one thread per op and one inter-op thread per shard when the batch is
  split, TensorFlow's own pools when it is not. A probing run has not chosen yet, so it starts with
  the split's pools and, if the whole batch wins, trains whole on them; the next run gets
  TensorFlow's pools.
- `steps_per_execution` stays 32: measuring it means tracing Keras's whole multi-step loop twice,
  seconds more, and it won 1.34x on the one CPU where it was measured in its full form.

ZOO_CPU_SHARDS=N still decides instead of the probe (and ZOO_CACHE_DIR moves the cache);
`zoo train --no-probe` uses the fixed default, one shard per core, without reading the cache.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from zoo.files import write_atomic
from zoo.machine import cpu, cpu_cores

BUDGET_S = 2.0  # the whole probe, tracing included: LeNet-5 fits ~15 timed steps each way in it here
MARGIN = 1.03  # the split must win by 3% to be chosen: the whole batch is simpler and as fast within noise
CACHE_FILE = "speed.json"


@dataclass(frozen=True)
class Speed:
    """How many shards a batch may split into, and why."""

    shards: int
    source: str  # "ZOO_CPU_SHARDS" | "cache" | "probe" (measured in this run) | "no-probe" | "gpu"
    why: str
    measured: dict = field(default_factory=dict)  # shards -> ms per step, when measured

    @property
    def pending(self) -> bool:
        """The probe still has to run in this process (no cached choice)."""
        return self.source == "probe" and not self.measured

    def to_dict(self) -> dict:
        record = {"shards": self.shards, "source": self.source, "why": self.why}
        if self.measured:
            record["ms_per_step"] = {str(k): round(v, 3) for k, v in self.measured.items()}
        return record


def cache_path() -> Path:
    folder = os.environ.get("ZOO_CACHE_DIR", "").strip()
    if not folder:
        import platformdirs

        folder = platformdirs.user_cache_dir("zoo", appauthor=False)
    return Path(folder) / CACHE_FILE


def machine_key() -> str:
    """The CPU and TensorFlow's own version (importing it does not size its pools: its runtime does)."""
    from zoo.backend import keras

    keras()
    import tensorflow as tf

    return cpu().key(f"tensorflow {tf.__version__}")


def cache_entry(model: str, batch_size: int, mixed_precision: str | None = None) -> str:
    """What a choice is kept under, beside the machine: the model and what sizes its step."""
    return f"{model}, batch {batch_size}" + (f", {mixed_precision}" if mixed_precision else "")


def _read_cache() -> dict:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(cache_path().read_text())
        if isinstance(data, dict):
            return data
    return {}  # missing or damaged: probing again rebuilds it


def decide(model: str, probe: bool = True) -> Speed:
    """The shards before TensorFlow's runtime starts: the user's switch, the cache (`model` is a
    cache_entry), or a probe to come."""
    from zoo.training.sharding import env_shards

    asked = env_shards()
    if asked is not None:
        return Speed(asked, "ZOO_CPU_SHARDS", f"ZOO_CPU_SHARDS={asked}: set by you, not probed")
    cores = cpu_cores()
    if cores == 1:
        return Speed(1, "no-probe", "one core: nothing to split across")
    if not probe:
        return Speed(cores, "no-probe", f"--no-probe: the fixed default, {cores} shards (one per core)")
    entries = _read_cache().get(machine_key(), {})
    known = entries.get(model) if isinstance(entries, dict) else None
    try:
        shards, measured = known["shards"], {int(k): float(v) for k, v in known.get("ms_per_step", {}).items()}
        if type(shards) is int and shards >= 1:
            return Speed(shards, "cache", f"{known.get('why', 'probed before')} (cached {known.get('date', '')})",
                         measured)
    except (TypeError, KeyError, ValueError, AttributeError):  # missing or damaged: measured again
        pass
    return Speed(cores, "probe", "to be probed in this run")


def _remember(model: str, speed: Speed) -> None:
    data = _read_cache()
    entry = {**speed.to_dict(), "date": _dt.date.today().isoformat()}
    entry.pop("source", None)
    key = machine_key()
    if not isinstance(data.get(key), dict):  # missing, or damaged: replaced
        data[key] = {}
    data[key][model] = entry
    path = cache_path()
    with contextlib.suppress(OSError):  # a read-only home: the choice holds for this run, and is probed again
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def measure(model, x, y, loss, candidates: tuple[int, ...], budget: float = BUDGET_S) -> dict[int, float]:
    """Milliseconds per forward-and-backward step of `model` on the batch (x, y), split into each
    candidate number of shards, timed in turn within `budget` seconds. The model's variables (batch
    statistics, dropout's seed state) are put back as they were: probing does not change training."""
    import numpy as np
    import tensorflow as tf

    from zoo.training.sharding import Sharded

    saved = [np.array(v) for v in model.variables]
    started = time.perf_counter()
    steps = {}
    for shards in candidates:
        net = Sharded(model, shards)

        def step(x, y, net=net):
            with tf.GradientTape() as tape:
                value = loss(y, net(x, training=True))
            return tape.gradient(value, model.trainable_variables)

        steps[shards] = tf.function(step)
    times: dict[int, list[float]] = {shards: [] for shards in candidates}
    try:
        for shards, step in steps.items():  # traced and warmed once each
            step(x, y)
        for rounds in range(1, 41):  # 3 timed rounds at least, more while the budget lasts
            for shards, step in steps.items():
                start = time.perf_counter()
                step(x, y)  # eager results: the step has run when this returns
                times[shards].append((time.perf_counter() - start) * 1000)
            over = time.perf_counter() - started >= budget
            if over and (rounds >= 3 or sum(times[shards]) / 1000 > budget / 2):  # a long step: fewer rounds
                break
    finally:
        for variable, value in zip(model.variables, saved):
            variable.assign(value)
    return {shards: statistics.median(t) for shards, t in times.items() if t}


def probe(entry: str, speed: Speed, shards: int, model, x, y, loss) -> Speed:
    """Run the pending probe on the model about to train, whole against `shards` shards (what this
    run would train with), and remember the winner under `entry` (cache_entry). A probe that fails
    keeps the split and remembers nothing: it is a speed-up, never a reason to lose the run."""
    try:
        measured = measure(model, x, y, loss, (1, shards))
    except Exception as exc:  # noqa: BLE001 - out of memory, a step the model cannot take outside fit...
        import warnings

        from zoo.errors import ZooWarning

        # a traced function's error says "in user code:" first and the cause last
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
        reason = reason.removeprefix(f"{type(exc).__name__}: ")[:120]
        warnings.warn(f"the speed probe failed ({type(exc).__name__}: {reason}); training with {shards} shards",
                      ZooWarning, stacklevel=2)
        return Speed(shards, "no-probe", f"the probe failed ({type(exc).__name__}): kept {shards} shards")
    ratio = round(measured[1] / measured[shards], 2)  # decided as printed, so the card's line and the choice agree
    chosen_shards = shards if ratio >= MARGIN else 1
    verdict = "on" if chosen_shards > 1 else "off"
    why = f"probed: {shards} shards {ratio:.2f}x -> {verdict}"
    chosen = replace(speed, shards=chosen_shards, measured=measured, why=why)
    _remember(entry, chosen)
    return chosen
