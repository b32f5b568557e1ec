"""Running an exported artifact in the runtime that will run it in production.

`load_runner(path)` opens a `.tflite` file with the LiteRT interpreter, an
`.onnx` file with onnxruntime, a SavedModel folder with `tf.saved_model.load`,
or a `.keras` file with Keras. Every runner takes the model's preprocessed
input (float32 pixels or int32 token ids) and returns float class
probabilities, quantizing and dequantizing where the artifact is integer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.errors import ModelLoadError


class Runner:
    kind = "?"
    batch_size = 256  # examples per call when the artifact takes any batch size

    def __init__(self, path: Path):
        self.path = Path(path)

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        size = batch_size or self.batch_size
        parts = [self.run_batch(x[i : i + size]) for i in range(0, len(x), size)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0,), np.float32)


class KerasRunner(Runner):
    kind = "keras"

    def __init__(self, path: Path):
        super().__init__(path)
        from zoo.runs import load_model

        self.model = load_model(path)

    def run_batch(self, x):
        return np.asarray(self.model(x, training=False))


class SavedModelRunner(Runner):
    kind = "saved_model"

    def __init__(self, path: Path):
        from zoo.files import saved_model_folder

        super().__init__(saved_model_folder(path) or path)  # a folder of versions: the highest (TF Serving's)
        from zoo.backend import keras

        keras()
        import tensorflow as tf

        self._tf = tf
        try:
            self.loaded = tf.saved_model.load(str(self.path))
            self.fn = self.loaded.signatures["serving_default"]
        except (OSError, KeyError, ValueError) as exc:
            raise ModelLoadError(f"cannot load SavedModel {path}: {exc}") from None
        spec = self.fn.structured_input_signature[1]
        self.input_name, self.input_spec = next(iter(spec.items()))

    def run_batch(self, x):
        out = self.fn(**{self.input_name: self._tf.constant(x, dtype=self.input_spec.dtype)})
        return np.asarray(next(iter(out.values())))


class OnnxRunner(Runner):
    kind = "onnx"

    def __init__(self, path: Path):
        super().__init__(path)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"cannot load ONNX model {path}: {exc}") from None
        self.input = self.session.get_inputs()[0]
        self.dtype = np.int32 if "int32" in self.input.type else (np.int64 if "int64" in self.input.type else np.float32)

    def run_batch(self, x):
        return self.session.run(None, {self.input.name: np.asarray(x, dtype=self.dtype)})[0]


class _IntegerIO:
    """Quantize the float input and dequantize the output of an integer (int8 / uint8) model;
    `self.input` and `self.output` hold a `dtype` and a `quantization` (scale, zero point)."""

    @property
    def input_quantization(self) -> tuple[float, int]:
        return tuple(self.input["quantization"])

    @property
    def output_quantization(self) -> tuple[float, int]:
        return tuple(self.output["quantization"])

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        return quantize(x, self.input)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        return dequantize(y, self.output)


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float `x` as the tensor `detail` (a `dtype` and a `quantization` (scale, zero point)) takes it."""
    dtype = detail["dtype"]
    scale, zero = detail["quantization"]
    if dtype in (np.int8, np.uint8) and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return np.asarray(x, dtype=dtype)


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    """An integer tensor's values as the floats they stand for; a float tensor as it is."""
    scale, zero = detail["quantization"]
    if detail["dtype"] in (np.int8, np.uint8) and scale:
        return (y.astype(np.float32) - zero) * scale
    return y


class LiteRTRunner(_IntegerIO, Runner):
    kind = "tflite"

    def __init__(self, path: Path, num_threads: int | None = None):
        super().__init__(path)
        from ai_edge_litert.interpreter import Interpreter

        from zoo.backend import native_output_silenced

        try:
            with native_output_silenced():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load LiteRT model {path}: {exc}") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        signature = self.input.get("shape_signature", self.input["shape"])
        self.dynamic_batch = int(signature[0]) == -1
        if not self.dynamic_batch:
            self.batch_size = int(self.input["shape"][0])
        self._batch = int(self.input["shape"][0])

    def run_batch(self, x):
        n = len(x)
        if self.dynamic_batch and n != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"], [n, *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self._batch = n
        elif not self.dynamic_batch and n != self._batch:
            raise ValueError(f"{self.path} takes batches of {self._batch}, got {n}")
        self.interpreter.set_tensor(self.input["index"], self.quantize_input(x))
        self.interpreter.invoke()
        return self.dequantize_output(self.interpreter.get_tensor(self.output["index"]))


class MobileRunner(LiteRTRunner):
    """A --target mobile file (zoo.deploy.mobile) in the LiteRT interpreter, for zoo's own predict
    and benchmark: it takes the model's own input, a grayscale image given as RGB with its three
    channels alike, whose luminance is the image itself."""

    kind = "mobile"

    def run_batch(self, x):
        x = np.asarray(x)
        if x.ndim == 4 and x.shape[-1] == 1 and self.input["shape"][-1] == 3:
            x = np.repeat(x, 3, axis=-1)
        return super().run_batch(x)


class MicroRunner(_IntegerIO, Runner):
    """A micro export in the TensorFlow Lite for Microcontrollers interpreter, one example at a
    time (batch 1, as on the board), in the smallest arena it runs in, which it measures."""

    kind = "micro"
    batch_size = 1  # the file's static batch, as on the board
    dynamic_batch = False

    def __init__(self, path: Path):
        super().__init__(path)
        from zoo.deploy import micro

        self.data = self.path.read_bytes()
        self.arena_bytes, self.allocations = micro.measure_arena(self.data, self.path.name)
        tflm = micro.runtime()
        self.interpreter = tflm.Interpreter.from_bytes(self.data, arena_size=self.arena_bytes)
        self.input = self._detail(self.interpreter.get_input_details(0))
        self.output = self._detail(self.interpreter.get_output_details(0))
        self.ops = micro.ops(self.data)

    @staticmethod
    def _detail(detail: dict) -> dict:
        q = detail["quantization_parameters"]
        scale = float(q["scales"][0]) if len(q["scales"]) else 0.0
        zero = int(q["zero_points"][0]) if len(q["zero_points"]) else 0
        return {"dtype": np.dtype(detail["dtype"]).type, "shape": [int(d) for d in detail["shape"]],
                "quantization": (scale, zero)}

    def run_batch(self, x):
        rows = []
        for example in self.quantize_input(np.asarray(x)):
            self.interpreter.set_input(example[None], 0)
            self.interpreter.invoke()
            rows.append(self.interpreter.get_output(0)[0])
        return self.dequantize_output(np.stack(rows)) if rows else np.zeros((0,), np.float32)


def load_runner(path: str | Path) -> Runner:
    """A runner for an artifact a user hands over: by the format its sidecar names, as the
    exporter's table loads it (a micro file runs in TFLite Micro); without a sidecar, by what the
    path is: a `.tflite`, `.onnx`, `.keras` file or a SavedModel folder (`*_micro.tflite`: TFLM)."""
    import json

    path = Path(path)
    try:
        named = json.loads(path.with_name(path.name + ".json").read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        named = None  # no sidecar, or one that predict's metadata check reports
    if isinstance(named, str) and named in RUNNERS and path.exists():
        return RUNNERS[named](path)
    from zoo.files import saved_model_folder

    if path.is_dir() and saved_model_folder(path) is not None:
        return SavedModelRunner(path)
    if path.name.endswith("_micro.tflite") and path.is_file():
        return MicroRunner(path)
    if path.suffix == ".tflite" and path.is_file():
        return LiteRTRunner(path)
    if path.suffix == ".onnx" and path.is_file():
        return OnnxRunner(path)
    if path.suffix == ".keras" or (path.is_dir() and (path / "model.keras").is_file()):
        return KerasRunner(path)
    raise ModelLoadError(
        f"{path}: not a model artifact (a .tflite, .onnx or .keras file, or a SavedModel folder)"
    )


# the runner of each export format, by the name its sidecar and the exporter's table give it
RUNNERS = {"saved_model": SavedModelRunner, "tflite": LiteRTRunner, "onnx": OnnxRunner, "micro": MicroRunner,
           "mobile": MobileRunner}
