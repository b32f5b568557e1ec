"""The data a run was trained and tested on, as its card records it."""

from __future__ import annotations

from pathlib import Path


def run_dataset(folder: Path, card, data: str | None = None):
    """A run's recorded preprocessing and its dataset (a `zoo.card.Card`'s), split as it was when
    the run was tested; `data` instead of the recorded dataset."""
    from zoo.data.datasets import load_dataset
    from zoo.data.preprocess import from_spec

    from zoo.data.preprocess import TensorPreprocessing
    from zoo.errors import DataError

    prep = from_spec(card.preprocessing, folder)
    spec = data or card.dataset_spec
    if spec is None:
        raise DataError(f"run '{card.run}' was taken in without data: give --data SPEC")
    dataset = load_dataset(spec, kind=prep.kind, image_shape=getattr(prep, "shape", None))
    if dataset.kind == "tensor":  # arrays as the model takes them
        check_tensor_shape(dataset, card.preprocessing["input_shape"])
        prep = TensorPreprocessing(dataset.x_test.shape[1:], "int32" if dataset.x_test.dtype.kind in "iu" else "float32")
    return prep, dataset


def check_tensor_shape(dataset, shape) -> None:
    """Arrays given as the model's input tensor must have its shape, one line if not."""
    from zoo.errors import DataError

    want = tuple(int(d) for d in shape)
    if tuple(dataset.x_test.shape[1:]) != want:
        raise DataError(f"{dataset.source}: x is {'×'.join(map(str, dataset.x_test.shape[1:]))} per example, "
                        f"the model takes {'×'.join(map(str, want))}")
