"""`zoo evaluate`: the test metrics of a run."""

from __future__ import annotations

import click

from .app import console, echo_json, json_option, main, model_file_options, table


@main.command("evaluate")
@click.argument("target", metavar="RUN|MODEL_FILE")
@model_file_options("Evaluate on this dataset instead of the run's own; a model file's data (a dataset, or an .npz "
                    "with x and y), recorded in its card.")
@json_option()
def evaluate_cmd(target, out, stated, as_json):
    """Test accuracy, loss, per-class precision / recall / F1 and confusion matrix of a run.

    TARGET is a run name or folder, or a model file (.keras, .h5, SavedModel
    folder) with --data, taken in as the run OUT/<stem>/.
    """
    from zoo.inspect.evaluate import evaluate

    data = stated.pop("data", None)
    report = evaluate(target, data, out=out, **stated)
    if as_json:
        echo_json(report)
        return
    grid = table(
        f"{report['run'] or report['model']} on {report['dataset']['name']} ({report['dataset']['split']} test split)",
        [("class", "left"), ("precision", "right"), ("recall", "right"), ("F1", "right"), ("support", "right")],
    )
    for label, row in report["per_class"].items():
        grid.add_row(label, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", f"{row['support']:,}")
    out = console()
    out.print(grid)
    out.print(f"test accuracy: {report['test_accuracy']:.4%}  loss: {report['test_loss']:.4f}  "
              f"ECE: {report['test_ece']:.2%}  examples: {report['test_examples']:,}", highlight=False)
    width = max(len(label) for label in report["per_class"])
    out.print("confusion matrix (rows: true, columns: predicted):", highlight=False)
    for label, row in zip(report["per_class"], report["confusion_matrix"]):
        out.print(f"  {label:>{width}} " + " ".join(f"{n:>5}" for n in row), highlight=False)
