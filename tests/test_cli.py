"""The command line: output, JSON documents, errors and exit codes, start-up hygiene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from zoo.cli import main

ZOO = [sys.executable, "-m", "zoo.cli"]


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(main, list(args), catch_exceptions=False)


def test_version(runner):
    import zoo

    result = invoke(runner, "--version")
    assert result.exit_code == 0
    assert result.output == f"zoo, version {zoo.__version__}\n"


def test_help_shows_a_worked_example(runner):
    result = invoke(runner, "--help")
    assert result.exit_code == 0
    assert "zoo summary lenet" in result.output
    for command in ("list", "summary"):
        assert command in result.output


@pytest.mark.slow
def test_list_json_has_one_row_per_model(runner):
    result = invoke(runner, "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["image_cnn", "lenet5", "mnist_cnn", "mnist_cnn_dropout", "text_cnn"]
    lenet = rows[1]
    assert [(p["name"], p["tag"], p["dataset"]) for p in lenet.pop("pretrained")] == [("lenet5.mnist", "mnist", "mnist")]
    assert lenet == {
        "name": "lenet5", "aliases": ["lenet"], "task": "image", "input_shape": [28, 28, 1],
        "num_classes": 10, "params": 61_706, "macs": 416_520,
        "weights_kb": {"float32": 241.0, "int8": 60.3}, "dataset": "mnist",
        "reference": "LeCun et al. 1998", "package": None,  # None: zoo's own, else the plugin's package
    }
    assert {row["name"]: row["params"] for row in rows}["image_cnn"] == 85_012_355


def test_list_table_with_pattern(runner):
    result = invoke(runner, "list", "mnist*")
    assert result.exit_code == 0
    assert "mnist_cnn_dropout" in result.output and "840,554" in result.output
    assert "lenet5" not in result.output


def test_list_pattern_matching_nothing_prints_an_empty_table(runner):
    result = invoke(runner, "list", "nothing*")
    assert result.exit_code == 0
    assert "name" in result.output and "lenet5" not in result.output
    assert json.loads(invoke(runner, "list", "nothing*", "--json").stdout) == []


def test_summary_json_is_the_contract_document(runner):
    result = invoke(runner, "summary", "lenet", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert (document["model"], document["params"], document["macs"]) == ("lenet5", 61_706, 416_520)
    assert [(row["name"], row["receptive_field"], row["jump"]) for row in document["layers"][:4]] == [
        ("c1", [5, 5], [1, 1]), ("s2", [6, 6], [2, 2]), ("c3", [14, 14], [2, 2]), ("s4", [16, 16], [4, 4]),
    ]


def test_summary_table(runner):
    result = invoke(runner, "summary", "lenet5")
    assert result.exit_code == 0
    out = result.output
    for text in ("c1", "Conv2D", "28×28×6", "117,600", "14×14", "params: 61,706 (trainable 61,706, non-trainable 0)",
                 "MACs: 416,520", "weights: 241.0 KB float32, 60.3 KB int8",
                 "largest activation: c1 28×28×6 = 4,704 values (18.4 KB float32)"):
        assert text in out, text


@pytest.mark.slow
def test_summary_without_argument_lists_weight_sizes(runner):
    result = invoke(runner, "summary")
    assert result.exit_code == 0
    assert "fp32 KB" in result.output and "int8 KB" in result.output
    assert "241.0" in result.output and "60.3" in result.output  # lenet5


def test_summary_of_a_keras_file_and_of_a_run(runner, tmp_path, zoo_home):
    import zoo

    model = zoo.create_model("mnist_cnn", num_classes=4)
    path = tmp_path / "four.keras"
    model.save(path)
    by_path = json.loads(invoke(runner, "summary", str(path), "--json").stdout)
    assert by_path["params"] == model.count_params() and by_path["layers"][-1]["output_shape"] == [4]

    (zoo_home / "my-run").mkdir()
    model.save(zoo_home / "my-run" / "model.keras")
    by_run = json.loads(invoke(runner, "summary", "my-run", "--json").stdout)
    assert by_run == by_path


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["summary", "lenet6"], 2,
         "Error: unknown model 'lenet6'; did you mean lenet, lenet5? 'zoo list' shows the 5 models: "
         "image_cnn, lenet5, mnist_cnn, mnist_cnn_dropout, text_cnn (and no run 'lenet6' under {home}/)\n"),
        (["summary", "missing/model.keras"], 1, "Error: no model file at missing/model.keras\n"),
        (["summary", "../escape"], 1, "Error: no model file at ../escape\n"),
        (["frobnicate"], 2, None),
    ],
)
def test_errors_are_one_line_with_exit_codes(runner, zoo_home, args, code, message):
    result = runner.invoke(main, args)
    assert result.exit_code == code
    assert result.stdout == ""
    if message is not None:
        assert result.stderr == message.format(home=zoo_home)
    assert "Traceback" not in result.output


def test_a_file_that_is_not_a_model_is_a_clear_error(runner, tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip archive")
    result = runner.invoke(main, ["summary", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot load {bad}: ")
    assert result.stderr.count("\n") == 1


def test_help_is_instant_and_does_not_import_tensorflow():
    code = "import sys, zoo.cli, zoo; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    result = subprocess.run([*ZOO, "summary", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "layer by layer" in result.stdout


def test_terminal_stays_clean_when_tensorflow_loads():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "ZOO_VERBOSE"))}
    result = subprocess.run([*ZOO, "summary", "lenet", "--json"], capture_output=True, text=True, env=env)
    assert result.returncode == 0
    assert result.stderr == ""
    assert json.loads(result.stdout)["macs"] == 416_520


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("zoo")
    assert script.is_file(), "the test install (pip install -e '.[test]') puts the zoo command beside python"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("zoo, version ")
