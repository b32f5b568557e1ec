"""A model zoo did not make, taken in as a run: a `.keras` or legacy `.h5` file, a SavedModel
folder, or a `keras.Model` in memory.

Every command that works on a run works on it then. `as_run` writes `<out>/<stem>/` once: a copy
of the model (`model.keras`, or `saved_model/` for a SavedModel, which Keras 3 can run but not
rebuild as layers) and a card that says where it came from (path, sha256) and what the user
stated: labels, preprocessing, data, vocabulary, custom classes. Nothing is guessed where it could
be read: image size and colour come from the model's input, a `Rescaling` first layer means the
model scales its own pixels. What nobody said is written down as assumed, and `predict` and
`explain` say so. The user's file is only ever read.

Later commands name the run by its folder or its name; the same file given again reuses the
folder while its sha256 is the same and nothing new is stated.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo import locks, runs
from zoo.errors import ConfigError, DataError, ModelLoadError, ZooWarning
from zoo.models.registry import ModelEntry

SAVED_MODEL_DIR = runs.SAVED_MODEL_DIR
H5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
VERIFY_EXAMPLES = 256  # random inputs a float export is verified on when no data is given


@dataclass(frozen=True)
class Stated:
    """What the user says of a model file (each None: not said; the recorded or read value holds).

    data: a dataset spec (`zoo train`'s, an .npz with x and y, a folder of unlabeled images).
    labels: a list, `a,b,c`, or a file with one label a line.
    normalize: `scale`, `none` or `MEAN,STD` on 0-255 pixels.
    vocab: text models: a file with one token a line (line n is token id n).
    custom_objects: `module:Name` or `path/to/file.py:Name` strings, or a dict name -> class.
    """

    data: str | None = None
    labels: object = None
    normalize: str | None = None
    vocab: str | None = None
    custom_objects: object = None

    @classmethod
    def of(cls, options: dict) -> "Stated":
        """From an API function's keyword arguments: one line for a name that is none of these."""
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown argument {', '.join(unknown)}; a model file takes: "
                              f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**{k: (None if v in ((), []) and k == "custom_objects" else v) for k, v in options.items()})

    @property
    def said(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def refuse_for_run(self, name: str, allow=()) -> None:
        """A run (zoo's own, or a file taken in before) has all of this in its card already."""
        extra = [k for k in self.said if k not in allow]
        if extra:
            flags = ", ".join("--" + k.replace("_", "-") for k in extra)
            raise ConfigError(f"{flags}: for a model file (.keras, .h5, SavedModel); run '{name}' has its "
                              "own in its card.json")


@dataclass
class Loaded:
    """A model file read once: the Keras model and what stands for the file."""

    model: object
    path: Path | None
    format: str  # keras | h5 | saved_model | object
    sha256: str
    custom_objects: list = field(default_factory=list)


# ---------------------------------------------------------------- reading the file


def file_format(path: Path) -> str | None:
    """keras, h5 or saved_model by what the path is; None for anything else."""
    if path.is_dir():
        from zoo.files import saved_model_folder

        return "saved_model" if saved_model_folder(path) is not None else None
    if path.suffix == ".keras":
        return "keras"
    if path.suffix in (".h5", ".hdf5"):
        return "h5"
    return None


def sha256(path: Path) -> str:
    """Of a file, or of a folder's files with their relative paths (a SavedModel)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_file(path: Path, given_custom=None) -> Loaded:
    """The Keras model in a user's file; one line, naming the file, for anything wrong with it."""
    import zipfile

    path = Path(path)
    kind = file_format(path)
    if kind is None:
        raise ModelLoadError(f"{path}: not a model file (a .keras or .h5 file, or a SavedModel folder)")
    objects, recorded = runs.import_custom_objects(given_custom)
    if kind == "keras" and not zipfile.is_zipfile(path):
        raise ModelLoadError(f"cannot load {path}: not a Keras model file (a .keras file is a zip archive)")
    if kind == "h5":
        with open(path, "rb") as f:
            if f.read(8) != H5_SIGNATURE:
                raise ModelLoadError(f"cannot load {path}: not an HDF5 file (a legacy .h5 Keras model)")
    model = runs.load_model_file(path, kind, objects)
    return Loaded(model, path, kind, sha256(path), recorded)


def from_object(model) -> Loaded:
    """A keras.Model in memory: its hash is that of the weights, so the same model reuses its folder."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    digest.update(repr(model.to_json() if hasattr(model, "to_json") else model.name).encode())
    return Loaded(model, None, "object", digest.hexdigest())


# ---------------------------------------------------------------- what the model reads


def kind_of(model, vocab_given: bool) -> str:
    """'image', 'text' or 'tensor', from the model's one input; one line if it has several."""
    if len(model.inputs) != 1:
        raise ConfigError(f"model '{model.name}' takes {len(model.inputs)} inputs; zoo takes models with one "
                          "input (join them into one tensor)")
    if len(model.outputs) != 1:
        raise ConfigError(f"model '{model.name}' has {len(model.outputs)} outputs; zoo takes classifiers with "
                          "one output")
    shape = tuple(model.inputs[0].shape[1:])
    dtype = str(model.inputs[0].dtype)
    if len(shape) == 3 and shape[-1] in (1, 3) and "float" in dtype:
        return "image"
    if len(shape) == 1 and (_first_layer_type(model) == "Embedding" or "int" in dtype):
        return "text" if vocab_given else "tensor"
    return "tensor"


def _first_layer_type(model) -> str | None:
    for layer in model.layers:
        if type(layer).__name__ != "InputLayer":
            return type(layer).__name__
    return None


def _first_rescaling(model):
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        return layer if type(layer).__name__ == "Rescaling" else None
    return None


def classes_of(model) -> int:
    shape = model.outputs[0].shape
    if len(shape) != 2 or shape[-1] is None:
        raise ConfigError(f"model '{model.name}' gives an output of shape {tuple(shape[1:])}; zoo takes "
                          "classifiers whose output is one score per class")
    return max(int(shape[-1]), 2)  # one sigmoid unit: two classes


def parse_labels(given, classes: int | None = None) -> list[str]:
    """`--labels`: a list, a file with one label a line, or `a,b,c`; checked against the classes."""
    if isinstance(given, (list, tuple)):
        labels = [str(v) for v in given]
        source = "--labels"
    else:
        text = str(given)
        path = Path(text)
        from zoo.files import is_file

        if is_file(text):
            labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            source = f"--labels {text}"
        elif "," in text:
            labels = [part.strip() for part in text.split(",")]
            source = "--labels"
        else:
            raise DataError(f"--labels {text}: no such file; give a file with one label a line, or a,b,c")
    if len(set(labels)) != len(labels) or not all(labels):
        raise DataError(f"{source}: labels must be distinct and not empty")
    if classes is not None and len(labels) != classes:
        raise DataError(f"{source} gives {len(labels)} labels, but the model's output has {classes} classes")
    return labels


def read_vocab(path) -> list[str]:
    """A vocabulary file, one token a line; the padding ("") and out-of-vocabulary ([UNK]) ids 0
    and 1 are added unless the file starts with them, as Keras's TextVectorization writes it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--vocab {path}: no such file; give the vocabulary, one token a line")
    tokens = path.read_text(encoding="utf-8").split("\n")
    if tokens and tokens[-1] == "":
        tokens = tokens[:-1]
    if tokens[:2] != ["", "[UNK]"]:
        tokens = ["", "[UNK]", *tokens]
    return tokens


def preprocessing(model, kind: str, stated: Stated, vocab: list[str] | None):
    """The record of how inputs reach this model: read from it, said by the user, or assumed (and
    said so)."""
    from zoo.data.preprocess import ImagePreprocessing, TensorPreprocessing, TextPreprocessing

    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ConfigError(f"model '{model.name}' takes inputs of shape {_shape(shape)}: zoo needs a fixed size "
                          "(build it with keras.Input(shape=...) without None)")
    if kind == "text":
        layer = next((l for l in model.layers if type(l).__name__ == "Embedding"), None)
        if layer is not None and len(vocab) > int(layer.input_dim):
            raise DataError(f"--vocab holds {len(vocab):,} tokens with padding and [UNK], but layer "
                            f"'{layer.name}' has {int(layer.input_dim):,} rows")
        return TextPreprocessing(vocab, shape[0])
    if kind == "tensor":
        return TensorPreprocessing(shape, "int32" if "int" in str(model.inputs[0].dtype) or
                                   _first_layer_type(model) == "Embedding" else "float32")
    if stated.normalize is not None:
        return ImagePreprocessing.from_option(shape, stated.normalize)
    rescaling = _first_rescaling(model)
    if rescaling is not None:
        return ImagePreprocessing.from_option(
            shape, "none", stated=True, reason=f"the model scales its own pixels (layer '{rescaling.name}', Rescaling)")
    return ImagePreprocessing.from_option(
        shape, "scale", stated=False, reason="no --normalize given: pixels assumed scaled to 0-1 (pixel / 255)")


def _shape(shape) -> str:
    return "×".join("?" if d is None else str(d) for d in shape)


# ---------------------------------------------------------------- the run folder


def as_run(loaded: Loaded, stated: Stated, root: Path, name: str | None = None) -> Path:
    """The run folder of a model file (written once, atomically, under its lock), made anew when
    the file changed or something new was stated."""
    name = name or (loaded.path.stem if loaded.path is not None and loaded.path.is_file()
                    else (loaded.path.resolve().name if loaded.path is not None else loaded.model.name))
    name = _run_name(name)
    root = Path(root)
    final = runs.run_dir(name, root)
    source_path = str(loaded.path.resolve()) if loaded.path is not None else None
    with locks.hold(root, name, locks.EXPORT):
        previous = None
        if (final / runs.CARD_FILE).is_file():
            previous = runs.read_card(final)
            if not previous.source or previous.source.get("path") != source_path:
                came = (previous.source or {}).get("path") or "zoo train"
                raise ConfigError(f"{final}/ holds run '{name}' from {came}; take {source_path or name} in "
                                  "elsewhere with --out DIR")
            same_file = previous.source.get("sha256") == loaded.sha256
            if same_file and not stated.said:
                return final
            stated = _merged(previous, stated) if same_file else stated
        card, extra = _card(loaded, stated, name)
        if previous is not None and previous.to_dict() == {**card.to_dict(), "date": previous.date}:
            return final
        staging = root / f".{name}.taking-in-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            if loaded.format == "saved_model":
                shutil.copytree(loaded.path, staging / SAVED_MODEL_DIR)
            elif loaded.format == "keras":
                shutil.copyfile(loaded.path, staging / runs.MODEL_FILE)
            else:
                loaded.model.save(staging / runs.MODEL_FILE)
            for file_name, text in extra.items():
                (staging / file_name).write_text(text, encoding="utf-8")
            card.write(staging)
            if previous is not None and (final / "export").is_dir():
                warnings.warn(f"{source_path or name}: {'the file changed' if previous.source.get('sha256') != loaded.sha256 else 'its labels, data or preprocessing changed'}"
                              f" since {final}/ was made; its earlier exports are left out of the new one",
                              ZooWarning, stacklevel=3)
            runs.publish(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _run_name(text: str) -> str:
    import re

    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip("._-") or "model"
    return cleaned[:128]


def _merged(previous, stated: Stated) -> Stated:
    """What was stated before, with today's changes over it."""
    before = (previous.source or {}).get("stated") or {}
    keep = {k: v for k, v in before.items() if k in Stated.__dataclass_fields__ and k != "custom_objects"}
    return Stated(**{**keep, **{k: v for k, v in stated.said.items() if k != "custom_objects"}},
                  custom_objects=stated.custom_objects)


def _card(loaded: Loaded, stated: Stated, name: str):
    """The card of a model taken in, and the files beside it (vocab.txt)."""
    from zoo.card import Card
    from zoo.data.datasets import load_dataset
    from zoo.data.preprocess import VOCAB_FILE

    model = loaded.model
    vocab = read_vocab(stated.vocab) if stated.vocab is not None else None
    kind = kind_of(model, vocab is not None)
    classes = classes_of(model)
    prep = preprocessing(model, kind, stated, vocab)
    dataset_record: dict = {}
    labels = None
    if stated.data is not None:
        dataset = load_dataset(stated.data, kind=kind, image_shape=getattr(prep, "shape", None))
        if dataset.kind == "tensor":
            from zoo.data.recorded import check_tensor_shape

            check_tensor_shape(dataset, model.inputs[0].shape[1:])
        described = dataset.describe()
        dataset_record = {**described, "spec": str(stated.data)}
        if dataset.labelled:
            if len(dataset.labels) != classes and stated.labels is None:
                raise DataError(f"{dataset.source} has {len(dataset.labels)} classes, but the model's output has "
                                f"{classes}")
            labels = dataset.labels
            if kind == "image" and getattr(prep, "normalization", None) is not None:
                from zoo.data.digits import CANVAS, in_mnist_form

                if dataset.x_train.shape[1:] == (CANVAS, CANVAS, 1) and in_mnist_form(dataset.x_train):
                    prep.normalize = "mnist"  # photos are brought into MNIST's form before prediction
    if stated.labels is not None:
        labels = parse_labels(stated.labels, classes)
        if stated.data is not None and dataset_record.get("labelled", True) and len(labels) != classes:
            raise DataError(f"--labels gives {len(labels)} labels; the model has {classes} classes")
    labels_said = labels is not None
    if labels is None:
        labels = [str(i) for i in range(classes)]
    said = {k: (list(v) if isinstance(v, tuple) else v) for k, v in stated.said.items() if k != "custom_objects"}
    source = {
        "path": str(loaded.path.resolve()) if loaded.path is not None else None,
        "format": loaded.format,
        "sha256": loaded.sha256,
        "labels": "stated" if stated.labels is not None else ("from the data" if labels_said else
                                                               "class indices: no --labels given"),
        "stated": said,
        **({"custom_objects": loaded.custom_objects} if loaded.custom_objects else {}),
    }
    import datetime as _dt

    card = Card(run=name, model=model.name, labels=labels, preprocessing=prep.to_dict(), dataset=dataset_record,
                task=f"{kind} classification", source=source,
                date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    extra = {VOCAB_FILE: "\n".join(vocab) + "\n"} if vocab is not None else {}
    return card, extra


def random_inputs(card, prep, model, n: int = VERIFY_EXAMPLES, seed: int = 0) -> tuple[np.ndarray, str]:
    """Inputs drawn in the input's range, for a float export with no data; and the words that say so."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    kind = card.kind
    if kind == "image":
        x = prep(rng.integers(0, 256, (n, *shape), dtype=np.uint8))
        what = "random pixels 0-255"
    elif kind == "text" or "int" in card.preprocessing.get("dtype", "float32"):
        layer = next((l for l in model.layers if type(l).__name__ == "Embedding"), None)
        top = int(layer.input_dim) if layer is not None else 2
        x = rng.integers(0, top, (n, *shape)).astype(np.int32)
        what = f"random token ids 0-{top - 1}"
    else:
        x = rng.standard_normal((n, *shape)).astype(np.float32)
        what = "random normal values (mean 0, std 1)"
    return x, f"verified on {n} random inputs ({what}); no data given"


def unstated(meta: dict) -> list[str]:
    """What a card or sidecar says was assumed rather than stated, in words for predict and explain."""
    said = []
    normalization = (meta.get("preprocessing") or {}).get("normalization") or {}
    if normalization and not normalization.get("stated", True):
        said.append(f"{meta.get('run') or meta.get('model')}: preprocessing not stated, pixels assumed scaled to 0-1 "
                    "(pixel / 255); say it with --normalize scale|none|MEAN,STD")
    if str(meta.get("labels_source", "")).startswith("class indices"):
        said.append(f"{meta.get('run') or meta.get('model')}: no labels given, so classes are shown as indices; "
                    "name them with --labels FILE|a,b,c")
    return said


# ---------------------------------------------------------------- training a model file


@dataclass(frozen=True)
class FileEntry(ModelEntry):
    """A model file as `zoo train` takes a registry model: its builder loads the file's weights
    afresh (fine-tuning), and `file` is what the run's card records of where it came from."""

    file: dict = field(default_factory=dict)


def file_entry(model, custom_objects=None, vocab=None) -> FileEntry:
    """The registry entry of a model file or keras.Model, for zoo.training.fit."""
    if isinstance(model, (str, os.PathLike)):
        loaded = load_file(Path(model), custom_objects)
        objects = runs.import_custom_objects(custom_objects)[0]
    else:
        loaded, objects = from_object(model), {}
    keras_model = loaded.model
    shown = str(loaded.path) if loaded.path is not None else keras_model.name
    if loaded.format == "saved_model":
        raise ConfigError(f"{shown}: a SavedModel loads in Keras 3 as one frozen layer and cannot be trained; "
                          "train the .keras or .h5 file it was made from")
    vocabulary = read_vocab(vocab) if vocab is not None else None
    kind = kind_of(keras_model, vocabulary is not None)
    if kind == "tensor":
        raise ConfigError(f"{shown} takes a {_shape(keras_model.inputs[0].shape[1:])} tensor: zoo train takes image "
                          "models, and text models with --vocab")
    shape = tuple(int(d) for d in keras_model.inputs[0].shape[1:])
    classes = classes_of(keras_model)
    weights = None if loaded.path is not None else [np.asarray(w) for w in keras_model.get_weights()]

    def builder(input_shape: tuple[int, ...] = shape, num_classes: int = classes):
        if tuple(input_shape) != shape:
            raise DataError(f"{shown} takes {_shape(shape)} inputs; the data is {_shape(input_shape)}")
        if num_classes != classes:
            raise DataError(f"the data has {num_classes} classes, but {shown}'s output has {classes}: give data of "
                            f"{classes} classes, or change the model's last layer")
        if loaded.path is not None:  # each build a fresh copy of the file's weights
            return runs.load_model_file(loaded.path, loaded.format, objects)
        from zoo.backend import keras

        copy = keras().models.clone_model(keras_model)
        copy.set_weights(weights)
        return copy

    name = _run_name(loaded.path.stem if loaded.path is not None else keras_model.name)
    record = {"fine_tuned_from": str(loaded.path.resolve()) if loaded.path is not None else f"keras.Model '{shown}'",
              "format": loaded.format, "sha256": loaded.sha256,
              **({"custom_objects": loaded.custom_objects} if loaded.custom_objects else {})}
    recipe = {"vocabulary": vocabulary} if vocabulary else {}
    rescaling = _first_rescaling(keras_model)
    if rescaling is not None:  # the model scales its own pixels: zoo's /255 would scale them twice
        recipe["normalize"] = ("none", f"the model scales its own pixels (layer '{rescaling.name}', Rescaling)")
    return FileEntry(name, builder, kind, f"a model file: {shown}", recipe=recipe, file=record)
