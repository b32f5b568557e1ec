"""Training end to end on small real data: run folders, evaluation, resume, repeatability, errors."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from _callbacks import StopAfter
from zoo.cli import main
from zoo.errors import ConfigError, DataError, Interrupted
from zoo.inspect.evaluate import evaluate
from zoo.training.fit import train

BBC = Path(os.environ["ZOO_DATA_DIR"]) / "bbc-news"
QUICK = dict(epochs=2, limit=1500, verbose=0)
RUN_FILES = {"model.keras", "card.json", "history.csv", "curves.png", "confusion.png", "calibration.png"}


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("runs")
    return train("lenet", out=str(home), seed=0, **QUICK)


def test_run_folder_and_card(lenet_run):
    folder = lenet_run.path
    assert folder.name == "lenet5"
    assert {p.name for p in folder.iterdir()} == RUN_FILES
    card = json.loads((folder / "card.json").read_text())
    assert card["model"] == "lenet5" and card["labels"] == [str(i) for i in range(10)]
    assert card["dataset"]["train_used"] == 1351 and card["dataset"]["validation_examples"] == 149  # per class
    assert card["dataset"]["test_examples"] == 10_000 and card["dataset"]["split"] == "official"
    assert card["preprocessing"]["scale"] == 1 / 255 and card["preprocessing"]["input_shape"] == [28, 28, 1]
    assert card["hyperparameters"]["epochs"] == 2 and card["seed"] == 0
    assert card["hyperparameters"]["label_smoothing"] == 0.2  # LeNet-5's recipe: soft one-hot targets
    training = card["training"]
    assert training["epochs"] == 2 and training["seconds"] > 0 and training["samples_per_second"] > 0
    metrics = card["metrics"]
    assert 0.6 < metrics["test_accuracy"] <= 1 and metrics["test_loss"] > 0
    assert np.array(metrics["confusion_matrix"]).sum() == 10_000
    assert set(metrics["per_class"]["7"]) == {"precision", "recall", "f1", "support"}
    assert {"zoo", "tensorflow", "keras", "numpy", "python"} <= set(card["versions"])
    with (folder / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1] and {"loss", "val_loss", "accuracy"} <= set(rows[0])
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_reproduces_the_card(lenet_run):
    assert zoo.Run.open(lenet_run.path).card == lenet_run.card
    report = evaluate(lenet_run.path)
    assert report["test_accuracy"] == lenet_run.metrics["test_accuracy"]
    assert report["confusion_matrix"] == lenet_run.metrics["confusion_matrix"]
    assert report["test_loss"] == pytest.approx(lenet_run.metrics["test_loss"], rel=1e-4)


def test_model_file_is_a_plain_keras_model(lenet_run):
    model = zoo.load_model(lenet_run.path / "model.keras")
    assert model.count_params() == 61_706


@pytest.mark.slow
def test_same_seed_same_metrics(lenet_run, tmp_path):
    again = train("lenet", out=str(tmp_path), seed=0, **QUICK)
    assert again.metrics["confusion_matrix"] == lenet_run.metrics["confusion_matrix"]
    assert again.metrics["test_loss"] == pytest.approx(lenet_run.metrics["test_loss"], abs=1e-6)


def test_existing_runs_are_never_overwritten(zoo_home):
    small = dict(epochs=1, limit=300, verbose=0, val_split=0.0)
    first = zoo.train("lenet", **small)  # the package-level API of DESIGN.md
    second = train("lenet", **small)
    assert (first.name, second.name) == ("lenet5", "lenet5-2")
    with pytest.raises(ConfigError) as err:
        train("lenet", name="lenet5", **small)
    assert str(err.value) == f"run 'lenet5' already exists in {zoo_home}/; pass --overwrite or another --name"
    before = (zoo_home / "lenet5" / "card.json").read_text()
    replaced = train("lenet", name="lenet5", overwrite=True, seed=5, **small)
    assert replaced.card["seed"] == 5 and (zoo_home / "lenet5" / "card.json").read_text() != before
    assert sorted(p.name for p in zoo_home.iterdir()) == ["lenet5", "lenet5-2"]


@pytest.mark.slow
def test_interrupted_run_resumes_from_the_last_finished_epoch(zoo_home):
    options = dict(epochs=3, limit=600, verbose=0, name="r")
    with pytest.raises(Interrupted) as err:
        train("lenet", callbacks=[StopAfter(1)], **options)
    assert "continue with: zoo train lenet5 --name r --resume" in str(err.value)
    assert not (zoo_home / "r").exists()
    assert (zoo_home / "r.partial" / "checkpoints" / "backup").is_dir()
    with pytest.raises(ConfigError, match="pass --resume to continue it or --overwrite"):
        train("lenet", **options)
    run = train("lenet", resume=True, name="r", verbose=0)  # the saved options, not today's defaults
    assert run.card["training"]["epochs"] == 3 and run.card["training"]["epochs_this_session"] == 1
    assert run.card["dataset"]["limit"] == 600 and run.card["hyperparameters"]["epochs"] == 3
    with (run.path / "history.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]
    assert not (zoo_home / "r.partial").exists() and {p.name for p in run.path.iterdir()} == RUN_FILES
    with pytest.raises(ConfigError, match="nothing to resume: no interrupted run 'r'"):
        train("lenet", resume=True, **options)


def test_a_backup_that_does_not_fit_the_model_is_one_clear_line(zoo_home):
    """Weights saved from the bare model (as zoo did before it trained through zoo.training.sharding)."""
    options = dict(epochs=2, limit=300, verbose=0, name="b")
    with pytest.raises(Interrupted):
        train("lenet", callbacks=[StopAfter(0)], **options)
    backup = zoo_home / "b.partial" / "checkpoints" / "backup" / "epoch-1.weights.h5"
    bare = zoo.create_model("lenet5")
    bare.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    bare.optimizer.build(bare.trainable_variables)
    bare.save_weights(backup)
    with pytest.raises(zoo.ZooError) as err:
        train("lenet", resume=True, name="b", verbose=0)
    assert str(err.value) == (f"cannot resume from epoch 1: {backup} does not fit this model (saved by another "
                              f"zoo version?); start over with --overwrite")


@pytest.mark.slow
def test_text_cnn_on_bbc_news(zoo_home):
    run = train("text_cnn", data=str(BBC), epochs=4, verbose=0,
                model_args={"vocab_size": 5000, "sequence_length": 200})
    vocab = (run.path / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert vocab[:2] == ["", "[UNK]"] and len(vocab) - 1 == run.card["preprocessing"]["vocab_size"] == 5000
    assert {p.name for p in run.path.iterdir()} == RUN_FILES | {"vocab.txt"}
    assert run.card["labels"] == ["business", "entertainment", "politics", "sports", "tech"]
    assert run.card["dataset"]["split"] == "stratified 80/20, seed 0"
    assert run.metrics["test_accuracy"] > 0.8
    assert evaluate(run.name)["test_accuracy"] == run.metrics["test_accuracy"]
    hyper = run.card["hyperparameters"]  # the text recipe: random windows, smoothed targets
    assert (hyper["augment_crop"], hyper["label_smoothing"], hyper["augment_shift"]) == (0.5, 0.2, 0)


def test_random_crop_keeps_a_run_of_each_text():
    import tensorflow as tf

    from zoo.data.pipeline import random_crop_tokens

    ids = np.zeros((64, 30), np.int32)
    lengths = np.random.default_rng(1).integers(0, 31, 64)
    for row, n in enumerate(lengths):
        ids[row, :n] = np.arange(2, n + 2)  # token i of a text is i + 2: a run is consecutive numbers
    out = random_crop_tokens(tf.constant(ids), 0.5, tf.constant([3, 4], tf.int64)).numpy()
    np.testing.assert_array_equal(out, random_crop_tokens(tf.constant(ids), 0.5, tf.constant([3, 4], tf.int64)))
    kept = (out != 0).sum(axis=1)
    assert (kept >= np.maximum(np.ceil(lengths * 0.5), 1) * (lengths > 0)).all() and (kept <= lengths).all()
    for row, n in zip(out, kept):
        assert (row[n:] == 0).all()  # padding after the window, none inside it
        assert (np.diff(row[:n]) == 1).all()  # one run of the text, in order
    assert (kept < lengths).any()  # some texts were cut


@pytest.mark.parametrize("scale, offset", [(1 / 255, 0.0), (1 / 127.5, -1.0), (0.1, 0.3)])
def test_pipeline_scales_uint8_batches_exactly_as_prep(scale, offset):
    from zoo.data.preprocess import ImagePreprocessing
    from zoo.data.pipeline import batches, feed

    prep = ImagePreprocessing((16, 16, 1), scale=scale, offset=offset)
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(5, axis=0)  # every pixel value
    x[1:] = np.random.default_rng(0).integers(0, 256, x[1:].shape, dtype=np.uint8)
    held, transform = feed(prep, x)
    assert held.dtype == np.uint8 and transform is not None  # the pipeline holds the raw pixels
    (batch, labels), = batches(x, np.arange(5), 8, prep=prep, shuffle_seed=None).as_numpy_iterator()
    assert batch.dtype == np.float32 and labels.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(batch.view(np.uint32), prep(x).view(np.uint32))  # bit for bit
    floats, transform = feed(prep, x.astype(np.float32))  # anything but uint8: scaled up front
    assert transform is None and floats.dtype == np.float32


def test_the_training_step_is_traced_once(zoo_home, monkeypatch):
    # Keras without a strategy creates the optimizer's variables inside the first trace, and
    # a tf.function that creates variables is traced twice; zoo builds them before fit
    from zoo.training.sharding import Sharded

    calls, call = [], Sharded.call
    monkeypatch.setattr(Sharded, "call", lambda self, x, training=None: calls.append(training) or
                        call(self, x, training=training))
    train("lenet", epochs=2, limit=1000, verbose=0)
    assert calls.count(True) == 1  # one trace of the training step, run for both epochs
    assert len(calls) == 3  # and the build from shapes, and validation's one trace


def test_a_model_keras_cannot_build_from_shapes_still_trains(zoo_home, monkeypatch):
    from zoo.training.sharding import Sharded

    refused = []

    def refuse(self, **kwargs):
        refused.append(kwargs)
        raise ValueError("cannot build from shapes")

    built_early = train("lenet", epochs=1, limit=1000, verbose=0)
    monkeypatch.setattr(Sharded, "_symbolic_build", refuse, raising=False)
    # said in one warning (it was a silent bare except), and the run goes on
    with pytest.warns(zoo.ZooWarning, match=r"^the metrics could not be built before training \(ValueError: "
                                            r"cannot build from shapes\); they are built in the first step instead"):
        built_in_fit = train("lenet", epochs=1, limit=1000, verbose=0)
    assert len(refused) == 1  # the early build was tried, and refused
    assert built_in_fit.metrics == built_early.metrics  # the same training, only traced twice


def test_label_smoothing_0_trains_on_class_ids(zoo_home):
    from _callbacks import Record

    losses = []
    run = train("lenet", epochs=3, limit=2000, verbose=0, label_smoothing=0, crop=0.5, name="hard",
                callbacks=[Record(lambda trainer: trainer.loss, losses)])
    (loss,) = losses  # what fit compiled: class ids, not one-hot rows
    assert type(loss).__name__ == "SparseCategoricalCrossentropy"
    assert run.card["hyperparameters"]["label_smoothing"] == 0.0
    assert run.card["hyperparameters"]["augment_crop"] == 0.0  # a text option: images ignore it
    with (run.path / "history.csv").open() as f:
        assert {"accuracy", "loss", "val_accuracy"} <= set(next(csv.DictReader(f)))
    assert run.metrics["test_accuracy"] > 0.7  # 3 epochs on 1,800 digits: about 0.79


def test_until_stops_after_the_first_epoch_that_reaches_the_accuracy(zoo_home):
    """The oracle is the epoch log itself: the run stops at the first epoch whose val_accuracy
    reaches the target, and that one only (a target never reached runs every epoch)."""
    runner = CliRunner()
    result = runner.invoke(main, ["train", "lenet", "--epochs", "4", "--limit", "2000", "--until", "0.6",
                                  "--no-calibrate", "--name", "until"])
    assert result.exit_code == 0, result.output
    card = json.loads((zoo_home / "until" / "card.json").read_text())
    with (zoo_home / "until" / "history.csv").open() as f:
        accuracies = [float(row["val_accuracy"]) for row in csv.DictReader(f)]
    assert accuracies[-1] >= 0.6 and all(a < 0.6 for a in accuracies[:-1]) and len(accuracies) < 4
    assert card["training"]["stopped_early"] and card["training"]["until"] == 0.6
    assert card["training"]["epochs"] == len(accuracies)
    never = train("lenet", epochs=2, limit=1000, until=1.0, calibrate=False, verbose=0, name="never")
    assert never.card["training"]["epochs"] == 2 and not never.card["training"]["stopped_early"]
    bad = runner.invoke(main, ["train", "lenet", "--until", "1.5"])
    assert bad.exit_code == 2 and "Invalid value for '--until': 1.5 is not in the range 0<x<=1." in bad.stderr


def test_binary_text_csv_uses_a_sigmoid_head(tmp_path, zoo_home):
    rng = np.random.default_rng(0)
    good, bad = ["great", "lovely", "superb", "fine"], ["awful", "poor", "dull", "bad"]
    path = tmp_path / "reviews.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(200):
            words = good if i % 2 else bad
            writer.writerow([" ".join(rng.choice(words + ["the", "film", "was"], 8)), "pos" if i % 2 else "neg"])
    run = train("text_cnn", data=str(path), epochs=8, verbose=0, batch_size=16,
                model_args={"sequence_length": 16, "embedding_dim": 8, "filters": 8, "hidden_units": 8})
    assert run.card["labels"] == ["neg", "pos"]
    assert zoo.load_model(run.path).output.shape[-1] == 1
    assert run.metrics["test_accuracy"] >= 0.9


def _image_folder(root: Path, n=24) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("dark", "light")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 100, (40, 40, 3)) + 150 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.mark.slow
def test_image_cnn_on_an_image_folder(tmp_path, zoo_home):
    run = train("image_cnn", data=str(_image_folder(tmp_path / "img")), epochs=3, verbose=0, batch_size=8,
                model_args={"input_shape": (32, 32, 3)})
    assert run.card["labels"] == ["dark", "light"]
    assert run.card["preprocessing"]["input_shape"] == [32, 32, 3]
    assert run.metrics["test_accuracy"] == 1.0


@pytest.mark.parametrize(
    "model, options, error, message",
    [
        ("lenet", dict(batch_size=5000, limit=1000), ConfigError,
         "batch-size 5000 is larger than the 900 training examples"),
        ("lenet", dict(epochs=0), ConfigError, "epochs must be a whole number >= 1, got 0"),
        ("lenet", dict(lr=-1.0), ConfigError, "lr must be a number in (0, 10), got -1.0"),
        ("lenet", dict(seed=-1), ConfigError, "seed must be a whole number in [0, 4294967295], got -1"),
        ("lenet", dict(seed=2**32), ConfigError, "seed must be a whole number in [0, 4294967295], got 4294967296"),
        ("lenet", dict(val_split=1.5), ConfigError, "val-split must be a number in [0, 1), got 1.5"),
        ("lenet", dict(label_smoothing=1.0), ConfigError, "label-smoothing must be a number in [0, 1), got 1.0"),
        ("lenet", dict(until=0), ConfigError, "until must be a number in (0, 1], got 0"),
        ("text_cnn", dict(crop=-0.5), ConfigError, "crop must be a number in [0, 1), got -0.5"),
        ("lenet", dict(name="../up"), ConfigError,
         "invalid run name '../up': use letters, digits, '.', '_' and '-' (no '/', no '..', at most 128 characters)"),
        ("image_cnn", {}, ConfigError, "image_cnn has no default dataset; pass --data PATH (a folder of class sub-folders)"),
        ("text_cnn", dict(data=str(Path(os.environ["ZOO_DATA_DIR"]) / "mnist")), DataError,
         "holds image data, but the model takes text"),
        ("lenet", dict(data=str(BBC)), DataError, "holds text data, but the model takes image"),
    ],
)
def test_bad_training_options(zoo_home, model, options, error, message):
    with pytest.raises(error) as err:
        train(model, verbose=0, **options)
    assert message in str(err.value)
    assert list(zoo_home.iterdir()) == []


def test_cli_train_and_evaluate(zoo_home):
    runner = CliRunner()
    result = runner.invoke(main, ["train", "lenet", "--epochs", "1", "--limit", "400", "--name", "cli"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("cli: test accuracy ")
    assert result.stdout.rstrip().endswith(f"-> {zoo_home / 'cli'}/")
    report = json.loads(runner.invoke(main, ["evaluate", "cli", "--json"]).stdout)
    assert report["run"] == "cli" and len(report["confusion_matrix"]) == 10
    table = runner.invoke(main, ["evaluate", "cli"])
    assert table.exit_code == 0 and "test accuracy:" in table.stdout and "confusion matrix" in table.stdout
    missing = runner.invoke(main, ["evaluate", "nope"])
    assert missing.exit_code == 1
    assert missing.stderr == f"Error: no run 'nope': no card.json in nope or under {zoo_home}/\n"
    bad = runner.invoke(main, ["train", "lenet", "--epochs", "0"])
    assert bad.exit_code == 2 and "Invalid value for '--epochs': 0 is not in the range x>=1." in bad.stderr
