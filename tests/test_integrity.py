"""Run integrity: one lock per run, clear refusals, damaged files named, no half-done swap or export."""

from __future__ import annotations

import csv
import errno
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo
from zoo import locks
from zoo.cli import main
from zoo.errors import ZooError, ZooWarning
from zoo.training.fit import train

from _callbacks import StopAfter
from _processes import zoo_process

DATA = Path(os.environ["ZOO_DATA_DIR"])
TINY = dict(epochs=1, limit=400, verbose=0, batch_size=32)


def _zoo(home: Path, *args: str) -> subprocess.Popen:
    return zoo_process(list(args), home)


def _wait_for_holder(home: Path, name: str, activity: str, *processes, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = locks.holder(home, name)
        if holder and holder["activity"] == activity:
            return holder
        for process in processes:
            assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"nobody {activity} run '{name}' within {timeout} s")


# ---------------------------------------------------------------- refusals while a run is trained


@pytest.mark.slow
def test_every_writer_is_refused_while_a_run_is_trained_and_kill_9_frees_it(tmp_path):
    home = tmp_path / "runs"
    live_args = ["train", "lenet", "--data", str(DATA / "mnist"), "--limit", "1500", "--epochs", "500",
                 "--batch-size", "64", "--name", "live"]
    live = _zoo(home, *live_args)
    try:
        holder = _wait_for_holder(home, "live", "trained", live)
        assert holder["pid"] == live.pid and holder["command"] == shlex.join(["zoo", *live_args])
        who = f"another zoo process (pid {live.pid}, '{holder['command']}')"
        since = time.strftime("%H:%M:%S", time.localtime(holder["since"]))
        attempts = {
            "train": (["train", "lenet", "--name", "live", "--epochs", "1"],
                      f"run 'live' is being trained by {who}; wait for it to finish, or choose another --name"),
            "overwrite": (["train", "lenet", "--name", "live", "--epochs", "1", "--overwrite"],
                          f"run 'live' is being trained by {who}; wait for it to finish, or choose another --name"),
            "resume": (["train", "lenet", "--name", "live", "--resume"],
                       f"run 'live' is being trained by {who}; wait for it to finish, or choose another --name"),
            # its first training: no finished run yet, so every command that reads it says so, since when
            **{command: ([command, "live", *(["x.png"] if command == "predict" else [])], f"run 'live' is being trained by {who} since {since}; its model is "
                                            "written when that training ends: wait for it to finish")
               for command in ("export", "benchmark", "evaluate", "predict")},
        }
        started = {key: _zoo(home, *args) for key, (args, _) in attempts.items()}
        for key, process in started.items():
            out, err = process.communicate(timeout=120)
            assert (process.returncode, err) == (1, f"Error: {attempts[key][1]}\n"), key
        assert live.poll() is None  # the live run went on, untouched
    finally:
        live.send_signal(signal.SIGKILL)
        live.communicate(timeout=60)
    # a process killed with -9 lets go of its lock at once: no stale lock to clean up
    assert locks.holder(home, "live") is None
    with locks.hold(home, "live", locks.TRAIN):
        pass
    assert (home / "live.partial").is_dir() and not (home / "live").exists()


def test_a_second_process_is_refused_in_process_too(zoo_home):
    """The lock is per open file: the same refusal between two holders in one process."""
    with locks.hold(zoo_home, "busy", locks.TRAIN):
        with pytest.raises(locks.RunLocked, match=r"^run 'busy' is being trained by another zoo process \(pid "
                                                  rf"{os.getpid()}, '.*'\); wait for it to finish, or choose "
                                                  r"another --name$"):
            train("lenet", name="busy", **TINY)
    assert not (zoo_home / "busy").exists() and not (zoo_home / "busy.partial").exists()


def test_a_name_zoo_chooses_moves_past_a_locked_one(zoo_home):
    with locks.hold(zoo_home, "lenet5", locks.TRAIN):
        run = train("lenet", **TINY)
    assert run.name == "lenet5-2"


def _take_without_a_record(path: Path) -> int:
    """A descriptor holding the lock of `path` with nothing written yet: a holder in the instant
    between taking the lock and writing its record."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_an_export_that_meets_a_holder_before_its_record_waits_for_it(zoo_home):
    """The holder's record is not there yet when the export looks: it must wait for the export it
    turns out to be, not refuse it as 'another zoo process'."""
    import threading

    path = locks.lock_path(zoo_home, "gap")
    fd = _take_without_a_record(path)

    def holder_goes_on():
        time.sleep(0.05)  # the record lands: an export
        os.write(fd, json.dumps({"pid": 1, "command": "zoo export gap", "activity": locks.EXPORT}).encode())
        time.sleep(0.3)
        os.unlink(path)
        os.close(fd)

    said = []
    thread = threading.Thread(target=holder_goes_on)
    thread.start()
    try:
        with locks.hold(zoo_home, "gap", locks.EXPORT, wait=10, on_wait=said.append):
            pass
    finally:
        thread.join()
    assert said == ["waiting for another zoo process (pid 1, 'zoo export gap'), which holds run 'gap' (exported), "
                    "for up to 10 s"]


def test_a_record_left_by_a_killed_process_is_not_a_holder_whatever_its_pid(zoo_home):
    """kill -9 leaves the lock file and its record; the pid in it may since be another live process
    (here: this test's own). The lock is free, so the run is not being trained."""
    path = locks.lock_path(zoo_home, "gone")
    path.write_text(json.dumps({"pid": os.getpid(), "command": "zoo train lenet --name gone",
                                "activity": locks.TRAIN, "since": time.time()}))
    (zoo_home / "gone.partial").mkdir()
    assert locks.holder(zoo_home, "gone") is None
    with pytest.raises(zoo.ModelLoadError, match="^run 'gone' did not finish; continue it with: zoo train MODEL "
                                                 "--name gone --resume$"):
        zoo.evaluate("gone")
    with locks.hold(zoo_home, "gone", locks.TRAIN):  # and a writer takes it at once
        assert locks.holder(zoo_home, "gone")["activity"] == locks.TRAIN


def test_a_reader_asking_never_makes_a_writer_refuse(zoo_home):
    """A reader's probe holds a shared lock for an instant; a writer that meets it tries again."""
    import fcntl
    import threading

    path = locks.lock_path(zoo_home, "probed")
    path.write_text("{}")
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a probe, held for 50 ms
    threading.Timer(0.05, lambda: (fcntl.flock(fd, fcntl.LOCK_UN), os.close(fd))).start()
    with locks.hold(zoo_home, "probed", locks.TRAIN):
        pass


# ---------------------------------------------------------------- exports that overlap


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    home = tmp_path_factory.mktemp("finished")
    return train("lenet", out=str(home), name="done", seed=5, **TINY)


@pytest.mark.slow
def test_two_exports_at_once_both_land_and_the_second_says_it_waits(finished, tmp_path):
    import shutil

    home = tmp_path / "runs"
    shutil.copytree(finished.path, home / "done")
    first = _zoo(home, "export", "done", "--format", "onnx")
    holder = _wait_for_holder(home, "done", "exported", first)
    second = _zoo(home, "export", "done", "--format", "tflite", "--quantize", "dynamic")
    out_first, err_first = first.communicate(timeout=300)
    out_second, err_second = second.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, (err_first, err_second)
    assert err_second.startswith(f"Warning: waiting for another zoo process (pid {first.pid}, "
                                 f"'{holder['command']}'), which holds run 'done' (exported), for up to 600 s\n")
    report = json.loads((home / "done" / "export" / "export.json").read_text())
    assert sorted(Path(a["path"]).name for a in report["artifacts"]) == ["model.onnx", "model_dynamic.tflite"]
    _assert_consistent(home / "done")


def test_an_export_waits_a_bounded_time(finished):
    folder = finished.path
    with locks.hold(folder.parent, folder.name, locks.BENCHMARK):
        with pytest.raises(locks.RunLocked, match=r"^run 'done' is still being benchmarked by another zoo "
                                                  r"process \(pid \d+, '.*'\) after 0 s; try again when it "
                                                  r"has finished$"):
            with locks.hold(folder.parent, folder.name, locks.EXPORT, wait=0.3, on_wait=lambda text: None):
                pass


# ---------------------------------------------------------------- damaged files


@pytest.fixture
def copy_of(finished, tmp_path, monkeypatch):
    import shutil

    home = tmp_path / "runs"
    shutil.copytree(finished.path, home / "done")
    monkeypatch.setenv("ZOO_HOME", str(home))
    return home / "done"


def _json_error(text: str) -> str:
    """What Python's own JSON parser says of `text` (the oracle for the message zoo prints)."""
    try:
        json.loads(text)
    except ValueError as exc:
        return str(exc)
    raise AssertionError("valid JSON")


@pytest.mark.parametrize("command", [["evaluate", "done"], ["export", "done"], ["benchmark", "done"],
                                     ["predict", "done", "x.png"]])
def test_a_truncated_card_is_one_line_in_every_command(copy_of, command):
    card = copy_of / "card.json"
    text = card.read_text()[:100]
    card.write_text(text)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {card} is damaged (truncated or not JSON: {_json_error(text)}); "
                             "re-train the run: zoo train MODEL --name done --overwrite\n")


def test_a_card_without_a_key_zoo_needs_names_it(copy_of):
    card = json.loads((copy_of / "card.json").read_text())
    del card["labels"]
    (copy_of / "card.json").write_text(json.dumps(card))
    result = CliRunner().invoke(main, ["evaluate", "done"])
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {copy_of / 'card.json'} is damaged (it has no 'labels'); "
                             "re-train the run: zoo train MODEL --name done --overwrite\n")


def test_a_damaged_sidecar_is_one_line(copy_of, tmp_path):
    from PIL import Image

    zoo.export(copy_of, format="tflite")
    sidecar = copy_of / "export" / "model_float32.tflite.json"
    sidecar.write_text("{}")
    image = tmp_path / "seven.png"
    Image.new("L", (28, 28)).save(image)
    result = CliRunner().invoke(main, ["predict", str(copy_of / "export" / "model_float32.tflite"), str(image)])
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {sidecar} is damaged (it has no 'labels'); "
                             f"re-export the run: zoo export {copy_of}\n")


def test_a_damaged_export_report_is_rebuilt_from_the_artifacts(copy_of):
    zoo.export(copy_of, format="tflite")
    zoo.export(copy_of, format="onnx")
    report = copy_of / "export" / "export.json"
    text = report.read_text()[:50]
    report.write_text(text)
    result = CliRunner().invoke(main, ["export", "done", "--quantize", "dynamic"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"Warning: {report} is damaged (truncated or not JSON: {_json_error(text)}); "
                             "rebuilt it by verifying each artifact in export/ again\n")
    names = sorted(Path(a["path"]).name for a in json.loads(report.read_text())["artifacts"])
    assert names == ["model.onnx", "model_dynamic.tflite", "model_float32.tflite"]
    assert all(a["passed"] for a in json.loads(report.read_text())["artifacts"])
    _assert_consistent(copy_of)


@pytest.mark.parametrize("damage, reason", [
    ("history", "a row without a whole epoch number"),
    ("config", "truncated or not JSON"),
    ("backup", "empty"),
])
def test_damaged_resume_state_is_one_line(zoo_home, damage, reason):
    with pytest.raises(zoo.Interrupted):
        train("lenet", name="cut", callbacks=[StopAfter(0)], **{**TINY, "epochs": 3})
    partial = zoo_home / "cut.partial"
    path, fix = {
        "history": (partial / "history.csv", "it is the epoch log of this unfinished run; start over with --overwrite"),
        "config": (partial / "train_config.json", "it holds the options to resume with; start over with --overwrite"),
        "backup": (partial / "checkpoints" / "backup" / "training_metadata.json",
                   "it names the last saved epoch; start over with --overwrite"),
    }[damage]
    path.write_text({"history": "epoch,loss\nx,1.0\n2,0.5\n", "config": '{"model": "len', "backup": ""}[damage])
    result = CliRunner().invoke(main, ["train", "lenet", "--name", "cut", "--resume"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {path} is damaged ({reason}")
    assert result.stderr.endswith(f"); {fix}\n") and result.stderr.count("\n") == 1


# ---------------------------------------------------------------- the edges of 'nothing is lost'


def test_an_export_of_several_artifacts_records_each_and_names_the_one_that_failed(copy_of, monkeypatch):
    import zoo.deploy.exporter as exporter

    def broken(model, path):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(exporter, "_onnx", broken)
    result = CliRunner().invoke(main, ["export", "done", "--target", "gpu"])
    report = copy_of / "export" / "export.json"
    assert result.exit_code == 1
    assert result.stderr == ("Error: onnx/none export failed: converter crashed; exported before it and kept: "
                             f"saved_model/none, tflite/float16 (listed in {report})\n")
    _assert_consistent(copy_of)


def test_a_first_export_that_fails_leaves_no_empty_folder(copy_of, monkeypatch):
    import zoo.deploy.exporter as exporter

    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(exporter, "_tflite", broken)
    with pytest.raises(zoo.ExportError, match="tflite/none export failed: converter crashed"):
        zoo.export(copy_of)
    assert not (copy_of / "export").exists()


_KILL_BETWEEN_RENAMES = """
import os, signal, sys
from pathlib import Path
from zoo import runs

real, calls = os.replace, []
def replace(source, destination):
    real(source, destination)
    calls.append(destination)
    if len(calls) == 1:  # the old run is aside, the new one not yet in: kill -9 here
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
runs.publish(Path(sys.argv[1]), Path(sys.argv[2]))
"""


@pytest.mark.parametrize("complete", [True, False])
def test_a_swap_killed_between_its_renames_is_finished_or_rolled_back(finished, tmp_path, monkeypatch, complete):
    import shutil

    home = tmp_path / "runs"
    shutil.copytree(finished.path, home / "done")
    shutil.copytree(finished.path, home / "done.partial")
    new_card = json.loads((home / "done.partial" / "card.json").read_text())
    new_card["seed"] = 99  # tells the new run from the old one
    (home / "done.partial" / "card.json").write_text(json.dumps(new_card))
    if not complete:
        (home / "done.partial" / "model.keras").unlink()
    killed = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_RENAMES, str(home / "done.partial"), str(home / "done")],
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL
    assert not (home / "done").exists() and len(list(home.glob(".done.old-*"))) == 1

    monkeypatch.setenv("ZOO_HOME", str(home))
    result = CliRunner().invoke(main, ["evaluate", "done", "--json"])
    assert result.exit_code == 0, result.output
    said = "finished the swap: the new run is in place" if complete else "rolled back: the previous run is back in place"
    assert result.stderr == f"Warning: run 'done' was being replaced when its process stopped; {said}\n"
    assert json.loads((home / "done" / "card.json").read_text())["seed"] == (99 if complete else 5)
    assert not list(home.glob(".done.old-*"))
    assert (home / "done.partial").exists() == (not complete)


def _ctrl_c_in(step: str, name: str, zoo_home: Path, monkeypatch) -> zoo.Interrupted:
    """Press Ctrl-C as training reaches `step` (a function of zoo.training.fit); then leave it be."""
    import zoo.training.fit as training

    def pressed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, step, pressed)
    with pytest.raises(zoo.Interrupted) as stopped:
        train("lenet", name=name, **TINY)
    monkeypatch.undo()
    monkeypatch.setenv("ZOO_HOME", str(zoo_home))
    assert stopped.value.exit_code == 130
    return stopped.value


def test_ctrl_c_before_any_epoch_says_nothing_was_saved(zoo_home, monkeypatch):
    stopped = _ctrl_c_in("_build_before_fit", "early", zoo_home, monkeypatch)
    assert str(stopped) == "interrupted before the first epoch finished; nothing was saved"
    assert not (zoo_home / "early.partial").exists()
    assert train("lenet", name="early", **TINY).path == zoo_home / "early"  # nothing in the way


def test_ctrl_c_after_training_prints_the_resume_command(zoo_home, monkeypatch):
    stopped = _ctrl_c_in("_calibrate", "late", zoo_home, monkeypatch)
    assert str(stopped) == (f"interrupted; finished epochs are kept in {zoo_home / 'late.partial'}/ - "
                            "continue with: zoo train lenet5 --name late --resume")
    resumed = train("lenet", name="late", resume=True, verbose=0)
    assert resumed.card["training"]["epochs_this_session"] == 0 and (zoo_home / "late" / "model.keras").is_file()


def test_a_failed_epoch_backup_keeps_the_last_one_and_says_how_to_resume(zoo_home, monkeypatch):
    from zoo.training.callbacks import AtomicBackupAndRestore

    saved = AtomicBackupAndRestore.on_epoch_end

    def full_disk_at_epoch_2(self, epoch, logs=None):
        if epoch == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        saved(self, epoch, logs)

    monkeypatch.setattr(AtomicBackupAndRestore, "on_epoch_end", full_disk_at_epoch_2)
    partial = zoo_home / "full.partial"
    with pytest.raises(ZooError) as failed:
        train("lenet", name="full", **{**TINY, "epochs": 3})
    assert str(failed.value) == (f"could not save an epoch's state in {partial}/: No space left on device; the "
                                 "epochs saved before it are kept - free some space, then: "
                                 "zoo train lenet5 --name full --resume")
    backup = partial / "checkpoints" / "backup"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    assert (backup / "epoch-1.weights.h5").is_file()
    monkeypatch.undo()
    monkeypatch.setenv("ZOO_HOME", str(zoo_home))
    resumed = train("lenet", name="full", resume=True, verbose=0)
    assert resumed.card["training"]["epochs_this_session"] == 2 and resumed.card["training"]["epochs"] == 3


def test_a_run_without_a_best_epoch_says_so(zoo_home, keras):
    import numpy as np

    class Poison(keras.callbacks.Callback):
        """Weights of NaN from the start: every loss is NaN, so no epoch is ever the best."""

        def on_train_begin(self, logs=None):
            self.model.set_weights([np.full(w.shape, np.nan, w.dtype) for w in self.model.get_weights()])

    with pytest.warns(ZooWarning, match=r"^run 'nan': no epoch had a finite val_loss, so there is no best "
                                        r"epoch; model.keras holds the last epoch's weights$"):
        run = train("lenet", name="nan", callbacks=[Poison()], **{**TINY, "epochs": 2})
    assert run.card["training"]["best_epoch"] is None
    assert run.card["training"]["weights"] == "last epoch: no epoch had a finite val_loss"
    assert run.card["calibration"]["method"] is None


def test_a_run_with_a_best_epoch_records_which(zoo_home):
    run = train("lenet", name="fine", **{**TINY, "epochs": 2})
    with (run.path / "history.csv").open() as f:
        losses = [float(row["val_loss"]) for row in csv.DictReader(f)]
    assert run.card["training"]["best_epoch"] == losses.index(min(losses)) + 1
    assert run.card["training"]["weights"] == "best epoch by val_loss"


# ---------------------------------------------------------------- self-consistency


def _assert_consistent(folder: Path) -> None:
    """A finished run folder agrees with itself: the card with its model, its log with its card,
    its export report with its export folder."""
    card = json.loads((folder / "card.json").read_text())
    assert zoo.evaluate(str(folder))["test_accuracy"] == card["metrics"]["test_accuracy"]
    with (folder / "history.csv").open() as f:
        assert len(list(csv.DictReader(f))) == card["training"]["epochs"]
    export = folder / "export"
    if export.exists():
        listed = sorted(Path(a["path"]).name for a in json.loads((export / "export.json").read_text())["artifacts"])
        present = sorted(p.name for p in export.iterdir() if p.suffix != ".json" and p.name != "vocab.txt")
        assert listed == present


# ---------------------------------------------------------------- stress


@pytest.mark.slow
def test_eight_processes_on_one_run_leave_it_whole(finished, tmp_path):
    """Every kind of writer and a reader, all at once on one run name: each exits 0 or with one
    clear line, and what is left is a self-consistent run folder, with nothing lost beside it."""
    import shutil

    home = tmp_path / "runs"
    shutil.copytree(finished.path, home / "s")
    small = ["--data", str(DATA / "mnist"), "--limit", "300", "--epochs", "1", "--batch-size", "32"]
    commands = [
        ["train", "lenet", "--name", "s", *small],
        ["train", "lenet", "--name", "s", "--overwrite", *small],
        ["train", "lenet", "--name", "s", "--resume"],
        ["export", "s", "--format", "tflite"],
        ["export", "s", "--format", "onnx"],
        ["export", "s", "--quantize", "dynamic"],
        ["evaluate", "s", "--json"],
        ["benchmark", "s", "--json"],
    ]
    outcomes = []
    # one round in CI (a staggered one: the trainers start first; two cost 120 s of a suite near its
    # 15-minute budget); ZOO_STRESS_ROUNDS=20 for the full form. Even rounds start the
    # trainers 3.5 s ahead, so that one holds the run when the others come (a trainer imports
    # TensorFlow before it takes the lock, an export after); odd rounds start all at once.
    for round_ in range(int(os.environ.get("ZOO_STRESS_ROUNDS", "1"))):
        processes = []
        for index, command in enumerate(commands):
            if round_ % 2 == 0 and index == 3:
                time.sleep(3.5)
            processes.append(_zoo(home, *command))
        for command, process in zip(commands, processes):
            out, err = process.communicate(timeout=300)
            outcomes.append((command[0], process.returncode, err.strip().splitlines()[-1:] if err.strip() else []))
            errors = [line for line in err.splitlines() if not line.startswith("Warning: ")]
            assert "Traceback" not in err, (command, err)
            if process.returncode == 0:
                assert errors == [], (command, err)
            else:
                assert process.returncode in (1, 2) and len(errors) == 1 and errors[0].startswith("Error: "), (command, err)
        this_round = outcomes[-len(commands):]
        for (name, code, last), command in zip(this_round, commands):
            if name in ("export", "benchmark") and code != 0:  # refused by a trainer, never by its peers
                assert not any(doing in last[0] for doing in ("being exported", "being benchmarked")), (command, last)
        writers = [code for (name, code, _), command in zip(this_round, commands) if name in ("train", "export")]
        assert 0 in writers, this_round  # somebody wrote the run in every round
        _assert_consistent(home / "s")
        leftovers = sorted(p.name for p in home.iterdir())
        assert leftovers == ["s"], (round_, leftovers)  # no lock file, no half swap, no .partial
        assert not [p for p in (home / "s").rglob(".export-*")]
    print(*outcomes, sep="\n")  # with -s: who won and who was refused, round by round
