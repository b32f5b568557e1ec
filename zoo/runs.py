"""Where runs live: the output folder, run names, atomic publishing, and loading a `.keras` file
safely. Turning a name into a run is zoo.targets' job.

A run is a folder `<output>/<run>/` holding `model.keras` and what training
wrote beside it. The output folder is `$ZOO_HOME`, or `saved_models/` in the
current directory.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import sys
import shutil
import warnings
from pathlib import Path

from zoo.errors import ConfigError, DamagedFileError, ModelLoadError, ZooWarning
from zoo.files import saved_model_folder

MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"  # in a run folder taken in from a SavedModel: the folder as it was
CARD_FILE = "card.json"  # its name; zoo.card writes and reads it
CONFIG_FILE = "train_config.json"  # in a .partial folder: what --resume continues with
CHECKPOINTS = "checkpoints"  # in a .partial folder: the epoch state and the best weights
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def output_root(out: str | os.PathLike | None = None) -> Path:
    """The folder runs are written to: `out`, else `$ZOO_HOME`, else `./saved_models`."""
    return Path(out or os.environ.get("ZOO_HOME") or "saved_models")


def run_dir(name: str, out: str | os.PathLike | None = None) -> Path:
    """The folder of run `name`; a name that could escape the output folder is refused."""
    if not isinstance(name, str) or not _RUN_NAME.match(name) or ".." in name:
        raise ConfigError(
            f"invalid run name {name!r}: use letters, digits, '.', '_' and '-' "
            "(no '/', no '..', at most 128 characters)"
        )
    return output_root(out) / name


def partial_dir(folder: Path) -> Path:
    """Where a run lives until it is complete: `NAME.partial` beside `NAME`."""
    return folder.with_name(folder.name + ".partial")


def read_json(path: Path, fix: str, required: tuple[str, ...] = ()) -> dict:
    """A JSON object that zoo wrote, or one `DamagedFileError` line that names the file, what is
    wrong with it and `fix`, what to do: never a traceback for a truncated or edited file.
    `required` keys may be dotted ("dataset.spec")."""
    try:
        document = json.loads(Path(path).read_text())
    except UnicodeDecodeError:
        raise DamagedFileError(f"{path} is damaged (not text); {fix}") from None
    except ValueError as exc:
        reason = "empty" if not Path(path).read_bytes().strip() else f"truncated or not JSON: {exc}"
        raise DamagedFileError(f"{path} is damaged ({reason}); {fix}") from None
    if not isinstance(document, dict):
        raise DamagedFileError(f"{path} is damaged (not a JSON object); {fix}")
    for key in required:
        node = document
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise DamagedFileError(f"{path} is damaged (it has no '{key}'); {fix}")
            node = node[part]
    return document


def read_card(folder: Path):
    """A run's card.json (a `zoo.card.Card`), checked for what the commands need."""
    from zoo.card import read_run_card

    return read_run_card(folder)


_OLD = re.compile(r"^\.(?P<name>.+)\.old-\d+$")


def publish(staging: Path, final: Path) -> Path:
    """Move a complete run folder into place; an older run of that name is replaced only once the
    new one is in. Two renames: a process killed between them leaves `.NAME.old-PID`, which
    `repair_swaps` puts right on the next command that touches the output folder."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    try:
        os.replace(staging, final)
    except BaseException:  # a failed rename or Ctrl-C between the two: the old run goes back
        if old.exists() and not final.exists():
            os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return final


def drop_resume_state(folder: Path) -> Path:
    """Remove what only --resume needed from a published run: until the run is in place, the
    epoch state and the options are all that a crash would leave to continue from."""
    shutil.rmtree(folder / CHECKPOINTS, ignore_errors=True)
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    return folder


def repair_swaps(root: Path) -> list[str]:
    """Finish or roll back each replacement of a run that a killed process left half done; say which.

    `.NAME.old-PID` beside no `NAME` is a run that was moved aside for a new one: if the new
    one is complete in `NAME.partial` (its card and model written), it goes into place; else
    the old one goes back. Beside a `NAME`, it is a leftover copy and is removed. A run whose
    lock another process holds is left alone: that process is in the middle of it.
    """
    from zoo import locks

    said = []
    if not Path(root).is_dir():
        return said
    for old in sorted(Path(root).iterdir()):
        match = _OLD.match(old.name)
        if not match or not old.is_dir():
            continue
        name = match.group("name")
        final = old.with_name(name)
        partial = partial_dir(final)
        try:
            with locks.hold(root, name, locks.REPAIR):
                if final.exists():
                    shutil.rmtree(old, ignore_errors=True)
                    continue
                if (partial / CARD_FILE).is_file() and (partial / MODEL_FILE).is_file():
                    drop_resume_state(publish(partial, final))
                    shutil.rmtree(old, ignore_errors=True)
                    said.append(f"run '{name}' was being replaced when its process stopped; finished the swap: "
                                "the new run is in place")
                else:
                    os.replace(old, final)
                    said.append(f"run '{name}' was being replaced when its process stopped; rolled back: "
                                "the previous run is back in place")
        except locks.RunLocked:
            continue
    for line in said:
        warnings.warn(line, ZooWarning, stacklevel=2)
    return said


def load_model(path: str | os.PathLike, *, safe_mode: bool | None = None, custom_objects=None):
    """Load a `.keras` file, or the model of a run folder, without running untrusted code.

    `safe_mode` (default: on, unless `zoo --unsafe` or ZOO_UNSAFE=1) refuses
    files that carry Python code, such as Lambda layers. A run taken in from a user's model
    (zoo.models.adopted) may hold a SavedModel instead, and name the custom classes it needs
    (its card's `source.custom_objects`), which are imported again here.

    Raises:
        ModelLoadError: missing, unreadable or unsafe file.
    """
    path = Path(path)
    recorded = []
    if path.is_dir():
        recorded = _recorded_custom_objects(path)
        if not (path / MODEL_FILE).exists() and saved_model_folder(path / SAVED_MODEL_DIR) is not None:
            return saved_model_as_keras(path / SAVED_MODEL_DIR)
        path = path / MODEL_FILE
    if not path.is_file():
        raise ModelLoadError(f"no model file at {path}")
    if path.suffix != ".keras":
        raise ModelLoadError(f"{path} is not a Keras 3 model file (.keras)")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"cannot load {path}: not a Keras model file (a .keras file is a zip archive)")
    objects = dict(custom_objects or {})
    if recorded:
        objects.update(import_custom_objects(recorded)[0])
    return load_model_file(path, "keras", objects, safe_mode=safe_mode)


def _recorded_custom_objects(folder: Path) -> list[str]:
    try:
        document = json.loads((folder / CARD_FILE).read_text())
        return list((document.get("source") or {}).get("custom_objects") or [])
    except (OSError, ValueError, AttributeError, TypeError):
        return []  # no card, or a damaged one: reading the card says so, not loading the model


def import_custom_objects(given) -> tuple[dict, list[str]]:
    """`module:Name` (or `file.py:Name`) strings imported, or a dict as it is; with the strings to
    record. A module in the current folder is found as `python -m` would find it."""
    if not given:
        return {}, []
    if isinstance(given, dict):
        return dict(given), sorted(given)
    specs = [given] if isinstance(given, str) else list(given)
    found = {}
    for spec in specs:
        module_name, _, name = str(spec).rpartition(":")
        if not module_name or not name:
            raise ConfigError(f"--custom-objects {spec}: give module:Name (or path/to/file.py:Name)")
        try:
            if module_name.endswith(".py"):
                where = Path(module_name)
                if not where.is_file():
                    raise ModuleNotFoundError(f"no file {where}")
                loader = importlib.util.spec_from_file_location(where.stem, where)
                module = importlib.util.module_from_spec(loader)
                loader.loader.exec_module(module)
            else:
                if os.getcwd() not in sys.path and "" not in sys.path:
                    sys.path.insert(0, os.getcwd())
                module = importlib.import_module(module_name)
        except Exception as exc:  # the user's module: any error of theirs is one line
            raise ConfigError(f"--custom-objects {spec}: cannot import {module_name}: "
                              f"{type(exc).__name__}: {exc}") from None
        if not hasattr(module, name):
            raise ConfigError(f"--custom-objects {spec}: {module_name} has no '{name}'")
        found[name] = getattr(module, name)
    return found, [str(s) for s in specs]


def load_model_file(path: Path, kind: str, objects: dict, *, safe_mode: bool | None = None):
    """Keras's loader (keras, h5 or saved_model), its errors made one line: a class it cannot find
    names --custom-objects."""
    from zoo.backend import keras

    if kind == "saved_model":
        return saved_model_as_keras(path)
    safe = os.environ.get("ZOO_UNSAFE", "") in ("", "0") if safe_mode is None else safe_mode
    try:
        if kind == "h5":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return keras().saving.load_model(path, compile=False, custom_objects=objects or None)
        return keras().saving.load_model(path, compile=False, safe_mode=safe, custom_objects=objects or None)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelLoadError(f"cannot load {path}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    import re

    text = str(exc).strip()
    missing = re.search(r"[Cc]ould not (?:locate|deserialize) (?:class|function) '([^']+)'", text) or \
        re.search(r"Unknown (?:layer|object|class)(?: name)?: '?([A-Za-z_][\w.]*)'?", text)
    if missing:
        name = missing.group(1)
        return (f"it uses the class '{name}', which is not part of Keras; name its module with "
                f"--custom-objects module:{name} (in Python: custom_objects={{'{name}': {name}}})")
    if "safe_mode" in text:
        return ("it holds Python code (a Lambda layer) that safe mode refuses to run; if you trust the file: "
                "zoo --unsafe ..., or load_model(path, safe_mode=False)")
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


def saved_model_as_keras(path: Path):
    """A SavedModel wrapped as a one-layer Keras model (TFSMLayer) on its serving signature."""
    from zoo.backend import keras

    import tensorflow as tf

    k = keras()
    path = saved_model_folder(path) or path  # TF Serving's layout: its highest version
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001 - TensorFlow's many types for a bad folder
        raise ModelLoadError(f"cannot load {path}: {_reason(exc)}") from None
    endpoint = "serving_default" if "serving_default" in loaded.signatures else next(iter(loaded.signatures), None)
    if endpoint is None:
        raise ModelLoadError(f"cannot load {path}: the SavedModel has no signature to call")
    signature = loaded.signatures[endpoint]
    specs = [s for s in signature.structured_input_signature[1].values()]
    outputs = signature.structured_outputs
    if len(specs) != 1 or len(outputs) != 1:
        raise ModelLoadError(f"{path}: its '{endpoint}' signature takes {len(specs)} input(s) and gives "
                             f"{len(outputs)} output(s); zoo takes models of one input and one output")
    spec = specs[0]
    layer = k.layers.TFSMLayer(str(path), call_endpoint=endpoint, name="saved_model")
    inputs = k.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype.name, name="input")
    out = layer(inputs)
    if isinstance(out, dict):
        out = next(iter(out.values()))
    return k.Model(inputs, out, name=path.resolve().name)


