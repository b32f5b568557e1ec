"""Evaluation of a run (or a bare .keras file) on the test split of its dataset."""

from __future__ import annotations

from zoo import runs
from zoo.errors import ConfigError, ModelLoadError
from zoo.metrics import classification_metrics


def evaluate(target, data: str | None = None, *, out=None, batch_size: int = 1024, **stated) -> dict:
    """Accuracy, loss, per-class precision / recall / F1 and the confusion matrix on the test split.

    Args:
        target: a run name or folder; or a model file (.keras, .h5, SavedModel folder) or a
            keras.Model, taken in as a run first (it then needs `data`, recorded in its card).
        data: a dataset name or path instead of the one the run was trained on.
        **stated: for a model file: labels, normalize, vocab, custom_objects
            (zoo.models.adopted.Stated).

    Returns:
        The metrics, with `run`, `model` and `dataset` beside them.
    """
    from zoo import targets
    from zoo.data.recorded import run_dataset
    from zoo.models.adopted import Stated

    found = targets.resolve(target, targets.RUNS, out=out)
    files = found.kind in targets.FILES
    folder = found.run_folder(out, Stated.of({**stated, **({"data": data} if files and data else {})}))
    card = runs.read_card(folder)
    if card.dataset_spec is None and data is None:
        raise ConfigError(f"{folder.name} has no data to evaluate on: give --data SPEC (a dataset, or an .npz with "
                          "x and y)")
    model = runs.load_model(folder)
    prep, dataset = run_dataset(folder, card, None if files else data)
    if not dataset.labelled:
        raise ConfigError(f"{dataset.source} has no labels (loose images): evaluate needs class folders, a dataset "
                          "or an .npz with y")
    if card.source is None and dataset.labels != card.labels:
        raise ModelLoadError(
            f"{dataset.source} has classes {dataset.labels}, but the model was trained on {card.labels}"
        )
    outputs = model.predict(prep(dataset.x_test), batch_size=batch_size, verbose=0)
    metrics = classification_metrics(dataset.y_test, outputs, card.labels if card.source else dataset.labels)
    return {
        "run": card.run,
        "model": card.model,
        "dataset": {"name": dataset.name, "source": dataset.source, "split": dataset.split},
        **metrics,
    }
