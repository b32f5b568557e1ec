"""Evaluation of a run (or a bare .keras file) on the test split of its dataset."""

from __future__ import annotations

import os

from zoo import runs
from zoo.errors import ConfigError, ModelLoadError
from zoo.metrics import classification_metrics


def evaluate(target: str | os.PathLike, data: str | None = None, *, out=None, batch_size: int = 1024) -> dict:
    """Accuracy, loss, per-class precision / recall / F1 and the confusion matrix on the test split.

    Args:
        target: a run name, a run folder, or a `.keras` file (which then needs `data`).
        data: a dataset name or path instead of the one the run was trained on.

    Returns:
        The metrics, with `run`, `model` and `dataset` beside them.
    """
    from zoo import targets
    from zoo.data.datasets import load_dataset
    from zoo.data.preprocess import ImagePreprocessing
    from zoo.data.recorded import run_dataset

    found = targets.resolve(target, (*targets.RUNS, targets.KERAS_FILE), out=out)
    if found.kind == targets.KERAS_FILE:
        path = found.path
        if data is None:
            raise ConfigError(f"{path} has no run card beside it; say which data to evaluate on with --data")
        model = runs.load_model(path)
        shape = tuple(model.inputs[0].shape[1:])
        if len(shape) != 3:
            raise ConfigError(f"{path} takes text; evaluate it through its run folder, which holds the vocabulary")
        prep, card, labels = ImagePreprocessing(shape), None, None
        dataset = load_dataset(data, kind="image", image_shape=shape)
    else:
        folder = found.run_folder(out)
        card = runs.read_card(folder)
        model = runs.load_model(folder)
        prep, dataset = run_dataset(folder, card, data)
        labels = card.labels
    if labels is not None and dataset.labels != labels:
        raise ModelLoadError(
            f"{dataset.source} has classes {dataset.labels}, but the model was trained on {labels}"
        )
    outputs = model.predict(prep(dataset.x_test), batch_size=batch_size, verbose=0)
    metrics = classification_metrics(dataset.y_test, outputs, dataset.labels)
    return {
        "run": card.run if card else None,
        "model": card.model if card else model.name,
        "dataset": {"name": dataset.name, "source": dataset.source, "split": dataset.split},
        **metrics,
    }
