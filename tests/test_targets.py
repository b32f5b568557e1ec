"""One resolver: every kind of TARGET read by the same rules, in the same order, with one set of errors."""

from __future__ import annotations

import os
import time

import pytest
from click.testing import CliRunner

from zoo import locks, targets
from zoo.cli import main
from zoo.errors import ModelLoadError, UnknownModelError


@pytest.fixture
def made(tmp_path, zoo_home):
    """One of every kind of thing on disk, as files (their contents are not read by the resolver)."""
    run = zoo_home / "mine"
    run.mkdir()
    (run / "card.json").write_text("{}")
    (run / "model.keras").write_bytes(b"")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "m.keras").write_bytes(b"")
    (tmp_path / "m.tflite").write_bytes(b"")
    (tmp_path / "m.onnx").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    return tmp_path, run


def test_every_kind_is_read_by_the_same_rules(made):
    tmp, run = made
    cases = {
        str(run): ("run", run), str(run / "model.keras"): ("run", run), str(tmp / "sm"): ("saved_model", tmp / "sm"),
        str(tmp / "m.keras"): ("keras_file", tmp / "m.keras"), str(tmp / "m.tflite"): ("artifact", tmp / "m.tflite"),
        str(tmp / "m.onnx"): ("artifact", tmp / "m.onnx"), "mine": ("run", run),
    }
    everything = (*targets.ANYTHING, targets.REGISTRY)
    for text, (kind, path) in cases.items():
        found = targets.resolve(text, everything)
        assert (found.kind, found.path) == (kind, path), text
    assert targets.resolve("lenet5.mnist", everything).weights.name == "lenet5.mnist"
    assert targets.resolve("lenet.mnist", everything).weights.name == "lenet5.mnist"  # an alias of the model
    assert targets.resolve("lenet", everything).entry.name == "lenet5"


def test_a_registry_name_comes_before_a_run_of_that_name_where_a_command_takes_models(made, zoo_home):
    (zoo_home / "lenet5").mkdir()
    (zoo_home / "lenet5" / "card.json").write_text("{}")
    assert targets.resolve("lenet5", targets.MODELS).kind == "registry"  # zoo summary, zoo explain
    assert targets.resolve("lenet5", targets.RUNS).kind == "run"  # zoo export, zoo evaluate


def test_a_bare_word_that_names_a_folder_here_is_still_a_run_name(made, tmp_path, monkeypatch):
    (tmp_path / "elsewhere" / "mine").mkdir(parents=True)  # a folder called like the run, in the cwd
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert targets.resolve("mine", targets.RUNS).path == made[1]


def test_one_set_of_errors(made, zoo_home):
    tmp, _ = made
    with pytest.raises(ModelLoadError, match=rf"^no run 'gone': no card.json in gone or under {zoo_home}/$"):
        targets.resolve("gone", targets.RUNS)
    with pytest.raises(UnknownModelError, match=r"^unknown model 'gone'; .* \(and no run 'gone' under "):
        targets.resolve("gone", targets.MODELS)
    with pytest.raises(ModelLoadError, match=r"^gone: no such artifact, and no run of that name under "):
        targets.resolve("gone", targets.ANYTHING)
    with pytest.raises(ModelLoadError, match=rf"^{tmp / 'notes.txt'}: not a model artifact \(a .tflite, .onnx or "):
        targets.resolve(str(tmp / "notes.txt"), targets.ANYTHING)
    with pytest.raises(ModelLoadError, match=rf"^{tmp / 'm.tflite'} is not a Keras 3 model file \(.keras\)$"):
        targets.resolve(str(tmp / "m.tflite"), targets.MODELS)  # summary takes Keras models, not artifacts
    with pytest.raises(ModelLoadError, match=r"^no run .*: no card.json in "):
        targets.resolve(str(tmp / "notes.txt"), targets.RUNS)
    # a SavedModel folder is a model file that the run commands take in as a run
    assert targets.resolve(str(tmp / "sm"), targets.RUNS).kind == targets.SAVED_MODEL
    # a name the OS cannot take as a path (errno 36) is a name, not a crash
    with pytest.raises(ModelLoadError, match="no such artifact"):
        targets.resolve("x" * 300, targets.ANYTHING)


@pytest.mark.parametrize("command", [["predict", "busy", "x.png"], ["evaluate", "busy"], ["export", "busy"],
                                     ["summary", "busy"], ["benchmark", "busy"]])
def test_a_run_whose_first_training_is_under_way_says_so_in_every_command(zoo_home, command):
    """Before its .partial folder even exists (a trainer takes the name first, then loads its data),
    every command that reads the run says it is training: never 'no such artifact'."""
    with locks.hold(zoo_home, "busy", locks.TRAIN):
        holder = locks.holder(zoo_home, "busy")
        since = time.strftime("%H:%M:%S", time.localtime(holder["since"]))
        result = CliRunner().invoke(main, command)
    assert result.exit_code == 1, result.output
    assert result.stderr == (f"Error: run 'busy' is being trained by another zoo process (pid {os.getpid()}, "
                             f"'{holder['command']}') since {since}; its model is written when that training ends: "
                             "wait for it to finish\n")
