"""card.json has one owner, zoo.card: what it writes it reads back, old cards still read, and a
damaged one is one line naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.card import SCHEMA, Card
from zoo.errors import DamagedFileError

WEIGHTS = Path(__file__).resolve().parents[1] / "zoo" / "weights"
# the shipped cards: some written before zoo.card existed (by the dict literal of the old training.py,
# no "schema" key), the others since; each is also read with its "schema" key taken away
SHIPPED_CARDS = sorted(p for p in WEIGHTS.glob("*.json") if not p.name.endswith(".tflite.json"))


@pytest.mark.parametrize("path", SHIPPED_CARDS, ids=lambda p: p.stem)
def test_cards_written_before_the_schema_read_as_schema_1(path, tmp_path):
    document = json.loads(path.read_text())
    assert document.get("schema", 1) == 1
    document.pop("schema", None)
    (tmp_path / "card.json").write_text(json.dumps(document))
    card = Card.read(tmp_path / "card.json", fix="reinstall zoo")
    assert card.schema == SCHEMA == 1
    assert {**document, "schema": 1} == card.to_dict()
    assert card["labels"] == document["labels"] and dict(card) == card.to_dict()  # a mapping, as run.card was
    assert (card.run, card.dataset_spec, card.kind) == (document["run"], document["dataset"]["spec"],
                                                        document["preprocessing"]["type"])


def test_what_is_written_reads_back(tmp_path):
    card = Card(run="r", model="lenet5", labels=["a", "b"], preprocessing={"type": "image"},
                dataset={"spec": "mnist", "name": "mnist", "limit": 300}, metrics={"test_accuracy": 0.5})
    card.write(tmp_path)
    again = Card.read(tmp_path, fix="-")
    assert again == card and again.limit == 300 and again.test_accuracy == 0.5 and again.test_ece is None
    assert json.loads((tmp_path / "card.json").read_text())["schema"] == 1
    assert card.renamed("s").run == "s" and card.with_dataset(spec="x").dataset_spec == "x"
    assert card.dataset_spec == "mnist"  # frozen: the originals stay


@pytest.mark.parametrize("change, reason", [
    (lambda d: d.pop("labels"), "it has no 'labels'"),
    (lambda d: d["dataset"].update(spec=3), "'dataset.spec' is a whole number, not a string"),
    (lambda d: d.update(labels="0123456789"), "'labels' is a string, not a list"),
    (lambda d: d.update(preprocessing=[]), "'preprocessing' is a list, not an object"),
    (lambda d: d["preprocessing"].update(type=3), "'preprocessing.type' is a whole number, not a string"),
    (lambda d: d.update(seed="0"), "'seed' is a string, not a whole number"),
    (lambda d: d.update(metrics=None), None),  # an optional section may be null
])
def test_a_missing_or_mistyped_key_is_one_line_naming_it(tmp_path, change, reason):
    document = json.loads(SHIPPED_CARDS[0].read_text())
    change(document)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(document))
    if reason is None:
        assert Card.read(path, fix="re-train it").metrics is None
        return
    with pytest.raises(DamagedFileError) as err:
        Card.read(path, fix="re-train it")
    assert str(err.value) == f"{path} is damaged ({reason}); re-train it"


def test_a_card_that_is_not_json_or_not_there_is_one_line(tmp_path):
    path = tmp_path / "card.json"
    path.write_text('{"run": "r", ')
    with pytest.raises(DamagedFileError, match=r"card.json is damaged \(truncated or not JSON: .*\); fix it$"):
        Card.read(path, fix="fix it")
    path.write_text("[1, 2]")
    with pytest.raises(DamagedFileError, match=r"card.json is damaged \(not a JSON object\); fix it$"):
        Card.read(path, fix="fix it")
    with pytest.raises(DamagedFileError, match=r"nothing.json is missing; fix it$"):
        Card.read(tmp_path / "nothing.json", fix="fix it")


def test_a_card_without_a_dataset_spec_is_a_model_taken_in_without_data(tmp_path):
    """A model file exported with no --data has no dataset to find again (zoo.models.adopted)."""
    document = json.loads(SHIPPED_CARDS[0].read_text())
    document["dataset"] = {}
    path = tmp_path / "card.json"
    path.write_text(json.dumps(document))
    card = Card.read(path, fix="take it in again")
    assert card.dataset_spec is None and card.labelled is True and card.custom_objects == []
