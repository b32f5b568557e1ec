"""zoo.training.probe: the batch split is chosen by measuring, once per CPU, and the card says why."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from _processes import finish, zoo_process
from zoo.errors import ConfigError
from zoo.training import probe


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOO_CPU_SHARDS", raising=False)
    monkeypatch.setattr(probe, "cpu_cores", lambda: 2)
    return tmp_path / "cache" / "speed.json"


def test_the_users_switch_wins_over_the_cache_and_the_probe(cache, monkeypatch):
    cache.parent.mkdir()
    cache.write_text(json.dumps({probe.machine_key(): {"lenet5": {"shards": 1, "why": "probed: 2 shards 0.90x -> off"}}}))
    monkeypatch.setenv("ZOO_CPU_SHARDS", "3")
    assert probe.decide("lenet5") == probe.Speed(3, "ZOO_CPU_SHARDS", "ZOO_CPU_SHARDS=3: set by you, not probed")
    monkeypatch.setenv("ZOO_CPU_SHARDS", "two")
    with pytest.raises(ConfigError, match=r"^ZOO_CPU_SHARDS must be a whole number >= 1 \(1: off\), got 'two'$"):
        probe.decide("lenet5")


def test_a_cached_choice_is_read_per_model_and_no_probe_ignores_it(cache):
    cache.parent.mkdir()
    cache.write_text(json.dumps({probe.machine_key(): {"lenet5": {
        "shards": 1, "why": "probed: 2 shards 0.90x -> off", "date": "2026-12-03", "ms_per_step": {"1": 9.0, "2": 10.0}}}}))
    cached = probe.decide("lenet5")
    assert (cached.shards, cached.source, cached.measured) == (1, "cache", {1: 9.0, 2: 10.0})
    assert cached.why == "probed: 2 shards 0.90x -> off (cached 2026-12-03)" and not cached.pending
    assert probe.decide("mnist_cnn").pending  # another model on the same CPU is probed for itself
    assert probe.decide("lenet5", probe=False) == probe.Speed(
        2, "no-probe", "--no-probe: the fixed default, 2 shards (one per core)")


@pytest.mark.parametrize("damage", ["{not json", "[]", '{"%s": {"lenet5": {"shards": "two"}}}', '{"%s": []}',
                                    '{"%s": {"lenet5": {"shards": 2, "ms_per_step": {"one": 3}}}}',
                                    '{"%s": {"lenet5": {"shards": true}}}', '{"%s": {"lenet5": 2}}'])
def test_a_damaged_cache_is_probed_again(cache, damage):
    cache.parent.mkdir()
    cache.write_text(damage.replace("%s", probe.machine_key()))
    assert probe.decide("lenet5").pending


def test_another_cpu_or_tensorflow_does_not_reuse_a_choice(cache, monkeypatch):
    cache.parent.mkdir()
    cache.write_text(json.dumps({"AMD EPYC | 2 cores | avx2 fma | tensorflow 2.20.0": {"lenet5": {"shards": 1}}}))
    assert probe.decide("lenet5").pending
    assert probe.machine_key().endswith("tensorflow " + __import__("tensorflow").__version__)


@pytest.mark.parametrize("damage", ['{"%s": []}', '{"%s": "2 shards"}', "[]", "{not json"])
def test_a_choice_is_remembered_over_a_damaged_cache(cache, damage):
    cache.parent.mkdir()
    cache.write_text(damage.replace("%s", probe.machine_key()))
    probe._remember("lenet5, batch 128", probe.Speed(2, "probe", "probed: 2 shards 1.35x -> on", {1: 24.0, 2: 17.8}))
    assert probe.decide("lenet5, batch 128") == probe.Speed(
        2, "cache", f"probed: 2 shards 1.35x -> on (cached {__import__('datetime').date.today().isoformat()})",
        {1: 24.0, 2: 17.8})


def test_a_failing_probe_keeps_the_split_and_remembers_nothing(cache, keras):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])

    def broken(y, p):
        raise ValueError("no such loss")

    with pytest.warns(UserWarning, match=r"the speed probe failed \(ValueError: no such loss\); training with 2 shards"):
        speed = probe.probe("tiny, batch 32", probe.decide("tiny, batch 32"), 2, model,
                            np.zeros((32, 4), np.float32), np.zeros((32, 2), np.float32), broken)
    assert speed == probe.Speed(2, "no-probe", "the probe failed (ValueError): kept 2 shards")
    assert not cache.exists()


def test_measure_times_each_split_and_leaves_the_model_as_it_was(keras):
    """A model with batch statistics and dropout: a training-mode step moves both, and the probe
    must put them back (the same seed must train the same whether or not this run probed)."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(0.5)(layers.Flatten()(x))
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
    before = [np.array(v) for v in model.variables]
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 8, 8, 1), dtype=np.float32), np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)]
    measured = probe.measure(model, x, y, keras.losses.CategoricalCrossentropy(), (1, 2), budget=1.0)
    assert sorted(measured) == [1, 2] and all(ms > 0 for ms in measured.values())
    for a, b in zip(before, model.variables):
        np.testing.assert_array_equal(a, np.array(b))
    moved = model(x, training=True) is not None and any(
        not np.array_equal(a, np.array(b)) for a, b in zip(before, model.variables))
    assert moved  # the oracle: a training-mode call does change them, so the check above can fail


def _train(home, cache, name, *more, **env):
    out, _ = finish(zoo_process(["train", "lenet", "--limit", "1024", "--epochs", "1", "--no-calibrate",
                                 "--val-split", "0", "--name", name, *more], home,
                                ZOO_CACHE_DIR=str(cache), **env), timeout=240)
    return json.loads((home / name / "card.json").read_text())["distribution"]["speed"]


@pytest.mark.slow
@pytest.mark.skipif(probe.cpu_cores() != 2, reason="written for the project's 2-core machines")
def test_the_first_training_probes_and_the_next_reads_the_answer(tmp_path):
    env = {"ZOO_CPU_SHARDS": ""}  # as a user's shell has it: unset
    first = _train(tmp_path, tmp_path / "cache", "first", **env)
    assert first["source"] == "probe" and sorted(first["ms_per_step"]) == ["1", "2"]
    verdict = re.fullmatch(r"probed: 2 shards (\d+\.\d\d)x -> (on|off)", first["why"])
    assert verdict, first["why"]
    ratio = first["ms_per_step"]["1"] / first["ms_per_step"]["2"]  # rounded to 3 places on the card
    assert float(verdict[1]) == pytest.approx(ratio, abs=0.01)
    assert verdict[2] == ("on" if float(verdict[1]) >= probe.MARGIN else "off")
    assert first["shards"] == (2 if verdict[2] == "on" else 1)
    cached = json.loads((tmp_path / "cache" / "speed.json").read_text())
    (key,) = cached
    assert key.startswith(probe.cpu().model) and cached[key]["lenet5, batch 128"]["shards"] == first["shards"]
    again = _train(tmp_path, tmp_path / "cache", "again", **env)
    assert (again["source"], again["shards"]) == ("cache", first["shards"])
    assert again["why"].startswith(first["why"] + " (cached ")
    fixed = _train(tmp_path, tmp_path / "cache", "fixed", "--no-probe", **env)
    assert fixed == {"shards": 2, "source": "no-probe", "why": "--no-probe: the fixed default, 2 shards (one per core)"}
