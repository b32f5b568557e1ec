"""The data a run was trained and tested on, as its card records it."""

from __future__ import annotations

from pathlib import Path


def run_dataset(folder: Path, card, data: str | None = None):
    """A run's recorded preprocessing and its dataset (a `zoo.card.Card`'s), split as it was when
    the run was tested; `data` instead of the recorded dataset."""
    from zoo.data.datasets import load_dataset
    from zoo.data.preprocess import from_spec

    prep = from_spec(card.preprocessing, folder)
    spec = data or card.dataset_spec
    return prep, load_dataset(spec, kind=prep.kind, image_shape=getattr(prep, "shape", None))
