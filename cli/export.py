"""`zoo export`: artifacts verified in their own runtimes."""

from __future__ import annotations

import click

from .app import console, main, table


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
    grid = table(
        "export (parity with Keras on the test split)",
        [("format", "left"), ("quantize", "left"), ("size KB", "right"), ("accuracy", "right"),
         ("Keras", "right"), ("top-1 agree", "right"), ("max diff", "right"), ("seconds", "right"),
         ("file", "left")],
    )
    for r in reports:
        grid.add_row(r["format"], r["quantize"], f"{r['size_kb']:,.1f}", f"{r['accuracy']:.2%}",
                      f"{r['keras_accuracy']:.2%}", f"{r['top1_agreement']:.2%}", f"{r['max_abs_diff']:.1e}",
                      f"{r['seconds']:.1f}", r["path"])
    console().print(grid)
