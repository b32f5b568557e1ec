"""Distribution and mixed precision on CPU: the strategies, a real two-worker cluster, a lost worker."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from _processes import finish, wait_for_epochs, zoo_process
from zoo.cli import main
from zoo.training.distribute import _chief, cluster_error, make_distribution, tf_config
from zoo.errors import ConfigError
from zoo.inspect.evaluate import evaluate
from zoo.training.fit import train

MNIST = str(Path(os.environ["ZOO_DATA_DIR"]) / "mnist")
# a LeNet-5 run small enough for a test, large enough to land in a clear accuracy band
SMALL = ["--data", MNIST, "--limit", "3000", "--epochs", "3", "--batch-size", "64", "--seed", "0"]


# ---- TF_CONFIG and choosing a strategy (no TensorFlow runtime needed) ----


@pytest.mark.parametrize("raw, message", [
    ("{not json", "TF_CONFIG is not a cluster spec TensorFlow can use"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG is not a cluster spec TensorFlow can use"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     "TF_CONFIG is not a cluster spec TensorFlow can use"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "ps", "index": 0}}',
     "TF_CONFIG task type 'ps' is not supported: zoo trains with 'chief' and 'worker' tasks"),
])
def test_bad_tf_config_is_one_clear_error(monkeypatch, raw, message):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ConfigError) as err:
        tf_config()
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("cluster, task, chief", [
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, True),
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
])
def test_the_chief_is_the_chief_task_or_else_worker_0(monkeypatch, cluster, task, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert _chief(tf_config()) is chief


def test_strategy_errors(monkeypatch, zoo_home):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="unknown strategy 'ring'; choose one of auto, default, mirrored"):
        make_distribution("ring")
    result = CliRunner().invoke(main, ["train", "lenet", "--strategy", "multiworker"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --strategy multiworker needs the cluster in TF_CONFIG, e.g. TF_CONFIG='{\"cluster\": "
        "{\"worker\": [\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'\n")
    assert list(zoo_home.iterdir()) == []


def test_auto_is_one_device_without_gpus():
    dist = make_distribution("auto")
    assert (dist.name, dist.replicas, dist.workers, dist.is_chief) == ("default", 1, 1, True)


@pytest.mark.parametrize("text, worker_1_listens", [
    # the heartbeat timed out: TensorFlow names the task. Worker-1's port still takes connections
    # here, so only reading the message can name it (the probe below would find no one)
    ("Collective ops is aborted by: The following tasks are unhealthy (stopped sending heartbeats):\n"
     "/job:worker/replica:0/task:1\nThe tasks have crashed.", True),
    # the peer died mid-transfer: nothing names it, so its address is probed (its port is closed)
    ("{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_device_/job:worker/replica:0/task:0/"
     "device:CPU:0}} Collective ops is aborted by: recvmsg:Connection reset by peer", False),
])
def test_a_lost_worker_is_named_however_tensorflow_reports_it(text, worker_1_listens):
    import tensorflow as tf

    with socket.socket() as one, socket.socket() as two:  # worker-2 still listens; worker-1 as the case says
        for alive in (one, two):
            alive.bind(("127.0.0.1", 0))
            alive.listen()
        worker_1 = f"127.0.0.1:{one.getsockname()[1]}" if worker_1_listens else "127.0.0.1:1"
        spec = {"cluster": {"worker": [f"127.0.0.1:{_free_ports(1)[0]}", worker_1,
                                       f"127.0.0.1:{two.getsockname()[1]}"]},
                "task": {"type": "worker", "index": 0}}
        error = cluster_error(tf.errors.UnavailableError(None, None, text), "zoo train lenet5 --resume", spec)
    assert str(error) == ("worker-1 of the cluster stopped responding; finished epochs are kept; "
                          "restart every worker with: zoo train lenet5 --resume")


def test_a_cluster_failure_without_a_lost_worker_says_what_failed():
    import tensorflow as tf

    error = cluster_error(tf.errors.AbortedError(None, None, "collective\n  timed out"), "zoo train x --resume", None)
    assert str(error) == ("the cluster failed (AbortedError: collective timed out); finished epochs are kept; "
                          "restart every worker with: zoo train x --resume")


# ---- mixed precision ----


def test_mixed_precision_trains_in_bfloat16_and_saves_float32(zoo_home, keras):
    from ai_edge_litert.interpreter import Interpreter

    from zoo.deploy.exporter import export

    from _callbacks import Record

    options = dict(data=MNIST, limit=3000, epochs=2, batch_size=64, verbose=0)
    reference = train("lenet", name="fp32", **options)
    computed = []
    mixed = train("lenet", name="bf16", mixed_precision=True, **options,
                  callbacks=[Record(lambda trainer: {layer.name: layer.compute_dtype for layer in trainer.net.layers}
                                    | {"c1 output": trainer.net.get_layer("c1").output.dtype}, computed)])
    (dtypes,) = computed  # what the layers compute in while fit runs: bfloat16, the softmax head float32
    assert dtypes["c1"] == dtypes["c3"] == dtypes["c5"] == dtypes["c1 output"] == "bfloat16"
    assert dtypes["output"] == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # put back after training
    assert mixed.card["hyperparameters"]["mixed_precision"] == "mixed_bfloat16"
    assert reference.card["hyperparameters"]["mixed_precision"] is None
    assert abs(mixed.metrics["test_accuracy"] - reference.metrics["test_accuracy"]) < 0.03
    model = mixed.load_model()
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert evaluate("bf16")["test_accuracy"] == mixed.metrics["test_accuracy"]
    (report,) = export(mixed, format="tflite")
    interpreter = Interpreter(report["path"])
    assert {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()} <= {"float32", "int32"}


# ---- real strategies, each in processes of their own (a strategy must exist before TF starts) ----


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster(args, home: Path, workers: int = 2) -> list[subprocess.Popen]:
    hosts = [f"127.0.0.1:{port}" for port in _free_ports(workers)]
    return [zoo_process(args, home, TF_CONFIG=json.dumps({"cluster": {"worker": hosts},
                                                   "task": {"type": "worker", "index": i}}))
            for i in range(workers)]


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    """The same small LeNet-5 run on one device: the band the distributed runs must land in."""
    home = tmp_path_factory.mktemp("one")
    finish(zoo_process(["train", "lenet", *SMALL, "--name", "one"], home))
    return json.loads((home / "one" / "card.json").read_text())


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices(one_device, tmp_path):
    home = tmp_path / "runs"
    finish(zoo_process(["train", "lenet", *SMALL, "--strategy", "mirrored", "--name", "m"], home,
                 ZOO_LOGICAL_CPUS="2"))
    card = json.loads((home / "m" / "card.json").read_text())
    assert card["distribution"] == {"strategy": "mirrored", "replicas": 2, "workers": 1, "cpu_shards": 1, "speed": {
        "shards": 1, "source": "no-probe", "why": "not split: under a tf.distribute strategy each replica takes its batch whole"}}
    hp = card["hyperparameters"]
    assert (hp["batch_size"], hp["global_batch_size"]) == (64, 128)
    assert hp["scaled_lr"] == pytest.approx(2 * hp["lr"])
    assert card["metrics"]["test_accuracy"] > 0.9
    assert abs(card["metrics"]["test_accuracy"] - one_device["metrics"]["test_accuracy"]) < 0.03


@pytest.mark.slow
def test_two_worker_cluster_writes_one_run(one_device, tmp_path):
    home = tmp_path / "runs"
    chief, worker = _cluster(["train", "lenet", *SMALL, "--strategy", "multiworker"], home)
    out, _ = finish(chief)
    worker_out, _ = finish(worker)
    last = worker_out.strip().splitlines()[-1]
    assert last.startswith("worker-1: trained 3 epochs of lenet5 in ")
    assert last.endswith(" s; the chief writes the run folder")
    assert sorted(p.name for p in home.iterdir()) == ["lenet5"]  # the worker's resume state is gone
    card = json.loads((home / "lenet5" / "card.json").read_text())
    assert card["distribution"] == {"strategy": "multiworker", "replicas": 2, "workers": 2, "cpu_shards": 1, "speed": {
        "shards": 1, "source": "no-probe", "why": "not split: under a tf.distribute strategy each replica takes its batch whole"}}
    assert card["hyperparameters"]["global_batch_size"] == 128
    assert card["metrics"]["test_accuracy"] > 0.9
    assert abs(card["metrics"]["test_accuracy"] - one_device["metrics"]["test_accuracy"]) < 0.03
    assert evaluate(home / "lenet5")["test_accuracy"] == card["metrics"]["test_accuracy"]


@pytest.mark.slow
def test_a_lost_worker_stops_the_cluster_and_resume_completes(tmp_path):
    home = tmp_path / "runs"
    args = ["train", "lenet", "--data", MNIST, "--limit", "6000", "--epochs", "5", "--name", "lost",
            "--strategy", "multiworker"]
    chief, worker = _cluster(args, home)
    # two epochs logged: both workers have backed up epoch 1 (the second needs them both)
    wait_for_epochs(home, "lost", 2, chief, worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    lost_at = time.monotonic()
    _, err = chief.communicate(timeout=120)  # a hang fails the test here
    assert time.monotonic() - lost_at < 60
    assert chief.returncode == 1
    assert err.strip().splitlines()[-1] == (
        "Error: worker-1 of the cluster stopped responding; finished epochs are kept; restart every "
        "worker with: zoo train lenet5 --name lost --resume --strategy multiworker")
    assert not (home / "lost").exists()

    chief, worker = _cluster([*args, "--resume"], home)
    finish(chief)
    finish(worker)
    with (home / "lost" / "history.csv").open() as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1, 2, 3, 4]
    card = json.loads((home / "lost" / "card.json").read_text())
    assert card["training"]["resumed"] and 1 <= card["training"]["epochs_this_session"] <= 4  # not from 0
    assert card["metrics"]["test_accuracy"] > 0.9
    assert sorted(p.name for p in home.iterdir()) == ["lost"]
