"""`zoo predict`: labels of images or texts from any artifact or run, and what was done to each input."""

from __future__ import annotations

import click

from .app import console, echo_json, json_option, main, model_file_options, ranged, table


@main.command("predict")
@click.argument("artifact", metavar="ARTIFACT|RUN")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--top-k", type=ranged("top_k"), default=3, show_default=True, help="Labels to show per input.")
@model_file_options(None)
@json_option()
def predict_cmd(artifact, inputs, top_k, out, stated, as_json):
    """Run an artifact (.tflite, .onnx), a run, or a model file on images or texts.

    A model file (.keras, .h5, SavedModel folder) is taken in as the run
    OUT/<stem>/ with the labels and scaling --labels and --normalize give.

    INPUT is an image file (PNG, JPEG) for image models; a text, or a text
    file, for text models. Preprocessing comes from the artifact's metadata:
    a model trained on MNIST brings a photo of a digit on paper into MNIST's
    form first (ink fitted into 20×20, centred by mass in 28×28, light on
    black). Each input's preprocessing is printed. An input that cannot be
    predicted (blank image, text with no known word) gets an error line of
    its own; the others are still predicted, and the exit code is 1.

    \b
    Example:
      zoo predict lenet5 digit-photo.jpg
      zoo predict saved_models/lenet5/export/model_int8.tflite digit.png --json
    """
    from zoo.deploy.predict import predict

    results = predict(artifact, list(inputs), top_k=top_k, out=out, **stated)
    if as_json:
        echo_json(results)
    else:
        _print(artifact, results)
    for result in results:
        for warning in result.get("warnings", []):
            click.echo(f"Warning: {warning}", err=True)
        if "error" in result:
            click.echo(f"Error: {result['error']}", err=True)
    if any("error" in result for result in results):
        raise click.exceptions.Exit(1)


def _print(artifact, results) -> None:
    done = [r for r in results if "predictions" in r]
    if not done:
        return
    texts = any("known_words" in r for r in done)
    columns = [("input", "left"), ("label", "left"), ("probability", "right")]
    grid = table(f"predictions of {artifact}", columns + ([("known words", "right")] if texts else []))
    for result in done:
        for rank, p in enumerate(result["predictions"]):
            first = rank == 0
            row = [result["input"][:60] if first else "", p["label"], f"{p['probability']:.4f}"]
            if texts:
                row.append(f"{result['known_words']} of {result['words']}" if first else "")
            grid.add_row(*row)
    console().print(grid)
    for result in done:  # whole lines, however long: the table's width would fold them
        click.echo(f"{result['input'][:60]}: " + "; ".join(result["preprocessing"]["steps"]))
