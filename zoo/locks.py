"""One lock per run, held by the process that writes it, like git's `index.lock`.

A lock is an OS lock (`fcntl.flock`; on Windows `msvcrt.locking` on one byte past the record,
which Windows's mandatory byte locks would otherwise keep readers from) on
`<output>/.<run>.lock`, so a process
that dies, even by kill -9, lets go of it at once: nothing has to be cleaned up
before the run can be taken again. While a process holds the lock, the file
names that process (its pid, its command and what it is doing) for the refusal
another process prints, and the holder removes the file as it lets go; a
process that opened the file meanwhile sees that its descriptor no longer names
the path and opens the path again, so two processes never hold two files of one
name. A process killed with -9 leaves its file behind, unlocked: whether a run
is held is asked of the lock itself, never of the file or of its pid, which the
system may have given to another process since.

Training holds its run's lock from choosing the name to publishing the folder;
a second `zoo train` of that name, `--resume` or `--overwrite` included, is
refused at once, and so are an export or a benchmark of a run being trained.
Exports and benchmarks of a finished run wait for each other, a bounded time.
Readers (`evaluate`, `predict`, `summary`) never wait for a lock and never hold
one while they read: every file zoo writes is renamed into place whole, so they
never see half of one. A reader that finds no finished run asks whether its
first training holds the lock (a shared lock tried for an instant, `holder`),
to say "being trained" rather than "no such run"; one that finds a replacement of a run left
half done by a killed process finishes it first, under the repair lock (runs.repair_swaps).
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
# A holder writes its record an instant after it takes the lock, and a reader's probe holds a
# shared lock for an instant (microseconds, both): a contender keeps asking this long before it
# believes that the run is held, or that an empty record is all the holder will say
_SETTLE_SECONDS = 0.2
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


if os.name == "nt":  # Windows has no flock: a byte lock far past the record, which stays readable
    import msvcrt

    _FAR = 1 << 30

    def _try_lock(fd: int, shared: bool = False) -> bool:
        os.lseek(fd, _FAR, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # no shared byte locks: a reader's probe is exclusive too
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _FAR, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _holder(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):  # being written this instant, or by a zoo of another age
        return {}
    return record if isinstance(record, dict) else {}


def _settled_holder(path: Path) -> dict:
    """The holder's record, read again for up to `_SETTLE_SECONDS` while it is still empty: a
    process that has just taken the lock has not written its record yet, and an empty record
    would be refused as 'another zoo process' where an export would be waited for."""
    deadline = time.monotonic() + _SETTLE_SECONDS
    while True:
        record = _holder(path)
        if "pid" in record or time.monotonic() >= deadline:
            return record
        time.sleep(0.01)


def describe(holder: dict) -> str:
    """Who holds a run, as a refusal names it: `another zoo process (pid 4242, 'zoo train ...')`."""
    return _who(holder)


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
        record = json.dumps({"pid": os.getpid(), "command": this_command(), "activity": activity,
                             "since": time.time()}).encode()
        # the record first, then the length: the file is never emptied once it holds a record
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, record)
        os.ftruncate(fd, len(record))
        yield
    finally:
        # the file goes while the lock is still held: a process that opened it meanwhile finds
        # its descriptor no longer names the path, and opens the path afresh (see _acquire);
        # Windows does not remove an open file, so there the next holder takes the same one
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)


def _acquire(path: Path, name: str, activity: str, seconds: float, on_wait) -> int:
    """A descriptor of `path` holding its exclusive lock; the refusal or the bounded wait."""
    deadline, said, contended = None, False, None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            contended = contended or time.monotonic()
            if not said and time.monotonic() - contended < _SETTLE_SECONDS:
                time.sleep(0.01)  # a reader's probe (see `holder`) lets go within microseconds
                continue
            holder = _settled_holder(path)
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
    """Who holds run `name` now, for a reader's message; None if no process holds its lock.

    The lock itself answers: a shared lock tried without waiting, and let go at once, fails only
    while a writer holds the exclusive one. A file that a process killed with -9 left behind is
    not held, whatever pid it names (the system may have given that pid to another process)."""
    path = lock_path(root, name)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no file: nobody holds it
        return None
    try:
        if not _try_lock(fd, shared=True):
            return _settled_holder(path)  # held; {} if its holder has not written its record yet
        _unlock(fd)
        return None
    finally:
        os.close(fd)

