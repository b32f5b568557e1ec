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


@pytest.mark.parametrize("name", pretrained.QUICK)
def test_the_shipped_tflite_is_the_shipped_weights(name, keras):
    """The quick path of zoo predict: LiteRT on the packaged float32 file, the same answers as
    Keras on the packaged weights (the export's own thresholds: 99.9% top-1, 1e-4)."""
    from zoo.data import load_dataset
    from zoo.runtime import load_runner

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
    code = ("import sys; from zoo.prediction import predict; (r,) = predict('lenet5.mnist', ['one.png'], top_k=1); "
            "print(r['predictions'][0]['label'], 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.split() == ["1", "False"]
    assert not (tmp_path / "saved_models").exists()  # nothing written for a prediction
