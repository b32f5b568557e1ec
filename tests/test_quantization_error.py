"""zoo.deploy.quantization: which layer an int8 export loses accuracy in.

The oracle is the construction. 'wide' (Dense 16 -> 8, ReLU) has one output unit whose weights
are 1000x the others', so its calibrated per-tensor step is ~1000x too coarse for the seven
small units: they round to zero and lose all their signal (a ReLU'd Gaussian's rms is 1.2x its
std, so each crushed unit's relative error is ~1.2), while the rounding error in steps stays
small. 'head' ignores the outlier unit (its row of weights is zero). The control model is the
same without the outlier: every layer rounds on a step fitted to it.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

ROW_KEYS = {"layer", "op", "tensor", "elements", "rmse", "scale", "rmse_over_scale", "relative_error",
            "tensor_relative_error", "clipped"}


def tiny(keras, outlier: bool):
    inputs = keras.Input((16,), name="x")
    first = keras.layers.Dense(16, activation="relu", name="pre")(inputs)
    hidden = keras.layers.Dense(8, activation="relu", name="wide")(first)
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(hidden)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    model.get_layer("pre").set_weights([rng.normal(size=(16, 16)).astype(np.float32) * 0.5, np.zeros(16, np.float32)])
    wide = rng.normal(size=(16, 8)).astype(np.float32) * 0.5
    if outlier:
        wide[:, 0] *= 1000
    head = rng.normal(size=(8, 4)).astype(np.float32)
    head[0] = 0  # the head never reads the outlier unit
    model.get_layer("wide").set_weights([wide, np.zeros(8, np.float32)])
    model.get_layer("head").set_weights([head, np.zeros(4, np.float32)])
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(64, 16)).astype(np.float32), rng.normal(size=(48, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def debugger(keras, data):
    """The outlier model converted once; each test measures it anew."""
    from zoo.deploy.quantization import Int8Debugger

    return Int8Debugger(tiny(keras, outlier=True), data[0])


@pytest.fixture(scope="module")
def outlier(debugger, data):
    return debugger.model, debugger.layer_errors(data[1], n=None)


@pytest.fixture(scope="module")
def control(keras, data):
    from zoo.deploy.quantization import layer_errors

    return layer_errors(tiny(keras, outlier=False), data[0], data[1], n=None)


def run_tflite(content: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    from zoo.backend import native_output_silenced

    with native_output_silenced():
        interpreter = Interpreter(model_content=content)
        detail = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(detail["index"], x.shape)
        interpreter.allocate_tensors()
    assert detail["dtype"] == np.float32  # a mixed file keeps float I/O
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_rows_name_the_layer_op_and_tensor(outlier, control, data):
    _, rows = outlier
    assert rows and all(set(r) == ROW_KEYS for r in rows + control)
    assert {r["layer"] for r in rows} == {"pre", "wide", "head"}  # the softmax op belongs to 'head'
    wide = next(r for r in rows if r["layer"] == "wide")
    assert wide["op"] == "FULLY_CONNECTED" and "wide" in wide["tensor"]
    assert wide["elements"] == len(data[1]) * 8


def test_the_outlier_layer_is_ranked_worst(outlier, control):
    _, rows = outlier
    errors = [r["relative_error"] for r in rows]
    assert errors == sorted(errors, reverse=True)
    worst = rows[0]
    assert worst["layer"] == "wide"
    # seven of eight units round to zero: most of the layer's signal is gone
    assert worst["relative_error"] > 0.5
    assert worst["relative_error"] > 10 * max(r["relative_error"] for r in rows[1:])
    assert worst["relative_error"] > 10 * max(r["relative_error"] for r in control)


def test_on_its_calibration_rows_the_error_is_rounding_sized(debugger, outlier):
    """Measured on the rows that set its range nothing clips, and the crushed units are below half
    a step: rmse / scale alone would call 'wide' healthy (which is why rows sort by relative error),
    and so would a std over the whole tensor, which the outlier unit sets."""
    _, rows = outlier
    every = debugger.layer_errors(n=None)  # the calibration rows
    assert [r["layer"] for r in every][:1] == ["wide"]
    # 'pre' rounds its weights on one per-tensor step: more error in steps, little of its signal lost
    pre = next(r for r in every if r["layer"] == "pre")
    assert pre["rmse_over_scale"] > every[0]["rmse_over_scale"] and pre["relative_error"] < 0.05
    top = debugger.layer_errors(n=1)
    assert [r["layer"] for r in top] == ["wide"]
    assert top[0]["relative_error"] > 0.5
    assert top[0]["clipped"] == 0 and top[0]["rmse_over_scale"] < 0.5
    assert top[0]["tensor_relative_error"] < 0.1
    assert next(r for r in rows if r["layer"] == "wide")["clipped"] > 0  # new rows go beyond it


def test_the_control_model_quantizes_well(control):
    from zoo.deploy.quantization import BAD_RELATIVE_ERROR, levers

    assert {r["layer"] for r in control} == {"pre", "wide", "head"}
    assert all(r["relative_error"] < BAD_RELATIVE_ERROR for r in control)
    assert all(0 < r["rmse_over_scale"] < 1 for r in control)
    assert levers(control, "cpu") == []


def test_levers_name_the_layer_and_what_the_target_allows(outlier):
    from zoo.deploy.quantization import levers

    _, rows = outlier
    cpu = levers(rows, "cpu", calibration_samples=300)
    assert len(cpu) == 2
    assert "--calibration-samples 600" in cpu[0]
    assert "keep wide in float" in cpu[1] and "head" not in cpu[1]
    edgetpu = levers(rows, "edgetpu", calibration_samples=300)
    assert "cannot stay in float" in edgetpu[1] and "wide" in edgetpu[1]


def test_mixed_file_keeps_the_named_layers_in_float(debugger, outlier, data):
    model, rows = outlier
    x = data[1]
    expected = model.predict(x, verbose=0)
    full = np.abs(run_tflite(debugger.mixed_int8(), x) - expected).max()
    assert full > 0.05  # the crushed units carried the head's whole input
    # the head quantizes the same values on its input: 'wide' alone in float does not help, and
    # measuring the mixed file says so, naming 'head' next
    again = debugger.layer_errors(x, n=None, keep_float=["wide"])
    assert again[0]["layer"] == "head" and again[0]["relative_error"] > 0.5
    assert "wide" not in {r["layer"] for r in again}
    # both in float, only 'pre' quantizes: a tensor name from a row works as well as a layer name
    keep = [rows[0]["tensor"], "head"]
    assert np.abs(run_tflite(debugger.mixed_int8(keep), x) - expected).max() < full / 10
    assert [r["layer"] for r in debugger.layer_errors(x, keep_float=keep)] == ["pre"]
    # all in float: nothing left to measure, and the file is the float model
    assert np.abs(run_tflite(debugger.mixed_int8([*keep, "pre"]), x) - expected).max() < 1e-4
    assert debugger.layer_errors(x, keep_float=[*keep, "pre"]) == []
    # and without keep_float it measures the full int8 file again
    assert debugger.layer_errors(x, n=1)[0]["relative_error"] == pytest.approx(rows[0]["relative_error"])


def test_unknown_layer_is_refused(debugger):
    from zoo.errors import ConfigError

    with pytest.raises(ConfigError, match="no quantized op belongs to nope"):
        debugger.mixed_int8(["nope"])


def test_layer_names_undo_tensorflow_scope_suffixes():
    """TensorFlow makes each scope unique: with the model's own scope suffixed ('functional_1'),
    layer 'dense' is 'dense_1' and layer 'dense_1' is 'dense_1_2' (seen in TF 2.21)."""
    from zoo.deploy.quantization import _LayerNames

    layer = SimpleNamespace
    model = SimpleNamespace(name="functional", layers=[layer(name=n) for n in ("x", "dense", "dense_1", "out")],
                            outputs=[SimpleNamespace(_keras_history=(layer(name="out"), 0, 0))])
    names = _LayerNames(model)
    assert names.of("functional_1/dense_1/MatMul1") == "dense"
    assert names.of("functional_1/dense_1_2/MatMul;functional_1/dense_1_2/Relu") == "dense_1"
    assert names.of("StatefulPartitionedCall:0") == "out"
    assert names.of("tfl.quantize") is None
    plain = _LayerNames(SimpleNamespace(name="m", layers=model.layers, outputs=model.outputs))
    assert plain.of("m/dense_1/MatMul") == "dense_1"
