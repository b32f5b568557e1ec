"""Pretrained weights: shipped, calibrated, named MODEL.TAG, and as good as their cards say."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import _oracles as oracles
import zoo
from zoo.models import pretrained
from zoo.cli import main

SHIPPED = ["lenet5.mnist", "mnist_cnn.mnist", "mnist_cnn_dropout.mnist", "text_cnn.bbc_news"]
# the issues' goals: test accuracy and ECE of each shipped model. mnist_cnn's was 99.2% for the default
# recipe (99.28%); trained for real handwriting (#29: >= 99.1% each) it reached 99.18% in 20 epochs,
# 99.33% in 40
GOALS = {"lenet5.mnist": (0.991, 0.015), "mnist_cnn.mnist": (0.991, 0.015),
         "mnist_cnn_dropout.mnist": (0.993, 0.015), "text_cnn.bbc_news": (0.98, 0.03)}


def test_the_package_ships_four_calibrated_models():
    assert [w.name for w in pretrained.shipped()] == SHIPPED
    assert zoo.list_models(pretrained=True) == ["lenet5", "mnist_cnn", "mnist_cnn_dropout", "text_cnn"]
    for weights in pretrained.shipped():
        card = weights.card
        accuracy, ece = GOALS[weights.name]
        assert card["metrics"]["test_accuracy"] >= accuracy and card["metrics"]["test_ece"] <= ece, weights.name
        assert card["calibration"]["method"] == "temperature" and card["seed"] == 0
        # the shard count is part of the recipe: float sums in another order give other weights
        shards = card["distribution"]["cpu_shards"]
        assert card["weights"]["rebuild"] == f"ZOO_CPU_SHARDS={shards} python tools/rebuild_weights.py --data ../shared/data"
    assert sum(p.stat().st_size for p in pretrained.WEIGHTS_DIR.iterdir()) <= 12 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_model_scores_what_its_card_says(name, zoo_home):
    """The shipped weights, run on ../shared/data: their accuracy and ECE are the card's (within
    0.0005: a few examples may round the other way on another CPU), and meet the goals."""
    from zoo.data.recorded import run_dataset

    card = pretrained.find(name).card
    report = zoo.evaluate(name)
    assert report["test_accuracy"] == pytest.approx(card["metrics"]["test_accuracy"], abs=0.0005)
    assert (zoo_home / name / "model.keras").is_file()  # the run folder that the commands share
    prep, dataset = run_dataset(zoo_home / name, card)
    outputs = zoo.load_model(zoo_home / name).predict(prep(dataset.x_test), batch_size=1024, verbose=0)
    probs = np.concatenate([1 - outputs, outputs], 1) if outputs.shape[1] == 1 else outputs.astype(np.float64)
    ece = oracles.ece(probs, dataset.y_test)
    assert ece == pytest.approx(card["metrics"]["test_ece"], abs=0.0005)
    accuracy_goal, ece_goal = GOALS[name]
    assert (probs.argmax(1) == dataset.y_test).mean() >= accuracy_goal and ece <= ece_goal


def test_create_model_with_weights_is_the_trained_model(keras):
    model = zoo.create_model("lenet", weights="mnist")
    again = zoo.create_model("lenet5", weights="mnist")
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
    fresh = zoo.create_model("lenet5")
    assert not np.allclose(model.get_weights()[0], fresh.get_weights()[0])
    assert pretrained.resolve("lenet", "mnist").card["labels"] == [str(i) for i in range(10)]


@pytest.mark.parametrize("args, message", [
    (dict(weights="imagenet"), "lenet5 has no pretrained weights 'imagenet'; it has: mnist"),
    (dict(weights="mnist", num_classes=3),
     "lenet5.mnist was trained with num_classes=10; num_classes=3 cannot take its weights "
     "(drop weights= to build it untrained)"),
])
def test_weights_the_model_cannot_take_are_config_errors(args, message):
    with pytest.raises(zoo.ConfigError) as err:
        zoo.create_model("lenet5", **args)
    assert str(err.value) == message
    with pytest.raises(zoo.ConfigError, match="image_cnn has no pretrained weights 'x'; it has: none"):
        zoo.create_model("image_cnn", weights="x")


def test_a_damaged_weights_file_is_one_line(tmp_path, monkeypatch):
    copy = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS_DIR, copy)
    damaged = copy / "lenet5.mnist.weights.h5"
    damaged.write_bytes(damaged.read_bytes()[:5000])
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", copy)
    result = CliRunner().invoke(main, ["summary", "lenet5.mnist"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {damaged} is damaged (")
    assert result.stderr.endswith("); reinstall zoo, or rebuild it: ZOO_CPU_SHARDS=2 python tools/rebuild_weights.py "
                                  "--data ../shared/data\n")
    assert result.stderr.count("\n") == 1


def test_arguments_equal_to_the_trained_ones_are_no_change(keras):
    plain = zoo.create_model("lenet5", weights="mnist")
    x = np.random.default_rng(1).random((3, 28, 28, 1), dtype=np.float32)
    for same in (dict(input_shape=(28, 28, 1)), dict(input_shape=[28, 28, 1]), dict(classic=False),
                 dict(num_classes=10)):
        np.testing.assert_array_equal(zoo.create_model("lenet5", weights="mnist", **same).predict(x, verbose=0),
                                      plain.predict(x, verbose=0))
    with pytest.raises(zoo.ConfigError, match=r"^lenet5.mnist was trained with classic=False; classic=True cannot "):
        zoo.create_model("lenet5", weights="mnist", classic=True)


@pytest.fixture
def weights_copy(tmp_path, monkeypatch):
    copy = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS_DIR, copy)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", copy)
    return copy


def test_a_missing_weights_file_says_reinstall_rather_than_hiding_the_tag(weights_copy):
    (weights_copy / "lenet5.mnist.weights.h5").unlink()
    assert zoo.list_models(pretrained=True) == ["lenet5", "mnist_cnn", "mnist_cnn_dropout", "text_cnn"]
    with pytest.raises(zoo.DamagedFileError) as err:
        zoo.create_model("lenet5", weights="mnist")
    assert str(err.value) == (f"lenet5.mnist: lenet5.mnist.weights.h5 is missing from the install in {weights_copy}; "
                              "reinstall zoo (pip install --force-reinstall zoo), or rebuild it: ZOO_CPU_SHARDS=2 "
                              "python tools/rebuild_weights.py --data ../shared/data")
    result = CliRunner().invoke(main, ["summary", "lenet5.mnist"])
    assert (result.exit_code, result.stderr) == (1, f"Error: {err.value}\n")


def test_a_missing_packaged_tflite_is_said_before_the_slow_path(weights_copy, zoo_home, tmp_path):
    from PIL import Image

    (weights_copy / "lenet5.mnist.tflite").unlink()
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 13:15] = 255  # a one
    Image.fromarray(image).save(tmp_path / "one.png")
    result = CliRunner().invoke(main, ["predict", "lenet5.mnist", str(tmp_path / "one.png"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["predictions"][0]["label"] == "1"
    assert result.stderr == (f"Warning: lenet5.mnist: its packaged LiteRT file lenet5.mnist.tflite is missing "
                             f"(reinstall zoo to get it back); predicting with the Keras model instead, which imports "
                             f"TensorFlow and writes {zoo_home / 'lenet5.mnist'}/\n")


def test_a_damaged_packaged_sidecar_says_reinstall(weights_copy, tmp_path):
    from PIL import Image

    sidecar = weights_copy / "lenet5.mnist.tflite.json"
    sidecar.write_text(sidecar.read_text()[:40])
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 13:15] = 255
    Image.fromarray(image).save(tmp_path / "one.png")
    result = CliRunner().invoke(main, ["predict", "lenet5.mnist", str(tmp_path / "one.png")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {sidecar} is damaged (truncated or not JSON: ")
    assert result.stderr.endswith("); reinstall zoo\n")


def test_a_run_may_not_take_a_pretrained_name(zoo_home):
    with pytest.raises(zoo.ConfigError, match="^'lenet5.mnist' names a pretrained model; choose another --name$"):
        zoo.train("lenet", name="lenet5.mnist", epochs=1, limit=200, verbose=0)


@pytest.mark.slow
def test_predict_and_export_take_the_pretrained_name(zoo_home, tmp_path):
    from PIL import Image

    from zoo.data.datasets import load_dataset
    from zoo.data.digits import photograph

    mnist = load_dataset("mnist", kind="image")
    photo = tmp_path / "seven.png"
    Image.fromarray(photograph(mnist.x_test[0, :, :, 0], seed=0)).save(photo)
    result = CliRunner().invoke(main, ["predict", "lenet5.mnist", str(photo), "--json"])
    assert result.exit_code == 0, result.output
    (answer,) = json.loads(result.stdout)
    assert answer["predictions"][0]["label"] == "7" and answer["predictions"][0]["probability"] > 0.9
    exported = CliRunner().invoke(main, ["export", "lenet5.mnist", "--target", "edgetpu"])
    assert exported.exit_code == 0, exported.output
    assert (zoo_home / "lenet5.mnist" / "export" / "model_int8_edgetpu.tflite").is_file()
    listed = json.loads(CliRunner().invoke(main, ["list", "lenet*", "--json"]).stdout)
    assert [p["name"] for p in listed[0]["pretrained"]] == ["lenet5.mnist"]


@pytest.mark.parametrize("name", pretrained.QUICK)
def test_the_shipped_tflite_is_the_shipped_weights(name, keras):
    """The quick path of zoo predict: LiteRT on the packaged float32 file, the same answers as
    Keras on the packaged weights (the export's own thresholds: 99.9% top-1, 1e-4)."""
    from zoo.data.datasets import load_dataset
    from zoo.deploy.runtime import load_runner

    weights = pretrained.find(name)
    x = load_dataset("mnist", kind="image").x_test[:2000].astype(np.float32) / 255
    keras_probs = zoo.create_model(weights.model, weights=weights.tag).predict(x, verbose=0)
    litert_probs = load_runner(weights.tflite_file)(x)
    assert (keras_probs.argmax(1) == litert_probs.argmax(1)).mean() >= 0.999
    assert np.abs(keras_probs - litert_probs).max() <= 1e-4


def test_predict_with_a_pretrained_name_imports_no_tensorflow(tmp_path):
    import subprocess
    import sys

    from PIL import Image

    image = np.zeros((28, 28), np.uint8)
    image[4:24, 13:15] = 255  # a one
    Image.fromarray(image).save(tmp_path / "one.png")
    code = ("import sys; from zoo.deploy.predict import predict; (r,) = predict('lenet5.mnist', ['one.png'], top_k=1); "
            "print(r['predictions'][0]['label'], 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.split() == ["1", "False"]
    assert not (tmp_path / "saved_models").exists()  # nothing written for a prediction
