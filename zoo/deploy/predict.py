"""Prediction from an exported artifact and its metadata alone: the path a mobile app follows.

Each input is prepared on its own (`zoo.data.inputs`) and says what was done to it; one that
cannot be read fairly gets an error of its own, and the other inputs are still predicted.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from zoo import ranges, runs
from zoo.errors import ConfigError, ModelLoadError, ZooWarning


def resolve_artifact(target, out=None, stated=None) -> Path:
    """The file or folder to run: an artifact, a `.keras` file or SavedModel as they are, a run's
    folder, or for `MODEL.TAG` its verified float32 LiteRT file where one ships (no TensorFlow to
    import), else its run folder."""
    from zoo import targets
    from zoo.models import pretrained

    found = targets.resolve(target, targets.ANYTHING, out=out)
    if found.kind in targets.FILES:  # a model file: its labels and preprocessing as the user stated them
        return found.run_folder(out, stated)
    if stated is not None and stated.said:
        stated.refuse_for_run(found.name)
    if found.kind != targets.PRETRAINED:
        return found.path
    weights = found.weights
    if weights.name in pretrained.QUICK:
        if weights.tflite_file.is_file():
            return weights.tflite_file  # verified float32 LiteRT, beside its sidecar
        warnings.warn(f"{weights.name}: its packaged LiteRT file {weights.tflite_file.name} is missing (reinstall "
                      f"zoo to get it back); predicting with the Keras model instead, which imports TensorFlow "
                      f"and writes {runs.output_root(out) / weights.name}/", ZooWarning, stacklevel=3)
    return found.run_folder(out)


def artifact_metadata(artifact: str | Path) -> tuple[dict, Path]:
    """The metadata of an artifact (its `.json` sidecar, or a run's card) and the folder holding its vocabulary."""
    path = Path(artifact)
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        from zoo.models.pretrained import WEIGHTS_DIR

        packaged = path.resolve().parent == WEIGHTS_DIR
        fix = "reinstall zoo" if packaged else f"re-export the run: zoo export {path.parent.parent}"
        return runs.read_json(sidecar, fix, required=("labels", "preprocessing.type")), path.parent
    folder = path if path.is_dir() else path.parent
    if (folder / runs.CARD_FILE).is_file():
        card = runs.read_card(folder)
        meta = {"model": card.model, "run": card.run, "labels": card.labels, "preprocessing": card.preprocessing,
                "input_shape": card.preprocessing.get("input_shape"),
                **({"labels_source": card.source.get("labels")} if card.source else {})}
        return meta, folder
    raise ModelLoadError(f"{path}: no metadata beside it ({sidecar.name}); export it with 'zoo export'")


def predict(artifact: str | Path, inputs: list[str], top_k: int = 5, *, out=None, **stated) -> list[dict]:
    """Top-k labels with probabilities for each input, with the preprocessing applied to it.

    Args:
        artifact: a .tflite or .onnx file, a run name or folder; or a model file (.keras, .h5, a
            SavedModel folder), taken in as a run first with `stated`.
        inputs: image files for an image model; texts or text files for a text model.
        **stated: for a model file: data, labels, normalize, vocab, custom_objects
            (zoo.models.adopted.Stated).

    Returns:
        One result per input, in order: `predictions` (label, probability), `preprocessing`
        (form and steps) and `warnings`; or `error` for an input that cannot be predicted.
        Text results also give `words` and `known_words`.
    """
    from zoo.data.inputs import prepare_inputs
    from zoo.deploy.runtime import load_runner
    from zoo.metrics import as_class_probabilities

    if not inputs:
        raise ConfigError("give at least one input: image files, or texts")
    ranges.check("top_k", top_k)
    from zoo.models.adopted import Stated, unstated

    artifact = resolve_artifact(artifact, out, Stated.of(stated))
    meta, folder = artifact_metadata(artifact)
    if meta.get("preprocessing", {}).get("type") == "tensor":
        raise ConfigError(f"{meta.get('run') or artifact} takes a {'×'.join(map(str, meta['input_shape']))} tensor, "
                          "not an image or a text; run it from Python (zoo.deploy.runtime.load_runner)")
    assumed = unstated(meta)
    prepared = prepare_inputs(list(inputs), meta, folder)
    good = [p for p in prepared if p.error is None]
    probs = iter(as_class_probabilities(load_runner(artifact)(np.stack([p.x for p in good]))) if good else ())
    return [result(item, None if item.error is not None else next(probs), meta["labels"], top_k, assumed)
            for item in prepared]


def result(item, row, labels: list, top_k: int, assumed=()) -> dict:
    """predict's answer for one prepared input (zoo.data.inputs.Prepared) given its class
    probabilities `row`: the top-k labels, the preprocessing and the warnings; or its error."""
    if item.error is not None:
        return {"input": item.name, "error": item.error, **item.extra}
    order = np.argsort(-row)[: min(top_k, len(labels))]
    return {
        "input": item.name,
        "predictions": [{"label": labels[i], "probability": round(float(row[i]), 6)} for i in order],
        "preprocessing": item.preprocessing,
        "warnings": [*assumed, *item.warnings],
        **item.extra,
    }
