"""Where runs live: the output folder, run names, atomic publishing, and loading a `.keras` file
safely. Turning a name into a run is zoo.targets' job.

A run is a folder `<output>/<run>/` holding `model.keras` and what training
wrote beside it. The output folder is `$ZOO_HOME`, or `saved_models/` in the
current directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

from zoo.errors import ConfigError, DamagedFileError, ModelLoadError, ZooWarning

MODEL_FILE = "model.keras"
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


def load_model(path: str | os.PathLike, *, safe_mode: bool | None = None):
    """Load a `.keras` file, or the `model.keras` of a run folder, without running untrusted code.

    `safe_mode` (default: on, unless `zoo --unsafe` or ZOO_UNSAFE=1) refuses
    files that carry Python code, such as Lambda layers.

    Raises:
        ModelLoadError: missing, unreadable or unsafe file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ModelLoadError(f"no model file at {path}")
    if path.suffix != ".keras":
        raise ModelLoadError(f"{path} is not a Keras 3 model file (.keras)")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"cannot load {path}: not a Keras model file (a .keras file is a zip archive)")
    from zoo.backend import keras

    if safe_mode is None:
        safe_mode = os.environ.get("ZOO_UNSAFE", "") in ("", "0")
    try:
        return keras().saving.load_model(path, compile=False, safe_mode=safe_mode)
    except Exception as exc:  # Keras raises many types for a bad file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "safe_mode" in str(exc):
            reason = ("it holds Python code (a Lambda layer) that safe mode refuses to run; "
                      "if you trust the file: zoo --unsafe ..., or load_model(path, safe_mode=False)")
        raise ModelLoadError(f"cannot load {path}: {reason}") from exc
