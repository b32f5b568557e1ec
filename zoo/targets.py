"""One way from a name on the command line to a thing: every command's TARGET goes through `resolve`.

A TARGET is read in this order, whichever command asks:

0. a `keras.Model` object (the API only);
1. a path: a run folder (it holds card.json) or its model.keras, a SavedModel folder, a `.keras`
   or legacy `.h5` file, an artifact (`.tflite`, `.onnx`); a word with a '/' or a model file's
   ending that is none of these is refused as a path, a bare word that names some other folder
   is read on as a name;
2. `MODEL.TAG`: weights that ship in the package (`lenet5.mnist`);
3. a registry name or alias (`lenet`), for the commands that take a model itself;
4. a run name under the output folder.

Each command takes some of the kinds (`RUNS`, `MODELS`, `ANYTHING` below, as its help says);
one set of rules reads the name and one set of errors says what it is not. A run name whose
first training is still under way says so, with the trainer's pid and start. A model file (or
object) that a run command is given is taken in as a run first (`Target.run_folder`,
zoo.models.adopted), with what the user stated of it.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

from zoo import locks, runs
from zoo.files import saved_model_folder
from zoo.errors import ConfigError, ModelLoadError, UnknownModelError, ZooError

RUN, PRETRAINED, REGISTRY, KERAS_FILE, H5_FILE, SAVED_MODEL, MODEL_OBJECT, ARTIFACT = (
    "run", "pretrained", "registry", "keras_file", "h5_file", "saved_model", "model_object", "artifact")
ARTIFACT_SUFFIXES = (".tflite", ".onnx")
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
FILES = (KERAS_FILE, H5_FILE, SAVED_MODEL, MODEL_OBJECT)  # a user's model: taken in as a run
# the kinds each command takes
RUNS = (RUN, PRETRAINED, *FILES)  # evaluate, export, benchmark, train's fine-tuning
MODELS = (PRETRAINED, REGISTRY, *FILES, RUN)  # summary, explain
ANYTHING = (RUN, PRETRAINED, *FILES, ARTIFACT)  # predict


@dataclass(frozen=True)
class Target:
    """What a TARGET names: its kind, the name as given, and its path, weights or registry entry."""

    kind: str
    name: str
    path: Path | None = None  # a run folder, model file, SavedModel folder or artifact
    weights: object = None  # a zoo.models.pretrained.Weights
    entry: object = None  # a zoo.models.registry.ModelEntry, or the keras.Model given

    def run_folder(self, out=None, stated=None, *, allow=()) -> Path:
        """The run folder: a run's own, the shipped weights written as one (once, atomically), or a
        model file taken in with what `stated` (a zoo.models.adopted.Stated) says of it. A run has
        its own labels and data: `stated` beyond `allow` is refused for it."""
        from zoo.models import adopted

        stated = stated or adopted.Stated()
        if self.kind in FILES:
            return adopted.as_run(self.loaded(stated.custom_objects), stated, runs.output_root(out))
        stated.refuse_for_run(self.name, allow)
        if self.kind == PRETRAINED:
            from zoo.models import pretrained

            return pretrained.as_run(self.weights, runs.output_root(out))
        if self.kind != RUN:
            raise ConfigError(f"{self.name} is a {self.kind.replace('_', ' ')}, not a run")
        return self.path

    def loaded(self, custom_objects=None):
        """A model file or object, read once (a zoo.models.adopted.Loaded)."""
        from zoo.models import adopted

        if self.kind == MODEL_OBJECT:
            return adopted.from_object(self.entry)
        return adopted.load_file(self.path, custom_objects)

    def model(self, custom_objects=None):
        """The Keras model: trained for a run, shipped weights or a file; untrained from the registry."""
        if self.kind == REGISTRY:
            from zoo.models.registry import build_model

            return build_model(self.entry.name)
        if self.kind == PRETRAINED:
            from zoo.models import pretrained

            return pretrained.build(self.weights, {})
        if self.kind == RUN:
            return runs.load_model(self.path, custom_objects=custom_objects)
        if self.kind in FILES:
            return self.loaded(custom_objects).model
        raise ConfigError(f"{self.name} is a {self.kind.replace('_', ' ')}, not a Keras model")


@dataclass
class Run:
    """A finished run folder (path None on a worker of a cluster other than the chief)."""

    path: Path | None
    card: object  # a zoo.card.Card
    chief: bool = True  # False: another process of the cluster wrote the run folder

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else self.card.run

    @property
    def metrics(self) -> dict:
        return self.card.metrics

    def load_model(self):
        return runs.load_model(self.path)

    @classmethod
    def open(cls, target, out=None) -> "Run":
        """A finished run, by any name a run command takes (a folder, a run name, MODEL.TAG)."""
        folder = resolve(target, RUNS, out=out).run_folder(out)
        return cls(folder, runs.read_card(folder))


def resolve(target, accept: tuple[str, ...], *, out=None) -> Target:
    """What `target` (a name, a path, a `zoo.Run` or a keras.Model) names among the kinds `accept`;
    one line if none."""
    if hasattr(target, "layers") and hasattr(target, "inputs") and not isinstance(target, (str, os.PathLike)):
        if MODEL_OBJECT not in accept:
            raise ConfigError(f"this command takes a name or a path, not a {type(target).__name__} object")
        return Target(MODEL_OBJECT, str(getattr(target, "name", "model")), entry=target)
    text = str(getattr(target, "path", None) or target)
    path = Path(text)
    found = _path_kind(path) if _exists(path) else None
    if found is not None and found[0] in accept:
        return Target(found[0], text, path=found[1])
    # a path that is no model or run is said so; a bare word that happens to name a folder here
    # (`cli`, a run's own name) is read as a name below
    if (found is not None or (_exists(path) and path.is_file()) or os.sep in text or "/" in text
            or text.endswith((*MODEL_SUFFIXES, *ARTIFACT_SUFFIXES))):
        raise _none_of(text, accept, out, path=path)
    from zoo.models import pretrained

    weights = pretrained.find(text)
    if weights is not None and PRETRAINED in accept:
        return Target(PRETRAINED, text, weights=weights)
    if REGISTRY in accept:
        from zoo.models.registry import get_entry

        try:
            return Target(REGISTRY, text, entry=get_entry(text))
        except UnknownModelError:
            pass
    if RUN in accept:
        return _run_name(text, accept, out)
    raise _none_of(text, accept, out)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name the OS cannot take as a path (errno 36) is no path
        return False


def _path_kind(path: Path) -> tuple[str, Path] | None:
    """The kind of an existing path, and the path that stands for it (a run's model.keras: its folder)."""
    if path.is_file() and path.name == runs.MODEL_FILE and (path.parent / runs.CARD_FILE).is_file():
        return RUN, path.parent
    if path.is_dir() and (path / runs.CARD_FILE).is_file():
        return RUN, path
    if path.is_dir() and saved_model_folder(path) is not None:  # its own, or TF Serving's saved_model/1/
        if path.with_name(path.name + ".json").is_file():  # zoo's own export, its sidecar beside it
            return ARTIFACT, path
        return SAVED_MODEL, path
    if path.is_dir() and (path / runs.MODEL_FILE).is_file():  # a model.keras without its run's card
        return KERAS_FILE, path / runs.MODEL_FILE
    if path.is_file() and path.suffix == ".keras":
        return KERAS_FILE, path
    if path.is_file() and path.suffix in (".h5", ".hdf5"):
        return H5_FILE, path
    if path.is_file() and path.suffix in ARTIFACT_SUFFIXES:
        return ARTIFACT, path
    return None


def _run_name(text: str, accept, out) -> Target:
    """A run name: its finished folder, or what keeps it from being one yet."""
    try:
        folder = runs.run_dir(text, out)
    except ConfigError:
        raise _none_of(text, accept, out) from None
    runs.repair_swaps(folder.parent)
    if (folder / runs.CARD_FILE).is_file():
        return Target(RUN, text, path=folder)
    if KERAS_FILE in accept and (folder / runs.MODEL_FILE).is_file():  # a model saved there by hand
        return Target(KERAS_FILE, text, path=folder / runs.MODEL_FILE)
    holder = locks.holder(folder.parent, folder.name)
    if holder is not None:  # its first training (or a repair) holds the name
        raise locks.RunLocked(training(folder.name, holder) if holder.get("activity") == locks.TRAIN
                              else locks.refusal(folder.name, "read", holder))
    if (folder / runs.CARD_FILE).is_file():  # published between the two looks
        return Target(RUN, text, path=folder)
    if runs.partial_dir(folder).is_dir():
        raise ModelLoadError(f"run '{text}' did not finish; continue it with: zoo train MODEL --name {text} --resume")
    raise _none_of(text, accept, out)


def training(name: str, holder: dict) -> str:
    """The line for a run whose first training is under way: who trains it, since when."""
    since = holder.get("since")
    when = f" since {_dt.datetime.fromtimestamp(since):%H:%M:%S}" if isinstance(since, (int, float)) else ""
    return (f"run '{name}' is being trained by {locks.describe(holder)}{when}; its model is written when that "
            "training ends: wait for it to finish")


def _none_of(text: str, accept, out, path: Path | None = None) -> ZooError:
    """The one line for a TARGET that is none of the kinds a command takes: predict's words for
    artifacts, summary's for models, the others' for runs."""
    root = runs.output_root(out)
    exists = path is not None and _exists(path)
    if ARTIFACT in accept:
        if exists:
            return ModelLoadError(f"{path}: not a model artifact (a .tflite, .onnx or .keras file, or a "
                                  "SavedModel folder)")
        return ModelLoadError(f"{text}: no such artifact, and no run of that name under {root}/; give a .tflite, "
                              ".onnx or .keras file, a SavedModel folder, or a run name")
    if REGISTRY in accept:
        if path is not None:
            if exists and path.is_file():
                return ModelLoadError(f"{path} is not a Keras 3 model file (.keras)")
            return ModelLoadError(f"no model file at {path / runs.MODEL_FILE if exists else path}")
        from zoo.models.registry import get_entry

        try:
            get_entry(text)
        except UnknownModelError as exc:
            return UnknownModelError(f"{exc} (and no run '{text}' under {root}/)")
    return ModelLoadError(f"no run '{text}': no {runs.CARD_FILE} in {text} or under {root}/")
