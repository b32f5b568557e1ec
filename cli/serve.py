"""`zoo serve`: models over HTTP (TensorFlow Serving's REST API) and the draw-a-digit page."""

from __future__ import annotations

import click

from .app import main


@main.command("serve")
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines in (there is no authentication).")
@click.option("--port", type=click.IntRange(0, 65535), default=8500, show_default=True,
              help="Port to listen on (TF Serving's REST port); 0 picks a free one.")
@click.option("--max-body-mb", type=click.FloatRange(min=0, min_open=True), default=32, show_default=True,
              help="Largest request body; a larger one gets 413.")
@click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
              help="Where runs live (default: $ZOO_HOME or saved_models/).")
def serve_cmd(targets, host, port, max_body_mb, out):
    """Serve models over HTTP until Ctrl-C: a page to draw a digit on, and a REST API.

    TARGET is a run, MODEL.TAG (lenet5.mnist runs its shipped .tflite file in
    LiteRT, up at once) or an exported file; NAME=TARGET names it in URLs.

    \b
    The API is TensorFlow Serving's, so its clients work:
      GET  /v1/models/NAME            status
      GET  /v1/models/NAME/metadata   inputs, outputs, labels, preprocessing
      POST /v1/models/NAME:predict    {"instances": [...]} -> {"predictions": [...]}
    and zoo's own:
      POST /v1/models/NAME:classify   an image file or a text -> labels, as predict --json

    \b
    Example:
      zoo serve lenet5.mnist          then open http://127.0.0.1:8500/
      curl -F image=@digit.png http://127.0.0.1:8500/v1/models/lenet5.mnist:classify
    """
    from zoo.serve.app import is_loopback
    from zoo.serve.server import serve

    def ready(models, url):
        for served in models:
            click.echo(f"{served.name}: {served.artifact} ({served.runner.kind})")
        click.echo(f"Serving {len(models)} model{'s' if len(models) != 1 else ''} at {url} (Ctrl-C stops)")
        if not is_loopback(host):
            click.echo(f"Warning: listening on {host}: other machines can reach it, and it asks no one who they are",
                       err=True)

    serve(list(targets), host, port, out=out, max_body=int(max_body_mb * 2**20), ready=ready)
    click.echo("Stopped.", err=True)
