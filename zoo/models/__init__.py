"""The models: the registry at the bottom, one builder per model, the shipped weights and their
lookup, and the factory that builds either. Importing this package registers the built-in models."""

from zoo.models import builders, pretrained  # noqa: F401 - the built-in models and their weights
from zoo.models.factory import create_model, list_models
from zoo.models.registry import ModelEntry, build_model, get_entry, register_model

__all__ = ["ModelEntry", "build_model", "create_model", "get_entry", "list_models", "register_model"]
