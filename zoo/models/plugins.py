"""Models from other packages: the `zoo.models` entry points.

A package adds its models by naming a module in that group (pyproject.toml):

    [project.entry-points."zoo.models"]
    extra = "zoo_extra_models.builders"

Importing the module runs its `@zoo.register_model(...)` decorators, as pytest and `llm` load
their plugins. The registry runs `load_plugins` once, before it is first listed or looked up,
and not at `import zoo`: reading every installed package's metadata costs tens of milliseconds
that `zoo --help` need not spend. Each model keeps the name of the distribution it came from
(`ModelEntry.source`). A plugin that fails to import, or a name that is taken already, is one
ZooWarning: zoo and the other plugins keep working.
"""

from __future__ import annotations

import warnings

from zoo.errors import ZooWarning
from zoo.models import registry

GROUP = "zoo.models"


def load_plugins() -> None:
    """Import the module of every `zoo.models` entry point, attributing its registrations to the
    entry point's distribution. The registry calls this once (zoo.models.factory arms it);
    `_reset()` arms it again."""
    from importlib.metadata import entry_points  # here: importlib.metadata is slow to import

    try:
        found = list(entry_points(group=GROUP))
    except Exception as exc:  # a damaged .dist-info elsewhere on sys.path must not stop zoo
        warnings.warn(f"the {GROUP} plugins could not be listed: {type(exc).__name__}: {exc}", ZooWarning,
                      stacklevel=2)
        return
    for point in found:
        _load(point)


def _load(point) -> None:
    package = getattr(point.dist, "name", None) or "unknown"
    before = set(registry._MODELS)
    try:
        with registry.registering_for(package):
            point.load()
    except (Exception, SystemExit) as exc:  # not Ctrl-C: that stops zoo, as it would anywhere else
        # all or nothing: a module that broke half-way leaves none of its models behind, since
        # what it registered before the error may depend on what came after
        registry._unregister(set(registry._MODELS) - before)
        message = str(exc).splitlines()[0] if str(exc) else ""
        warnings.warn(
            f"plugin {point.name!r} (package {package}) failed to load: {type(exc).__name__}"
            f"{': ' + message if message else ''}; its models are left out",
            ZooWarning,
            stacklevel=2,
        )


def _reset() -> None:
    """Forget every plugin's models and load the entry points again at the next lookup. For the
    tests: the registry is one per process, shared by the whole suite."""
    registry._unregister([name for name, entry in registry._MODELS.items() if entry.source is not None])
    registry.on_first_lookup(load_plugins)
