"""What each layer outputs for one input, read from the runtime that serves the model.

explain builds a Keras probe; a server that runs a `.tflite` file in LiteRT (no TensorFlow
imported) reads the same outputs from the interpreter's intermediate tensors instead. A second
interpreter keeps them: `experimental_preserve_all_tensors` with XNNPACK left out, as a delegated
graph overwrites its intermediates (measured: all of LeNet-5's ran inside one DELEGATE op).
Layers are named as in Keras: the converter names each op's output tensor after the layer it
came from (`lenet5_1/c1_1/Relu;...` is c1).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np

# the ops whose outputs explain draws: convolutions and pooling (zoo.inspect.explain._has_maps)
MAP_OPS = {"CONV_2D": "Conv2D", "DEPTHWISE_CONV_2D": "DepthwiseConv2D", "MAX_POOL_2D": "MaxPooling2D",
           "AVERAGE_POOL_2D": "AveragePooling2D", "CONV_3D": "Conv3D"}


def layer_name(tensor_name: str) -> str:
    """The Keras layer a converted op's output tensor came from: `lenet5_1/c1_1/Relu;...` -> c1."""
    first = tensor_name.split(";")[0].split("/")
    name = first[1] if len(first) > 2 else first[0]
    return re.sub(r"_\d+$", "", name)


class LiteRTActivations:
    """The outputs of a `.tflite` file's convolutions and pooling for one input; thread-safe."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        import warnings

        from zoo.backend import native_output_silenced

        with warnings.catch_warnings(), native_output_silenced():
            warnings.simplefilter("ignore")  # "intended for debugging purposes only": it is what is wanted
            self.interpreter = Interpreter(
                model_path=str(path), experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        tensors = {t["index"]: t for t in self.interpreter.get_tensor_details()}
        self.layers = []  # (layer name, Keras layer type, tensor index), in the graph's order
        for op in self.interpreter._get_ops_details():
            if op["op_name"] in MAP_OPS and len(op["outputs"]):
                tensor = tensors[int(op["outputs"][0])]
                self.layers.append((layer_name(tensor["name"]), MAP_OPS[op["op_name"]], tensor))
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        """(layer, type, output without its batch axis) for one example `x` (the model's input, batch 1)."""
        from zoo.deploy.runtime import dequantize, quantize

        if x.shape[-1] == 1 and self.input["shape"][-1] == 3:  # a mobile file takes grayscale as RGB
            x = np.repeat(x, 3, axis=-1)
        with self._lock:
            if list(self.input["shape"][1:]) != list(x.shape[1:]) or int(self.input["shape"][0]) != 1:
                self.interpreter.resize_tensor_input(self.input["index"], [1, *x.shape[1:]])
                self.interpreter.allocate_tensors()
                self.input = self.interpreter.get_input_details()[0]
            self.interpreter.set_tensor(self.input["index"], quantize(x[:1], self.input))
            self.interpreter.invoke()
            found = []
            for name, kind, tensor in self.layers:
                value = dequantize(self.interpreter.get_tensor(tensor["index"])[0], tensor)
                found.append((name, kind, np.asarray(value, np.float32)))
            return found


class KerasActivations:
    """The outputs of a Keras model's convolutions and pooling for one input, as explain probes them."""

    def __init__(self, model):
        from zoo.backend import keras
        from zoo.inspect.explain import _has_maps

        drawn = [layer for layer in model.layers if _has_maps(layer)]
        self.layers = [(layer.name, type(layer).__name__) for layer in drawn]
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self.probe = keras().Model(inputs, [layer.output for layer in drawn]) if drawn else None

    def __call__(self, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        if self.probe is None:
            return []
        values = self.probe(x[:1], training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        return [(name, kind, np.asarray(v)[0]) for (name, kind), v in zip(self.layers, values)]
