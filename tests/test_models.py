"""The registry and the five seed models: names, exact architectures, validation."""

from __future__ import annotations

import numpy as np
import pytest

import zoo


def body(model):
    """The model's layers without its InputLayer."""
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]

# name -> (parameters, output shape of every layer), from ../shared/DESIGN.md
EXPECTED = {
    "lenet5": (61_706, [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (400,), (120,), (84,), (10,)]),
    "mnist_cnn": (50_186, [(28, 28, 32), (14, 14, 32), (14, 14, 64), (7, 7, 64), (3136,), (10,)]),
    "mnist_cnn_dropout": (
        840_554,
        [(24, 24, 32), (12, 12, 32), (12, 12, 32), (10, 10, 32), (5, 5, 32), (5, 5, 32), (800,),
         (1024,), (1024,), (10,)],
    ),
    "text_cnn": (1_329_409, [(500, 64), (496, 128), (128,), (64,), (1,)]),
    "image_cnn": (
        85_012_355,
        [(148, 148, 64), (74, 74, 64), (72, 72, 128), (36, 36, 128), (165_888,), (512,), (3,)],
    ),
}


def test_registry_lists_the_five_models():
    assert zoo.list_models() == sorted(EXPECTED)


@pytest.mark.parametrize(
    "pattern, names",
    [
        ("mnist*", ["mnist_cnn", "mnist_cnn_dropout"]),
        ("lenet", ["lenet5"]),  # an alias matches its model
        ("*cnn", ["image_cnn", "mnist_cnn", "text_cnn"]),
        ("MNIST_CNN", ["mnist_cnn"]),
        ("nothing*", []),
    ],
)
def test_list_models_pattern(pattern, names):
    assert zoo.list_models(pattern) == names


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_architecture_is_exact(name, registry_model):
    params, shapes = EXPECTED[name]
    model = registry_model(name)
    assert model.count_params() == params
    assert [tuple(layer.output.shape[1:]) for layer in body(model)] == shapes
    assert model.name == name


def test_lenet_alias_and_paper_layer_names():
    model = zoo.create_model("lenet")
    assert model.name == "lenet5"
    assert [layer.name for layer in body(model)] == ["c1", "s2", "c3", "s4", "flatten", "c5", "f6", "output"]
    assert model.get_layer("c1").activation.__name__ == "relu"
    assert type(model.get_layer("s2")).__name__ == "MaxPooling2D"


def test_lenet_classic_is_tanh_and_average_pooling_with_same_parameter_count():
    model = zoo.create_model("lenet5", classic=True)
    assert model.count_params() == 61_706
    assert type(model.get_layer("s2")).__name__ == "AveragePooling2D"
    assert type(model.get_layer("s4")).__name__ == "AveragePooling2D"
    assert {model.get_layer(n).activation.__name__ for n in ("c1", "c3", "c5", "f6")} == {"tanh"}


@pytest.mark.parametrize("length", [5, 64, 500, 3000])
def test_text_cnn_parameters_do_not_depend_on_sequence_length(length):
    model = zoo.create_model("text_cnn", sequence_length=length)
    assert model.count_params() == 1_329_409
    assert tuple(model.input.shape) == (None, length)


def test_text_cnn_head_is_sigmoid_for_two_classes_and_softmax_above():
    two = zoo.create_model("text_cnn")
    five = zoo.create_model("text_cnn", num_classes=5, vocab_size=1000)
    assert two.layers[-1].activation.__name__ == "sigmoid"
    assert five.layers[-1].activation.__name__ == "softmax"
    assert tuple(five.output.shape) == (None, 5)
    # 1000*64 + 41,088 + 8,256 + 64*5+5
    assert five.count_params() == 64_000 + 41_088 + 8_256 + 325


def test_text_cnn_averages_over_the_text_not_its_padding():
    short = zoo.create_model("text_cnn", num_classes=5, vocab_size=1000, sequence_length=40)
    long = zoo.create_model("text_cnn", num_classes=5, vocab_size=1000, sequence_length=90)
    long.set_weights(short.get_weights())
    text = np.random.default_rng(0).integers(2, 1000, size=(3, 12))
    padded = [np.pad(text, [(0, 0), (0, n - 12)]).astype("int32") for n in (40, 90)]
    np.testing.assert_allclose(short.predict(padded[0], verbose=0), long.predict(padded[1], verbose=0),
                               rtol=1e-5, atol=1e-6)
    empty = short.predict(np.zeros((1, 40), "int32"), verbose=0)  # no token at all: no 0/0
    assert np.isfinite(empty).all() and abs(empty.sum() - 1) < 1e-5


def test_overrides_change_the_model():
    model = zoo.create_model("mnist_cnn", num_classes=3, input_shape=(32, 32, 3))
    assert tuple(model.output.shape) == (None, 3)
    assert tuple(model.input.shape) == (None, 32, 32, 3)


def test_predictions_are_probabilities(registry_model):
    import numpy as np

    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    probs = registry_model("lenet5").predict(x, verbose=0)
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("lenet5", {"num_classes": 1}, "lenet5: num_classes must be at least 2, got 1"),
        ("lenet5", {"num_classes": -3}, "lenet5: num_classes must be at least 2, got -3"),
        ("lenet5", {"num_classes": "10"}, "lenet5: num_classes must be a whole number, got '10'"),
        ("lenet5", {"num_classes": 2.5}, "lenet5: num_classes must be a whole number, got 2.5"),
        ("lenet5", {"num_classes": True}, "lenet5: num_classes must be a whole number, got True"),
        ("lenet5", {"classic": "yes"}, "lenet5: classic must be true or false, got 'yes'"),
        ("lenet5", {"dropout": 0.1},
         "lenet5 has no argument 'dropout'; it takes: input_shape, num_classes, classic"),
        ("lenet5", {"num_clases": 3},
         "lenet5 has no argument 'num_clases'; did you mean 'num_classes'? it takes: input_shape, num_classes, classic"),
        ("lenet5", {"input_shape": (28, 28)},
         "lenet5: input_shape must be (height, width, channels), got (28, 28)"),
        ("lenet5", {"input_shape": (28, -1, 1)},
         "lenet5: input_shape must be a sequence of positive whole numbers, got (28, -1, 1)"),
        ("lenet5", {"input_shape": (4, 4, 1)},
         "lenet5: input_shape (4, 4, 1) is too small: layer c3 (Conv2D, 5×5 window, valid padding) "
         "gets 2×2, which its window does not fit; use at least 12×12"),
        ("mnist_cnn_dropout", {"dropout": 1.5}, "mnist_cnn_dropout: dropout must be in [0, 1), got 1.5"),
        ("mnist_cnn_dropout", {"input_shape": (10, 10, 1)},
         "mnist_cnn_dropout: input_shape (10, 10, 1) is too small: layer pool2 (MaxPooling2D, 2×2 window, "
         "valid padding) gets 1×1, which its window does not fit; use at least 12×12"),
        ("text_cnn", {"sequence_length": 3},
         "text_cnn: sequence_length 3 is too small: layer conv (Conv1D, 5 window, valid padding) "
         "gets 3, which its window does not fit; use at least 5"),
        ("text_cnn", {"vocab_size": 0}, "text_cnn: vocab_size must be at least 2, got 0"),
        ("image_cnn", {"input_shape": (5, 5, 3)},
         "image_cnn: input_shape (5, 5, 3) is too small: layer conv2 (Conv2D, 3×3 window, "
         "valid padding) gets 1×1, which its window does not fit; use at least 10×10"),
    ],
)
def test_bad_overrides_are_config_errors(name, overrides, message):
    with pytest.raises(zoo.ConfigError) as err:
        zoo.create_model(name, **overrides)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "name, message",
    [
        ("lenet6", "unknown model 'lenet6'; did you mean lenet, lenet5? "),
        ("mnist", "unknown model 'mnist'; did you mean mnist_cnn"),
        ("vgg16", "unknown model 'vgg16'; 'zoo list' shows the 5 models: "
                     "image_cnn, lenet5, mnist_cnn, mnist_cnn_dropout, text_cnn"),
    ],
)
def test_unknown_model_suggests_close_names(name, message):
    with pytest.raises(zoo.UnknownModelError) as err:
        zoo.create_model(name)
    assert str(err.value).startswith(message)
    assert err.value.usage


def test_names_are_normalised():
    assert zoo.create_model("MNIST-CNN").name == "mnist_cnn"


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        zoo.register_model("lenet", task="image", reference="x")(lambda: None)


@pytest.mark.parametrize("name", zoo.list_models())
def test_the_registry_counts_are_those_of_the_built_model(name, registry_model):
    """`zoo list` reads these instead of building every model (image_cnn holds 85M weights)."""
    report = zoo.summarize(registry_model(name))
    counts = zoo.get_entry(name).counts
    assert (tuple(counts["input_shape"]), counts["params"], counts["macs"]) == \
        (tuple(report.input_shape), report.params, report.macs)


def test_zoo_list_builds_nothing_and_imports_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from zoo.inspect.summary import model_table; rows = model_table(); "
            "print(len(rows), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["5", "False"]
