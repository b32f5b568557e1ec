"""zoo.summarize: exact numbers for the registry, and geometry checked against TensorFlow itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo
from zoo.models.geometry import output_size

MACS = {
    "lenet5": 416_520,
    "mnist_cnn": 3_869_824,
    "mnist_cnn_dropout": 2_211_840,
    "text_cnn": 20_324_416,
    "image_cnn": 504_992_256,
}
CONTRACT_LAYER_KEYS = {
    "name", "type", "output_shape", "params", "macs", "kernel", "strides", "padding",
    "dilation", "receptive_field", "jump",
}


@pytest.mark.parametrize("name", sorted(MACS))
def test_registry_totals(name, registry_model):
    model = registry_model(name)
    report = zoo.summarize(model)
    assert report.macs == MACS[name]
    assert report.params == model.count_params() == sum(row.params for row in report.layers)
    assert report.trainable_params == report.params
    assert report.weights_kb == {
        "float32": round(report.params * 4 / 1024, 1),
        "int8": round(report.params / 1024, 1),
    }


def test_lenet5_layer_by_layer(registry_model):
    report = zoo.summarize(registry_model("lenet5"))
    rows = {row.name: row for row in report.layers}
    assert [row.name for row in report.layers] == ["c1", "s2", "c3", "s4", "flatten", "c5", "f6", "output"]
    assert (rows["c1"].receptive_field, rows["c1"].jump) == ([5, 5], [1, 1])
    assert (rows["s2"].receptive_field, rows["s2"].jump) == ([6, 6], [2, 2])
    assert (rows["c3"].receptive_field, rows["c3"].jump) == ([14, 14], [2, 2])
    assert (rows["s4"].receptive_field, rows["s4"].jump) == ([16, 16], [4, 4])
    # every flattened unit sees one S4 field; C5 sees all 5×5 of them: 16 + 4 * 4
    assert (rows["flatten"].receptive_field, rows["flatten"].jump) == ([16, 16], None)
    assert (rows["c5"].receptive_field, rows["c5"].jump) == ([32, 32], None)
    assert [row.macs for row in report.layers] == [117_600, 0, 240_000, 0, 0, 48_000, 10_080, 840]
    assert [row.params for row in report.layers] == [156, 0, 2_416, 0, 0, 48_120, 10_164, 850]
    assert rows["c1"].kernel == [5, 5] and rows["c1"].padding == "same" and rows["c1"].dilation == [1, 1]
    assert rows["s2"].strides == [2, 2] and rows["c5"].kernel is None
    assert report.largest_activation == {"layer": "c1", "shape": [28, 28, 6], "elements": 4704, "kb_float32": 18.4}


def test_json_document_follows_the_contract(registry_model):
    document = json.loads(json.dumps(zoo.summarize(registry_model("lenet5")).to_dict()))
    assert {"model", "input_shape", "params", "trainable_params", "macs", "layers"} <= set(document)
    assert document["model"] == "lenet5"
    assert document["input_shape"] == [28, 28, 1]
    assert document["params"] == 61_706 and document["macs"] == 416_520
    first = document["layers"][0]
    assert set(first) == CONTRACT_LAYER_KEYS
    assert first == {
        "name": "c1", "type": "Conv2D", "output_shape": [28, 28, 6], "params": 156, "macs": 117_600,
        "kernel": [5, 5], "strides": [1, 1], "padding": "same", "dilation": [1, 1],
        "receptive_field": [5, 5], "jump": [1, 1],
    }


def test_text_model_sequence_geometry(registry_model):
    rows = {row.name: row for row in zoo.summarize(registry_model("text_cnn")).layers}
    assert rows["embedding"].macs == 0 and rows["embedding"].receptive_field == [1]
    assert rows["conv"].receptive_field == [5] and rows["conv"].macs == 496 * 5 * 64 * 128
    assert rows["pool"].receptive_field == [500] and rows["pool"].jump is None


# ---- other layer types: MACs by hand, geometry against TensorFlow's own gradients ----


def _model(keras, input_shape, *layers):
    inputs = x = keras.Input(input_shape)
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def _rows(model):
    return {row.name.split("/")[-1]: row for row in zoo.summarize(model).layers}


def test_macs_of_grouped_depthwise_separable_transposed_and_dense(keras):
    L = keras.layers
    model = _model(
        keras, (10, 10, 4),
        L.Conv2D(8, 3, groups=2, name="grouped"),  # 8×8×8
        L.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise"),  # 6×6×16
        L.SeparableConv2D(6, 3, name="separable"),  # 4×4×6
        L.Conv2DTranspose(3, 3, strides=2, name="transposed"),  # 9×9×3
        L.Reshape((81, 3), name="reshape"),
        L.Dense(4, name="dense"),  # per position
        L.BatchNormalization(name="bn"),
    )
    rows = _rows(model)
    assert rows["grouped"].macs == 8 * 8 * (3 * 3 * 2) * 8
    assert rows["depthwise"].macs == 6 * 6 * 3 * 3 * 8 * 2
    assert rows["separable"].macs == 4 * 4 * (3 * 3 * 16) + 4 * 4 * 16 * 6
    assert rows["transposed"].macs == 4 * 4 * 3 * 3 * 6 * 3
    assert rows["dense"].macs == 81 * 3 * 4
    assert rows["bn"].macs == 0
    # a transposed convolution and a real reshape are not followed: null, not a guess
    assert rows["transposed"].receptive_field is None and rows["reshape"].receptive_field is None
    assert rows["dense"].receptive_field is None


def test_unknown_layers_give_null_not_a_guess(keras):
    L = keras.layers

    class Mystery(L.Layer):
        def call(self, x):
            return x * 2.0

    model = _model(keras, (8, 8, 1), L.Conv2D(2, 3, name="conv"), Mystery(name="mystery"), L.Conv2D(2, 3, name="after"))
    report = zoo.summarize(model)
    rows = {row.name: row for row in report.layers}
    assert rows["conv"].receptive_field == [3, 3]
    assert rows["mystery"].macs is None and rows["mystery"].receptive_field is None
    assert rows["after"].receptive_field is None and rows["after"].macs == 4 * 4 * 9 * 2 * 2
    assert report.macs is None


def test_nested_models_are_walked_with_prefixed_names(keras):
    L = keras.layers
    block = keras.Sequential([L.Conv2D(4, 3, padding="same", name="conv"), L.ReLU(name="relu")], name="block")
    inner_in = keras.Input((16, 16, 4))
    inner = keras.Model(inner_in, L.MaxPooling2D(name="pool")(L.Conv2D(4, 3, name="conv")(inner_in)), name="stage")
    inputs = keras.Input((16, 16, 3))
    x = block(inputs)
    x = inner(x)
    outputs = L.Dense(2, name="head")(L.GlobalAveragePooling2D(name="gap")(x))
    report = zoo.summarize(keras.Model(inputs, outputs, name="nested"))
    names = [row.name for row in report.layers]
    assert names == ["block/conv", "block/relu", "stage/conv", "stage/pool", "gap", "head"]
    rows = dict(zip(names, report.layers))
    assert rows["block/conv"].receptive_field == [3, 3]
    assert rows["stage/conv"].receptive_field == [5, 5]
    assert (rows["stage/pool"].receptive_field, rows["stage/pool"].jump) == ([6, 6], [2, 2])
    assert rows["gap"].receptive_field == [6 + 6 * 2] * 2  # 7 pooled positions, jump 2
    assert report.params == sum(row.params for row in report.layers) == 112 + 148 + 10
    assert report.macs == 16 * 16 * 27 * 4 + 14 * 14 * 36 * 4 + 4 * 2


def test_an_unbuilt_model_is_refused(keras):
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(zoo.SummaryError, match="is not built"):
        zoo.summarize(model)


def _ones_model(keras, input_shape, build):
    """A linear model whose weights are all 1, so a gradient is non-zero exactly on the receptive field."""
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, build(inputs))
    for weight in model.weights:
        weight.assign(np.ones(weight.shape, dtype="float32"))
    return model


def _measured_field(model, input_shape):
    """Extent of the input that the centre output position depends on, per spatial axis."""
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).uniform(0.5, 1.0, (1, *input_shape)).astype("float32"))
    rank = len(input_shape) - 1
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
        centre = tuple(d // 2 for d in y.shape[1 : 1 + rank])
        target = y[(0, *centre, 0)]
    grad = tape.gradient(target, x)[0].numpy()
    mask = np.abs(grad).sum(axis=-1) > 0
    extents = []
    for axis in range(rank):
        hit = np.nonzero(mask.any(axis=tuple(a for a in range(rank) if a != axis)))[0]
        assert hit.min() > 0 and hit.max() < input_shape[axis] - 1, "field reaches the border"
        extents.append(int(hit.max() - hit.min() + 1))
    return extents


STACKS = {
    "strided_then_dilated_2d": ((48, 48, 1), lambda L: [
        L.Conv2D(2, 3, strides=2), L.Conv2D(2, 3, dilation_rate=2), L.AveragePooling2D(2),
        L.Conv2D(2, 5, padding="same")]),
    "causal_dilated_1d": ((96, 1), lambda L: [
        L.Conv1D(2, 3, dilation_rate=3, padding="causal"), L.Conv1D(2, 4, strides=2),
        L.AveragePooling1D(3, strides=2, padding="same"), L.Conv1D(1, 2)]),
    "padding_grouped_depthwise_separable": ((40, 40, 2), lambda L: [
        L.ZeroPadding2D(((1, 2), (0, 3))), L.Conv2D(2, 3, groups=2), L.Cropping2D(((2, 1), (1, 0))),
        L.DepthwiseConv2D(3, strides=2), L.BatchNormalization(), L.Dropout(0.5), L.SeparableConv2D(2, 3)]),
    "rectangular_3d": ((20, 12, 16, 1), lambda L: [L.Conv3D(1, (3, 1, 5), strides=(2, 1, 1)), L.AveragePooling3D(2)]),
}


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_receptive_field_matches_tensorflow_gradients(stack, keras):
    input_shape, layers = STACKS[stack]

    def build(x):
        for layer in layers(keras.layers):
            x = layer(x)
        return x

    model = _ones_model(keras, input_shape, build)
    last = zoo.summarize(model).layers[-1]
    assert last.receptive_field == _measured_field(model, input_shape)


@pytest.mark.parametrize("merge", ["Add", "Concatenate", "Average", "Multiply"])
def test_merged_branches_are_the_union_of_their_fields(merge, keras):
    L = keras.layers

    def build(x):
        a = L.Conv2D(2, 3)(x)  # sees rows i..i+2
        b = L.ZeroPadding2D(((0, 2), (0, 2)))(L.Cropping2D(((4, 0), (4, 0)))(x))  # sees row i+4 alone
        b = L.Conv2D(2, 1)(b)
        return L.Conv2D(1, 1)(getattr(L, merge)()([a, b]))

    model = _ones_model(keras, (20, 20, 1), build)
    assert zoo.summarize(model).layers[-1].receptive_field == _measured_field(model, (20, 20, 1)) == [5, 5]


# ---- the output-size formula against the shapes Keras computes ----

window = st.tuples(
    st.integers(1, 40),  # input size
    st.integers(1, 7),  # kernel
    st.integers(1, 4),  # stride
    st.integers(1, 4),  # dilation
    st.sampled_from(["valid", "same"]),
)


def _keras_length(keras, layer, input_shape):
    try:
        return layer.compute_output_shape((None, *input_shape))[1]
    except ValueError:
        return None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window, st.booleans(), st.sampled_from(["conv", "pool"]))
def test_output_size_formula_matches_keras(keras, case, two_d, kind):
    n, k, s, d, padding = case
    if kind == "pool":
        d = 1
    elif s > 1:
        d = 1  # Keras refuses strides > 1 together with dilation > 1
    L = keras.layers
    if kind == "conv":
        layer = (L.Conv2D if two_d else L.Conv1D)(1, k, strides=s, dilation_rate=d, padding=padding)
    else:
        layer = (L.MaxPooling2D if two_d else L.MaxPooling1D)(k, strides=s, padding=padding)
    shape = (n, n + 3, 1) if two_d else (n, 1)
    expected = output_size(n, k, s, padding, d)
    keras_out = _keras_length(keras, layer, shape)
    if expected < 1:
        assert keras_out is None or keras_out < 1
    else:
        assert keras_out == expected
        if two_d:
            assert layer.compute_output_shape((None, *shape))[2] == output_size(n + 3, k, s, padding, d)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 40), st.integers(1, 6), st.integers(1, 4))
def test_causal_padding_matches_keras(keras, n, k, d):
    layer = keras.layers.Conv1D(1, k, dilation_rate=d, padding="causal")
    assert layer.compute_output_shape((None, n, 1))[1] == output_size(n, k, 1, "causal", d) == n
