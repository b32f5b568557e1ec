"""Distribution and precision for training: which `tf.distribute` strategy a run uses.

`--strategy` picks one of TensorFlow's own strategies:

- `default`: one device, no distribution;
- `mirrored`: `MirroredStrategy`, one replica per GPU (or per logical CPU device when there is
  no GPU and ZOO_LOGICAL_CPUS=N split the CPU, which is how the tests exercise it);
- `multiworker`: `MultiWorkerMirroredStrategy` over the cluster described by `TF_CONFIG`;
- `auto`: `mirrored` when more than one GPU is visible, else `default`.

A strategy must exist before TensorFlow runs its first op (MultiWorkerMirroredStrategy
configures the runtime's collective ops), so training creates it first of all.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

from zoo.errors import ConfigError, ZooError

STRATEGIES = ("auto", "default", "mirrored", "multiworker")
TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')


@dataclass(frozen=True)
class Distribution:
    """A strategy and where this process stands in it."""

    name: str  # default | mirrored | multiworker (auto resolved)
    strategy: object  # the tf.distribute.Strategy
    replicas: int  # replicas in sync, all workers together
    workers: int  # processes taking part
    task: str  # this process, as TF_CONFIG names it ("worker-1"); "local" without a cluster
    is_chief: bool  # the process that writes the run folder
    cpu_shards: int = 1  # most shards a batch may split into, one per CPU core (zoo.training.sharding)

    @property
    def distributed(self) -> bool:
        return self.name != "default"

    def describe(self) -> dict:
        return {"strategy": self.name, "replicas": self.replicas, "workers": self.workers}


def tf_config() -> dict | None:
    """The parsed TF_CONFIG cluster spec, or None when it is not set."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        spec = json.loads(raw)
        cluster, task = spec["cluster"], spec["task"]
        kind, index = task["type"], int(task["index"])
        hosts = cluster[kind]
        if not isinstance(hosts, list) or not 0 <= index < len(hosts):
            raise KeyError("index")
    except (ValueError, TypeError, KeyError):
        raise ConfigError(
            f"TF_CONFIG is not a cluster spec TensorFlow can use; write it like {TF_CONFIG_EXAMPLE}"
        ) from None
    if kind not in ("chief", "worker"):
        raise ConfigError(f"TF_CONFIG task type {kind!r} is not supported: zoo trains with 'chief' and 'worker' tasks")
    return spec


def _chief(spec: dict) -> bool:
    kind, index = spec["task"]["type"], int(spec["task"]["index"])
    if "chief" in spec["cluster"]:
        return kind == "chief"
    return kind == "worker" and index == 0


def make_distribution(name: str = "auto", cpu_shards: int | None = None) -> Distribution:
    """Create the strategy `name` (one of STRATEGIES); call before any other TensorFlow op.
    `cpu_shards`: the most shards a batch may split into without a strategy (zoo.training.probe)."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    from zoo.backend import keras

    keras()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")  # physical: listing logical ones starts the runtime
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        from zoo.training.sharding import configure

        return Distribution("default", tf.distribute.get_strategy(), 1, 1, "local", True,
                            cpu_shards=configure(gpu=bool(gpus), shards=cpu_shards))
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU" if gpus else "CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        return Distribution("mirrored", strategy, strategy.num_replicas_in_sync, 1, "local", True)
    spec = tf_config()
    if spec is None:
        raise ConfigError(f"--strategy multiworker needs the cluster in TF_CONFIG, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}'")
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot join the TF_CONFIG cluster: {str(exc).splitlines()[0]}") from None
    workers = sum(len(hosts) for kind, hosts in spec["cluster"].items() if kind in ("chief", "worker"))
    task = f"{spec['task']['type']}-{spec['task']['index']}"
    return Distribution("multiworker", strategy, strategy.num_replicas_in_sync, workers, task, _chief(spec))


def mixed_policy(enabled: bool) -> str | None:
    """The Keras mixed-precision policy for this machine: float16 on a GPU, bfloat16 on a CPU."""
    if not enabled:
        return None
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def precision(policy: str | None):
    """Set Keras's global dtype policy for the block (None: leave it), then put it back."""
    if policy is None:
        yield
        return
    from zoo.backend import keras

    mp = keras().mixed_precision
    before = mp.global_policy()
    mp.set_global_policy(policy)
    try:
        yield
    finally:
        mp.set_global_policy(before)


def agree_on_oldest(distribution: Distribution):
    """For a cluster: a function that returns the smallest of the values every worker passes it."""
    if distribution.name != "multiworker":
        return None
    import tensorflow as tf

    strategy = distribution.strategy

    def agree(value: int) -> int:
        @tf.function
        def gather():
            mine = strategy.run(lambda: tf.constant([value], tf.int64))
            return strategy.gather(mine, axis=0)

        return int(tf.reduce_min(gather()))

    return agree


def cluster_failure(exc: BaseException) -> bool:
    """Whether an exception raised by fit means another process of the cluster went away."""
    import tensorflow as tf

    return isinstance(exc, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                            tf.errors.CancelledError, tf.errors.AbortedError))


def unreachable_tasks(spec: dict | None, timeout: float = 2.0) -> list[str]:
    """The other tasks of a TF_CONFIG cluster whose address no longer takes connections.

    A process that died has closed its gRPC port, so a plain TCP connect tells it from a
    worker that is alive (even one that is itself stopping on the same failure).
    """
    import socket

    if not spec:
        return []
    me = (spec["task"]["type"], int(spec["task"]["index"]))
    gone = []
    for kind in ("chief", "worker"):
        for index, address in enumerate(spec["cluster"].get(kind, [])):
            if (kind, index) == me:
                continue
            host, _, port = str(address).rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            except (OSError, ValueError):
                gone.append(f"{kind}-{index}")
    return gone


def cluster_error(exc: BaseException, resume_hint: str, spec: dict | None = None) -> ZooError:
    """One line for a cluster that fell apart: which task went away, and how to carry on.

    TensorFlow names the lost task when its heartbeat times out; when the failure is a reset
    connection instead (the peer's process died mid-transfer), the other tasks of `spec` are
    probed to tell which are gone.
    """
    import re

    text = " ".join(str(exc).split())
    tasks = []
    if "unhealthy" in text or "heartbeat" in text:
        tasks = sorted({f"{kind}-{index}" for kind, index in re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)",
                                                                        text.split("unhealthy", 1)[-1])})
    if not tasks:
        tasks = unreachable_tasks(spec)
    if tasks:
        reason = f"{', '.join(tasks)} of the cluster stopped responding"
    else:
        reason = f"the cluster failed ({type(exc).__name__}: {text[:200]})"
    return ZooError(f"{reason}; finished epochs are kept; restart every worker with: {resume_hint}")


@contextlib.contextmanager
def keras_fixes(model, distribution: Distribution):
    """Work around Keras 3 bugs that stop `fit` under MultiWorkerMirroredStrategy.

    Keras 3.x (checked with 3.15, keras-team/keras#20585) breaks twice under that strategy:
    building the model reduces a sample batch across workers (a PerReplica value it cannot
    convert), and each step's metrics are reduced along axis 0 although they are scalars.
    Both are replaced for the duration of the block: the build takes the local batch (only
    its shapes matter), and scalar metrics are averaged over the replicas.
    """
    if distribution.name != "multiworker":
        yield
        return
    import types

    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    strategy = distribution.strategy
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy_, reduction):
        if reduction in ("auto", "mean"):
            return tf.nest.map_structure(
                lambda v: strategy_.reduce("MEAN", v, axis=None)
                if isinstance(v, tf.distribute.DistributedValues) else v, values)
        return original(values, strategy_, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = next(it)
                break
        local = tf.nest.map_structure(
            lambda v: strategy.experimental_local_results(v)[0]
            if isinstance(v, tf.distribute.DistributedValues) else v, data_batch)
        with strategy.scope():
            self._symbolic_build(data_batch=local)

    trainer.reduce_per_replica = reduce_per_replica
    model._maybe_symbolic_build = types.MethodType(maybe_symbolic_build, model)
    try:
        yield
    finally:
        trainer.reduce_per_replica = original
        del model._maybe_symbolic_build
