"""Running the app: the models loaded, a socket bound, uvicorn until Ctrl-C."""

from __future__ import annotations

import errno
import socket

from zoo.errors import ConfigError, ZooError
from zoo.serve.app import MAX_BODY, MAX_PIXELS, create_app


def needs() -> None:
    """Starlette, uvicorn and python-multipart, or one line saying how to install them."""
    import importlib.util

    missing = [m for m in ("starlette", "uvicorn", "python_multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"zoo serve needs {', '.join(m.replace('_', '-') for m in missing)}: "
                          "pip install 'zoo[serve]'")


def load(targets, out=None) -> list:
    """The models named, each `TARGET` or `NAME=TARGET`; one line if two would share a name."""
    from pathlib import Path

    from zoo.serve.models import NAME, Served

    if not targets:
        raise ConfigError("name a model to serve: a run, MODEL.TAG (zoo list --pretrained) or an exported file")
    models, given = [], {}
    for target in targets:
        name = None
        text = str(target)
        left, sep, right = text.partition("=")
        if sep and NAME.match(left) and right and not Path(text).exists():
            name, target = left, right
        served = Served.load(target, name, out)
        if served.name in given:
            raise ConfigError(f"{given[served.name]} and {target} would both be served as {served.name}; "
                              f"name one: zoo serve {served.name}2={target}")
        given[served.name] = target
        models.append(served)
    return models


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one), or one line saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after Ctrl-C (TIME_WAIT)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:  # not the user's mistake: exit code 1
            raise ZooError(f"port {port} on {host} is in use (another server?); give another with --port, "
                              "or --port 0 for any free one") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def serve(targets, host: str = "127.0.0.1", port: int = 8500, *, out=None, max_body: int = MAX_BODY,
          max_pixels: int = MAX_PIXELS, ready=None) -> None:
    """Serve `targets` (runs, `MODEL.TAG`s, exported files; `NAME=TARGET` to name one) on
    http://host:port/ until Ctrl-C: TF Serving's REST API under /v1/models/, the page at /.

    Args:
        host: 127.0.0.1 unless told otherwise; 0.0.0.0 makes it reachable from other machines,
            with no authentication.
        port: 0 picks a free one.
        max_body: bytes a request body may have (413 past it).
        max_pixels: pixels an image's header may give (413 past it), checked before decoding.
        ready: called with (models, url) once the socket listens, before the first request.
    """
    needs()
    import uvicorn

    models = load(targets, out)
    app = create_app(models, max_body=max_body, max_pixels=max_pixels, host=host)
    sock = bind(host, port)
    if ready is not None:
        ready(models, url_of(sock))
    # uvicorn's own log only for what goes wrong; Ctrl-C lets requests in flight finish, up to 3 s
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3,
                            server_header=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the Ctrl-C it caught again once it has stopped
        pass
    finally:
        sock.close()
