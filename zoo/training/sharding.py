"""Every CPU core on one training step: each batch split into shards computed side by side.

On a CPU, TensorFlow runs the zoo's small convolutions on one core: their oneDNN kernels do
not split a batch of 128 across threads (LeNet-5 trains no faster with 2 intra-op threads
than with 1; benchmarks/RESULTS.md). Splitting each batch into one shard per core inside the
training step gives the runtime independent branches, forward and backward, that its inter-op
threads run at the same time, with one thread per op so that they do not fight over cores.
The loss, the gradients and the update are still those of the whole batch: the same training,
up to the order of floating-point sums. On the 2-core machine (an AMD EPYC without AVX-512,
2026-11-22) a training step without the input pipeline ran 1.35x faster for LeNet-5 and 1.17x
for mnist_cnn; whole runs gained ~1.0-1.2x, inside that shared machine's noise; whether it pays
depends on the CPU (benchmarks/RESULTS.md, `python benchmarks/levers.py`).

TensorFlow sizes its thread pools once, when its runtime starts, so `configure` must run
before any other TensorFlow op (`zoo.training.distribute.make_distribution` calls it) and says how
many shards the process can use. With a GPU, or under a tf.distribute strategy, a batch is not
split. How many shards: zoo.training.probe measures it once per machine; ZOO_CPU_SHARDS=N chooses N
(1: off, TensorFlow's own thread pools).
"""

from __future__ import annotations

import contextlib
import os

from zoo.backend import keras
from zoo.errors import ConfigError
from zoo.machine import cpu_cores

_k = keras()

MIN_SHARD = 16  # examples: smaller shards spend more on per-op overhead than a core gives back


def env_shards() -> int | None:
    """ZOO_CPU_SHARDS as a number, None when it is unset or empty; one line when it is not a count."""
    value = os.environ.get("ZOO_CPU_SHARDS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"ZOO_CPU_SHARDS must be a whole number >= 1 (1: off), got {value!r}")
    return int(value)


def configure(gpu: bool, shards: int | None = None) -> int:
    """Size TensorFlow's thread pools for sharded training and return the shards the process
    can use: `shards` (zoo.training.probe decides it; default ZOO_CPU_SHARDS, else one per core)
    on a CPU-only machine, 1 (no sharding) with a GPU or when the runtime had already started
    with other pools."""
    if shards is None:
        shards = env_shards() or cpu_cores()
    if gpu:
        shards = 1
    if shards == 1:
        return 1
    import tensorflow as tf

    threading = tf.config.threading
    with contextlib.suppress(RuntimeError):  # the runtime has started: its pools stay as they are
        threading.set_intra_op_parallelism_threads(1)
        threading.set_inter_op_parallelism_threads(shards)
    pools = (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads())
    return shards if pools == (1, shards) else 1


def shards_for(batch_size: int, available: int) -> int:
    """How many shards a batch of `batch_size` splits into, given `available` (see configure)."""
    return max(1, min(available, batch_size // MIN_SHARD))


class Sharded(_k.Model):
    """Train `model` with each batch split into `shards` parts that run side by side.

    It holds no weights of its own: fitting it trains `model`. Its outputs are the model's
    outputs for the whole batch, so the loss and the metrics are computed as without it.
    (A `tf.cond` around the split, for batches smaller than `shards`, would cost the speed:
    TensorFlow runs a conditional's branch as one op, one op after another inside.)
    """

    def __init__(self, model, shards: int = 1, **kwargs):
        super().__init__(name=f"{model.name}_trainer", **kwargs)
        self.net = model
        self.shards = shards
        self.built = model.built  # no weights of its own: built when the model is (for load_weights)

    def call(self, inputs, training=None):
        if self.shards == 1:
            return self.net(inputs, training=training)
        import tensorflow as tf

        n = tf.shape(inputs)[0]
        outputs = []
        for i in range(self.shards):
            start, stop = i * n // self.shards, (i + 1) * n // self.shards
            # a batch smaller than `shards` leaves some shards empty, and oneDNN's convolutions
            # reject an empty batch: such a shard computes one example and keeps none of it
            first = tf.minimum(start, n - 1)
            output = self.net(inputs[first:tf.maximum(stop, first + 1)], training=training)
            outputs.append(output[: stop - start])
        return tf.concat(outputs, axis=0)
