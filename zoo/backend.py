"""Import Keras and TensorFlow once, late and quietly.

TensorFlow takes seconds to import and writes C++ log lines to the terminal,
some of them before its logging is even set up (so no environment variable
silences them). zoo imports it only when a command needs it, with its log
level raised and, for the duration of the import, file descriptor 2 pointed at
/dev/null. Set ZOO_VERBOSE=1 to see everything TensorFlow prints.
"""

from __future__ import annotations

import contextlib
import os
import sys

_QUIET_ENV = {
    # hide C++ INFO, WARNING and ERROR lines (a CPU-only machine logs a failed cuInit as an
    # ERROR); real failures still surface as Python exceptions
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # oneDNN kernels: TensorFlow turns them on by default only on some Intel CPUs; on the
    # 2-core AMD EPYC here they train LeNet-5 2.3x faster (benchmarks/RESULTS.md)
    "TF_ENABLE_ONEDNN_OPTS": "1",
}


def _verbose() -> bool:
    return os.environ.get("ZOO_VERBOSE", "") not in ("", "0", "false", "False")


def quiet_environment() -> None:
    """Set TensorFlow's logging and oneDNN variables unless the user already set them."""
    for key, value in _QUIET_ENV.items():
        if key != "TF_CPP_MIN_LOG_LEVEL" or not _verbose():
            os.environ.setdefault(key, value)


@contextlib.contextmanager
def native_output_redirected(target_fd: int, fds=(1, 2)):
    """Point file descriptors at `target_fd` while native code writes, and back after, whatever
    happens in the block (C++ libraries print with printf, past Python's sys.stdout)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [(fd, os.dup(fd)) for fd in fds]
    try:
        for fd, _ in saved:
            os.dup2(target_fd, fd)
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


@contextlib.contextmanager
def native_output_silenced(fds=(2,)):
    """Point file descriptors (default: 2) at /dev/null while native code chatters.

    Python exceptions still propagate normally; ZOO_VERBOSE=1 turns this off.
    """
    if _verbose():
        yield
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd in fds:
            os.fstat(fd)
    except (OSError, ValueError, AttributeError):  # no real descriptors (some test runners)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with native_output_redirected(devnull, fds):
            yield
    finally:
        os.close(devnull)


def keras():
    """Return the `keras` module, importing TensorFlow quietly the first time."""
    if "keras" not in sys.modules or "tensorflow" not in sys.modules:
        quiet_environment()
        if _verbose():
            import keras as _keras  # noqa: F401
        else:
            with native_output_silenced():
                import tensorflow  # noqa: F401
                import keras as _keras  # noqa: F401
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
            tensorflow.get_logger().setLevel("ERROR")
        _split_cpu()
    return sys.modules["keras"]


def _split_cpu() -> None:
    """ZOO_LOGICAL_CPUS=N: show the CPU to TensorFlow as N devices, so that `--strategy mirrored`
    can be tried (and tested) with N replicas on a machine without GPUs."""
    value = os.environ.get("ZOO_LOGICAL_CPUS", "").strip()
    if not value:
        return
    from zoo.errors import ConfigError

    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"ZOO_LOGICAL_CPUS must be a whole number >= 1, got {value!r}")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(value))
