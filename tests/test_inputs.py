"""Each input its own answer: long texts, missing files and file-like words, and a clean --json."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from zoo.cli import main

# 30 x "shares rose " = 360 bytes without a '/': one file name too long for the OS (errno 36)
LONG = "shares rose " * 30


@pytest.fixture
def one_png(tmp_path):
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 13:15] = 255  # a one
    Image.fromarray(image).save(tmp_path / "one.png")
    return str(tmp_path / "one.png")


def test_a_long_text_is_a_text_not_a_traceback(zoo_home, tmp_path):
    predicted = CliRunner().invoke(main, ["predict", "text_cnn.bbc_news", LONG, "--json"])
    assert predicted.exit_code == 0, predicted.output
    (answer,) = json.loads(predicted.stdout)
    assert answer["predictions"][0]["label"] == "business" and answer["words"] == 60
    assert answer["input"] == LONG
    explained = CliRunner().invoke(main, ["explain", "text_cnn.bbc_news", LONG, "-o", str(tmp_path / "e.html")])
    assert explained.exit_code == 0, explained.output
    assert "shares" in (tmp_path / "e.html").read_text(encoding="utf-8")
    # and to an image model, a long text is one line about the input, not errno 36
    image = CliRunner().invoke(main, ["predict", "lenet5.mnist", LONG])
    assert image.exit_code == 1
    assert image.stderr == f"Error: {LONG[:59]}…: no such image file; lenet5.mnist reads images, not text\n"


def test_a_missing_image_is_that_inputs_error_and_the_others_answer(zoo_home, one_png):
    result = CliRunner().invoke(main, ["predict", "lenet5.mnist", "gone.png", one_png, "--json"])
    assert result.exit_code == 1
    missing, found = json.loads(result.stdout)
    assert missing == {"input": "gone.png", "error": "gone.png: no such image file"}
    assert found["predictions"][0]["label"] == "1"
    assert result.stderr == "Error: gone.png: no such image file\n"


def test_a_word_that_looks_like_a_missing_file_is_said_to_be_read_as_text(zoo_home):
    result = CliRunner().invoke(main, ["predict", "text_cnn.bbc_news", "xyzzy/plugh.zq", "--json"])
    (answer,) = json.loads(result.stdout)  # "xyzzy", "plugh", "zq": three words the BBC never wrote
    assert result.exit_code == 1
    assert answer["error"] == ("xyzzy/plugh.zq (no such file, so read as a text): none of its 3 words is in the "
                               "model's vocabulary (19,998 words); nothing to predict from")
    result = CliRunner().invoke(main, ["predict", "text_cnn.bbc_news", "economy/", "--json"])
    (answer,) = json.loads(result.stdout)  # a folder that is not there; "economy" is a word it knows
    assert result.exit_code == 0 and answer["known_words"] == 1
    assert answer["warnings"] == ["economy/: no such file, so it was read as a text of 1 word"]
    assert result.stderr == "Warning: economy/: no such file, so it was read as a text of 1 word\n"
    plain = CliRunner().invoke(main, ["predict", "text_cnn.bbc_news", "Shares rose as profits beat forecasts",
                                      "--json"])
    assert plain.exit_code == 0 and json.loads(plain.stdout)[0]["warnings"] == []


def test_json_stdout_holds_the_document_alone_while_a_dataset_downloads(zoo_home, tmp_path, monkeypatch):
    """Keras prints "Downloading data from ..." to stdout when it fetches MNIST: with --json, that
    line goes to stderr and stdout stays one JSON document."""
    from zoo.backend import keras
    from zoo.data.datasets import load_mnist

    real = load_mnist()
    arrays = ((real.x_train[:100, :, :, 0], real.y_train[:100]), (real.x_test[:, :, :, 0], real.y_test))

    def load_data(path="mnist.npz"):
        print("Downloading data from https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz")
        return arrays

    monkeypatch.setattr(keras().datasets.mnist, "load_data", load_data)
    for name in ("ZOO_DATA_DIR", "ZOO_OFFLINE"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-cache"))
    result = CliRunner().invoke(main, ["evaluate", "lenet5.mnist", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # nothing else on stdout
    assert report["test_examples"] == 10_000
    assert result.stderr.startswith("Downloading data from https://")
    assert os.environ.get("ZOO_OFFLINE") is None
