"""Can this model run on that target? Asked before the real conversion, of a model zoo did not make.

A converter that meets what the target cannot run fails deep inside, with a traceback about MLIR
ops; a microcontroller build fails only once TFLM looks for a kernel. Here the model is converted
once to float TFLite with TensorFlow ops allowed (0.9 s for a 3-layer model, measured), each op of
that file is traced back to the Keras layer it came from (TFLite keeps the layer's name scope in
the op's output tensor: 'functional_1/spectrum_1/rfft'), and each op is checked against the
target: TFLite Micro's kernels (zoo.deploy.micro.RESOLVER), the builtin ops the edge TPU and
LiteRT's interpreter take. The first problem is one line naming the layer, its op and what to do.

zoo's own models pass by construction (their exports are tested per format), so only models taken
in from a file are probed.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from zoo.errors import ExportError

# TFLite input types; anything else (float64, strings, complex) is refused before converting
INPUT_DTYPES = ("float32", "float16", "int32", "int64", "int8", "uint8")


def check_inputs(model) -> None:
    """One input, of a fixed size and a type TFLite takes."""
    if len(model.inputs) != 1:
        raise ExportError(f"model '{model.name}' takes {len(model.inputs)} inputs; the exports take one input "
                          "(join them into one tensor)")
    spec = model.inputs[0]
    dtype = str(spec.dtype)
    if dtype == "string":
        raise ExportError(f"model '{model.name}' takes strings (a TextVectorization inside it): TFLite "
                          "cannot tokenize; save the model without that layer and give its vocabulary with --vocab")
    if dtype not in INPUT_DTYPES:
        raise ExportError(f"model '{model.name}' takes {dtype} inputs; TFLite takes {', '.join(INPUT_DTYPES)}: "
                          "build the model with keras.Input(..., dtype='float32')")
    if any(d is None for d in spec.shape[1:]):
        shape = "×".join("?" if d is None else str(d) for d in spec.shape[1:])
        raise ExportError(f"model '{model.name}' takes inputs of shape {shape}; the exports need a fixed size: "
                          "build it with keras.Input(shape=...) without None")


def probe(model, saved_model) -> list[tuple[str, str | None]]:
    """The ops of the model as float TFLite (TensorFlow ops allowed), each with its Keras layer.
    `saved_model(model, path, batch=)` writes the SavedModel the exports convert from (the
    exporter's own, passed in: the exporter imports this module)."""
    import tensorflow as tf

    from zoo.backend import native_output_silenced

    with tempfile.TemporaryDirectory() as tmp:
        saved_model(model, Path(tmp) / "sm", batch=1)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "sm"))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        try:
            with native_output_silenced((1, 2)):
                data = converter.convert()
        except Exception as exc:  # noqa: BLE001 - the converter's many types: said in one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"model '{model.name}' does not convert to TFLite: {first[:300]}") from None
    return ops_with_layers(data, [layer.name for layer in model.layers])


def ops_with_layers(data: bytes, layer_names: list[str]) -> list[tuple[str, str | None]]:
    """(op, layer) for each operator of a flatbuffer; Flex ops are named `Flex<TF op>`."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(data, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.Subgraphs(0)
    found = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        if name == "CUSTOM" and code.CustomCode():
            name = code.CustomCode().decode()
        tensors = [graph.Tensors(op.Outputs(j)).Name().decode() for j in range(op.OutputsLength())]
        found.append((name, layer_of(tensors, layer_names)))
    return found


def layer_of(tensor_names: list[str], layer_names: list[str]) -> str | None:
    """The Keras layer whose name scope a tensor carries ('functional_1/fc_1/MatMul' -> 'fc'): the
    export traces the model again, and Keras suffixes each scope with `_N`."""
    known = set(layer_names)
    for tensor in tensor_names:
        for part in tensor.split(";")[0].split("/")[1:-1] or tensor.split("/")[:-1]:
            if part in known:
                return part
            base = re.sub(r"_\d+$", "", part)
            if base in known:
                return base
    return None


def check(model, format: str, quantize: str, target: str | None, saved_model) -> list[tuple[str, str | None]]:
    """Refuse, in one line, what `format`/`quantize` on `target` cannot run; the ops otherwise."""
    check_inputs(model)
    if format not in ("tflite", "micro"):
        return []
    found = probe(model, saved_model)
    for op, layer in found:
        where = f"layer '{layer}'" if layer else f"model '{model.name}'"
        if op.startswith("Flex") or op == "CUSTOM":
            tf_op = op[4:] if op.startswith("Flex") else "a custom op"
            runs = {"micro": "TFLite Micro", "edgetpu": "the Edge TPU"}.get("micro" if format == "micro" else target)
            if runs is not None or quantize == "int8":
                raise ExportError(f"{where} ({tf_op}) is a TensorFlow op with no TFLite builtin, which "
                                  f"{runs or 'a full-integer int8 file'} cannot run: use --format saved_model or "
                                  "--format onnx, or replace the layer")
            raise ExportError(f"{where} ({tf_op}) is a TensorFlow op with no TFLite builtin: LiteRT would need "
                              "its Flex delegate, which zoo's runtime does not carry; use --format saved_model or "
                              "--format onnx, or replace the layer")
        if format == "micro":
            from zoo.deploy.micro import RESOLVER

            if op not in RESOLVER:
                raise ExportError(f"{where} ({op}) has no TFLite Micro kernel: use --target cpu, or replace the layer")
    return found
