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
from zoo.registry import create_model, get_entry, list_models, register_model

_LAZY = {
    "summarize": "zoo.summary",
    "model_table": "zoo.summary",
    "load_model": "zoo.runs",
    "train": "zoo.training",
    "TrainConfig": "zoo.training",
    "Run": "zoo.training",
    "evaluate": "zoo.evaluation",
    "export": "zoo.exporter",
    "predict": "zoo.prediction",
    "benchmark": "zoo.benchmarking",
    "explain": "zoo.explainer",
}


_MODULES = ("pretrained", "calibration", "digits")  # zoo.pretrained.resolve(...) without an import of its own


def __getattr__(name):  # PEP 562: heavy parts of the API load on first use
    if name in _LAZY or name in _MODULES:
        import importlib

        module = importlib.import_module(_LAZY.get(name, f"zoo.{name}"))
        return module if name in _MODULES else getattr(module, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


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
