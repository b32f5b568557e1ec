"""`create_model` and `list_models` as the API offers them: the registry's models, untrained or
with their shipped weights (keras.applications' `weights=`)."""

from __future__ import annotations

from typing import Any

from zoo.models import plugins, pretrained
from zoo.models.registry import build_model, get_entry, on_first_lookup
from zoo.models.registry import list_models as _registered

# other packages' models join the registry before its first lookup (not now: `import zoo` reads no
# package metadata); here, since importing zoo.models always imports this module
on_first_lookup(plugins.load_plugins)


def create_model(name: str, weights: str | None = None, **overrides: Any):
    """Build a `keras.Model` from the registry: fresh and untrained, or with shipped weights.

    Args:
        name: a registry name or alias (`"lenet"`, `"mnist_cnn"`...).
        weights: None for an untrained model, or a pretrained tag (`"mnist"`), as in
            keras.applications; its card, labels and preprocessing are
            `zoo.pretrained.resolve(name, weights).card`.
        **overrides: keyword arguments of the model's builder (`num_classes=`,
            `input_shape=`...), checked before anything is built.

    Raises:
        UnknownModelError: no such model.
        ConfigError: an unknown keyword, a wrong type, a size out of range, an
            input too small for the layer stack, an unknown weights tag, or an
            argument the weights cannot take.
    """
    if weights is None:
        return build_model(name, **overrides)
    entry = get_entry(name)
    entry.validate(overrides)
    return pretrained.build(pretrained.resolve(entry.name, weights), overrides)


def list_models(pattern: str = "*", *, pretrained: bool = False) -> list[str]:
    """Registered model names matching a shell-style wildcard (an alias matches its model);
    `pretrained=True`: only those that ship trained weights (zoo.pretrained)."""
    names = _registered(pattern)
    return [name for name in names if _shipped(name)] if pretrained else names


def _shipped(name: str) -> bool:
    return bool(pretrained.shipped(name))
