"""zoo.training.sharding: a batch split across CPU cores trains exactly as the whole batch would."""

from __future__ import annotations

import json

import numpy as np
import pytest

import zoo
from _processes import finish, zoo_process
from zoo.errors import ConfigError


def _batch(model, n: int, seed: int = 0):
    """`n` random inputs the model takes: token ids (with padding) or pixel values."""
    rng = np.random.default_rng(seed)
    shape = (n, *model.input_shape[1:])
    if "int" in str(model.inputs[0].dtype):
        ids = rng.integers(1, 50, size=shape)
        ids[:, shape[1] // 2:] = 0  # padding, as TextPreprocessing writes it
        return ids.astype(np.int32)
    return rng.random(shape, dtype=np.float32)


@pytest.mark.parametrize("name", zoo.list_models())
@pytest.mark.parametrize("shards,n", [(2, 5), (2, 1), (3, 2), (4, 9)])
def test_sharded_outputs_are_the_models_outputs(registry_model, name, shards, n):
    from zoo.training.sharding import Sharded

    model = registry_model(name)
    x = _batch(model, n)
    whole = np.asarray(model(x, training=False))
    sharded = np.asarray(Sharded(model, shards)(x, training=False))
    assert sharded.shape == whole.shape
    np.testing.assert_allclose(sharded, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [128, 7, 1])
def test_sharded_gradients_are_the_whole_batchs(keras, registry_model, n):
    import tensorflow as tf

    from zoo.training.sharding import Sharded

    model = registry_model("lenet5")
    x, y = _batch(model, n), np.arange(n) % 10
    loss = keras.losses.SparseCategoricalCrossentropy()

    def gradients(net):
        with tf.GradientTape() as tape:
            value = loss(y, net(x, training=True))
        return tape.gradient(value, model.trainable_variables)

    for whole, split in zip(gradients(model), gradients(Sharded(model, 2))):
        np.testing.assert_allclose(np.asarray(split), np.asarray(whole), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("batch,available,expected", [(128, 2, 2), (128, 16, 8), (32, 2, 2), (31, 2, 1),
                                                      (16, 4, 1), (1, 2, 1), (256, 1, 1)])
def test_shards_for_keeps_at_least_16_examples_a_shard(batch, available, expected):
    from zoo.training.sharding import shards_for

    assert shards_for(batch, available) == expected


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_zoo_cpu_shards_is_one_clear_line(monkeypatch, value):
    from zoo.training.sharding import configure

    monkeypatch.setenv("ZOO_CPU_SHARDS", value)
    with pytest.raises(ConfigError) as info:
        configure(gpu=False)
    assert str(info.value) == f"ZOO_CPU_SHARDS must be a whole number >= 1 (1: off), got {value!r}"


def test_one_shard_or_a_gpu_leaves_tensorflow_alone(monkeypatch):
    from zoo.training.sharding import configure

    monkeypatch.setenv("ZOO_CPU_SHARDS", "1")
    assert configure(gpu=False) == 1
    monkeypatch.delenv("ZOO_CPU_SHARDS")
    assert configure(gpu=True) == 1


def _train_in_a_fresh_process(home, name: str, shards: str) -> dict:
    finish(zoo_process(["train", "lenet", "--limit", "1000", "--epochs", "2", "--batch-size", "64",
                        "--name", name], home, ZOO_CPU_SHARDS=shards), timeout=180)
    return json.loads((home / name / "card.json").read_text())


def test_a_fresh_process_trains_with_the_shards_asked_for_and_repeats_itself(tmp_path):
    """The thread pools are set before TensorFlow starts, so the card's count is the one used;
    shards running side by side still give the same numbers for the same seed."""
    first, again = (_train_in_a_fresh_process(tmp_path, name, "3") for name in ("a", "b"))
    assert first["distribution"] == {"strategy": "default", "replicas": 1, "workers": 1, "cpu_shards": 3, "speed": {
        "shards": 3, "source": "ZOO_CPU_SHARDS", "why": "ZOO_CPU_SHARDS=3: set by you, not probed"}}
    assert first["metrics"]["test_accuracy"] > 0.5
    assert (again["metrics"]["test_accuracy"], again["metrics"]["test_loss"]) == \
        (first["metrics"]["test_accuracy"], first["metrics"]["test_loss"])
    off = _train_in_a_fresh_process(tmp_path, "off", "1")
    assert off["distribution"]["cpu_shards"] == 1
