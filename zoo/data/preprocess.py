"""Turning raw examples into model inputs, the same way in training, evaluation and prediction.

A run records its preprocessing in `card.json`; `from_spec` rebuilds it from
that record (and `vocab.txt` for text), so nothing depends on training code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from zoo.data.digits import FORM
from zoo.errors import DataError

VOCAB_FILE = "vocab.txt"
# How a text becomes tokens. Keras's default, lower_and_strip_punctuation then whitespace, deletes
# punctuation inside a word ("don't" -> "dont"), which the tokenizers that phone runtimes read
# cannot do: MediaPipe's RegexTokenizer only splits on a regex and looks each piece up as it is,
# case and all (mediapipe/tasks/cc/text/tokenizers/regex_tokenizer.cc). zoo's own, WORDS, is one
# that it reproduces id for id (zoo.deploy.mobile): runs of ASCII letters and digits, each folded
# to lower case when it is written lower, Capitalized or UPPER, a mixed word ("iPhone") kept as it
# is. Runs made before it, and a model file's vocabulary, keep Keras's default.
WORDS = "words"
KERAS_DEFAULT = "lower_and_strip_punctuation"
STANDARDIZE = WORDS  # what a new run learns its vocabulary with
DELIMITER = "[^A-Za-z0-9]+"
FOLDED = "[A-Z]?[a-z0-9]*|[A-Z0-9]+"  # the spellings of a word folded to lower case (full match)


def split_words(texts):
    """WORDS: a batch of strings -> a RaggedTensor of tokens (TextVectorization's `split`)."""
    import tensorflow as tf

    tokens = tf.strings.split(tf.strings.regex_replace(texts, DELIMITER, " "))
    return tf.ragged.map_flat_values(
        lambda t: tf.where(tf.strings.regex_full_match(t, FOLDED), tf.strings.lower(t), t), tokens)


def spellings(token: str) -> list[str]:
    """The spellings of a vocabulary token that WORDS reads as it: a lower-case word's lower,
    Capitalized and UPPER forms, any other token itself."""
    if token.isascii() and token.isalnum() and token == token.lower():
        return list(dict.fromkeys([token, token.capitalize(), token.upper()]))
    return [token]


def describe(spec: dict) -> str:
    """How a text run's card says texts become tokens, in words."""
    if spec.get("standardize") == WORDS:
        return "split into runs of ASCII letters and digits, lower-, Capitalized and UPPER-case words folded to lower case"
    return f"{str(spec.get('standardize', '')).replace('_', ' ')}, split on whitespace"


def _vectorizer(standardize: str, **kwargs):
    from zoo.backend import keras

    if standardize == WORDS:
        return keras().layers.TextVectorization(standardize=None, split=split_words, **kwargs)
    if standardize == KERAS_DEFAULT:
        return keras().layers.TextVectorization(standardize=KERAS_DEFAULT, **kwargs)
    raise DataError(f"unknown text standardization '{standardize}' in the run's card; zoo knows "
                    f"{WORDS} and {KERAS_DEFAULT}")


class ImagePreprocessing:
    """uint8 pixels (N, H, W, C) -> float32 in [0, 1].

    `normalize` names the form a new picture is brought into before that, at prediction:
    "mnist" for a run trained on MNIST (zoo.data.digits: ink fitted into 20×20, centred by mass
    in 28×28, light on black); None for a plain resize.
    """

    kind = "image"

    def __init__(self, shape, scale: float = 1 / 255, offset: float = 0.0, normalize: str | None = None,
                 normalization: dict | None = None):
        self.shape = tuple(int(d) for d in shape)
        self.scale, self.offset = float(scale), float(offset)
        self.normalize = normalize
        self.normalization = normalization  # a model file's: what --normalize said, or what was read from the model

    @classmethod
    def from_option(cls, shape, option: str, *, stated: bool = True, reason: str | None = None) -> "ImagePreprocessing":
        """The scaling `--normalize` names: `scale` (pixel / 255), `none` (raw 0-255 pixels) or
        `MEAN,STD` on 0-255 pixels, x = (pixel - MEAN) / STD, as TFLite metadata's
        NormalizationOptions and MediaPipe take them. `stated` False: nobody said, and the card says
        it was assumed (`reason`)."""
        text = str(option).strip().lower()
        if text == "scale":
            scale, offset = 1 / 255, 0.0
        elif text == "none":
            scale, offset = 1.0, 0.0
        else:
            parts = text.split(",")
            try:
                mean, std = (float(v) for v in parts)
            except ValueError:
                raise DataError(f"--normalize {option}: give scale (pixel / 255), none (0-255 pixels as they are) "
                                "or MEAN,STD on 0-255 pixels (127.5,127.5 for -1..1)") from None
            if not std > 0 or not all(map(math.isfinite, (mean, std))):
                raise DataError(f"--normalize {option}: STD must be a positive number")
            scale, offset = 1 / std, -mean / std + 0.0  # not -0.0
            text = f"{mean:g},{std:g}"
        mean_std = {"mean": -offset / scale + 0.0, "std": 1 / scale}
        record = {"option": text, "stated": stated, **mean_std, **({"reason": reason} if reason else {})}
        return cls(shape, scale, offset, None, record)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32) * np.float32(self.scale) + np.float32(self.offset)

    def in_graph(self, x):
        """The same, on a TensorFlow tensor and bit for bit (one float32 multiply, one add):
        training keeps the uint8 pixels and scales each batch in its input pipeline."""
        import tensorflow as tf

        return tf.cast(x, tf.float32) * np.float32(self.scale) + np.float32(self.offset)

    def to_dict(self) -> dict:
        return {
            "type": "image",
            "input_shape": list(self.shape),
            "color": "grayscale" if self.shape[-1] == 1 else "rgb",
            "resize": "bilinear",
            "normalize": dict(FORM) if self.normalize == "mnist" else None,
            "scale": self.scale,
            "offset": self.offset,
            "formula": "x = pixel * scale + offset",
            **({"normalization": self.normalization} if self.normalization else {}),
        }


class TensorPreprocessing:
    """Arrays the model takes as they are (a model file whose input is neither an image nor
    token ids of a known vocabulary): float32, or int32 for token ids."""

    kind = "tensor"

    def __init__(self, shape, dtype: str = "float32"):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = str(dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=self.dtype)

    def to_dict(self) -> dict:
        return {"type": "tensor", "input_shape": list(self.shape), "dtype": self.dtype,
                "formula": "x as given: the model's input tensor"}


class TextPreprocessing:
    """Strings -> int32 token ids (N, sequence_length) with a fixed vocabulary."""

    kind = "text"

    def __init__(self, vocabulary: list[str], sequence_length: int, standardize: str = KERAS_DEFAULT):
        self.vocabulary = list(vocabulary)
        self.sequence_length = int(sequence_length)
        self.standardize = standardize
        self._layer = None

    @classmethod
    def adapt(cls, texts: np.ndarray, max_tokens: int, sequence_length: int) -> "TextPreprocessing":
        """Learn the vocabulary from training texts only, tokenized as STANDARDIZE."""
        layer = _vectorizer(STANDARDIZE, max_tokens=max_tokens, output_sequence_length=sequence_length)
        layer.adapt(np.asarray(texts, dtype=object), batch_size=256)
        vocabulary = [str(token) for token in layer.get_vocabulary()]
        made = cls(vocabulary, sequence_length, STANDARDIZE)
        made._layer = layer
        return made

    @property
    def layer(self):
        if self._layer is None:
            self._layer = _vectorizer(self.standardize, vocabulary=self.vocabulary,
                                      output_sequence_length=self.sequence_length)
        return self._layer

    def __call__(self, texts, batch_size: int = 1024) -> np.ndarray:
        texts = np.asarray(texts, dtype=object)
        parts = [
            np.asarray(self.layer(texts[i : i + batch_size]), dtype=np.int32)
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.sequence_length), np.int32)

    def save_vocabulary(self, folder: Path) -> None:
        (folder / VOCAB_FILE).write_text("\n".join(self.vocabulary) + "\n", encoding="utf-8")

    def to_dict(self) -> dict:
        return {
            "type": "text",
            "standardize": self.standardize,
            "split": DELIMITER if self.standardize == WORDS else "whitespace",
            **({"fold_case": FOLDED} if self.standardize == WORDS else {}),
            "sequence_length": self.sequence_length,
            "vocab_size": len(self.vocabulary),
            "vocab_file": VOCAB_FILE,
            "padding_id": 0,
            "oov_id": 1,
        }


def from_spec(spec: dict, folder: Path):
    """The preprocessing a run recorded (its card's, or an artifact's sidecar's `preprocessing`);
    a text model's vocabulary is read from `folder`."""
    if spec["type"] == "image":
        normalize = (spec.get("normalize") or {}).get("name")  # absent in runs made before it existed
        return ImagePreprocessing(spec["input_shape"], spec["scale"], spec["offset"], normalize,
                                  spec.get("normalization"))
    if spec["type"] == "tensor":
        return TensorPreprocessing(spec["input_shape"], spec.get("dtype", "float32"))
    vocab_path = Path(folder) / spec.get("vocab_file", VOCAB_FILE)
    lines = vocab_path.read_text(encoding="utf-8").split("\n")
    vocabulary = lines[: spec["vocab_size"]]
    return TextPreprocessing(vocabulary, spec["sequence_length"], spec.get("standardize", KERAS_DEFAULT))
