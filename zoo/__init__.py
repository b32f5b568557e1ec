"""zoo: classic small networks in Keras 3, trained, understood and exported.

    import zoo
    zoo.list_models("mnist*")             # ['mnist_cnn', 'mnist_cnn_dropout']
    model = zoo.create_model("lenet")     # a keras.Model
    report = zoo.summarize(model)         # per-layer shapes, params, MACs, receptive fields

Importing zoo is cheap: TensorFlow is imported (quietly) the first time a
model is built or loaded.
"""

from zoo._version import __version__
from zoo.errors import (
    ConfigError,
    DataError,
    ExportError,
    ModelLoadError,
    SummaryError,
    UnknownModelError,
    ZooError,
)
from zoo.registry import create_model, get_entry, list_models, register_model

_LAZY = {"summarize": "zoo.summary", "model_table": "zoo.summary", "load_model": "zoo.runs"}


def __getattr__(name):  # PEP 562: heavy parts of the API load on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


__all__ = [
    "__version__",
    "ConfigError",
    "DataError",
    "ExportError",
    "ModelLoadError",
    "SummaryError",
    "UnknownModelError",
    "ZooError",
    "create_model",
    "get_entry",
    "list_models",
    "load_model",
    "model_table",
    "register_model",
    "summarize",
]
