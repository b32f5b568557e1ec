"""Inputs prepared for a model as its preprocessing record says: image files and texts.

Each input is prepared on its own and says what was done to it. One that cannot
be read fairly (an unreadable, oversized or blank image; an empty text, or one
with no word the model knows) gets an error line of its own instead of a
confident guess, and the other inputs are still predicted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import DataError, ModelLoadError
from zoo.files import is_file

# a text is predicted with a warning when fewer than this share of its words are known
KNOWN_WORDS_WARNING = 0.5
# a file so named, given to a text model, is a picture, not a text
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class Prepared:
    """One input as the model takes it, or the reason it cannot be predicted."""

    name: str  # the input as given
    x: np.ndarray | None = None
    preprocessing: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    extra: dict = field(default_factory=dict)
    error_kind: type = DataError  # the error's class: TooLarge for an image past the pixel limit


def _image(path: Path | bytes, spec: dict, name: str | None = None, max_pixels: int | None = None) -> Prepared:
    from zoo.data.digits import to_mnist
    from zoo.data.images import MAX_SIDE, open_image, read_resized

    name = name or str(path)
    height, width, channels = spec["input_shape"]
    scaling = f"x = pixel × {spec['scale']:.6g} + {spec['offset']:g}"
    form = (spec.get("normalize") or {}).get("name")
    opened = {"name": name, "max_pixels": max_pixels}
    try:
        if form == "mnist":
            digit = to_mnist(np.asarray(open_image(path, "L", max_side=MAX_SIDE, **opened), dtype=np.float64), name)
            pixels, steps, warned = digit.pixels.astype(np.float32)[..., None], digit.steps, digit.warnings
        else:
            pixels, (w, h) = read_resized(path, spec["input_shape"], **opened)
            pixels, warned = pixels.astype(np.float32), []
            steps = [f"{'grayscale' if channels == 1 else 'RGB'} {w}×{h}", f"resized to {width}×{height} (bilinear)"]
    except DataError as exc:
        return Prepared(name, error=str(exc), error_kind=type(exc))
    x = pixels * np.float32(spec["scale"]) + np.float32(spec["offset"])
    return Prepared(name, x, {"form": form or "plain", "steps": [*steps, scaling]}, warned)


def prepare_given(given: bytes | str, meta: dict, folder: Path, *, name: str = "input",
                  max_pixels: int | None = None, prep=None) -> Prepared:
    """One input handed over itself, not named by a path, as a server receives it: an image
    file's bytes, or a text, which is never taken for a file name (a client must not make the
    server read its disk). `name` stands for it in errors; an image of more than `max_pixels` is
    refused before it is decoded. `prep`: the text preprocessing (`from_spec`), built once by a
    caller that prepares many texts."""
    spec = meta["preprocessing"]
    reader = meta.get("run") or meta.get("model") or "the model"
    if spec["type"] == "image":
        if isinstance(given, str):
            return Prepared(name, error=f"{name}: a text, but {reader} reads images; send an image file (PNG, JPEG)")
        if not given:
            return Prepared(name, error=f"{name}: empty; send an image file (PNG, JPEG)")
        return _image(bytes(given), spec, name, max_pixels)
    if spec["type"] != "text":
        shape = "×".join(map(str, spec.get("input_shape") or meta.get("input_shape") or []))
        return Prepared(name, error=f"{reader} takes a {shape} tensor, not an image or a text")
    if not isinstance(given, str):
        try:
            given = bytes(given).decode("utf-8")
        except UnicodeDecodeError:
            return Prepared(name, error=f"{name}: not UTF-8 text, and {reader} reads text; send a text")
    try:
        given.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, as JSON's "\ud800" gives
        return Prepared(name, error=f"{name}: not valid Unicode (a lone surrogate); send UTF-8 text")
    prepared = _texts([given], spec, folder, read_files=False, prep=prep)[0]
    prepared.name = name  # not the whole text again
    return prepared


def _texts(inputs: list[str], spec: dict, folder: Path, read_files: bool = True, prep=None) -> list[Prepared]:
    from zoo.data.datasets import read_text
    from zoo.data.preprocess import WORDS, describe, from_spec

    if prep is None:
        vocab = folder / spec.get("vocab_file", "vocab.txt")
        if not vocab.is_file():
            raise ModelLoadError(f"{vocab}: the vocabulary is missing; it must lie beside the artifact")
        prep = from_spec(spec, folder)
    files = [read_files and is_file(i) for i in inputs]
    texts = [read_text(Path(i))[0] if file else i for i, file in zip(inputs, files)]
    ids = prep(np.array(texts, dtype=object))
    vocabulary = f"{len(prep.vocabulary) - 2:,}"  # less the padding and out-of-vocabulary tokens
    prepared = []
    for given, file, text, row in zip(inputs, files, texts, ids):
        name = given if file else repr(text if len(text) <= 40 else text[:39] + "…")
        meant_a_file = read_files and not file and _looks_like_a_file(given)  # `article.md` that is not there
        if meant_a_file:  # say how it was read
            name = f"{given} (no such file, so read as a text)"
        words, known = int((row != spec["padding_id"]).sum()), int((row > spec["oov_id"]).sum())
        counts = {"words": words, "known_words": known}
        if words == 0:
            none = ("no ASCII letters or digits in it" if spec.get("standardize") == WORDS
                    else "no words once lowercased and stripped of punctuation")
            prepared.append(Prepared(given, error=f"{name}: the text is empty ({none}); nothing to predict",
                                     extra=counts))
            continue
        if known == 0:
            prepared.append(Prepared(given, error=f"{name}: none of its {words} words is in the model's vocabulary "
                                                 f"({vocabulary} words); nothing to predict from", extra=counts))
            continue
        warned = [] if known >= KNOWN_WORDS_WARNING * words else [
            f"{name}: only {known} of its {words} words are in the model's vocabulary; the prediction rests on those"]
        if meant_a_file:
            warned.insert(0, f"{given}: no such file, so it was read as a text of {words} word"
                             f"{'s' if words != 1 else ''}")
        steps = [describe(spec),
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
