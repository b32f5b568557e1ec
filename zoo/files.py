"""Small file helpers that every layer may use: nothing here imports the rest of zoo.

`write_atomic` is how zoo puts a whole file in place (a reader sees the old file or the new one,
never half), with the mode any other file gets under the user's umask; `is_file` asks whether
a command-line word names a file without tripping over words no file system takes as a name.
"""

from __future__ import annotations

import os
from pathlib import Path


def is_file(text: str | os.PathLike) -> bool:
    """Whether `text` names an existing file. A word the OS cannot take as a path (a text of 256
    bytes or more without a '/' is one name too long: errno 36) is not a file, not an error."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # ENAMETOOLONG; a NUL byte in the text
        return False


def write_atomic(path: str | os.PathLike, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write `data` to a temporary file beside `path` and rename it into place.

    The file is created with mode 0o666 less the umask, as `open()` would make it: `mkstemp`'s
    0o600 made the explain page unreadable to the group that could read everything else."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = data.encode(encoding) if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def saved_model_folder(path: str | os.PathLike) -> Path | None:
    """The SavedModel at `path`: the folder itself if it holds saved_model.pb, else its highest
    numbered version (TF Serving's layout, `saved_model/1/`); None if neither."""
    path = Path(path)
    try:
        if (path / "saved_model.pb").is_file():
            return path
        versions = [p for p in path.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    except OSError:  # not a folder, or one that cannot be read
        return None
    return max(versions, key=lambda p: int(p.name)) if versions else None
