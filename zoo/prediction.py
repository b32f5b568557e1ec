"""Prediction from an exported artifact and its metadata alone: the path a mobile app follows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from zoo import runs
from zoo.errors import ConfigError, DataError, ModelLoadError


def artifact_metadata(artifact: str | Path) -> tuple[dict, Path]:
    """The metadata of an artifact (its `.json` sidecar, or a run's card) and the folder holding its vocabulary."""
    path = Path(artifact)
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        return json.loads(sidecar.read_text()), path.parent
    folder = path if path.is_dir() else path.parent
    if (folder / runs.CARD_FILE).is_file():
        card = json.loads((folder / runs.CARD_FILE).read_text())
        meta = {"model": card["model"], "labels": card["labels"], "preprocessing": card["preprocessing"],
                "input_shape": card["preprocessing"].get("input_shape")}
        return meta, folder
    raise ModelLoadError(f"{path}: no metadata beside it ({sidecar.name}); export it with 'zoo export'")


def _image(path: Path, spec: dict) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    height, width, channels = spec["input_shape"]
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({exc}); give PNG or JPEG files") from None
    pixels = pixels[..., None] if channels == 1 else pixels
    return pixels * np.float32(spec["scale"]) + np.float32(spec["offset"])


def prepare_inputs(inputs: list[str], meta: dict, folder: Path) -> np.ndarray:
    """Images (paths) or texts (strings, or paths of text files) as the model's input batch."""
    spec = meta["preprocessing"]
    if spec["type"] == "image":
        missing = [i for i in inputs if not Path(i).is_file()]
        if missing:
            raise DataError(f"{missing[0]}: no such image file")
        return np.stack([_image(Path(i), spec) for i in inputs])
    from zoo.data import read_text
    from zoo.preprocess import from_card

    vocab = folder / spec.get("vocab_file", "vocab.txt")
    if not vocab.is_file():
        raise ModelLoadError(f"{vocab}: the vocabulary is missing; it must lie beside the artifact")
    texts = [read_text(Path(i))[0] if Path(i).is_file() else i for i in inputs]
    return from_card({"preprocessing": spec}, folder)(np.array(texts, dtype=object))


def predict(artifact: str | Path, inputs: list[str], top_k: int = 5) -> list[dict]:
    """Top-k labels with probabilities for each input."""
    from zoo.metrics import as_class_probabilities
    from zoo.runtime import load_runner

    if not inputs:
        raise ConfigError("give at least one input: image files, or texts")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top-k must be a whole number >= 1, got {top_k!r}")
    meta, folder = artifact_metadata(artifact)
    runner = load_runner(artifact)
    x = prepare_inputs(list(inputs), meta, folder)
    probs = as_class_probabilities(runner(x))
    labels = meta["labels"]
    results = []
    for name, row in zip(inputs, probs):
        order = np.argsort(-row)[: min(top_k, len(labels))]
        results.append({
            "input": name,
            "predictions": [{"label": labels[i], "probability": round(float(row[i]), 6)} for i in order],
        })
    return results
