"""`zoo` commands run as processes of their own: for kills, signals and clusters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def _default_sigint():
    """A shell's background job starts with SIGINT ignored, and Python then never raises
    KeyboardInterrupt; give the child the default disposition, as a terminal would."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def zoo_process(args, home: Path, **env) -> subprocess.Popen:
    """Start `zoo ARGS` writing runs under `home`; TF_CONFIG only if given in `env`."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    environment.update(ZOO_HOME=str(home), PYTHONUNBUFFERED="1", **env)
    return subprocess.Popen([sys.executable, "-m", "zoo.cli", *args], env=environment,
                            preexec_fn=_default_sigint, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epochs(home: Path, name: str, epochs: int, *processes, timeout: float = 240) -> None:
    """Wait until the unfinished run `name` has logged more than `epochs` epochs, while every
    process in `processes` is still running."""
    log = home / f"{name}.partial" / "history.csv"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and len(log.read_text().strip().splitlines()) > epochs:
            return
        for process in processes:
            assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    for process in processes:
        process.kill()
    raise AssertionError(f"no {epochs} epochs within {timeout} s")


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[str, str]:
    """Wait for a `zoo_process` to succeed; return its stdout and stderr (kill it on a timeout)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, err[-3000:]
    return out, err
