"""Pretrained, calibrated weights that ship in the package, named `MODEL.TAG` (timm's form).

    zoo.create_model("lenet5", weights="mnist")   # keras.applications' form: the trained model
    zoo predict lenet5.mnist photo.png             # wherever a run is accepted

Each tag is the default recipe of `zoo train` with seed 0 on one dataset, rebuilt by one
command outside the package, `ZOO_CPU_SHARDS=2 python tools/rebuild_weights.py --data
../shared/data` (the same weights come back only with the shard count they were trained with;
the tool trains and exports, which are layers above this one). The package holds, in
`zoo/weights/`, only the weights (`MODEL.TAG.weights.h5`, no code, nothing unpickled), the
run's card (`MODEL.TAG.json`: metrics, recipe, seed, dataset, versions, the command) and,
for text, the vocabulary. Wherever a run is accepted, `MODEL.TAG` names one: the first
command that needs it as a run writes it into the output folder (model.keras built from the
weights, the card, the vocabulary), where `zoo export` then writes its `export/` as for any run.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from zoo.card import Card
from zoo.errors import ConfigError, DamagedFileError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"  # zoo/weights: package data
# model -> tag -> the dataset it is trained on (a name that --data and $ZOO_DATA_DIR resolve)
TAGS = {
    "lenet5": {"mnist": "mnist"},
    "mnist_cnn": {"mnist": "mnist"},
    "mnist_cnn_dropout": {"mnist": "mnist"},
    "text_cnn": {"bbc_news": "bbc-news"},
}
# Each batch is summed in shards (zoo.training.sharding), and float sums in another order round otherwise:
# the same weights come back only with the shard count the card records (2, on the 2-core machine)
SHARDS = 2
REBUILD = f"ZOO_CPU_SHARDS={SHARDS} python tools/rebuild_weights.py --data ../shared/data"
# These also ship as a verified float32 .tflite (245.4 and 200.0 KB), which `zoo predict` runs
# with LiteRT alone, where importing TensorFlow for the Keras model takes 3 s (a photo answers in
# 0.45 s on the 2-core AMD EPYC of benchmarks/RESULTS.md, `python benchmarks/cli_startup.py`).
# mnist_cnn_dropout's (3.3 MB) and text_cnn's (5.2 MB) would take the package past 12 MB.
QUICK = ("lenet5.mnist", "mnist_cnn.mnist")


@dataclass(frozen=True)
class Weights:
    model: str
    tag: str

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def weights_file(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.weights.h5"

    @property
    def card_file(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.json"

    @property
    def vocab_file(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.vocab.txt"

    @property
    def tflite_file(self) -> Path:
        """The verified float32 LiteRT file, with its sidecar beside it (QUICK models only)."""
        return WEIGHTS_DIR / f"{self.name}.tflite"

    @property
    def card(self) -> Card:
        check_files(self)
        return Card.read(self.card_file, "reinstall zoo, or rebuild it: " + REBUILD)


def shipped(model: str | None = None) -> list[Weights]:
    """The weights the package ships (of one model, or all). A file missing from an install is
    not a tag that vanishes: using it says to reinstall (`check_files`)."""
    return [Weights(m, tag) for m, tags in sorted(TAGS.items()) if model in (None, m) for tag in sorted(tags)]


def check_files(weights: Weights) -> Weights:
    """The weights, if their files are in the install; else one line that says to reinstall."""
    missing = [f.name for f in (weights.weights_file, weights.card_file) if not f.is_file()]
    if missing:
        raise DamagedFileError(f"{weights.name}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                               f"missing from the install in {WEIGHTS_DIR}; reinstall zoo (pip install --force-reinstall "
                               "zoo), or rebuild it: " + REBUILD)
    return weights


def find(name: str) -> Weights | None:
    """The shipped weights a `MODEL.TAG` name means (an alias of the model works), else None."""
    from zoo.errors import UnknownModelError
    from zoo.models.registry import get_entry

    model, _, tag = str(name).rpartition(".")
    if not model or os.sep in str(name):
        return None
    try:
        model = get_entry(model).name
    except UnknownModelError:
        return None
    weights = Weights(model, tag)
    return weights if weights in shipped(model) else None


def resolve(model: str, tag: str) -> Weights:
    """The weights `tag` of `model`; an unknown tag lists the ones there are."""
    from zoo.models.registry import get_entry

    model = get_entry(model).name
    weights = Weights(model, tag)
    if weights not in shipped(model):
        there = ", ".join(w.tag for w in shipped(model)) or "none"
        raise ConfigError(f"{model} has no pretrained weights '{tag}'; it has: {there}")
    return weights


def build(weights: Weights, overrides: dict):
    """The trained Keras model: the registry model with the card's arguments, and the weights.
    An override that equals what the weights were trained with (a default, say) is no change."""
    from zoo.models.registry import build_model, get_entry

    check_files(weights)
    card = weights.card
    trained = {**get_entry(weights.model).defaults, **card.model_args}

    def plain(value):  # (28, 28, 1) and [28, 28, 1] are one shape
        return list(value) if isinstance(value, (tuple, list)) else value

    for key, value in overrides.items():
        if plain(trained.get(key)) != plain(value):
            raise ConfigError(f"{weights.name} was trained with {key}={trained.get(key)!r}; "
                              f"{key}={value!r} cannot take its weights (drop weights= to build it untrained)")
    model = build_model(weights.model, **card.model_args)
    try:
        model.load_weights(weights.weights_file)
    except Exception as exc:  # h5py and Keras raise many types for a bad file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DamagedFileError(f"{weights.weights_file} is damaged ({reason}); reinstall zoo, or rebuild it: "
                               f"{REBUILD}") from None
    return model


def as_run(weights: Weights, root: Path) -> Path:
    """The pretrained model as a run folder under `root` (written once, atomically, under its lock)."""
    from zoo import locks, runs
    from zoo.data.preprocess import VOCAB_FILE

    final = Path(root) / weights.name
    if (final / runs.CARD_FILE).is_file():
        return final
    with locks.hold(root, weights.name, locks.EXPORT):
        if (final / runs.CARD_FILE).is_file():  # another process wrote it meanwhile
            return final
        staging = Path(root) / f".{weights.name}.unpacking-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            build(weights, {}).save(staging / runs.MODEL_FILE)
            if weights.vocab_file.is_file():
                shutil.copy(weights.vocab_file, staging / VOCAB_FILE)
            weights.card.write(staging)
            runs.publish(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final
