"""zoo: classic small networks in Keras 3, trained, understood and exported.

    import zoo
    zoo.list_models("mnist*")             # ['mnist_cnn', 'mnist_cnn_dropout']
    model = zoo.create_model("lenet")     # a keras.Model
    report = zoo.summarize(model)         # per-layer shapes, params, MACs, receptive fields
    run = zoo.train("lenet5", epochs=3)   # trains, writes saved_models/lenet5/, returns the Run
    zoo.evaluate(run.name)                # its test metrics
    zoo.export(run, format="tflite", quantize="int8")   # verified in LiteRT, in run/export/

Importing zoo is cheap: TensorFlow is imported (quietly) the first time a
model is built or loaded.
"""

import importlib.abc
import importlib.util
import sys

from zoo._version import __version__
from zoo.errors import (
    ConfigError,
    DamagedFileError,
    DataError,
    ExportError,
    Interrupted,
    ModelLoadError,
    SummaryError,
    UnknownModelError,
    ZooError,
    ZooWarning,
)
from zoo.models import create_model, get_entry, list_models, register_model

_LAZY = {
    "summarize": "zoo.inspect.summary",
    "model_table": "zoo.inspect.summary",
    "load_model": "zoo.runs",
    "train": "zoo.training.fit",
    "TrainConfig": "zoo.training.fit",
    "Run": "zoo.targets",
    "evaluate": "zoo.inspect.evaluate",
    "export": "zoo.deploy.exporter",
    "predict": "zoo.deploy.predict",
    "benchmark": "zoo.deploy.benchmark",
    "explain": "zoo.inspect.explain",
}


# modules of the public API by their short names: `zoo.pretrained.resolve(...)` without an import
# of its own, and `import zoo.digits` where the module now lives in a layer's package
_MODULES = {
    "pretrained": "zoo.models.pretrained",
    "calibration": "zoo.training.calibration",
    "digits": "zoo.data.digits",
    "images": "zoo.data.images",
}


def __getattr__(name):  # PEP 562: heavy parts of the API load on first use
    if name in _LAZY or name in _MODULES:
        import importlib

        module = importlib.import_module(_LAZY.get(name) or _MODULES[name])
        return module if name in _MODULES else getattr(module, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import zoo.digits` gives the module `zoo.data.digits` itself (one module object, not a
    copy, so that a monkeypatch of either is a patch of both)."""

    def find_spec(self, fullname, path=None, target=None):
        short = fullname[len("zoo."):] if fullname.startswith("zoo.") else None
        return importlib.util.spec_from_loader(fullname, self) if short in _MODULES else None

    def create_module(self, spec):
        return importlib.import_module(_MODULES[spec.name[len("zoo."):]])

    def exec_module(self, module):
        # the import system has set __spec__ to the alias's: the module ran under its own name, and
        # keeps the spec of that name (found again by its name, not kept between the two calls)
        module.__spec__ = importlib.util.spec_from_file_location(module.__name__, module.__file__)


sys.meta_path.append(_Alias())


__all__ = [
    "__version__",
    "benchmark",
    "explain",
    "export",
    "predict",
    "ConfigError",
    "DamagedFileError",
    "DataError",
    "ExportError",
    "Interrupted",
    "ModelLoadError",
    "Run",
    "SummaryError",
    "TrainConfig",
    "UnknownModelError",
    "ZooError",
    "ZooWarning",
    "create_model",
    "evaluate",
    "get_entry",
    "list_models",
    "load_model",
    "model_table",
    "register_model",
    "summarize",
    "train",
]
