"""One lock per run, held by the process that writes it, like git's `index.lock`.

A lock is an OS lock (`fcntl.flock`) on `<output>/.<run>.lock`, so a process
that dies, even by kill -9, lets go of it at once and no stale lock is ever
left to clean up. While a process holds the lock, the file names that process
(its pid, its command and what it is doing) for the refusal another process
prints, and the holder removes the file as it lets go; a process that opened
the file meanwhile sees that its descriptor no longer names the path and opens
the path again, so two processes never hold two files of one name.

Training holds its run's lock from choosing the name to publishing the folder;
a second `zoo train` of that name, `--resume` or `--overwrite` included, is
refused at once, and so are an export or a benchmark of a run being trained.
Exports and benchmarks of a finished run wait for each other, a bounded time.
Readers (`evaluate`, `predict`, `summary`) take no lock: every file zoo writes
is renamed into place whole, so they never see half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

from zoo.errors import ZooError, ZooWarning

# export and benchmark wait this long for another export or benchmark of the same run
WAIT_SECONDS = 600.0
_POLL_SECONDS = 0.2
# what a holder is doing, as the refusal says it ("run 'x' is being trained by ...")
TRAIN, EXPORT, BENCHMARK, REPAIR = "trained", "exported", "benchmarked", "repaired"
_WAITS_FOR = {EXPORT: {EXPORT, BENCHMARK, REPAIR}, BENCHMARK: {EXPORT, BENCHMARK, REPAIR}}
_command: str | None = None


class RunLocked(ZooError):
    """Another zoo process holds the run."""


def set_command(command: str) -> None:
    """What this process is, for a refusal another process prints (the CLI sets `zoo ...`)."""
    global _command
    _command = command


def this_command() -> str:
    return _command or shlex.join([Path(sys.executable).name, *sys.argv])


def lock_path(root: Path, name: str) -> Path:
    return Path(root) / f".{name}.lock"


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # being written this instant, or by a zoo of another age
        return {}


def _who(holder: dict) -> str:
    if "pid" not in holder:
        return "another zoo process"
    return f"another zoo process (pid {holder['pid']}, '{holder.get('command', '?')}')"


_ADVICE = {TRAIN: "wait for it to finish, or choose another --name", EXPORT: "wait for it to finish, then export it",
           BENCHMARK: "wait for it to finish, then benchmark it"}


def refusal(name: str, activity: str, holder: dict) -> str:
    """The line that says who holds the run, doing what, and what to do (`activity`: what was asked)."""
    doing = holder.get("activity", "written")
    return f"run '{name}' is being {doing} by {_who(holder)}; {_ADVICE.get(activity, 'wait for it to finish')}"


@contextlib.contextmanager
def hold(root: Path, name: str, activity: str, *, wait: float | None = None, on_wait=None):
    """Hold run `name`'s lock under `root` for the block.

    A process that holds it already makes this fail at once with `RunLocked`, unless both
    this and the holder are exports or benchmarks (which may overlap): then this waits up to
    `wait` seconds (default WAIT_SECONDS), and says so once as it starts to (a `ZooWarning`,
    or `on_wait(message)` when given).
    """
    path = lock_path(root, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path, name, activity, WAIT_SECONDS if wait is None else wait, on_wait)
    except OSError as exc:
        raise ZooError(f"cannot write to the output folder {root}/: {exc.strerror}; choose another with --out") from None
    try:
        record = {"pid": os.getpid(), "command": this_command(), "activity": activity, "since": time.time()}
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield
    finally:
        # the file goes while the lock is still held: a process that opened it meanwhile finds
        # its descriptor no longer names the path, and opens the path afresh (see _acquire)
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)  # closing the descriptor releases the flock


def _acquire(path: Path, name: str, activity: str, seconds: float, on_wait) -> int:
    """A descriptor of `path` holding its exclusive flock; the refusal or the bounded wait."""
    import fcntl

    deadline, said = None, False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _holder(path)
            if holder.get("activity") not in _WAITS_FOR.get(activity, ()) and not said:
                raise RunLocked(refusal(name, activity, holder)) from None
            if not said:
                deadline, said = time.monotonic() + seconds, True
                _say_waiting(name, holder, seconds, on_wait)
            if time.monotonic() >= deadline:
                raise RunLocked(f"run '{name}' is still being {holder.get('activity', 'written')} by "
                                f"{_who(holder)} after {seconds:.0f} s; try again when it has finished") from None
            time.sleep(_POLL_SECONDS)
            continue
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            return fd
        os.close(fd)  # its holder removed this file as it let go: take the path's new one


def _say_waiting(name: str, holder: dict, seconds: float, on_wait) -> None:
    message = (f"waiting for {_who(holder)}, which holds run '{name}' ({holder.get('activity', 'writing')}), "
               f"for up to {seconds:.0f} s")
    if on_wait is not None:
        on_wait(message)
    else:
        warnings.warn(message, ZooWarning, stacklevel=5)


def holder(root: Path, name: str) -> dict | None:
    """Who holds run `name` now, as its lock file says, for a reader's message; None if no live
    process does (a process killed with -9 leaves its record, but not its pid, behind)."""
    record = _holder(lock_path(root, name))
    if "pid" not in record:
        return None
    try:
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return None
    except (PermissionError, ValueError, OverflowError):
        pass  # alive, someone else's
    return record

