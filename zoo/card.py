"""`card.json`, a run's model card: the one module that writes it, reads it and names its keys.

A card says what a run is (its model, labels, preprocessing, dataset) and what it measured
(metrics, calibration, training). Its sections are made by the modules that own them and kept
here as they come: `preprocessing` by zoo.data.preprocess, `metrics` by zoo.metrics,
`calibration` by zoo.training.calibration, `training`, `hyperparameters` and `distribution` by
zoo.training. What the commands read across those modules has a property here.

Reading validates: a key that is missing or of the wrong type is one `DamagedFileError` line that
names the file and the key. Every card is written with `schema: 1`; cards written before the field
existed have the same keys and read as schema 1. A later schema must bump the number and teach
`from_dict` the old one.
A `Card` is also a read-only mapping of its JSON document, so `run.card["metrics"]` works as it did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from zoo.errors import DamagedFileError
from zoo.files import write_atomic

FILE = "card.json"
SCHEMA = 1
# the keys every card must have, and the JSON type each must be
_REQUIRED = {"run": str, "model": str, "labels": list, "preprocessing": dict, "dataset": dict}
# of the sections, what the commands need inside them
_INSIDE = {("preprocessing", "type"): str}
# a model file taken in with no data has no dataset spec
_INSIDE_OPTIONAL = {("dataset", "limit"): int, ("dataset", "spec"): str}
_OPTIONAL = {"model_args": dict, "task": str, "hyperparameters": dict, "distribution": dict, "seed": int,
             "metrics": dict, "calibration": dict, "training": dict, "versions": dict, "date": str,
             "weights": dict, "task_in_cluster": str, "schema": int, "source": dict, "description": str,
             "author": str, "license": str}
_JSON_TYPES = {str: "a string", list: "a list", dict: "an object", int: "a whole number"}


@dataclass(frozen=True)
class Card(Mapping):
    run: str
    model: str
    labels: list
    preprocessing: dict
    dataset: dict
    model_args: dict = field(default_factory=dict)
    task: str | None = None
    hyperparameters: dict | None = None
    distribution: dict | None = None
    seed: int | None = None
    metrics: dict | None = None
    calibration: dict | None = None
    training: dict | None = None
    versions: dict | None = None
    date: str | None = None
    weights: dict | None = None  # shipped weights only: their name, tag, recipe and rebuild command
    task_in_cluster: str | None = None  # a worker of a cluster that is not the chief
    # a model file taken in (zoo.models.adopted): its path, format, sha256, what the user stated
    source: dict | None = None
    # who made the model, what it is and its license, in a phone's model metadata (zoo.deploy.mobile);
    # the shipped weights have them, a run of one's own may add them to its card
    description: str | None = None
    author: str | None = None
    license: str | None = None
    schema: int = SCHEMA

    # ------------------------------------------------------------ what the commands read

    @property
    def kind(self) -> str:
        """'image' or 'text': what the model reads."""
        return self.preprocessing["type"]

    @property
    def dataset_spec(self) -> str | None:
        """How the dataset is found again: a name (mnist) or a path, as --data takes it; None for a
        model file taken in without data."""
        return self.dataset.get("spec")

    @property
    def labelled(self) -> bool:
        """False when the data has no classes (a folder of loose images): agreement, not accuracy."""
        return self.dataset.get("labelled", True)

    @property
    def custom_objects(self) -> list[str]:
        """The `module:Name` classes a model taken in needs to load again."""
        return list((self.source or {}).get("custom_objects") or [])

    @property
    def dataset_name(self) -> str | None:
        return self.dataset.get("name", self.dataset_spec)

    @property
    def limit(self) -> int | None:
        """--limit: the run trained on the first N training examples only."""
        return self.dataset.get("limit")

    @property
    def test_accuracy(self) -> float | None:
        return (self.metrics or {}).get("test_accuracy")

    @property
    def test_ece(self) -> float | None:
        return (self.metrics or {}).get("test_ece")

    @staticmethod
    def dataset_record(described: dict, *, spec: str, train_used: int, validation_examples: int,
                       validation_split: float, limit: int | None) -> dict:
        """The card's `dataset`: what zoo.data says of the dataset, and how this run used it."""
        return {**described, "spec": spec, "train_used": train_used, "validation_examples": validation_examples,
                "validation_split": validation_split, "limit": limit}

    def renamed(self, run: str, **changes) -> "Card":
        """The same card under another run name (and any other field changed)."""
        return Card(**{**self._fields(), "run": run, **changes})

    def with_dataset(self, **changes) -> "Card":
        return Card(**{**self._fields(), "dataset": {**self.dataset, **changes}})

    # ------------------------------------------------------------ the JSON document

    def _fields(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_dict(self) -> dict:
        """The JSON document: every field that is set, in the order above."""
        return {key: value for key, value in self._fields().items() if value is not None}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def write(self, where: Path) -> Path:
        """`where/card.json` (or the `.json` file `where` names), renamed into place whole."""
        where = Path(where)
        path = where if where.suffix == ".json" else where / FILE
        return write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, document, *, source: str = "card", fix: str = "") -> "Card":
        """A card from its JSON document, checked: one line naming `source` and the key that is wrong."""
        def damaged(reason: str) -> DamagedFileError:
            return DamagedFileError(f"{source} is damaged ({reason}){'; ' + fix if fix else ''}")

        if not isinstance(document, dict):
            raise damaged("not a JSON object")
        for key, kind in _REQUIRED.items():
            if key not in document:
                raise damaged(f"it has no '{key}'")
            if not isinstance(document[key], kind):
                raise damaged(f"'{key}' is {_name(document[key])}, not {_JSON_TYPES[kind]}")
        for (section, key), kind in _INSIDE.items():
            if key not in document[section]:
                raise damaged(f"it has no '{section}.{key}'")
            if not isinstance(document[section][key], kind):
                raise damaged(f"'{section}.{key}' is {_name(document[section][key])}, not {_JSON_TYPES[kind]}")
        for (section, key), kind in _INSIDE_OPTIONAL.items():
            value = document[section].get(key)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise damaged(f"'{section}.{key}' is {_name(value)}, not {_JSON_TYPES[kind]}")
        for key, kind in _OPTIONAL.items():
            value = document.get(key)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise damaged(f"'{key}' is {_name(value)}, not {_JSON_TYPES[kind]}")
        # a null section is an absent one (its default, `{}` for model_args); keys a later zoo may
        # add are left out of the Card, as schema 1 does not know them
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in document.items() if key in known and value is not None})

    @classmethod
    def read(cls, path: Path, fix: str) -> "Card":
        """The card at `path` (a card.json, or a run folder holding one), checked; `fix` says what to do
        when it is damaged."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise DamagedFileError(f"{path} is damaged (not text); {fix}") from None
        except FileNotFoundError:
            raise DamagedFileError(f"{path} is missing; {fix}") from None
        except OSError as exc:  # a folder of that name, no permission
            raise DamagedFileError(f"{path} cannot be read ({exc.strerror or exc}); {fix}") from None
        try:
            document = json.loads(text)
        except ValueError as exc:
            reason = "empty" if not text.strip() else f"truncated or not JSON: {exc}"
            raise DamagedFileError(f"{path} is damaged ({reason}); {fix}") from None
        return cls.from_dict(document, source=str(path), fix=fix)


def _name(value) -> str:
    for kind, name in _JSON_TYPES.items():
        if isinstance(value, kind) and not isinstance(value, bool):
            return name
    return "null" if value is None else f"a {type(value).__name__}"


def read_run_card(folder: Path) -> Card:
    """A run's card, with the fix a damaged one needs: re-train it."""
    return Card.read(Path(folder) / FILE, fix=f"re-train the run: zoo train MODEL --name {Path(folder).name} --overwrite")
