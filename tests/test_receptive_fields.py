"""Receptive fields through merges: squeeze-and-excite gates, residual joins, MobileNetV3Small.

Every expected number is worked out by hand in the comments, from
rf_l = rf_(l-1) + (k_l - 1) * d_l * jump_(l-1) and jump_l = jump_(l-1) * s_l,
not computed by the code under test.
"""

from __future__ import annotations

import json

import pytest

import zoo


def _fields(model):
    """name -> (receptive_field, jump, global_context) for each row of the summary."""
    return {row.name: (row.receptive_field, row.jump, row.global_context) for row in zoo.summarize(model).layers}


# ---- (a) a MobileNet-style block with a squeeze-and-excite gate ----


def _se_block(keras, gate_first=False):
    L = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same", name="stem")(inputs)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    dw = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    se = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(dw)
    se = L.Conv2D(2, 1, activation="relu", name="reduce")(se)
    se = L.Conv2D(8, 1, activation="hard_sigmoid", name="expand")(se)
    x = L.Multiply(name="excite")([se, dw] if gate_first else [dw, se])
    outputs = L.Conv2D(4, 1, name="project")(x)
    return keras.Model(inputs, outputs)


# stem 3×3 s2: rf 1 + 2·1 = 3, jump 2 (a 16×16 map); bn, relu: unchanged;
# dw 3×3 s1: 3 + 2·2 = 7, jump 2; the squeeze covers all 16 positions: 7 + 15·2 = 37, jump 16·2 = 32,
# and the 1×1 convs of the gate keep that; the gate is broadcast back onto dw, so the excite and
# project layers keep dw's local 7, jump 2, and see the whole input besides.
SE_BLOCK = {
    "stem": ([3, 3], [2, 2], False),
    "bn": ([3, 3], [2, 2], False),
    "relu": ([3, 3], [2, 2], False),
    "dw": ([7, 7], [2, 2], False),
    "squeeze": ([37, 37], [32, 32], False),
    "reduce": ([37, 37], [32, 32], False),
    "expand": ([37, 37], [32, 32], False),
    "excite": ([7, 7], [2, 2], True),
    "project": ([7, 7], [2, 2], True),
}


@pytest.mark.parametrize("gate_first", [False, True], ids=["map_then_gate", "gate_then_map"])
def test_squeeze_and_excite_keeps_the_local_field_and_marks_global_context(keras, gate_first):
    assert _fields(_se_block(keras, gate_first)) == SE_BLOCK


def test_global_context_is_in_the_json_only_where_true(keras):
    document = json.loads(json.dumps(zoo.summarize(_se_block(keras)).to_dict()))
    marked = [layer["name"] for layer in document["layers"] if "global_context" in layer]
    assert marked == ["excite", "project"]
    assert all(layer["global_context"] is True for layer in document["layers"] if "global_context" in layer)


def test_a_broadcast_window_that_is_not_the_whole_input_gives_null(keras):
    L = keras.layers
    inputs = keras.Input((8, 8, 2))
    local = L.Conv2D(2, 3, padding="same", name="local")(inputs)  # rf 3, jump 1
    corner = L.MaxPooling2D(2, strides=8, name="corner")(inputs)  # 1×1, sees only rows/cols 0..1
    x = L.Multiply(name="mul")([local, corner])  # each position: its 3×3 plus a fixed corner
    outputs = L.Conv2D(1, 1, name="after")(x)
    rows = _fields(keras.Model(inputs, outputs))
    assert rows["corner"] == ([2, 2], [8, 8], False)
    assert rows["mul"] == (None, None, False) and rows["after"] == (None, None, False)


def test_a_gate_from_a_flattened_vector_reshaped_to_1x1(keras):
    """Keras's EfficientNet-style gate: GlobalAveragePooling2D() -> Reshape((1, 1, C)) -> Multiply."""
    L = keras.layers
    inputs = keras.Input((10, 10, 4))
    x = L.Conv2D(4, 3, padding="same", name="conv")(inputs)  # rf 3, jump 1
    se = L.GlobalAveragePooling2D(name="squeeze")(x)  # 3 + 9·1 = 12, no grid
    se = L.Reshape((1, 1, 4), name="reshape")(se)  # a 1×1 grid, jump 10·1 = 10
    se = L.Dense(4, activation="sigmoid", name="gate")(se)
    outputs = L.Multiply(name="excite")([x, se])
    rows = _fields(keras.Model(inputs, outputs))
    assert rows["squeeze"] == ([12, 12], None, False)
    assert rows["reshape"] == rows["gate"] == ([12, 12], [10, 10], False)
    assert rows["excite"] == ([3, 3], [1, 1], True)


def test_keras_ops_activations_are_followed(keras):
    L = keras.layers
    inputs = keras.Input((12, 12, 1))
    x = L.Conv2D(2, 3, name="conv")(inputs)  # rf 3
    x = keras.ops.relu6(x + 3.0) / 6.0  # MobileNetV3's hard-sigmoid, written with ops
    x = keras.ops.sigmoid(x)
    outputs = L.Conv2D(1, 3, name="after")(x)  # 3 + 2 = 5
    report = zoo.summarize(keras.Model(inputs, outputs))
    assert all(row.receptive_field == [3, 3] for row in report.layers[1:-1])
    assert report.layers[-1].receptive_field == [5, 5]


# ---- (b) residual joins ----


def _residual(keras, shortcut):
    L = keras.layers
    inputs = keras.Input((16, 16, 4))
    x = L.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = L.Conv2D(4, 3, padding="same", name="c2")(x)
    skip = inputs if shortcut == "identity" else L.Conv2D(4, 1, name="shortcut")(inputs)
    x = L.Add(name="add")([x, skip])
    outputs = L.Conv2D(4, 3, padding="same", name="after")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("shortcut", ["identity", "conv1x1"])
def test_a_residual_add_takes_the_larger_aligned_field(keras, shortcut):
    rows = _fields(_residual(keras, shortcut))
    assert rows["c1"] == ([3, 3], [1, 1], False)  # 1 + 2
    assert rows["c2"] == ([5, 5], [1, 1], False)  # 3 + 2
    assert rows["add"] == ([5, 5], [1, 1], False)  # max(5, 1): both centred on the same pixel
    assert rows["after"] == ([7, 7], [1, 1], False)  # 5 + 2


def test_a_downsampling_residual_add(keras):
    L = keras.layers
    inputs = keras.Input((16, 16, 4))
    x = L.Conv2D(4, 3, strides=2, padding="same", name="c1")(inputs)  # rf 3, jump 2, centre 1
    x = L.Conv2D(4, 3, padding="same", name="c2")(x)  # 3 + 2·2 = 7, centre 1: pixels -2..4
    skip = L.Conv2D(4, 1, strides=2, name="shortcut")(inputs)  # rf 1, jump 2, pixel 0
    outputs = L.Add(name="add")([x, skip])  # -2..4 already holds pixel 0
    rows = _fields(keras.Model(inputs, outputs))
    assert rows["shortcut"] == ([1, 1], [2, 2], False)
    assert rows["add"] == ([7, 7], [2, 2], False)


def test_merging_branches_of_different_jumps_gives_null(keras):
    L = keras.layers
    inputs = keras.Input((8, 8, 1))
    a = L.Conv2D(1, 1, strides=2, name="strided")(inputs)  # 4×4, jump 2
    b = L.Conv2D(1, 5, name="wide")(inputs)  # 4×4, jump 1
    outputs = L.Conv2D(1, 1, name="after")(L.Add(name="add")([a, b]))
    rows = _fields(keras.Model(inputs, outputs))
    assert rows["add"] == rows["after"] == (None, None, False)


# ---- (c) Keras's own MobileNetV3Small ----


@pytest.fixture(scope="module")
def mobilenet_v3_small(keras):
    model = keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), weights=None, include_top=True)
    return zoo.summarize(model)


def test_mobilenet_v3_small_is_followed_to_the_end(mobilenet_v3_small):
    layers = mobilenet_v3_small.layers
    rows = {row.name: row for row in layers}
    assert len(layers) == 181
    # every layer is a convolution, normalization, activation, padding, merge, pooling, dropout or
    # flatten, and every squeeze-and-excite gate sees the whole 96×96 input: nothing is left null
    assert [row.name for row in layers if row.receptive_field is None] == []

    # stem 3×3 s2: 3, jump 2; block 0 depthwise 3×3 s2: 3 + 2·2 = 7, jump 4
    first_gate = rows["expanded_conv_squeeze_excite_mul"]
    assert (first_gate.receptive_field, first_gate.jump, first_gate.global_context) == ([7, 7], [4, 4], True)
    # depthwise kernels (stride): 3 (2), 3 (2), 3 (1), 5 (2), 5 (1) ×4, 5 (2), 5 (1) ×2
    # 7 + 2·4 = 15 (jump 8); + 2·8 = 31; + 4·8 = 63 (jump 16); + 4·4·16 = 319; + 4·16 = 383 (jump 32);
    # + 2·4·32 = 639; residual adds join aligned, smaller fields, and 1×1 convs add nothing
    last_conv = rows["conv_1"]
    assert (last_conv.receptive_field, last_conv.jump, last_conv.global_context) == ([639, 639], [32, 32], True)
    # the classifier: global pooling over the 3×3 map covers 639 + 2·32 = 703, jump 3·32 = 96
    # found by its type: Keras numbers auto-named layers per process (global_average_pooling2d_3)
    pooling = [row for row in rows.values() if row.type == "GlobalAveragePooling2D"][-1]
    assert (pooling.receptive_field, pooling.jump) == ([703, 703], [96, 96])
    assert (rows["predictions"].receptive_field, rows["predictions"].jump) == ([703, 703], None)


def test_mobilenet_v3_small_global_context_starts_at_the_first_gate(mobilenet_v3_small):
    names = [row.name for row in mobilenet_v3_small.layers]
    first = names.index("expanded_conv_squeeze_excite_mul")
    assert [row.global_context for row in mobilenet_v3_small.layers] == [False] * first + [True] * (len(names) - first)


def test_mobilenet_v3_small_fields_grow_along_the_convolution_path(mobilenet_v3_small):
    # the spatial path: every row on a map larger than 1×1 (the gates' 1×1 rows are global)
    path = [row for row in mobilenet_v3_small.layers
            if row.jump is not None and row.output_shape[0] > 1]
    fields = [row.receptive_field[0] for row in path]
    jumps = [row.jump[0] for row in path]
    assert fields == sorted(fields) and jumps == sorted(jumps)
    assert (fields[0], fields[-1]) == (1, 639)
