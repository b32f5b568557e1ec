"""Pretrained weights: shipped, calibrated, named MODEL.TAG, and as good as their cards say."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from zoo import pretrained
from zoo.cli import main

SHIPPED = ["lenet5.mnist", "mnist_cnn.mnist", "mnist_cnn_dropout.mnist", "text_cnn.bbc_news"]
# the goals: test accuracy and ECE of each shipped model
GOALS = {"lenet5.mnist": (0.991, 0.015), "mnist_cnn.mnist": (0.992, 0.015),
         "mnist_cnn_dropout.mnist": (0.993, 0.015), "text_cnn.bbc_news": (0.98, 0.03)}


def test_the_package_ships_four_calibrated_models():
    assert [w.name for w in pretrained.shipped()] == SHIPPED
    assert zoo.list_models(pretrained=True) == ["lenet5", "mnist_cnn", "mnist_cnn_dropout", "text_cnn"]
    for weights in pretrained.shipped():
        card = weights.card
        accuracy, ece = GOALS[weights.name]
        assert card["metrics"]["test_accuracy"] >= accuracy and card["metrics"]["test_ece"] <= ece, weights.name
        assert card["calibration"]["method"] == "temperature" and card["seed"] == 0
        assert card["weights"]["rebuild"] == "python -m zoo.pretrained --data ../shared/data"
    assert sum(p.stat().st_size for p in pretrained.WEIGHTS_DIR.iterdir()) <= 12 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_model_scores_what_its_card_says(name, zoo_home):
    """On ../shared/data, within 0.0005: a few examples may round the other way on another CPU."""
    card = pretrained.find(name).card
    report = zoo.evaluate(name)
    assert report["test_accuracy"] == pytest.approx(card["metrics"]["test_accuracy"], abs=0.0005)
    assert (zoo_home / name / "model.keras").is_file()  # the run folder that the commands share


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
    assert result.stderr.endswith("); reinstall zoo, or rebuild it: python -m zoo.pretrained --data ../shared/data\n")
    assert result.stderr.count("\n") == 1


def test_a_run_may_not_take_a_pretrained_name(zoo_home):
    with pytest.raises(zoo.ConfigError, match="^'lenet5.mnist' names a pretrained model; choose another --name$"):
        zoo.train("lenet", name="lenet5.mnist", epochs=1, limit=200, verbose=0)


@pytest.mark.slow
def test_predict_and_export_take_the_pretrained_name(zoo_home, tmp_path):
    from PIL import Image

    from zoo.data import load_dataset
    from zoo.digits import photograph

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
