"""Calibrated probabilities: one temperature, fitted on the validation split and folded into the model.

A model trained on smoothed targets is right far more often than it says: the
default LeNet-5 run is right on 99.14% of the MNIST test digits with a mean
top-1 probability of 0.80 (an expected calibration error of 18.9%). Temperature
scaling (Guo, Pleiss, Sun & Weinberger, ICML 2017) divides the logits by one
number T, fitted by minimizing the negative log-likelihood of the validation
split. zoo folds T into the output layer, kernel and bias divided by T ahead of
the softmax or sigmoid, so `model.keras` and every export carry the calibrated
probabilities with no extra op. Dividing by T > 0 keeps the order of the logits, so
the top-1 class changes only where two logits were tied to float32 rounding: the
folded kernel and bias are rounded to float32, and a near tie can fall the other
way (the card counts them in `top1_changed`: 0 on the test split of every shipped model).

The expected calibration error (ECE) and the reliability bins are measurements, and live with
the other metrics (`zoo.metrics`); this module fits and folds the temperature.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from zoo.errors import ZooWarning
from zoo.metrics import BINS, ece, reliability, top1  # noqa: F401 - zoo.calibration.ece, as the API had it

# log T is searched in [log 0.02, log 50]: a T outside would mean the logits are degenerate
_LOG_T_BOUNDS = (float(np.log(0.02)), float(np.log(50.0)))


# ---------------------------------------------------------------- the output layer and its logits


def output_head(model):
    """The model's last layer if it is a Dense softmax or sigmoid head (what can be folded), else
    None and the reason."""
    layer = model.layers[-1]
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    if type(layer).__name__ != "Dense" or activation not in ("softmax", "sigmoid") or not layer.use_bias:
        kind = f"{type(layer).__name__} ({activation or 'no activation'})"
        return None, f"the output layer {layer.name} is {kind}, not a Dense softmax or sigmoid head"
    return layer, activation


def logits(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The output layer's pre-activation values in float64: its input features times its kernel,
    plus its bias, computed outside the model so that a temperature can be tried without rebuilding it."""
    from zoo.backend import keras

    head, _ = output_head(model)
    features = keras().Model(model.inputs, head.input).predict(x, batch_size=batch_size, verbose=0)
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in head.get_weights())
    return np.asarray(features, dtype=np.float64) @ kernel + bias


def _nll(z: np.ndarray, y: np.ndarray, temperature: float, sigmoid: bool) -> float:
    from scipy.special import log_expit, log_softmax

    scaled = z / temperature
    if sigmoid:
        s = scaled[:, 0]
        return float(-np.mean(np.where(y == 1, log_expit(s), log_expit(-s))))
    return float(-np.mean(log_softmax(scaled, axis=1)[np.arange(len(y)), y]))


@dataclass(frozen=True)
class Temperature:
    value: float
    nll_before: float  # validation negative log-likelihood at T = 1
    nll_after: float  # and at the fitted T
    at_bound: bool = False  # the search stopped at 0.02 or 50: the best T may lie beyond


def fit_temperature(z: np.ndarray, y_true: np.ndarray, *, sigmoid: bool | None = None) -> Temperature:
    """The T > 0 that minimizes the negative log-likelihood of softmax(z / T) (sigmoid for one
    column); a bounded 1-D search over log T (the NLL is smooth and has one minimum in T)."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    sigmoid = z.shape[1] == 1 if sigmoid is None else sigmoid
    found = minimize_scalar(lambda log_t: _nll(z, y, float(np.exp(log_t)), sigmoid),
                            bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-7})
    value = float(np.exp(found.x))
    at_bound = min(abs(found.x - bound) for bound in _LOG_T_BOUNDS) < 1e-3
    return Temperature(value, _nll(z, y, 1.0, sigmoid), _nll(z, y, value, sigmoid), bool(at_bound))


def fold_temperature(model, temperature: float) -> None:
    """Divide the output layer's kernel and bias by T, in place: softmax(x W / T + b / T) is
    softmax(z / T), so the model itself now gives the calibrated probabilities."""
    head, _ = output_head(model)
    kernel, bias = head.get_weights()
    head.set_weights([(kernel / temperature).astype(kernel.dtype), (bias / temperature).astype(bias.dtype)])


def calibrate(model, x_val: np.ndarray, y_val: np.ndarray) -> dict:
    """Fit T on a validation split and fold it into `model` in place; the card's record of it.

    A model whose last layer is not a Dense softmax or sigmoid head is left as it is, and
    the record says why.
    """
    head, activation = output_head(model)
    if head is None:
        return {"method": None, "reason": activation}
    z = logits(model, x_val)
    if not np.isfinite(z).all():  # weights gone to NaN or inf: no temperature can mend that
        return {"method": None, "reason": "the validation logits are not all finite: nothing to fit a temperature on"}
    fitted = fit_temperature(z, y_val, sigmoid=activation == "sigmoid")
    if fitted.at_bound:
        warnings.warn(f"the temperature search stopped at its bound (T = {fitted.value:.3g}; it searches "
                      f"{np.exp(_LOG_T_BOUNDS[0]):g} to {np.exp(_LOG_T_BOUNDS[1]):g}): the logits on the "
                      f"{len(y_val):,} validation examples are degenerate, and the probabilities are calibrated "
                      "only as far as that bound allows", ZooWarning, stacklevel=2)
    fold_temperature(model, fitted.value)
    return {
        "method": "temperature",
        "temperature": fitted.value,
        "at_bound": fitted.at_bound,
        "fitted_on": "validation split",
        "examples": int(len(y_val)),
        "validation_nll": {"before": round(fitted.nll_before, 6), "after": round(fitted.nll_after, 6)},
    }


def on_test_split(record: dict, before: np.ndarray, after: np.ndarray, y_true: np.ndarray) -> list[tuple[str, dict]]:
    """Add to a calibration record what the test split says of it (the ECE before and after, and
    how many top-1 classes changed: none, unless a near tie rounded the other way); return the
    reliability diagrams to draw."""
    from zoo.metrics import as_class_probabilities

    before, after = as_class_probabilities(before), as_class_probabilities(after)
    diagrams = [("as trained", reliability(before, y_true))]
    if record["method"]:
        diagrams.append((f"calibrated (T = {record['temperature']:.3f})", reliability(after, y_true)))
    record.update(bins=BINS, test_ece={"before": diagrams[0][1]["ece"], "after": diagrams[-1][1]["ece"]},
                  top1_changed=int((before.argmax(1) != after.argmax(1)).sum()))
    if record["method"] and record["test_ece"]["after"] > record["test_ece"]["before"]:
        warnings.warn(f"calibration made the test split's ECE worse, {record['test_ece']['before']:.2%} -> "
                      f"{record['test_ece']['after']:.2%}: the temperature fitted on the "
                      f"{record.get('examples', 0):,} validation examples does not carry over; train with "
                      "--no-calibrate to keep the model's own probabilities, or a larger --val-split",
                      ZooWarning, stacklevel=2)
    return diagrams
