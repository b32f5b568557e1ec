"""The `zoo` command line: a thin Click layer over the Python API.

Nothing heavy is imported at module level, so `zoo --help` answers at once;
TensorFlow loads when a command needs a model.
"""

from __future__ import annotations

import json
import sys

import click

from zoo._version import __version__
from zoo.distribute import STRATEGIES
from zoo.errors import ZooError


class OneLineUsageError(click.ClickException):
    """A usage mistake found by zoo itself: `Error: ...` on one line, exit code 2."""

    exit_code = 2


def _one_line(exc: click.UsageError) -> click.ClickException:
    """Click's usage errors print the usage and a blank line first; keep the message and the hint."""
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        return exc  # `zoo` alone: the help text is the answer
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return OneLineUsageError(exc.format_message() + hint)


class ZooGroup(click.Group):
    """Every error is one `Error: ...` line on stderr: exit code 2 for usage, 1 at run time, 130 for Ctrl-C."""

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            error = OneLineUsageError if exc.usage else click.ClickException
            error = error(str(exc))
            error.exit_code = getattr(exc, "exit_code", error.exit_code)
            raise error from None
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except KeyboardInterrupt:
            error = click.ClickException("interrupted")
            error.exit_code = 130
            raise error from None


def _echo_json(document) -> None:
    click.echo(json.dumps(document, indent=2))


def _console():
    from rich.console import Console

    # A pipe or file gets the whole table rather than one cut to 80 columns.
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 240)


def _table(title: str, columns):
    """A compact rich table; columns are (header, justify) pairs."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=justify == "right")
    return table


def _shape(shape) -> str:
    if shape is None:
        return "-"
    if shape and isinstance(shape[0], list):
        return ", ".join(_shape(s) for s in shape)
    return "×".join("?" if d is None else str(d) for d in shape) or "scalar"


def _count(n) -> str:
    return "-" if n is None else f"{n:,}"


def _axes(values) -> str:
    """Per-axis values, one number when they agree: [2, 2] -> '2'."""
    if values is None:
        return "-"
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="zoo")
@click.option("--unsafe", is_flag=True, help="Load .keras files that carry Python code (Lambda layers). "
              "Only for files you trust.")
def main(unsafe: bool):
    """Classic small networks in Keras 3: list, summarize, train and export them.

    \b
    Example:
      zoo list                      the models, with parameters and MACs
      zoo summary lenet             LeNet-5 layer by layer: shapes, MACs, receptive fields
      zoo train lenet               train LeNet-5 on MNIST into saved_models/lenet5/
      zoo evaluate lenet5 --json    its test metrics as one JSON document

    Set ZOO_DATA_DIR to the folder that holds the datasets, ZOO_HOME to where
    runs are written (default ./saved_models), ZOO_VERBOSE=1 to see TensorFlow's logs.
    """
    if unsafe:
        import os

        os.environ["ZOO_UNSAFE"] = "1"


@main.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
def list_cmd(pattern: str, as_json: bool):
    """List the models whose name matches PATTERN (shell wildcards, e.g. 'mnist*').

    Each row: name, task, input shape, classes, parameters, MACs and the paper
    or tutorial the model reproduces. A pattern that matches nothing prints an
    empty table.
    """
    from zoo.summary import model_table

    rows = model_table(pattern)
    if as_json:
        _echo_json(rows)
        return
    _print_models(rows, title=f"zoo models matching '{pattern}'" if pattern != "*" else "zoo models")


def _print_models(rows, *, title: str, sizes: bool = False) -> None:
    columns = [("name", "left"), ("task", "left"), ("input", "left"), ("classes", "right"),
               ("params", "right"), ("MACs", "right")]
    columns += [("fp32 KB", "right"), ("int8 KB", "right")] if sizes else [("reference", "left")]
    table = _table(title, columns)
    for row in rows:
        name = row["name"] + (f" ({', '.join(row['aliases'])})" if row["aliases"] else "")
        cells = [name, row["task"], _shape(row["input_shape"]), str(row["num_classes"]),
                 _count(row["params"]), _count(row["macs"])]
        if sizes:
            cells += [f"{row['weights_kb']['float32']:,.1f}", f"{row['weights_kb']['int8']:,.1f}"]
        else:
            cells.append(row["reference"])
        table.add_row(*cells)
    _console().print(table)


@main.command("summary")
@click.argument("target", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
def summary_cmd(target: str | None, as_json: bool):
    """Show a model layer by layer: output shapes, parameters, MACs, receptive fields.

    TARGET is a model name (lenet5), a .keras file, or a run folder or run
    name under the output folder. Without TARGET, one row per model with its
    weight size at float32 and int8.

    \b
    Example:
      zoo summary lenet
      zoo summary saved_models/lenet5/model.keras --json
    """
    if target is None:
        from zoo.summary import model_table

        rows = model_table()
        if as_json:
            _echo_json(rows)
        else:
            _print_models(rows, title="zoo models", sizes=True)
        return

    from zoo.runs import resolve_model
    from zoo.summary import summarize

    report = summarize(resolve_model(target))
    if as_json:
        _echo_json(report.to_dict())
        return
    _print_summary(report)


def _print_summary(report) -> None:
    table = _table(
        f"{report.model}: input {_shape(report.input_shape)}",
        [("layer", "left"), ("type", "left"), ("output", "left"), ("params", "right"),
         ("MACs", "right"), ("kernel", "left"), ("stride", "right"), ("padding", "left"),
         ("dilation", "right"), ("RF", "right"), ("jump", "right")],
    )
    for layer in report.layers:
        table.add_row(layer.name, layer.type, _shape(layer.output_shape), _count(layer.params),
                      _count(layer.macs), _shape(layer.kernel), _axes(layer.strides),
                      layer.padding or "-", _axes(layer.dilation), _shape(layer.receptive_field),
                      _axes(layer.jump))
    console = _console()
    console.print(table)
    kb = report.weights_kb
    largest = report.largest_activation
    console.print(
        f"params: {report.params:,} (trainable {report.trainable_params:,}, "
        f"non-trainable {report.non_trainable_params:,})\n"
        f"MACs: {_count(report.macs)}\n"
        f"weights: {kb['float32']:,.1f} KB float32, {kb['int8']:,.1f} KB int8\n"
        + (f"largest activation: {largest['layer']} {_shape(largest['shape'])} = "
           f"{largest['elements']:,} values ({largest['kb_float32']:,.1f} KB float32)"
           if largest else "largest activation: -"),
        highlight=False,
    )


@main.command("train")
@click.argument("model")
@click.option("--data", help="Dataset name (mnist, imdb) or path: class folders, a CSV file, MNIST files. "
              "Default: the model's dataset.")
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the training data (default: recipe).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Examples per step on each replica (default: recipe).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True, max=10), help="Peak learning rate (default: recipe).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same metrics on the same CPU.")
@click.option("--name", help="Run name (default: the model name, then <model>-2, -3...).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: $ZOO_HOME or ./saved_models).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last finished epoch.")
@click.option("--patience", type=click.IntRange(min=1), help="Stop after N epochs without a better validation loss.")
@click.option("--val-split", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Fraction of the training data held out for validation.")
@click.option("--limit", type=click.IntRange(min=1), help="Train on the first N training examples only.")
@click.option("--augment", type=click.IntRange(min=0), help="Images: random shifts of up to N pixels (0: off; default: recipe).")
@click.option("--crop", type=click.FloatRange(0, 1, max_open=True),
              help="Texts: train on random windows of at least F of each text (0: off; default: recipe).")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True),
              help="Soften the targets by F (0: off; default: recipe).")
@click.option("--text-column", help="CSV: the text column (default: detected).")
@click.option("--label-column", help="CSV: the label column (default: detected).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="auto",
              show_default=True, help="tf.distribute strategy: auto mirrors over 2+ GPUs; multiworker reads "
              "the cluster from TF_CONFIG. Batch size is per replica; the learning rate scales with replicas.")
@click.option("--mixed-precision", is_flag=True, help="Compute in float16 (GPU) or bfloat16 (CPU); "
              "weights and exports stay float32.")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs to RUN/logs.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run of the same name.")
def train_cmd(model, **options):
    """Train MODEL and write its run folder: model.keras, card.json, history.csv, plots.

    \b
    Example:
      zoo train lenet                                  LeNet-5 on MNIST
      zoo train text_cnn --data ../shared/data/bbc-news
      zoo train lenet --epochs 2 --limit 5000 --name quick
      TF_CONFIG=... zoo train lenet --strategy multiworker   on each machine
    """
    from zoo.training import train

    run = train(model, **{key: value for key, value in options.items() if value is not None})
    if not run.chief:
        click.echo(f"{run.card['task_in_cluster']}: trained {run.card['training']['epochs']} epochs of "
                   f"{run.name} in {run.card['training']['seconds']:.0f} s; the chief writes the run folder")
        return
    metrics, training = run.metrics, run.card["training"]
    click.echo(
        f"{run.name}: test accuracy {metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f}) "
        f"after {training['epochs']} epochs, {training['seconds']:.0f} s, "
        f"{training['samples_per_second']:,.0f} samples/s -> {run.path}/"
    )


@main.command("evaluate")
@click.argument("target")
@click.option("--data", help="Evaluate on this dataset instead of the run's own.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
def evaluate_cmd(target, data, as_json):
    """Test accuracy, loss, per-class precision / recall / F1 and confusion matrix of a run.

    TARGET is a run name, a run folder, or a .keras file (with --data).
    """
    from zoo.evaluation import evaluate

    report = evaluate(target, data)
    if as_json:
        _echo_json(report)
        return
    table = _table(
        f"{report['run'] or report['model']} on {report['dataset']['name']} ({report['dataset']['split']} test split)",
        [("class", "left"), ("precision", "right"), ("recall", "right"), ("F1", "right"), ("support", "right")],
    )
    for label, row in report["per_class"].items():
        table.add_row(label, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", f"{row['support']:,}")
    console = _console()
    console.print(table)
    console.print(f"test accuracy: {report['test_accuracy']:.4%}  loss: {report['test_loss']:.4f}  "
                  f"examples: {report['test_examples']:,}", highlight=False)
    width = max(len(label) for label in report["per_class"])
    console.print("confusion matrix (rows: true, columns: predicted):", highlight=False)
    for label, row in zip(report["per_class"], report["confusion_matrix"]):
        console.print(f"  {label:>{width}} " + " ".join(f"{n:>5}" for n in row), highlight=False)


@main.command("export")
@click.argument("run", metavar="RUN")
@click.option("--format", "format_", type=click.Choice(["saved_model", "tflite", "onnx", "all"]),
              help="Artifact format (default: tflite, or the target's formats).")
@click.option("--quantize", type=click.Choice(["none", "dynamic", "float16", "int8"]),
              help="TFLite quantization (default: none, or the target's).")
@click.option("--target", type=click.Choice(["cpu", "gpu", "edgetpu"]),
              help="cpu: float32 + dynamic TFLite; gpu: SavedModel + float16 TFLite + ONNX; "
                   "edgetpu: full-integer int8 TFLite, builtin ops, batch 1, uint8 I/O.")
@click.option("--calibration-samples", type=click.IntRange(min=1), default=500, show_default=True,
              help="Training examples that calibrate int8 quantization.")
def export_cmd(run, format_, quantize, target, calibration_samples):
    """Export a run and verify every artifact in its own runtime against the Keras model.

    RUN is a run name or folder. Artifacts and export.json (the parity
    report) go to RUN/export/, each with a .json sidecar of metadata (labels,
    input shape, normalization, quantization). An artifact that disagrees with
    the Keras model fails and is not written.

    \b
    Example:
      zoo export lenet5 --quantize int8
      zoo export lenet5 --target edgetpu
      zoo export lenet5 --format all
    """
    from zoo.exporter import export

    reports = export(run, format=format_, quantize=quantize, target=target,
                     calibration_samples=calibration_samples)
    table = _table(
        "export (parity with Keras on the test split)",
        [("format", "left"), ("quantize", "left"), ("size KB", "right"), ("accuracy", "right"),
         ("Keras", "right"), ("top-1 agree", "right"), ("max diff", "right"), ("seconds", "right"),
         ("file", "left")],
    )
    for r in reports:
        table.add_row(r["format"], r["quantize"], f"{r['size_kb']:,.1f}", f"{r['accuracy']:.2%}",
                      f"{r['keras_accuracy']:.2%}", f"{r['top1_agreement']:.2%}", f"{r['max_abs_diff']:.1e}",
                      f"{r['seconds']:.1f}", r["path"])
    _console().print(table)


@main.command("predict")
@click.argument("artifact", type=click.Path(exists=True))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="Labels to show per input.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
def predict_cmd(artifact, inputs, top_k, as_json):
    """Run an exported artifact (.tflite, .onnx, SavedModel, .keras) on images or texts.

    INPUT is an image file (PNG, JPEG) for image models; a text, or a text
    file, for text models. Preprocessing comes from the artifact's metadata.

    \b
    Example:
      zoo predict saved_models/lenet5/export/model_int8.tflite digit.png
    """
    from zoo.prediction import predict

    results = predict(artifact, list(inputs), top_k=top_k)
    if as_json:
        _echo_json(results)
        return
    table = _table(f"predictions of {artifact}", [("input", "left"), ("label", "left"), ("probability", "right")])
    for result in results:
        for rank, p in enumerate(result["predictions"]):
            name = result["input"] if rank == 0 else ""
            table.add_row(name[:60], p["label"], f"{p['probability']:.4f}")
    _console().print(table)


@main.command("benchmark")
@click.argument("run", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
def benchmark_cmd(run, as_json):
    """Size, accuracy, latency and throughput of every export of RUN beside the Keras model.

    Exports the standard set first where it is missing (SavedModel, TFLite
    float32 / dynamic / float16 / int8, ONNX). Latency is the median of
    batch-1 calls; throughput uses batches of 256.
    """
    from zoo.benchmarking import benchmark

    report = benchmark(run)
    if as_json:
        _echo_json(report)
        return
    table = _table(
        f"{report['run']} ({report['model']}): {report['examples']:,} test examples",
        [("format", "left"), ("quantize", "left"), ("size KB", "right"), ("accuracy", "right"),
         ("batch-1 ms", "right"), ("x Keras", "right"), ("examples/s", "right"), ("status", "left")],
    )
    for row in report["rows"]:
        fmt = row["format"] + ("/edgetpu" if row.get("target") == "edgetpu" else "")
        table.add_row(
            fmt, row["quantize"], f"{row['size_kb']:,.1f}" if "size_kb" in row else "-",
            f"{row['accuracy']:.2%}" if "accuracy" in row else "-",
            f"{row['latency_ms']:.3f}" if "latency_ms" in row else "-",
            f"{row['speedup_vs_keras_predict']:,.1f}" if "speedup_vs_keras_predict" in row else "-",
            f"{row['throughput']:,.0f}" if "throughput" in row else "-", row["status"][:80],
        )
    _console().print(table)
    keras_row = report["rows"][0]
    _console().print(f"Keras: model.predict on one example {keras_row['latency_ms']:.2f} ms, "
                     f"a direct model call {keras_row['latency_call_ms']:.2f} ms", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
