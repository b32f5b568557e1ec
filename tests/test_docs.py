"""What README.md and benchmarks/RESULTS.md say of the shipped models is what their cards say.

The shipped weights are `zoo train` with seed 0 and the recipe tools/rebuild_weights.py gives
(the default, but for the MNIST digits' handwriting preset), so every figure the documents give
for that run (test accuracy, ECE before and after calibration, the temperature) has one source:
the card in zoo/weights/. A document that drifts from it fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zoo.models import pretrained

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RESULTS = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
# how each document names the run of each shipped model
COMMANDS = {"lenet5.mnist": "`zoo train lenet --augment handwriting --epochs 50`",
            "mnist_cnn.mnist": "`zoo train mnist_cnn --augment handwriting --epochs 40`",
            "mnist_cnn_dropout.mnist": "`zoo train mnist_cnn_dropout --augment handwriting --epochs 40`",
            "text_cnn.bbc_news": "`zoo train text_cnn --data ../shared/data/bbc-news`"}
# benchmarks/trust.py trains the default recipe: its rows are the shipped runs' where that is the recipe
DEFAULT_RECIPE = {"text_cnn.bbc_news"}
RESULTS_ROWS = {"lenet5.mnist": "lenet5", "mnist_cnn.mnist": "mnist_cnn", "mnist_cnn_dropout.mnist": "mnist_cnn_dropout",
                "text_cnn.bbc_news": "text_cnn (BBC News)"}


def _rows(text: str, first_cell: str) -> list[list[str]]:
    """The cells of every Markdown table row whose first cell is `first_cell`."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            rows.append(cells)
    return rows


def _percent(value: float) -> str:
    return f"{value:.2%}"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_figure_of_a_shipped_run_is_its_cards(name):
    card = pretrained.find(name).card
    accuracy = _percent(card["metrics"]["test_accuracy"])
    before, after = (_percent(card["calibration"]["test_ece"][k]) for k in ("before", "after"))
    temperature = f"{card['calibration']['temperature']:.3f}"
    (pretrained_row,) = _rows(README, f"`{name}`")
    assert pretrained_row[2:4] == [accuracy, after], pretrained_row
    command = COMMANDS[name]
    readme_rows = _rows(README, command)
    assert len(readme_rows) == 2, f"{command}: the results and the calibration tables"
    results, calibration = readme_rows
    assert results[1] == accuracy, results
    assert calibration[1:5] == [accuracy, before, after, temperature], calibration
    if name in DEFAULT_RECIPE:
        (trust,) = _rows(RESULTS, RESULTS_ROWS[name])[:1]
        assert trust[1:4] == [accuracy, before, after] and trust[5] == temperature, trust
    # the micro tables' Keras column, in README and RESULTS.md
    micro = RESULTS_ROWS[name].split(" ")[0]
    for text in (README, RESULTS):
        rows = [cells for line in text.splitlines() if line.startswith(f"| {micro} ")
                for cells in [[c.strip() for c in line.strip().strip("|").split("|")]]
                if len(cells) >= 7 and all(c.endswith("%") for c in cells[3:6])]
        assert len(rows) == 1 and rows[0][4] == accuracy, rows
