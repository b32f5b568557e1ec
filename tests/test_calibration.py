"""Calibration: ECE by hand, a temperature folded into the output layer, and what a run records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import zoo

from zoo.training.calibration import ece, fit_temperature, fold_temperature, reliability
from zoo.cli import main
from zoo.metrics import as_class_probabilities
from zoo.training.fit import train


def test_ece_of_a_hand_worked_example():
    # 15 bins of width 1/15, each (lo, hi]. Five examples, three classes:
    #   0.90 right, 0.90 wrong -> bin 13 (0.867, 0.933]: 2 examples, accuracy 0.5, confidence 0.9
    #   0.50 right             -> bin 7  (0.467, 0.533]: accuracy 1, confidence 0.5
    #   0.70 right             -> bin 10 (0.667, 0.733]: accuracy 1, confidence 0.7
    #   0.45 wrong             -> bin 6  (0.400, 0.467]: accuracy 0, confidence 0.45
    # ECE = 2/5 * 0.4 + 1/5 * 0.5 + 1/5 * 0.3 + 1/5 * 0.45 = 0.16 + 0.10 + 0.06 + 0.09 = 0.41
    probs = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.3, 0.45, 0.25]])
    y = np.array([0, 1, 0, 1, 2])
    assert ece(probs, y) == pytest.approx(0.41, abs=1e-12)
    diagram = reliability(probs, y)
    assert diagram["counts"] == [0] * 6 + [1, 1, 0, 0, 1, 0, 0, 2, 0]
    assert diagram["accuracy"][13] == 0.5 and diagram["confidence"][13] == pytest.approx(0.9)
    assert diagram["accuracy"][0] is None
    # a sigmoid column: p = 0.75 for class 1 is a right top-1 of 0.75 (bin 11), p = 0.1 a wrong
    # top-1 of 0.9 for class 0 (bin 13): (|1 - 0.75| + |0 - 0.9|) / 2
    sigmoid = as_class_probabilities(np.array([[0.75], [0.1]]))
    assert ece(sigmoid, np.array([1, 1])) == pytest.approx((0.25 + 0.9) / 2, abs=1e-12)


def test_a_perfectly_calibrated_model_has_no_error():
    assert ece(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == 0.0


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("classes, activation", [(5, "softmax"), (1, "sigmoid")])
def test_folding_t_gives_softmax_of_logits_over_t_and_keeps_argmax(keras, classes, activation):
    rng = np.random.default_rng(0)
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(classes, activation=activation, name="output")(hidden))
    # logits of a few units: with a head of N(0, 2) weights, float32 rounding alone put 1.2e-6 between
    # the model and the float64 oracle, whatever the fold
    model.layers[-1].set_weights([rng.normal(0, 0.5, (16, classes)).astype(np.float32),
                                  rng.normal(0, 1, classes).astype(np.float32)])
    x = rng.normal(size=(500, 8)).astype(np.float32)
    # the oracle: the same forward pass in float64 NumPy, from the weights before folding
    w1, b1, w2, b2 = (np.asarray(w, np.float64) for w in model.get_weights())
    z = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    before = model.predict(x, verbose=0)
    temperature = 0.37
    fold_temperature(model, temperature)
    after = model.predict(x, verbose=0)
    expected = 1 / (1 + np.exp(-z / temperature)) if activation == "sigmoid" else _softmax(z / temperature)
    np.testing.assert_allclose(after, expected, atol=1e-6)
    top = (lambda p: (p[:, 0] > 0.5).astype(int)) if activation == "sigmoid" else (lambda p: p.argmax(1))
    assert (top(before) == top(after)).all()
    assert len(model.layers) == 3  # nothing added: the same layers, other weights


def test_the_fitted_temperature_undoes_a_known_overconfidence():
    """Labels drawn from softmax(z); a model that reports 3 z is over-confident by exactly T = 3."""
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (20_000, 10))
    p = _softmax(z)
    y = (p.cumsum(axis=1) > rng.random((len(z), 1))).argmax(axis=1)
    fitted = fit_temperature(3 * z, y)
    assert fitted.value == pytest.approx(3.0, rel=0.05)
    assert fitted.nll_after < fitted.nll_before
    # no T on a fine grid does better than the search (the NLL of softmax(3z / T), by brute force)
    grid = np.exp(np.linspace(np.log(0.5), np.log(10), 2000))
    nll = [-np.log(_softmax(3 * z / t)[np.arange(len(y)), y]).mean() for t in grid[::20]]
    assert fitted.nll_after <= min(nll) + 1e-9


def test_a_sigmoid_temperature_is_fitted_too():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 20_000)
    y = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(int)
    assert fit_temperature((z / 2)[:, None], y).value == pytest.approx(0.5, rel=0.05)  # under-confident


QUICK = dict(epochs=1, limit=3000, verbose=0, batch_size=64)


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    return train("lenet", out=str(tmp_path_factory.mktemp("calibrated")), seed=3, **QUICK)


def test_a_run_folds_its_temperature_and_records_it(calibrated_run):
    record = calibrated_run.card["calibration"]
    assert record["method"] == "temperature" and record["fitted_on"] == "validation split"
    assert record["examples"] == 300 and record["bins"] == 15
    # smoothed targets (0.2 for LeNet-5) make the model under-confident: T < 1 sharpens it
    assert 0 < record["temperature"] < 1
    assert record["validation_nll"]["after"] < record["validation_nll"]["before"]
    assert record["test_ece"]["after"] < record["test_ece"]["before"]
    assert record["top1_changed"] == 0
    assert calibrated_run.metrics["test_ece"] == record["test_ece"]["after"]
    assert (calibrated_run.path / "calibration.png").stat().st_size > 10_000


def test_evaluate_reports_the_same_ece_as_the_card(calibrated_run):
    result = CliRunner().invoke(main, ["evaluate", str(calibrated_run.path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["test_ece"] == pytest.approx(calibrated_run.metrics["test_ece"], abs=1e-6)
    table = CliRunner().invoke(main, ["evaluate", str(calibrated_run.path)])
    assert f"ECE: {calibrated_run.metrics['test_ece']:.2%}" in table.stdout


@pytest.mark.parametrize("options, reason", [
    ({"calibrate": False}, "turned off (--no-calibrate)"),
    ({"val_split": 0.0}, "no validation split (--val-split 0): nothing to fit a temperature on, "
                         "so the probabilities are the model's own"),
])
def test_without_a_temperature_the_card_says_why(zoo_home, options, reason):
    run = train("lenet", name="plain", seed=3, **{**QUICK, **options})
    record = run.card["calibration"]
    assert record == {"method": None, "reason": reason, "bins": 15,
                      "test_ece": {"before": run.metrics["test_ece"], "after": run.metrics["test_ece"]},
                      "top1_changed": 0}
    assert (run.path / "calibration.png").is_file()


def test_the_cli_flag_turns_it_off(zoo_home):
    result = CliRunner().invoke(main, ["train", "lenet", "--epochs", "1", "--limit", "600", "--no-calibrate",
                                       "--name", "off"])
    assert result.exit_code == 0, result.output
    assert ", not calibrated: turned off (--no-calibrate)) after 1 epochs" in result.stdout
    assert json.loads((zoo_home / "off" / "card.json").read_text())["calibration"]["method"] is None


def test_a_resumed_run_fits_the_same_temperature(zoo_home, monkeypatch):
    """A write that fails after training leaves the epochs for --resume; the resumed run must
    fit T afresh on the uncalibrated best weights, not fold it a second time."""
    import errno

    import zoo.training.plots
    from zoo.errors import ZooError

    whole = train("lenet", name="whole", seed=4, **QUICK)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zoo.training.plots, "plot_curves", no_space)
    with pytest.raises(ZooError, match="No space left on device"):
        train("lenet", name="cut", seed=4, **QUICK)
    monkeypatch.undo()
    monkeypatch.setenv("ZOO_HOME", str(zoo_home))
    resumed = train("lenet", name="cut", resume=True, verbose=0)
    assert resumed.card["training"]["epochs_this_session"] == 0
    assert resumed.card["calibration"]["temperature"] == whole.card["calibration"]["temperature"]
    assert resumed.card["metrics"] == whole.card["metrics"]


def test_a_temperature_at_the_bound_of_its_search_is_said_and_recorded(keras):
    """Logits of 20 for a class that is right half the time: the best T is past 50, the search's
    bound (a degenerate fit), so the run's card and the terminal say so."""
    from zoo.training.calibration import calibrate, fit_temperature

    y = np.arange(400) % 2
    z = np.tile([20.0, 0.0], (400, 1))
    assert fit_temperature(z, y).at_bound
    # right 90% of the time with logits 2 apart: T = 2 / ln 9 = 0.910, well inside the bounds
    inside = fit_temperature(np.tile([2.0, 0.0], (400, 1)), (np.arange(400) % 10 == 0).astype(int))
    assert inside.value == pytest.approx(2 / np.log(9), rel=1e-4) and not inside.at_bound
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, activation="softmax")])
    model.layers[-1].set_weights([np.array([[20.0, 0.0]], np.float32), np.zeros(2, np.float32)])
    with pytest.warns(zoo.ZooWarning, match=r"^the temperature search stopped at its bound \(T = 50; it searches "
                                            r"0.02 to 50\): the logits on the 400 validation examples are "
                                            r"degenerate"):
        record = calibrate(model, np.ones((400, 1), np.float32), y)
    assert record["at_bound"] and record["temperature"] == pytest.approx(50, rel=1e-3)


def test_calibration_that_worsens_the_test_ece_is_said():
    from zoo.training.calibration import on_test_split

    y = np.zeros(10, int)
    sure = np.tile([1.0, 0.0], (10, 1))  # right, and sure of it: ECE 0
    timid = np.tile([0.6, 0.4], (10, 1))  # right, but says 0.6: ECE 0.4
    with pytest.warns(zoo.ZooWarning) as caught:
        on_test_split({"method": "temperature", "temperature": 2.0, "examples": 50}, sure, timid, y)
    assert [str(w.message) for w in caught] == [
        "calibration made the test split's ECE worse, 0.00% -> 40.00%: the temperature fitted on the 50 validation "
        "examples does not carry over; train with --no-calibrate to keep the model's own probabilities, or a "
        "larger --val-split"]
