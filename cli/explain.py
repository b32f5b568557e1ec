"""`zoo explain`: one self-contained HTML page of every layer, its arithmetic and what it sees."""

from __future__ import annotations

import re

import click

from .app import echo_json, json_option, main, model_file_options, ranged


@main.command("explain")
@click.argument("target", metavar="TARGET")
@click.argument("input_", required=False, metavar="[INPUT]")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE.html",
              help="Where the page goes (default: TARGET-explain.html here).")
@json_option("Print the same content as one JSON document instead.")
@click.option("--top-k", type=ranged("top_k"), default=5, show_default=True, help="Classes the prediction lists.")
@model_file_options()
def explain_cmd(target, input_, output, as_json, top_k, out, stated):
    """Draw a model's layers, their arithmetic and their feature maps on one HTML page.

    TARGET is a registry model (untrained), a pretrained MODEL.TAG, a run, or a
    .keras file; a registry name comes first, as in zoo summary, so give a run
    that shares one by its folder (saved_models/lenet5). INPUT is an image, or a text (or .txt file) for a text model;
    without one, a run shows the first example of its test split. The page
    holds everything (images inline, no network): open it in any browser and
    hover a feature map to see the input pixels that position sees.

    \b
    Example:
      zoo explain lenet5.mnist digit.png -o lenet5.html
      zoo explain text_cnn.bbc_news "Shares rose as the bank raised rates"
      zoo explain lenet5 --json
    """
    from zoo.inspect.explain import explain

    report = explain(target, input_, top_k=top_k, out=out, **stated)
    if as_json:
        echo_json(report.to_dict())
        if output is None:
            return
    path = report.save(output or re.sub(r"[^\w.-]", "_", str(target).rstrip("/").split("/")[-1]) + "-explain.html")
    if not as_json:
        click.echo(f"Wrote {path} ({path.stat().st_size / 1024:,.1f} KB): open it in a browser.")
