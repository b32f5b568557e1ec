"""The model registry, the bottom of zoo.models: a decorator, `list_models(pattern)`, `get_entry`
and `build_model(name, **overrides)` (untrained).

It imports no other part of zoo but its errors: the builders register themselves here when
`zoo.models` is imported, and the shipped weights are looked up a layer above
(`zoo.models.factory`, timm's `_registry` / `_factory` split). Registering a model imports
nothing heavy: builders import Keras when called, so listing names stays instant.

Other packages add models through their `zoo.models` entry points: zoo.models.factory hands the
registry `zoo.models.plugins.load_plugins` to run before its first lookup (`on_first_lookup`), so
the registry stays at the bottom, importing nothing, and `import zoo` reads no package metadata.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import inspect
import threading
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from zoo.errors import ConfigError, UnknownModelError, ZooWarning


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., Any]
    task: str  # what it classifies: "image" or "text"
    reference: str  # short citation of the paper or tutorial it reproduces
    dataset: str | None = None  # what `zoo train` uses when no --data is given
    aliases: tuple[str, ...] = ()
    minimums: dict[str, float] = field(default_factory=dict)  # smallest allowed value per argument
    recipe: dict[str, Any] = field(default_factory=dict)  # training defaults: epochs, batch_size, lr...
    # the default build's input_shape, params and MACs, so that `zoo list` answers without building
    # (image_cnn alone holds 85M weights); tests/test_models.py checks them against the built models
    counts: dict[str, Any] | None = None
    # the distribution that registered it through the `zoo.models` entry points; None: zoo's own
    source: str | None = None

    @property
    def defaults(self) -> dict[str, Any]:
        """The builder's keyword arguments and their default values."""
        return {
            p.name: p.default
            for p in inspect.signature(self.builder).parameters.values()
            if p.default is not inspect.Parameter.empty
        }

    def validate(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Check overrides against the builder's signature; return the full argument set."""
        defaults = self.defaults
        hints = typing.get_type_hints(self.builder)
        for key, value in overrides.items():
            if key not in defaults:
                close = difflib.get_close_matches(key, list(defaults), n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise ConfigError(
                    f"{self.name} has no argument '{key}'; {hint}it takes: {', '.join(defaults)}"
                )
            _check_value(self.name, key, value, hints.get(key), self.minimums.get(key))
        return {**defaults, **overrides}


def _check_value(model: str, key: str, value: Any, hint: Any, minimum: float | None) -> None:
    where = f"{model}: {key}"
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        low = 1 if minimum is None else minimum
        if value < low:
            raise ConfigError(f"{where} must be at least {low:g}, got {value}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not 0 <= value < 1:
            raise ConfigError(f"{where} must be in [0, 1), got {value}")
    elif typing.get_origin(hint) is tuple:
        if not isinstance(value, (tuple, list)) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        ):
            raise ConfigError(f"{where} must be a sequence of positive whole numbers, got {value!r}")


_MODELS: dict[str, ModelEntry] = {}
_ALIASES: dict[str, str] = {}

# what registrations are attributed to while a plugin's module is imported (None: zoo itself)
_SOURCE: str | None = None
# run once each, before the first lookup; popped before they run, so that a loader whose module
# looks a name up while it is imported does not run itself again
_LOADERS: list[Callable[[], None]] = []
# a second thread's first lookup waits for the plugins the first one is loading, rather than
# seeing half of them; re-entrant for the loading thread's own lookups
_LOADING = threading.RLock()


def on_first_lookup(loader: Callable[[], None]) -> None:
    """Run `loader` once, before the registry is next listed or looked up (not at import, so that
    `import zoo` and `zoo --help` stay instant): how the entry points' models are loaded."""
    with _LOADING:
        if loader not in _LOADERS:
            _LOADERS.append(loader)


def _run_loaders() -> None:
    # the check outside the lock keeps the common case, everything loaded, at one list test
    if not _LOADERS:
        return
    with _LOADING:
        while _LOADERS:
            _LOADERS.pop(0)()


@contextlib.contextmanager
def registering_for(source: str) -> Iterator[None]:
    """Attribute the models registered inside the block to the distribution `source`; a name that
    is taken already is then a ZooWarning and left out, not an error (a plugin cannot break zoo)."""
    global _SOURCE
    before, _SOURCE = _SOURCE, source
    try:
        yield
    finally:
        _SOURCE = before


def _owner(key: str) -> str:
    entry = _MODELS[_ALIASES.get(key, key)]
    return "zoo's own model" if entry.source is None else f"a model of package {entry.source}"


def _unregister(names) -> None:
    """Remove models and their aliases (a plugin that failed half-way, or the tests' reset)."""
    for name in names:
        entry = _MODELS.pop(name, None)
        for alias in entry.aliases if entry else ():
            _ALIASES.pop(alias, None)


def register_model(
    name: str,
    *,
    task: str,
    reference: str,
    dataset: str | None = None,
    aliases: tuple[str, ...] = (),
    minimums: dict[str, float] | None = None,
    recipe: dict[str, Any] | None = None,
    counts: dict[str, Any] | None = None,
):
    """Decorator: add a builder function to the registry under `name` (and `aliases`).

    `counts` ({"input_shape", "params", "macs"} of the default build) lets `zoo list` answer
    without building the model; without it the model is built and summarized."""

    def wrap(builder):
        for key in (name, *aliases):
            if key in _MODELS or key in _ALIASES:
                if _SOURCE is None:  # zoo's own builders: a mistake in zoo, found by its tests
                    raise ValueError(f"model name {key!r} is registered twice")
                # another package's: the model already there is kept, and the rest of the plugin
                warnings.warn(
                    f"package {_SOURCE} registers model {name!r}, but {key!r} is {_owner(key)}; "
                    f"its {name!r} is left out",
                    ZooWarning,
                    stacklevel=2,
                )
                return builder
        _MODELS[name] = ModelEntry(
            name, builder, task, reference, dataset, tuple(aliases), minimums or {}, recipe or {}, counts,
            _SOURCE,
        )
        _ALIASES.update({alias: name for alias in aliases})
        return builder

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style wildcard (an alias matches its model)."""
    _run_loaders()
    pattern = pattern.lower()
    return sorted(
        name
        for name, entry in _MODELS.items()
        if any(fnmatch.fnmatchcase(key, pattern) for key in (name, *entry.aliases))
    )


def get_entry(name: str) -> ModelEntry:
    """The registry entry of a model name or alias; UnknownModelError suggests close names."""
    if not isinstance(name, str):
        raise ConfigError(f"a model name must be a string, got {name!r}")
    _run_loaders()
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key in _MODELS:
        return _MODELS[key]
    known = [*_MODELS, *_ALIASES]
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownModelError(
        f"unknown model '{name}'; {hint}'zoo list' shows the {len(_MODELS)} models: {', '.join(sorted(_MODELS))}"
    )


def build_model(name: str, **overrides: Any):
    """A fresh, untrained `keras.Model` of a registry model, its overrides checked first."""
    entry = get_entry(name)
    return entry.builder(**entry.validate(overrides))
