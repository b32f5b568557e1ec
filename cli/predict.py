"""`zoo predict`: labels of images or texts from any artifact and its metadata."""

from __future__ import annotations

import click

from .app import console, echo_json, main, table


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
        echo_json(results)
        return
    grid = table(f"predictions of {artifact}", [("input", "left"), ("label", "left"), ("probability", "right")])
    for result in results:
        for rank, p in enumerate(result["predictions"]):
            name = result["input"] if rank == 0 else ""
            grid.add_row(name[:60], p["label"], f"{p['probability']:.4f}")
    console().print(grid)
