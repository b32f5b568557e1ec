"""`zoo serve`: models over HTTP in TensorFlow Serving's REST shape, and a draw-a-digit page.

`serve(targets)` runs until Ctrl-C; `create_app(models)` is the ASGI app, for a server of one's
own (`Served.load(target)` makes each model). Starlette and uvicorn are the `serve` extra, and
load only when a server is made.
"""

from __future__ import annotations

__all__ = ["Served", "create_app", "serve"]


def __getattr__(name: str):
    if name == "serve":
        from zoo.serve.server import serve

        return serve
    if name == "create_app":
        from zoo.serve.app import create_app

        return create_app
    if name == "Served":
        from zoo.serve.models import Served

        return Served
    raise AttributeError(f"module 'zoo.serve' has no attribute {name!r}")
