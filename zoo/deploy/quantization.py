"""Where an int8 export loses accuracy: each layer's quantization error against float.

`layer_errors(model, calibration)` converts the model as the int8 TFLite export does (a
SavedModel, `TFLiteConverter.from_saved_model`, the calibration rows as representative data,
one weight scale per Dense layer) through TFLite's `QuantizationDebugger`, which writes a debug
file where every quantized op runs beside its float twin on the same (quantized) input, joined
by a NumericVerify op. Running that file in the LiteRT interpreter isolates each layer: its row
says how much that op's own quantization loses, not what it inherited from the layers before.

`levers(rows, target)` says what to try; `mixed_int8(model, calibration, keep_float=[...])`
writes the file with the named layers left in float (TFLite selective quantization), which runs
in the LiteRT interpreter (--target cpu) but not on an Edge TPU or a microcontroller.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

# rounding to the nearest step of a uniform grid leaves an RMS error of step / sqrt(12) = 0.289 steps
IDEAL_RMSE_OVER_SCALE = 12 ** -0.5
# relative error above which a layer is worth naming in `levers` (ideal 8-bit rounding of a
# channel spanning its calibrated range is about 0.289 / 255 * (range / std) ~ 0.01)
BAD_RELATIVE_ERROR = 0.05
# share of float values beyond a tensor's int8 range above which `levers` blames calibration
CLIPPED = 1e-3
FULL_INTEGER_TARGETS = ("edgetpu", "micro")
_BATCH = 256  # examples per invoke of the debug file


def layer_errors(model, calibration: np.ndarray, inputs: np.ndarray | None = None, *, n: int | None = 5,
                 keep_float=()) -> list[dict]:
    """Each quantized op's error against float, worst first, the top `n` (None: all); one
    conversion (`Int8Debugger` converts once for many measurements).

    calibration: preprocessed rows that calibrate the ranges (as the export's); inputs: the rows
    measured (default: the calibration rows). keep_float: Keras layer names (or TFLite tensor
    names) left in float, to measure what a mixed file would still lose.

    Each row: `layer` (the Keras layer, or None), `op` (the TFLite op), `tensor` (its output
    tensor, the name `QuantizationDebugOptions(denylisted_nodes=...)` takes), `elements` (values
    compared), `rmse` (quantized vs float output), `scale` (the output's quantization step),
    `rmse_over_scale` (0.289 is the output's rounding alone; weight rounding and clipping add to
    it), `relative_error` (per output channel rmse / std of the float output, averaged over the
    channels; a constant channel's rmse / |value|, one always zero left out),
    `tensor_relative_error` (rmse / std over the whole tensor at once) and `clipped` (the share
    of float outputs beyond the int8 range: inputs outside the calibration's).
    """
    return Int8Debugger(model, calibration).layer_errors(inputs, n=n, keep_float=keep_float)


def mixed_int8(model, calibration: np.ndarray, keep_float=()) -> bytes:
    """An int8 TFLite file with the layers (or tensors) in `keep_float` left in float, float I/O:
    the debugger's `get_nondebug_quantized_model` on the export's converter."""
    return Int8Debugger(model, calibration).mixed_int8(keep_float)


class Int8Debugger:
    """The model converted once, as the int8 export converts it, through TFLite's
    QuantizationDebugger: measure it, with and without layers kept in float, and write mixed files."""

    def __init__(self, model, calibration: np.ndarray):
        from zoo.backend import keras
        from zoo.deploy.savedmodel import write as _saved_model

        keras()
        self.model = model
        self.calibration = np.asarray(calibration)
        self._kept: tuple = ()
        with tempfile.TemporaryDirectory() as tmp:
            _saved_model(model, Path(tmp) / "sm")
            converter = _converter(model, Path(tmp) / "sm", self.calibration)
            with _quiet():
                self.debugger = _Debugger(converter=converter)  # calibrates: the SavedModel is read

    def layer_errors(self, inputs: np.ndarray | None = None, *, n: int | None = 5, keep_float=()) -> list[dict]:
        """`layer_errors` on this conversion."""
        self._keep(keep_float)
        inputs = self.calibration if inputs is None else np.asarray(inputs)
        rows = _measure(self.debugger.quant_model, inputs, self.model)
        # Worst first by relative error, not rmse / scale: rounding on a step the data allows always
        # gives rmse / scale ~ 0.29, even when one large channel sets a step so coarse that the
        # others round to nothing (the outlier-channel case); relative error says how much of each
        # channel's signal is lost, which is what costs accuracy. Per channel, because a per-tensor
        # step is set by the largest channel and a pooled std would hide the crushed small ones.
        rows.sort(key=lambda r: (-r["relative_error"], -r["rmse_over_scale"]))
        return rows if n is None else rows[:n]

    def mixed_int8(self, keep_float=()) -> bytes:
        """`mixed_int8` on this conversion."""
        self._keep(keep_float)
        with _quiet():
            return self.debugger.get_nondebug_quantized_model()

    def _keep(self, keep_float) -> None:
        """Quantize the calibrated file again with `keep_float` as `denylisted_nodes`, if it changed."""
        import tensorflow as tf

        keep = tuple(keep_float)
        if keep == self._kept:
            return
        nodes = _tensors_of(self.debugger.calibrated_model, self.model, keep) if keep else None
        self._kept = None  # until the file is quantized again
        try:
            with _quiet():
                self.debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
        except ValueError as exc:  # nothing left quantized, so no NumericVerify op to find
            if "debug mode" not in str(exc):
                raise
        self._kept = keep


def levers(rows: list[dict], target: str | None = None, *, calibration_samples: int = 500,
           threshold: float = BAD_RELATIVE_ERROR) -> list[str]:
    """What to try, in a few lines, for the rows of `layer_errors` whose relative error is above
    `threshold`; [] when none is. target: the export's --target (None: a plain int8 file)."""
    bad = [r for r in rows if r["relative_error"] > threshold]
    if not bad:
        return []
    names = _names(bad)
    clipped = _names([r for r in bad if r["clipped"] > CLIPPED])
    more = max(2 * int(calibration_samples), int(calibration_samples) + 1)
    if clipped:
        why = f"values beyond the calibrated range reach {', '.join(clipped)}"  # the range was too narrow
    else:
        why = ("the error is rounding on a step set by a few large values, "
               "which more samples rarely change")
    out = [f"calibrate on more examples: --calibration-samples {more} ({why})"]
    if target in FULL_INTEGER_TARGETS:
        out.append(f"--target {target} runs full-integer ops only, so {', '.join(names)} cannot stay "
                   "in float there; a mixed file (for --target cpu) can keep them")
    else:
        out.append(f"keep {', '.join(names)} in float: zoo.deploy.quantization.mixed_int8(model, "
                   f"calibration, keep_float={names!r}) (TFLite selective quantization) writes a mixed "
                   "file for the LiteRT interpreter (--target cpu), not for edgetpu or micro; measure "
                   "it again with layer_errors(..., keep_float=...), as the next layer quantizes the "
                   "same values on its input")
    return out


# ---------------------------------------------------------------- the debugger


def _converter(model, saved_model: Path, calibration: np.ndarray):
    """The int8 export's converter (zoo.deploy.exporter._tflite), less its integer I/O types, which
    the debugger leaves as float."""
    import tensorflow as tf

    float_input = model.inputs[0].dtype in ("float32", "float16")
    dtype = np.float32 if float_input else np.int32

    def representative():
        for row in calibration:
            yield [np.asarray(row)[None].astype(dtype)]

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return converter


def _debugger_class():
    import tensorflow as tf
    from tensorflow.lite.python import convert

    class Debugger(tf.lite.experimental.QuantizationDebugger):
        """TFLite's debugger, quantizing as the export does and reading in LiteRT.

        The stock one (TF 2.21) drops the converter's one-scale-per-Dense-layer setting when it
        quantizes the calibrated file, so it would measure other Dense weights than the export
        ships; and it opens the file in tf.lite.Interpreter, deprecated for LiteRT's."""

        def _quantize(self, calibrated_model, converter, options, debug: bool) -> bytes:
            return convert.mlir_quantize(
                calibrated_model,
                disable_per_channel=converter._experimental_disable_per_channel,
                disable_per_channel_for_dense_layers=(
                    converter._experimental_disable_per_channel_quantization_for_dense_layers),
                fully_quantize=options.fully_quantize,
                enable_numeric_verify=debug,
                denylisted_ops=options.denylisted_ops,
                denylisted_nodes=options.denylisted_nodes)

        def _get_quantized_model(self, is_debug: bool) -> bytes:
            if not self.converter:
                raise ValueError("the debugger needs a converter")
            return self._quantize(self.calibrated_model, self.converter, self._debug_options, is_debug)

        def _init_from_converter(self, options, converter, calibrated_model=None, float_model=None):
            self.quant_model = self._quantize(calibrated_model, converter, options, True)
            self._quant_interpreter = _interpreter(self.quant_model)
            self._float_interpreter = _interpreter(float_model) if float_model is not None else None

    return Debugger


def _Debugger(**kwargs):
    return _debugger_class()(**kwargs)


def _interpreter(content: bytes):
    """LiteRT's interpreter keeping every tensor, without the XNNPACK delegate (which only writes
    the tensors that leave its partitions)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_content=content, experimental_preserve_all_tensors=True,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def _quiet():
    """The converter's and the interpreter's C++ chatter (settings, "Created TensorFlow Lite
    XNNPACK delegate"); this path raises no Python warnings in TF 2.21."""
    from zoo.backend import native_output_silenced

    return native_output_silenced((1, 2))


# ---------------------------------------------------------------- measuring


def _measure(debug_model: bytes, inputs: np.ndarray, model) -> list[dict]:
    """Run the debug file on `inputs` in batches; per NumericVerify op, sums per output channel."""
    from zoo.deploy.runtime import quantize

    with _quiet():
        interpreter = _interpreter(debug_model)
    ops = interpreter._get_ops_details()
    defining = {t: op for op in ops for t in op["outputs"]}
    verify = [op for op in ops if op["op_name"] == "NumericVerify"]
    layers = _LayerNames(model)
    detail = interpreter.get_input_details()[0]
    dynamic = int(detail.get("shape_signature", detail["shape"])[0]) == -1
    batch = _BATCH if dynamic else int(detail["shape"][0])
    sums: dict[int, dict] = {}
    shape = None
    for start in range(0, len(inputs), batch):
        x = quantize(inputs[start:start + batch], detail)
        if dynamic and x.shape != shape:
            interpreter.resize_tensor_input(detail["index"], x.shape)
            with _quiet():
                interpreter.allocate_tensors()
            shape = x.shape
        elif shape is None:
            with _quiet():
                interpreter.allocate_tensors()
            shape = x.shape
        interpreter.set_tensor(detail["index"], x)
        with _quiet():
            interpreter.invoke()
        for op in verify:
            q_idx, f_idx = op["inputs"][:2]
            q_detail = interpreter._get_tensor_details(q_idx, 0)
            scale, zero = _quantization(q_detail)
            f = interpreter.get_tensor(f_idx).astype(np.float64)
            q = (interpreter.get_tensor(q_idx).astype(np.float64) - zero) * scale
            f, q = f.reshape(-1, f.shape[-1] if f.ndim > 1 else 1), q.reshape(-1, f.shape[-1] if f.ndim > 1 else 1)
            s = sums.setdefault(q_idx, {"op": defining[q_idx]["op_name"], "tensor": _original(q_detail["name"]),
                                        "scale": float(np.max(scale)), "n": 0, "err2": 0.0, "f": 0.0, "f2": 0.0,
                                        "clipped": 0})
            s["n"] += len(f)
            s["clipped"] += _beyond_range(f, q_detail["dtype"], scale, zero)
            s["err2"] = s["err2"] + ((q - f) ** 2).sum(0)
            s["f"] = s["f"] + f.sum(0)
            s["f2"] = s["f2"] + (f ** 2).sum(0)
    return [_row(s, layers) for s in sums.values()]


def _row(s: dict, layers: "_LayerNames") -> dict:
    n, err2, total, total2 = s["n"], np.atleast_1d(s["err2"]), np.atleast_1d(s["f"]), np.atleast_1d(s["f2"])
    mse_c = err2 / n
    var_c = np.maximum(total2 / n - (total / n) ** 2, 0.0)
    # a channel's spread is its std; a constant channel's (a count, say) its size; one always zero
    # (a dead ReLU) says nothing and is left out
    spread = np.where(var_c > 1e-12 * (total2 / n), var_c, (total / n) ** 2)
    live = spread > 0
    rmse = float(np.sqrt(err2.sum() / (n * len(err2))))
    if live.any():
        relative = float(np.mean(np.sqrt(mse_c[live] / spread[live])))
    else:
        relative = 0.0 if rmse == 0 else float("inf")
    mean = total.sum() / (n * len(total))
    var = total2.sum() / (n * len(total2)) - mean ** 2
    return {
        "layer": layers.of(s["tensor"]),
        "op": s["op"],
        "tensor": s["tensor"],
        "elements": int(n * len(err2)),
        "rmse": rmse,
        "scale": s["scale"],
        "rmse_over_scale": rmse / s["scale"] if s["scale"] else float("inf"),
        "relative_error": relative,
        "tensor_relative_error": rmse / float(np.sqrt(var)) if var > 0 else (0.0 if rmse == 0 else float("inf")),
        "clipped": s["clipped"] / (n * len(err2)),
    }


def _beyond_range(f: np.ndarray, dtype, scale, zero) -> int:
    """How many float values lie more than half a step beyond what the integer type holds."""
    if not np.issubdtype(np.dtype(dtype), np.integer):
        return 0
    info = np.iinfo(dtype)
    low, high = (info.min - zero) * scale, (info.max - zero) * scale
    return int(((f < low - scale / 2) | (f > high + scale / 2)).sum())


def _quantization(detail: dict):
    """(scale, zero point) of a tensor, arrays when quantized per axis (along its last axis)."""
    params = detail["quantization_parameters"]
    scales, zeros = np.asarray(params["scales"], np.float64), np.asarray(params["zero_points"], np.float64)
    if scales.size == 0:
        return 1.0, 0.0  # float: compared as it is
    if scales.size == 1:
        return float(scales[0]), float(zeros[0])
    return scales, zeros


# ---------------------------------------------------------------- names


class _LayerNames:
    """The Keras layer a TFLite tensor name belongs to: 'lenet5_1/c1_1/Relu;lenet5_1/c1_1/convolution'
    -> 'c1'. TensorFlow makes graph name scopes unique by a suffix: when the model's own scope has
    one ('lenet5_1'), every layer's has too, and 'dense_1' is the scope of layer 'dense' (layer
    'dense_1' got 'dense_1_2'); without it, names are taken as they are."""

    def __init__(self, model):
        self.names = [layer.name for layer in model.layers]
        self.model = model.name
        output = getattr(model.outputs[0], "_keras_history", None)
        self.output = getattr(output[0], "name", None) if output else None

    def of(self, tensor: str) -> str | None:
        known = set(self.names)
        for part in tensor.split(";"):
            parts = part.split("/")
            scoped = self.model in (parts[0], _strip(parts[0]))  # the model's own scope leads
            suffixed = scoped and parts[0] != self.model
            for component in parts[1:] if scoped else parts:
                order = (_strip(component), component) if suffixed else (component, _strip(component))
                for name in order:
                    if name in known:
                        return name
        # the op writing the signature's output (the softmax of the last layer, say) has no scope
        if tensor.startswith("StatefulPartitionedCall") and self.output in known:
            return self.output
        return None


def _original(name: str) -> str:
    """The name a quantized op's output had in the calibrated file, the one `denylisted_nodes`
    takes: the debug file names the quantized twin by it plus one digit ('.../MatMul1' for
    '.../MatMul'), as the debugger's own dump reads it; the float twin's name is no guide (a
    max pool's is 'tfl.dequantize')."""
    return name[:-1] if name[-1:].isdigit() else name


def _strip(name: str) -> str:
    return re.sub(r"_\d+$", "", name)


def _names(rows: list[dict]) -> list[str]:
    seen = []
    for r in rows:
        name = r["layer"] or r["tensor"]
        if name not in seen:
            seen.append(name)
    return seen


def _tensors_of(calibrated_model: bytes, model, keep_float) -> list[str]:
    """The output tensors, in the calibrated file, of the ops of the layers (or the tensors) named."""
    keep = set(keep_float)
    layers = _LayerNames(model)
    with _quiet():
        interpreter = _interpreter(calibrated_model)
    found, nodes = set(), []
    for op in interpreter._get_ops_details():
        for index in op["outputs"]:
            name = interpreter._get_tensor_details(index, 0)["name"]
            layer = layers.of(name)
            if name in keep or layer in keep:
                found.add(name if name in keep else layer)
                nodes.append(name)
    missing = sorted(keep - found)
    if missing:
        from zoo.errors import ConfigError

        raise ConfigError(f"no quantized op belongs to {', '.join(missing)}; layers: {', '.join(layers.names)}")
    return nodes
