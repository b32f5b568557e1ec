"""`zoo export`: artifacts verified in their own runtimes."""

from __future__ import annotations

from pathlib import Path

import click

from zoo.deploy.micro import BOARDS

from .app import console, main, model_file_options, percent, ranged, table


@main.command("export")
@click.argument("run", metavar="RUN|MODEL_FILE")
@click.option("--format", "format_", type=click.Choice(["saved_model", "tflite", "onnx", "micro", "mobile", "all"]),
              help="Artifact format (default: tflite, or the target's formats; all: every one but micro and mobile).")
@click.option("--quantize", type=click.Choice(["none", "dynamic", "float16", "int8"]),
              help="TFLite quantization (default: none, or the target's).")
@click.option("--target", type=click.Choice(["cpu", "gpu", "edgetpu", "micro", "mobile"]),
              help="cpu: float32 + dynamic TFLite; gpu: SavedModel + float16 TFLite + ONNX; "
                   "edgetpu: full-integer int8 TFLite, builtin ops, batch 1, uint8 I/O; "
                   "micro: full-integer int8, batch 1, int8 I/O, run in TFLite Micro, with C++ source; "
                   "mobile: float16 (or --quantize int8), batch 1, with the TFLite metadata MediaPipe Tasks "
                   "reads, checked in MediaPipe (pip install 'zoo[mobile]').")
@click.option("--calibration-samples", type=ranged("calibration_samples"), default=500, show_default=True,
              help="Training examples that calibrate int8 quantization.")
@click.option("--board", metavar="NAME",
              help=f"micro: the board whose flash and RAM the model must fit: {', '.join(BOARDS)} "
                   "(default: the largest of them).")
@click.option("--flash-kb", type=float, metavar="KB", help="micro: any other board's flash, with --ram-kb.")
@click.option("--ram-kb", type=float, metavar="KB", help="micro: any other board's RAM, with --flash-kb.")
@model_file_options()
def export_cmd(run, format_, quantize, target, calibration_samples, board, flash_kb, ram_kb, out, stated):
    """Export a run, or any Keras model, and verify every artifact in its own runtime against it.

    RUN is a run name or folder; MODEL_FILE a .keras or .h5 file or a
    SavedModel folder, taken in as the run OUT/<stem>/ with what --data,
    --labels, --normalize and --vocab say of it (later commands name it so).
    Artifacts and export.json (the parity report) go to RUN/export/, each
    with a .json sidecar of metadata (labels, input shape, normalization,
    quantization). An artifact that disagrees with the Keras model fails and
    is not written. Without --data, float files are verified on random
    inputs, and int8 (edgetpu, micro) is refused.

    \b
    Example:
      zoo export lenet5 --quantize int8
      zoo export lenet5 --target edgetpu
      zoo export lenet5 --format all
      zoo export lenet5 --target micro --board nano33ble
      zoo export lenet5.mnist --target mobile
      zoo export mine.keras --quantize int8 --data mnist --normalize scale
    """
    from zoo.deploy.exporter import export

    reports = export(run, format=format_, quantize=quantize, target=target,
                     calibration_samples=calibration_samples, board=board, flash_kb=flash_kb, ram_kb=ram_kb,
                     out=out, **stated)
    grid = table(
        "export (parity with Keras on the test split)",
        [("format", "left"), ("quantize", "left"), ("size KB", "right"), ("accuracy", "right"),
         ("Keras", "right"), ("top-1 agree", "right"), ("max diff", "right"), ("seconds", "right"),
         ("file", "left")],
    )
    for r in reports:
        grid.add_row(r["format"], r["quantize"], f"{r['size_kb']:,.1f}", percent(r["accuracy"]),
                      percent(r["keras_accuracy"]), f"{r['top1_agreement']:.2%}", f"{r['max_abs_diff']:.1e}",
                      f"{r['seconds']:.1f}", r["path"])
    console().print(grid)
    for said in dict.fromkeys(r["verified_on"] for r in reports if r.get("verified_on")):
        console().print(said, highlight=False)
    for r in reports:
        if "micro" in r:
            m = r["micro"]
            console().print(
                f"micro: flash {m['flash_kb']:,.1f} of {m['flash_kb_available']:,g} KB, RAM (tensor arena, measured in "
                f"TFLite Micro) {m['ram_kb']:,.1f} of {m['ram_kb_available']:,g} KB on the {m['board_name']}; "
                f"C++ source: {', '.join(m['sources'])}", highlight=False)
        if "mobile" in r:
            m = r["mobile"]
            read = f"{m['accuracy']:.2%} top-1, " if m["accuracy"] is not None else ""
            console().print(f"mobile: {m['runtime']} loaded {Path(r['path']).name} as it is and read {read}"
                            f"{m['top1_agreement']:.2%} agreement with Keras on {m['examples']:,} examples",
                            highlight=False)
