"""The `zoo` command line: a thin Click layer over the Python API, one module per command.

This folder is the repository's top-level `cli/`, installed as `zoo.cli`
(setuptools `package-dir`), so no generic `cli` package lands in site-packages.
`app` holds the group and what every command shares; each other module adds
its commands to it. Nothing heavy is imported at module level, so `zoo --help`
answers at once; TensorFlow loads when a command needs a model.
"""

from __future__ import annotations

from . import benchmark, evaluate, explain, export, models, predict, serve, train  # noqa: F401 - each adds its commands
from .app import main

__all__ = ["main"]
