"""Bring your own model: a Keras model zoo never saw, through every command, verified as zoo's own.

The models are built here with the functional API, trained for a moment on real MNIST digits
(ZOO_DATA_DIR), and saved as a user would: `.keras`, `.h5`, a SavedModel folder. Expected values
come from outside the code under test: hashlib for the sha256, the file's own bytes for "never
written to", the model's own Keras predictions for agreement.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli import main


def zoo(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="zoo")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """2,000 training and 500 test MNIST digits as the user's own .npz (x, y, x_test, y_test)."""
    from zoo.data.datasets import load_mnist

    mnist = load_mnist()
    folder = tmp_path_factory.mktemp("digits")
    path = folder / "digits.npz"
    np.savez(path, x=mnist.x_train[:2000, ..., 0], y=mnist.y_train[:2000],
             x_test=mnist.x_test[:500, ..., 0], y_test=mnist.y_test[:500])
    return path, mnist


@pytest.fixture(scope="module")
def branchy(tmp_path_factory, digits):
    """A functional model with the four things the issue names: a Rescaling layer inside, two
    branches joined by Add, BatchNormalization, a depthwise-separable block; trained 3 epochs."""
    from zoo.backend import keras

    k = keras()
    k.utils.set_random_seed(0)
    i = k.Input((28, 28, 1), name="pixels")
    x = k.layers.Rescaling(1 / 255, name="scale")(i)
    x = k.layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(x)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.ReLU(name="relu")(x)
    d = k.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    d = k.layers.Conv2D(8, 1, name="pointwise")(d)
    x = k.layers.Add(name="join")([x, d])
    x = k.layers.MaxPooling2D(2, name="pool")(x)
    x = k.layers.Flatten(name="flat")(x)
    o = k.layers.Dense(10, activation="softmax", name="head")(x)
    model = k.Model(i, o, name="branchy")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    _, mnist = digits
    # 8,000 digits, 3 epochs: 96% on the test digits; two epochs of 2,000 left it at 86%, with
    # probabilities so flat that int8's rounding flipped 2% of its answers
    model.fit(mnist.x_train[:8000].astype("float32"), mnist.y_train[:8000], epochs=3, batch_size=64, verbose=0)
    folder = tmp_path_factory.mktemp("mine")
    model.save(folder / "branchy.keras")
    return folder / "branchy.keras", model


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


# ---------------------------------------------------------------- the whole way, on one file


@pytest.mark.slow
def test_a_model_zoo_never_saw_exports_to_int8_edgetpu_and_micro_verified(branchy, digits, zoo_home):
    path, model = branchy
    data, mnist = digits
    before = _bytes(path)
    for args in (["--quantize", "int8"], ["--target", "edgetpu"], ["--target", "micro"]):
        result = zoo("export", path, "--data", data, "--calibration-samples", "200", *args)
        assert result.exit_code == 0, result.output
    assert _bytes(path) == before  # the user's file is only read
    run = zoo_home / "branchy"
    report = json.loads((run / "export" / "export.json").read_text())
    keras_accuracy = float((model.predict(mnist.x_test[:500].astype("float32"), verbose=0).argmax(1)
                            == mnist.y_test[:500]).mean())
    assert report["keras_accuracy"] == pytest.approx(keras_accuracy)
    kinds = {(a["format"], a["quantize"], a["target"]) for a in report["artifacts"]}
    assert kinds == {("tflite", "int8", None), ("tflite", "int8", "edgetpu"), ("micro", "int8", "micro")}
    for artifact in report["artifacts"]:
        assert artifact["examples"] == 500
        assert artifact["top1_agreement"] >= 0.99
        assert abs(artifact["accuracy"] - keras_accuracy) <= 0.01, artifact
    card = json.loads((run / "card.json").read_text())
    assert card["source"]["sha256"] == hashlib.sha256(before).hexdigest()
    assert card["source"]["path"] == str(path.resolve())
    # the model scales its own pixels: read from it, not guessed
    assert card["preprocessing"]["scale"] == 1.0 and card["preprocessing"]["normalization"]["stated"] is True
    assert "Rescaling" in card["preprocessing"]["normalization"]["reason"]
    assert card["labels"] == [str(i) for i in range(10)] and card["dataset"]["spec"] == str(data)
    sidecar = json.loads((run / "export" / "model_micro.tflite.json").read_text())
    assert sidecar["labels"] == card["labels"] and sidecar["preprocessing"] == card["preprocessing"]
    assert (run / "export" / "model_micro.cc").is_file()
    # later commands name it as a run
    evaluated = zoo("evaluate", "branchy", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["test_accuracy"] == pytest.approx(keras_accuracy)


def test_without_data_float_is_verified_on_random_inputs_and_int8_is_refused(branchy, zoo_home):
    path, model = branchy
    result = zoo("export", path, "--format", "onnx")
    assert result.exit_code == 0, result.output
    assert "verified on 256 random inputs (random pixels 0-255); no data given" in result.output
    report = json.loads((zoo_home / "branchy" / "export" / "export.json").read_text())
    assert report["artifacts"][0]["accuracy"] is None and report["artifacts"][0]["top1_agreement"] >= 0.999
    for args in (["--quantize", "int8"], ["--target", "edgetpu"], ["--target", "micro"]):
        refused = zoo("export", path, *args)
        assert refused.exit_code == 2  # a usage mistake
        assert refused.output.strip().splitlines()[-1].endswith(
            "is calibrated on real examples, and branchy has no data: give --data SPEC (a dataset, an .npz with x "
            "and y, or a folder of images)"), refused.output


def test_predict_and_explain_show_the_stated_labels_and_preprocessing(branchy, digits, zoo_home, tmp_path):
    from PIL import Image

    path, model = branchy
    _, mnist = digits
    digit = tmp_path / "seven.png"
    index = int(np.flatnonzero(mnist.y_test == 7)[0])
    Image.fromarray(mnist.x_test[index, ..., 0]).save(digit)
    labels = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    result = zoo("predict", path, digit, "--labels", ",".join(labels), "--json")
    assert result.exit_code == 0, result.output
    (answer,) = json.loads(result.output)
    keras_top = labels[int(model.predict(mnist.x_test[index:index + 1].astype("float32"), verbose=0).argmax())]
    assert answer["predictions"][0]["label"] == keras_top
    page = zoo("explain", "branchy", digit, "--json")
    assert page.exit_code == 0, page.output
    assert json.loads(page.output)["labels"] == labels


def test_a_bare_model_says_its_labels_are_indices_and_its_scaling_assumed(zoo_home, tmp_path, keras):
    i = keras.Input((8, 8, 1))
    o = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(i))
    keras.Model(i, o).save(tmp_path / "plain.keras")
    picture = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8) + 90).save(picture)
    result = zoo("predict", tmp_path / "plain.keras", picture, "--json")
    assert result.exit_code == 0, result.output
    (answer,) = json.loads(result.stdout)
    assert {p["label"] for p in answer["predictions"]} == {"0", "1", "2"}
    assert answer["warnings"] == [
        "plain: preprocessing not stated, pixels assumed scaled to 0-1 (pixel / 255); say it with --normalize "
        "scale|none|MEAN,STD",
        "plain: no labels given, so classes are shown as indices; name them with --labels FILE|a,b,c",
    ]
    wrong = zoo("predict", tmp_path / "plain.keras", picture, "--labels", "a,b")
    assert wrong.exit_code == 1 and wrong.stderr.strip() == (
        "Error: --labels gives 2 labels, but the model's output has 3 classes")
    stated = zoo("export", tmp_path / "plain.keras", "--normalize", "127.5,127.5")
    assert stated.exit_code == 0, stated.output
    card = json.loads((zoo_home / "plain" / "card.json").read_text())
    # x = (pixel - 127.5) / 127.5, by hand: scale 1/127.5, offset -1
    assert card["preprocessing"]["scale"] == pytest.approx(1 / 127.5) and card["preprocessing"]["offset"] == -1.0


# ---------------------------------------------------------------- other file forms


def test_an_h5_file_and_a_savedmodel_folder_export_to_tflite_and_onnx(branchy, zoo_home, tmp_path):
    path, model = branchy
    h5 = tmp_path / "legacy.h5"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(h5)
    result = zoo("export", h5, "--format", "tflite")
    assert result.exit_code == 0, result.output
    saved = tmp_path / "served"
    model.export(str(saved), verbose=False)
    for fmt in ("tflite", "onnx"):
        result = zoo("export", saved, "--format", fmt)
        assert result.exit_code == 0, result.output
    report = json.loads((zoo_home / "served" / "export" / "export.json").read_text())
    assert {a["format"] for a in report["artifacts"]} == {"tflite", "onnx"}
    assert all(a["top1_agreement"] >= 0.999 for a in report["artifacts"])
    card = json.loads((zoo_home / "served" / "card.json").read_text())
    assert card["source"]["format"] == "saved_model" and (zoo_home / "served" / "saved_model").is_dir()


CUSTOM = '''
import keras


class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2.0
'''


def test_a_custom_layer_needs_custom_objects_and_loads_with_them(zoo_home, tmp_path, monkeypatch, keras):
    import importlib.util

    module_file = tmp_path / "my_layers.py"
    module_file.write_text(CUSTOM)
    spec = importlib.util.spec_from_file_location("my_layers", module_file)
    my_layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(my_layers)
    i = keras.Input((4,))
    o = keras.layers.Dense(2, activation="softmax")(my_layers.Doubler(name="double")(i))
    keras.Model(i, o, name="doubled").save(tmp_path / "doubled.keras")
    monkeypatch.chdir(tmp_path)
    refused = zoo("export", "doubled.keras")
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        "Error: cannot load doubled.keras: it uses the class 'Doubler', which is not part of Keras; name its module "
        "with --custom-objects module:Doubler (in Python: custom_objects={'Doubler': Doubler})")
    assert not (zoo_home / "doubled").exists()
    result = zoo("export", "doubled.keras", "--custom-objects", f"{module_file}:Doubler")
    assert result.exit_code == 0, result.output
    # the run remembers the class: a later command by name loads it again
    again = zoo("export", "doubled", "--format", "onnx")
    assert again.exit_code == 0, again.output


# ---------------------------------------------------------------- refusals, one line each


def test_an_op_the_micro_target_cannot_run_is_named_before_converting(zoo_home, tmp_path, keras):
    import tensorflow as tf

    import zoo as api
    from zoo.errors import ExportError

    class Spectrum(keras.layers.Layer):
        def call(self, x):
            return tf.abs(tf.signal.rfft(x[..., 0]))

    i = keras.Input((64, 1))
    o = keras.layers.Dense(3, activation="softmax", name="out")(Spectrum(name="spectrum")(i))
    model = keras.Model(i, o, name="audio")
    rng = np.random.default_rng(0)
    data = tmp_path / "signals.npz"
    np.savez(data, x=rng.standard_normal((60, 64, 1)).astype("float32"), y=np.arange(60) % 3)
    with pytest.raises(ExportError) as caught:
        api.export(model, target="micro", data=str(data))
    assert str(caught.value) == ("layer 'spectrum' (RFFT2D) has no TFLite Micro kernel: use --target cpu, or "
                                 "replace the layer")
    assert not (zoo_home / "audio" / "export").exists()
    # the same model runs where the op has a kernel: float LiteRT
    reports = api.export(model, format="tflite", data=str(data))
    assert reports[0]["top1_agreement"] >= 0.999 and reports[0]["examples"] == 12


@pytest.mark.parametrize("content, reason", [
    (b"PK\x03\x04" + b"\x00" * 40, "not a Keras model file (a .keras file is a zip archive)"),
    (None, "junk"),
])
def test_a_damaged_keras_file_is_one_line_and_nothing_is_written(zoo_home, tmp_path, content, reason):
    path = tmp_path / "broken.keras"
    if content is None:  # a real zip, of junk
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a model")
    else:
        path.write_bytes(content)
    result = zoo("export", path)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot load {path}: "), result.output
    if content is not None:
        assert lines[0].endswith(reason)
    assert list(zoo_home.iterdir()) == []


def test_shapes_and_inputs_zoo_cannot_take_are_one_line(zoo_home, tmp_path, keras):
    i = keras.Input((None, None, 1))
    o = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(i))
    keras.Model(i, o, name="anysize").save(tmp_path / "anysize.keras")
    result = zoo("export", tmp_path / "anysize.keras")
    assert result.exit_code == 2 and result.output.strip() == (
        "Error: model 'anysize' takes inputs of shape ?×?×1: zoo needs a fixed size (build it with "
        "keras.Input(shape=...) without None)")
    a, b = keras.Input((4,)), keras.Input((4,))
    o = keras.layers.Dense(2, activation="softmax")(keras.layers.Concatenate()([a, b]))
    keras.Model([a, b], o, name="twoin").save(tmp_path / "twoin.keras")
    result = zoo("export", tmp_path / "twoin.keras")
    assert result.exit_code == 2 and result.output.strip() == (
        "Error: model 'twoin' takes 2 inputs; zoo takes models with one input (join them into one tensor)")
    assert list(zoo_home.iterdir()) == [] or all(p.name.startswith(".") for p in zoo_home.iterdir())


# ---------------------------------------------------------------- a text model with its own vocabulary


def test_a_conv1d_text_model_with_its_own_vocabulary(zoo_home, tmp_path, keras):
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    i = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(len(words) + 2, 8, name="embed")(i)
    x = keras.layers.Conv1D(8, 3, activation="relu", name="conv")(x)
    o = keras.layers.Dense(2, activation="softmax", name="out")(keras.layers.GlobalMaxPooling1D()(x))
    model = keras.Model(i, o, name="words")
    model.save(tmp_path / "words.keras")
    rng = np.random.default_rng(0)
    texts = np.array([" ".join(rng.choice(words, 6)) for _ in range(80)])
    data = tmp_path / "texts.npz"
    np.savez(data, x=texts, y=np.arange(80) % 2)
    result = zoo("export", tmp_path / "words.keras", "--vocab", vocab, "--data", data, "--labels", "even,odd")
    assert result.exit_code == 0, result.output
    run = zoo_home / "words"
    assert (run / "vocab.txt").read_text().split("\n")[:3] == ["", "[UNK]", "alpha"]
    # token ids as Keras's own TextVectorization gives them for that vocabulary (the oracle)
    layer = keras.layers.TextVectorization(vocabulary=words, output_sequence_length=12)
    from zoo.data.preprocess import from_spec

    card = json.loads((run / "card.json").read_text())
    ours = from_spec(card["preprocessing"], run)(np.array(["gamma alpha unknown"], dtype=object))
    np.testing.assert_array_equal(ours, np.asarray(layer(["gamma alpha unknown"])))
    answer = zoo("predict", "words", "alpha beta gamma", "--json")
    assert answer.exit_code == 0, answer.output
    assert {p["label"] for p in json.loads(answer.output)[0]["predictions"]} == {"even", "odd"}


# ---------------------------------------------------------------- train your own


@pytest.mark.slow
def test_zoo_train_fine_tunes_a_users_model(branchy, digits, zoo_home):
    import zoo as api

    path, model = branchy
    data, mnist = digits
    run = api.train(str(path), data=str(data), epochs=1, batch_size=64, verbose=0)
    assert run.path == zoo_home / "branchy"
    assert run.card.source["fine_tuned_from"] == str(path.resolve())
    assert run.card.source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # it started from the file's weights: already as good as the user's model, not 10%
    assert run.metrics["test_accuracy"] > 0.8
    again = api.train(model, data=str(data), epochs=1, batch_size=64, verbose=0, name="from-object")
    assert again.metrics["test_accuracy"] > 0.8 and again.card.model == "branchy"


# ---------------------------------------------------------------- when int8 loses accuracy, where


def test_an_int8_export_that_loses_names_the_layers_that_lose_it(zoo_home, tmp_path, keras):
    """One unit of 'wide' is 1000x the others (the oracle: by construction), so int8's one step per
    tensor crushes the seven the head reads: the export fails, and says 'wide' loses it."""
    import zoo as api
    from zoo.errors import ExportError

    inputs = keras.Input((16,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="wide")(keras.layers.Dense(16, activation="relu",
                                                                                     name="pre")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="head")(hidden), name="outlier")
    rng = np.random.default_rng(0)
    model.get_layer("pre").set_weights([rng.normal(size=(16, 16)).astype(np.float32) * 0.5, np.zeros(16, np.float32)])
    wide = rng.normal(size=(16, 8)).astype(np.float32) * 0.5
    wide[:, 0] *= 1000
    head = rng.normal(size=(8, 4)).astype(np.float32)
    head[0] = 0  # the head never reads the outlier unit
    model.get_layer("wide").set_weights([wide, np.zeros(8, np.float32)])
    model.get_layer("head").set_weights([head, np.zeros(4, np.float32)])
    data = tmp_path / "x.npz"
    np.savez(data, x=rng.normal(size=(300, 16)).astype(np.float32), y=np.arange(300) % 4)
    with pytest.raises(ExportError) as caught:
        api.export(model, quantize="int8", data=str(data), calibration_samples=100)
    message = str(caught.value)
    assert "\n" not in message and "nothing was written; the layers that lose most: wide (" in message, message
    report = json.loads((zoo_home / "outlier" / "export" / "export.json").read_text())
    (rejected,) = report["rejected"]
    assert report["artifacts"] == [] and rejected["worst_layers"][0]["layer"] == "wide"
    assert len(rejected["worst_layers"]) <= 5 and rejected["levers"]
    assert not list((zoo_home / "outlier" / "export").glob("*.tflite"))
