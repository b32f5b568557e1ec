"""The exceptions zoo raises for a user's mistake or a failed operation.

Every message says what was wrong and what to do about it, in one line. The
command line turns a `usage` error into exit code 2 and any other into exit
code 1; the Python API lets them propagate.
"""

from __future__ import annotations


class ZooError(Exception):
    """Base class of every error zoo raises on purpose."""

    usage = False  # True: the user asked for something invalid (exit code 2)


class ConfigError(ZooError, ValueError):
    """An invalid argument: an unknown keyword, a wrong type, a size out of range."""

    usage = True


class UnknownModelError(ConfigError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelLoadError(ZooError):
    """A model file or run folder that cannot be read."""


class SummaryError(ZooError):
    """A model that cannot be summarized (not built, no inputs)."""


class DataError(ZooError):
    """Missing or corrupt data."""


class TooLarge(DataError):
    """An input past a size limit: an image whose header gives too many pixels to decode safely,
    a request body (zoo serve answers it with 413)."""


class ExportError(ZooError):
    """An export that failed or did not match the trained model."""


class Interrupted(ZooError):
    """Training stopped by Ctrl-C (SIGINT); the last finished epoch is kept for --resume."""

    exit_code = 130


class DamagedFileError(ModelLoadError):
    """A file zoo wrote that is truncated, is not what it should be, or lacks a key zoo needs."""


class ZooWarning(UserWarning):
    """Something the user should know that does not stop the command (the CLI prints `Warning: ...`)."""
