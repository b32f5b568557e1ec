"""A model the server holds: resolved once, run in its own runtime, answered in TF Serving's shape.

`Served.load(target)` takes anything `zoo predict` takes (a run, `MODEL.TAG`, an exported
artifact). `MODEL.TAG` runs its shipped float32 `.tflite` file in LiteRT, so no TensorFlow is
imported and the server is up at once; a run with no such file runs its Keras model.

TensorFlow Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest) is followed for
status, metadata and `:predict`: rows in `instances` answer `predictions`, a batch in `inputs`
answers `outputs`, each instance is the model's input tensor (for lenet5.mnist 28×28×1, pixels
scaled 0-1) and each prediction its output. zoo's own `:classify` takes an image file's bytes
or a text and answers as `zoo predict --json` does; `:explain` adds the input as the model sees
it and each layer's feature maps, for the page.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import ConfigError, DataError, TooLarge, ZooError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
INPUT_NAME = "input"  # the input of the SavedModel's serving_default signature (zoo.deploy.savedmodel)
OUTPUT_NAME = "output_0"
VERSION = "1"  # every model is served as version 1, the folder its SavedModel export is in
MAX_INSTANCES = 1024  # examples in one :predict call; a batch of 1024 LeNet-5 inputs is 3.2 MB of floats
# the maps drawn per :explain answer; LeNet-5's 44 come to 40 KB, mnist_cnn's 192 to 0.4 MB
MAPS_BUDGET = 1024 * 1024
DTYPES = {"float32": "DT_FLOAT", "int32": "DT_INT32", "int64": "DT_INT64", "uint8": "DT_UINT8"}


class UnknownModel(ZooError):
    """A model name the server does not hold: HTTP 404."""


@dataclass
class Served:
    """One model served: its name, artifact, metadata and runner."""

    name: str
    artifact: Path
    meta: dict
    folder: Path
    runner: object
    assumed: list = field(default_factory=list)  # what a model file's card assumed (zoo.models.adopted.unstated)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _prep_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _activations: object = field(default=None, repr=False)
    _text_prep: object = field(default=None, repr=False)

    def __post_init__(self):
        # built once, here, not per request: a text model's TextVectorization read its 20,000-word
        # vocabulary and grew the server by 1.7 MB a request when built each time (500 MB in 300)
        if self.kind == "text":
            from zoo.data.preprocess import from_spec

            self._text_prep = from_spec(self.spec, self.folder)
        self._activations = self._reader()

    @classmethod
    def load(cls, target, name: str | None = None, out=None) -> "Served":
        from zoo.deploy.predict import artifact_metadata, resolve_artifact
        from zoo.deploy.runtime import load_runner
        from zoo.models.adopted import unstated

        artifact = resolve_artifact(target, out)
        meta, folder = artifact_metadata(artifact)
        name = name or meta.get("run") or artifact.stem
        if not NAME.match(name):
            raise ConfigError(f"{name!r} cannot be a model's name in a URL; name it: zoo serve NAME={target}")
        return cls(name, Path(artifact), meta, folder, load_runner(artifact), unstated(meta))

    # ------------------------------------------------------------ what it takes

    @property
    def spec(self) -> dict:
        return self.meta["preprocessing"]

    @property
    def kind(self) -> str:
        """image, text or tensor: what :classify takes."""
        return self.spec["type"]

    @property
    def input_shape(self) -> list[int]:
        shape = self.spec.get("input_shape") or self.meta.get("input_shape") or [self.spec["sequence_length"]]
        return [int(d) for d in shape]

    @property
    def input_dtype(self) -> str:
        return "int32" if self.kind == "text" else str(self.spec.get("dtype", "float32"))

    @property
    def labels(self) -> list:
        return list(self.meta["labels"])

    def _describe_input(self) -> str:
        shape = "×".join(map(str, self.input_shape))
        if self.kind == "image":
            return (f"{shape} {self.input_dtype}, pixels preprocessed as its metadata says "
                    f"(x = pixel × {self.spec['scale']:.6g} + {self.spec['offset']:g})")
        if self.kind == "text":
            return f"{shape} int32 token ids, each below {self.spec['vocab_size']}"
        return f"{shape} {self.input_dtype}"

    # ------------------------------------------------------------ TF Serving's answers

    def status(self) -> dict:
        return {"model_version_status": [{"version": VERSION, "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata(self) -> dict:
        def tensor(shape, dtype, name):
            return {"dtype": DTYPES.get(dtype, "DT_FLOAT"), "name": name,
                    "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in [-1, *shape]], "unknown_rank": False}}

        signature = {"inputs": {INPUT_NAME: tensor(self.input_shape, self.input_dtype, f"serving_default_{INPUT_NAME}:0")},
                     "outputs": {OUTPUT_NAME: tensor([len(self.labels)], "float32", "StatefulPartitionedCall:0")},
                     "method_name": "tensorflow/serving/predict"}
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": VERSION},
            "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}},
            # zoo's own: what the numbers mean, and what :classify takes
            "zoo": {"model": self.meta.get("model"), "run": self.meta.get("run"), "runtime": self.runner.kind,
                    "artifact": self.artifact.name, "labels": self.labels, "preprocessing": self.spec,
                    "input": {"name": INPUT_NAME, "shape": self.input_shape, "dtype": self.input_dtype,
                              "description": self._describe_input()},
                    "classify": {"image": "an image file (PNG, JPEG): its bytes, or a multipart field",
                                 "text": "a text: text/plain, a multipart field 'text' or JSON {\"text\": ...}",
                                 "tensor": "nothing: it takes a tensor, through :predict"}[self.kind]},
        }

    def predict(self, body) -> dict:
        """TF Serving's :predict: `instances` (one row per example) answer `predictions`, `inputs`
        (the batch, or {"input": batch}) answer `outputs`."""
        if not isinstance(body, dict):
            raise ConfigError('the body must be a JSON object: {"instances": [...]} or {"inputs": [...]}')
        signature = body.get("signature_name", "serving_default")
        if signature != "serving_default":
            raise ConfigError(f"no signature {signature!r}; {self.name} has serving_default")
        given = [key for key in ("instances", "inputs") if key in body]
        if len(given) != 1:
            raise ConfigError('give "instances" (a list, one per example) or "inputs" (the batch)'
                              + (", not both" if given else ""))
        key = given[0]
        rows = body[key]
        if key == "instances" and isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            rows = [self._named(r, f"instance {i}") for i, r in enumerate(rows)]
        elif key == "inputs" and isinstance(rows, dict):
            rows = self._named(rows, "inputs")
        y = self._run(self._tensor(rows, key), "instance" if key == "instances" else "example")
        return {"predictions" if key == "instances" else "outputs": y.tolist()}

    def classify_examples(self, body: dict) -> dict:
        """TF Serving's own :classify: `{"examples": [{"input": ...}, ...]}` answers
        `{"result": [[[label, score], ...], ...]}`, every class of each example in the model's order."""
        from zoo.metrics import as_class_probabilities

        examples = body.get("examples")
        if not isinstance(examples, list) or not examples or not all(isinstance(e, dict) for e in examples):
            raise ConfigError('"examples" must be a non-empty list of {"input": ...} objects')
        x = self._tensor([self._named(e, f"example {i}") for i, e in enumerate(examples)], "examples")
        probs = as_class_probabilities(self._run(x, "example"))
        return {"result": [[[label, float(p)] for label, p in zip(self.labels, row)] for row in probs]}

    def _run(self, x: np.ndarray, what: str) -> np.ndarray:
        """The model's output for the batch `x`, or a DataError naming the first example whose
        output is not a number (NaN or infinity, which JSON cannot carry)."""
        with self._lock:
            y = np.asarray(self.runner(x), np.float32)
        bad = np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))
        if len(bad):
            raise DataError(f"the model's output for {what} {int(bad[0])} is not a number (NaN or infinity): its "
                            f"input is far outside what the model takes ({self._describe_input()})")
        return y

    def _named(self, row: dict, where: str):
        if set(row) != {INPUT_NAME}:
            raise ConfigError(f"{where}: the input is named {INPUT_NAME!r}; got {', '.join(map(repr, row)) or 'no name'}")
        return row[INPUT_NAME]

    def _tensor(self, rows, key: str) -> np.ndarray:
        """The batch as the runner takes it, or a ConfigError that says what it must be."""
        what = f"{self.name} takes {self._describe_input()}"
        if not isinstance(rows, list) or not rows:
            raise ConfigError(f'"{key}" must be a non-empty list of examples; {what}')
        if len(rows) > MAX_INSTANCES:
            raise TooLarge(f"{len(rows):,} examples in one call; the limit is {MAX_INSTANCES:,}: send them in parts")
        try:
            x = np.asarray(rows)
        except ValueError:  # ragged
            raise ConfigError(f"the examples are not all of one shape; {what}") from None
        if x.dtype.kind == "O" and any(isinstance(v, int) and not isinstance(v, bool) for v in _leaves(rows)):
            raise ConfigError(f"the examples hold whole numbers too large for 64 bits; {what}")
        if x.dtype.kind not in "iuf":
            raise ConfigError(f"the examples must be numbers (got {_kind(x)}); {what}")
        if list(x.shape[1:]) != self.input_shape:
            got = "×".join(map(str, x.shape[1:])) or "a number"
            raise ConfigError(f"each example must be {'×'.join(map(str, self.input_shape))}; got {got}. {what}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise ConfigError(f"the examples hold NaN or infinity; {what}")
        if self.input_dtype.startswith("int"):
            if x.dtype.kind == "f" and (x != np.round(x)).any():
                raise ConfigError(f"token ids must be whole numbers; {what}")
            top = int(self.spec.get("vocab_size", np.iinfo(np.int32).max))
            if x.min() < 0 or x.max() >= top:
                raise ConfigError(f"token ids must lie in 0..{top - 1}; got {x.min():.6g}..{x.max():.6g}")
        return x.astype(self.input_dtype)

    # ------------------------------------------------------------ zoo's answers

    def prepare(self, given: bytes | str, name: str, max_pixels: int | None):
        """One image (its bytes) or text as the model takes it; DataError if it cannot be predicted."""
        from zoo.data.inputs import prepare_given

        if self.kind == "tensor":
            raise ConfigError(f"{self.name} takes a {'×'.join(map(str, self.input_shape))} tensor, not an image "
                              "or a text: send it to :predict")
        with self._prep_lock:  # one TextVectorization, called from the server's threads
            item = prepare_given(given, self.meta, self.folder, name=name, max_pixels=max_pixels,
                                 prep=self._text_prep)
        if item.error is not None:
            raise item.error_kind(item.error)  # TooLarge for an image past max_pixels: 413
        return item

    def classify(self, given: bytes | str, *, name: str = "input", top_k: int = 5,
                 max_pixels: int | None = None) -> dict:
        """`zoo predict --json`'s answer for one image or text."""
        return self._answer(self.prepare(given, name, max_pixels), top_k)

    def _answer(self, item, top_k: int) -> dict:
        from zoo.deploy.predict import result
        from zoo.metrics import as_class_probabilities

        with self._lock:
            row = as_class_probabilities(self.runner(item.x[None]))[0]
        return {"model": self.name, **result(item, row, self.labels, top_k, self.assumed)}

    def explain(self, given: bytes | str, *, name: str = "input", top_k: int = 5,
                max_pixels: int | None = None) -> dict:
        """:classify's answer, with the input as the model sees it and each layer's feature maps,
        drawn as `zoo explain` draws them."""
        from zoo.inspect.explain import _channels_to_keep, _input_picture, _maps

        item = self.prepare(given, name, max_pixels)
        answer = self._answer(item, top_k)
        x = item.x[None]
        answer["picture"] = _input_picture(x) if self.kind == "image" else None
        activations = self._activations
        answer["layers"], answer["notes"] = [], []
        if activations is None:
            answer["notes"].append(f"feature maps are drawn for LiteRT and Keras models; this one runs in "
                                   f"{self.runner.kind}: serve its run or its .tflite file to see them")
            return answer
        found = activations(x)
        outputs = {n: v for n, _, v in found}
        keep = _channels_to_keep(outputs, MAPS_BUDGET)
        for layer, kind, value in found:
            answer["layers"].append({"name": layer, "type": kind, "output_shape": list(value.shape),
                                     "feature_maps": _maps(value, keep.get(layer))})
        answer["notes"] += [f"{n}: {min(c, outputs[n].shape[-1])} of its {outputs[n].shape[-1]} channels shown"
                            for n, c in keep.items() if c is not None]
        return answer

    def _reader(self):
        """What reads each layer's output: the file in a second LiteRT interpreter, or a Keras probe;
        None for other runtimes. Made at load time, before any request thread runs: LiteRT's
        construction silences the process's stderr for a moment."""
        from zoo.inspect import activations

        if self.kind == "tensor":
            return None
        if self.runner.kind in ("tflite", "mobile", "micro"):
            return activations.LiteRTActivations(self.artifact)
        if self.runner.kind == "keras":
            return activations.KerasActivations(self.runner.model)
        return None


def _leaves(rows, limit: int = 100_000):
    """The values of a nested list, the first `limit` of them."""
    stack, seen = [rows], 0
    while stack and seen < limit:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        else:
            seen += 1
            yield value


def _kind(x: np.ndarray) -> str:
    return {"b": "true/false", "U": "strings", "S": "strings", "O": "a mix of values"}.get(x.dtype.kind, str(x.dtype))
