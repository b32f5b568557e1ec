"""Prediction from an exported artifact and its metadata alone: the path a mobile app follows.

Each input is prepared on its own and says what was done to it. One that cannot
be read fairly (an unreadable, oversized or blank image; an empty text, or one
with no word the model knows) gets an error line of its own instead of a
confident guess, and the other inputs are still predicted.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo import runs
from zoo.errors import ConfigError, DataError, ModelLoadError, ZooWarning
from zoo.files import is_file

# a text is predicted with a warning when fewer than this share of its words are known
KNOWN_WORDS_WARNING = 0.5
# a file so named, given to a text model, is a picture, not a text
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}


def resolve_artifact(target: str | os.PathLike, out=None) -> Path:
    """An artifact path as it is, or a run name: the run folder (its model.keras and card)."""
    from zoo import pretrained

    path = Path(target)
    if path.exists():
        return path
    weights = pretrained.find(str(target))
    if weights is not None and weights.name in pretrained.QUICK:
        if weights.tflite_file.is_file():
            return weights.tflite_file  # verified float32 LiteRT, beside its sidecar: no TensorFlow to import
        warnings.warn(f"{weights.name}: its packaged LiteRT file {weights.tflite_file.name} is missing (reinstall "
                      f"zoo to get it back); predicting with the Keras model instead, which imports TensorFlow "
                      f"and writes {runs.output_root(out) / weights.name}/", ZooWarning, stacklevel=3)
    if os.sep not in str(target) and not path.is_absolute():
        try:
            folder = runs.run_dir(str(target), out)
        except ConfigError:
            folder = None  # not a valid run name either
        if folder is not None and (runs.begun(folder) or weights is not None):
            return runs.find_run(target, out)  # its errors say what is wrong with that run
    raise ModelLoadError(f"{target}: no such artifact, and no run of that name under {runs.output_root(out)}/; "
                         "give a .tflite, .onnx or .keras file, a SavedModel folder, or a run name")


def artifact_metadata(artifact: str | Path) -> tuple[dict, Path]:
    """The metadata of an artifact (its `.json` sidecar, or a run's card) and the folder holding its vocabulary."""
    path = Path(artifact)
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        from zoo.pretrained import WEIGHTS_DIR

        packaged = path.resolve().parent == WEIGHTS_DIR
        fix = "reinstall zoo" if packaged else f"re-export the run: zoo export {path.parent.parent}"
        return runs.read_json(sidecar, fix, required=("labels", "preprocessing.type")), path.parent
    folder = path if path.is_dir() else path.parent
    if (folder / runs.CARD_FILE).is_file():
        card = runs.read_card(folder)
        meta = {"model": card["model"], "run": card["run"], "labels": card["labels"],
                "preprocessing": card["preprocessing"],
                "input_shape": card["preprocessing"].get("input_shape")}
        return meta, folder
    raise ModelLoadError(f"{path}: no metadata beside it ({sidecar.name}); export it with 'zoo export'")


@dataclass
class Prepared:
    """One input as the model takes it, or the reason it cannot be predicted."""

    name: str  # the input as given
    x: np.ndarray | None = None
    preprocessing: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    extra: dict = field(default_factory=dict)


def _image(path: Path, spec: dict) -> Prepared:
    from zoo.digits import to_mnist
    from zoo.images import MAX_SIDE, open_image, read_resized

    height, width, channels = spec["input_shape"]
    scaling = f"x = pixel × {spec['scale']:.6g} + {spec['offset']:g}"
    form = (spec.get("normalize") or {}).get("name")
    try:
        if form == "mnist":
            digit = to_mnist(np.asarray(open_image(path, "L", max_side=MAX_SIDE), dtype=np.float64), str(path))
            pixels, steps, warned = digit.pixels.astype(np.float32)[..., None], digit.steps, digit.warnings
        else:
            pixels, (w, h) = read_resized(path, spec["input_shape"])
            pixels, warned = pixels.astype(np.float32), []
            steps = [f"{'grayscale' if channels == 1 else 'RGB'} {w}×{h}", f"resized to {width}×{height} (bilinear)"]
    except DataError as exc:
        return Prepared(str(path), error=str(exc))
    x = pixels * np.float32(spec["scale"]) + np.float32(spec["offset"])
    return Prepared(str(path), x, {"form": form or "plain", "steps": [*steps, scaling]}, warned)


def _texts(inputs: list[str], spec: dict, folder: Path) -> list[Prepared]:
    from zoo.data import read_text
    from zoo.preprocess import from_card

    vocab = folder / spec.get("vocab_file", "vocab.txt")
    if not vocab.is_file():
        raise ModelLoadError(f"{vocab}: the vocabulary is missing; it must lie beside the artifact")
    prep = from_card({"preprocessing": spec}, folder)
    files = [is_file(i) for i in inputs]
    texts = [read_text(Path(i))[0] if file else i for i, file in zip(inputs, files)]
    ids = prep(np.array(texts, dtype=object))
    vocabulary = f"{len(prep.vocabulary) - 2:,}"  # less the padding and out-of-vocabulary tokens
    prepared = []
    for given, file, text, row in zip(inputs, files, texts, ids):
        name = given if file else repr(text if len(text) <= 40 else text[:39] + "…")
        if not file and _looks_like_a_file(given):  # `article.md` that is not there: say how it was read
            name = f"{given} (no such file, so read as a text)"
        words, known = int((row != spec["padding_id"]).sum()), int((row > spec["oov_id"]).sum())
        counts = {"words": words, "known_words": known}
        if words == 0:
            prepared.append(Prepared(given, error=f"{name}: the text is empty (no words once lowercased and "
                                                 "stripped of punctuation); nothing to predict", extra=counts))
            continue
        if known == 0:
            prepared.append(Prepared(given, error=f"{name}: none of its {words} words is in the model's vocabulary "
                                                 f"({vocabulary} words); nothing to predict from", extra=counts))
            continue
        warned = [] if known >= KNOWN_WORDS_WARNING * words else [
            f"{name}: only {known} of its {words} words are in the model's vocabulary; the prediction rests on those"]
        if not file and _looks_like_a_file(given):
            warned.insert(0, f"{given}: no such file, so it was read as a text of {words} word"
                             f"{'s' if words != 1 else ''}")
        steps = [f"{spec['standardize'].replace('_', ' ')}, split on whitespace",
                 f"{known} of {words} words in the vocabulary ({vocabulary} words)",
                 f"token ids padded or cut to {spec['sequence_length']}"]
        prepared.append(Prepared(given, row, {"form": "text", "steps": steps}, warned, extra=counts))
    return prepared


def _looks_like_a_file(text: str) -> bool:
    """One word with a file name's ending (`article.md`) or a folder in it: what a user meant as a
    file, though none is there."""
    return not any(c.isspace() for c in text) and ("/" in text or bool(re.search(r"\.[A-Za-z0-9]{1,5}$", text)))


def prepare_inputs(inputs: list[str], meta: dict, folder: Path) -> list[Prepared]:
    """Each input (an image path; a text, or a text file) as the model takes it, or why it cannot be.
    `meta` names the model (its "run" or "model") for the line that says an input is of the wrong kind."""
    spec = meta["preprocessing"]
    reader = meta.get("run") or meta.get("model") or "the model"
    if spec["type"] == "image":  # each input its own answer: a missing file is that input's error
        return [_image(Path(i), spec) if is_file(i) else Prepared(i, error=_no_image(i, reader)) for i in inputs]
    # a picture's bytes read as Latin-1 text are a few unknown "words": say what it is instead
    refused = {i: f"{i}: an image, but {reader} reads text; give a text or a .txt file"
               for i in inputs if Path(i).suffix.lower() in IMAGE_SUFFIXES}
    refused.update({i: f"{i}: no such text file" for i in inputs
                    if i not in refused and i.lower().endswith(".txt") and not is_file(i)})
    texts = iter(_texts([i for i in inputs if i not in refused], spec, folder))
    return [Prepared(i, error=refused[i]) if i in refused else next(texts) for i in inputs]


def _no_image(given: str, reader: str) -> str:
    plain = "" if _looks_like_a_file(given) else f"; {reader} reads images, not text"
    shown = given if len(given) <= 60 or "/" in given or _looks_like_a_file(given) else given[:59] + "…"  # a long text
    return f"{shown}: no such image file{plain}"


def predict(artifact: str | Path, inputs: list[str], top_k: int = 5, *, out=None) -> list[dict]:
    """Top-k labels with probabilities for each input, with the preprocessing applied to it.

    Args:
        artifact: a .tflite, .onnx or .keras file, a SavedModel folder, or a run name.
        inputs: image files for an image model; texts or text files for a text model.

    Returns:
        One result per input, in order: `predictions` (label, probability), `preprocessing`
        (form and steps) and `warnings`; or `error` for an input that cannot be predicted.
        Text results also give `words` and `known_words`.
    """
    from zoo.metrics import as_class_probabilities
    from zoo.runtime import load_runner

    if not inputs:
        raise ConfigError("give at least one input: image files, or texts")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top-k must be a whole number >= 1, got {top_k!r}")
    artifact = resolve_artifact(artifact, out)
    meta, folder = artifact_metadata(artifact)
    prepared = prepare_inputs(list(inputs), meta, folder)
    good = [p for p in prepared if p.error is None]
    probs = iter(as_class_probabilities(load_runner(artifact)(np.stack([p.x for p in good]))) if good else ())
    labels = meta["labels"]
    results = []
    for item in prepared:
        if item.error is not None:
            results.append({"input": item.name, "error": item.error, **item.extra})
            continue
        row = next(probs)
        order = np.argsort(-row)[: min(top_k, len(labels))]
        results.append({
            "input": item.name,
            "predictions": [{"label": labels[i], "probability": round(float(row[i]), 6)} for i in order],
            "preprocessing": item.preprocessing,
            "warnings": item.warnings,
            **item.extra,
        })
    return results
