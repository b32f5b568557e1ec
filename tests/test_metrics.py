"""The metrics of a card and of `zoo evaluate`, against a confusion matrix worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zoo.metrics import classification_metrics

# Six examples, three classes. By hand (rows: true class, columns: predicted):
#   a: a -> a (0.7),  a -> b                true a: [1, 1, 0]
#   b: b -> b (0.8),  b -> c (p(b) = 0.3)   true b: [0, 1, 1]
#   c: c -> c twice                         true c: [0, 0, 2]
# The matrix is not symmetric, so reading it transposed would be caught.
PROBS = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.8, 0.1],
                  [0.1, 0.3, 0.6], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8]])
Y = np.array([0, 0, 1, 1, 2, 2])


def test_metrics_of_a_hand_worked_confusion_matrix():
    metrics = classification_metrics(Y, PROBS, ["a", "b", "c"])
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert metrics["test_accuracy"] == pytest.approx(4 / 6)
    # precision: right / predicted (columns 1, 2, 3); recall: right / true (rows 2, 2, 2)
    # F1 = 2PR / (P + R): a 2 * 1 * 0.5 / 1.5, b 0.5, c 2 * (2/3) * 1 / (5/3) = 0.8
    expected = {"a": (1.0, 0.5, 0.6667), "b": (0.5, 0.5, 0.5), "c": (0.6667, 1.0, 0.8)}
    for label, (precision, recall, f1) in expected.items():
        row = metrics["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == (precision, recall, f1, 2), label
    # loss: the mean negative log of the probability given to the true class
    true_probabilities = [0.7, 0.2, 0.8, 0.3, 0.6, 0.8]
    assert metrics["test_loss"] == pytest.approx(-sum(map(math.log, true_probabilities)) / 6, abs=1e-12)
    assert metrics["test_examples"] == 6


def test_a_class_never_predicted_has_zero_precision_not_a_division_error():
    probs = np.array([[0.9, 0.1], [0.8, 0.2]])
    metrics = classification_metrics(np.array([0, 1]), probs, ["x", "y"])
    assert metrics["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert metrics["confusion_matrix"] == [[1, 0], [1, 0]]


def test_a_sigmoid_column_is_the_probability_of_the_second_class():
    # p = 0.9 for class 1: predicted 1; p = 0.4: predicted 0
    metrics = classification_metrics(np.array([1, 1]), np.array([[0.9], [0.4]]), ["neg", "pos"])
    assert metrics["confusion_matrix"] == [[0, 0], [1, 1]]
    assert metrics["test_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.4)) / 2, abs=1e-12)
