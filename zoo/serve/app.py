"""The ASGI app: TF Serving's REST routes, zoo's :classify and :explain, the page, and the limits.

Starlette routes and parses (multipart through python-multipart); the models run in its thread
pool, each behind its own lock (a LiteRT interpreter is not thread-safe), so a slow request on
one model does not hold the event loop. Every error is JSON `{"error": "..."}`: 400 for bad
input, 403 for another site's page, 404 for an unknown model or path, 405 for a wrong method,
413 past a limit.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path

from zoo import ranges
from zoo.errors import ConfigError, DataError, TooLarge, ZooError
from zoo.serve.models import UnknownModel

PAGE = Path(__file__).resolve().parent / "templates" / "page.html"
# a request body past this is refused (413) before it is parsed: a 50-megapixel JPEG is 20 MB
MAX_BODY = 32 * 1024 * 1024
# an image whose header gives more pixels than this is refused before it is decoded: a phone's
# 48-megapixel photo (8064×6048) passes; a decompression bomb (a 100 KB PNG that says 30000×30000) does not
MAX_PIXELS = 50_000_000
# a body past the limit with its length given is read to its end and dropped (so that the client,
# still sending, reads the 413) up to this many times the limit; past that the 413 goes at once,
# and uvicorn discards the rest as it comes
DRAIN_FACTOR = 8
ROUTE = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
                   r"(?P<tail>/metadata|:[A-Za-z]+)?")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1")


def _json(content, status: int = 200):
    from starlette.responses import JSONResponse

    return JSONResponse(content, status_code=status)


def error(status: int, message: str, allow: str | None = None):
    response = _json({"error": message}, status)
    if allow is not None:
        response.headers["Allow"] = allow
    return response


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def _host_name(host: str) -> str:
    """`localhost:8500` -> localhost, `[::1]:8500` -> ::1, `LOCALHOST.` -> localhost."""
    name = host[1:].partition("]")[0] if host.startswith("[") else (host.rpartition(":")[0] if ":" in host else host)
    return name.lower().rstrip(".")


class Guard:
    """ASGI middleware. A request body longer than `limit` bytes ends in 413, whether its
    Content-Length says so at once or its chunks add up to it; nothing past the limit is kept.
    On a loopback address, a request whose Host is not a loopback name is refused (400): a page on
    another site cannot then reach the server through a name it controls (DNS rebinding); and a
    POST a page on another site sends (its Origin another host) is refused (403) before it costs
    the server a model's run."""

    def __init__(self, app, limit: int, hosts: tuple | None):
        self.app, self.limit, self.hosts = app, limit, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.hosts is not None:
            host = headers.get(b"host", b"").decode("latin-1")
            if host and _host_name(host) not in self.hosts:  # no Host at all: HTTP/1.0, no browser
                response = error(400, f"Host {host!r} is not this server's name; it answers to "
                                      f"{', '.join(self.hosts)} (zoo serve --host 0.0.0.0 answers to any)")
                return await response(scope, receive, send)
            origin = headers.get(b"origin", b"").decode("latin-1")
            if origin and scope["method"] not in ("GET", "HEAD") and _host_name(
                    origin.partition("://")[2] or origin) not in self.hosts:
                response = error(403, f"a request from the page {origin} is refused; zoo serve on a loopback "
                                      "address answers its own page and programs, not other sites")
                return await response(scope, receive, send)
        length = headers.get(b"content-length")
        try:
            length = int(length) if length is not None else None
        except ValueError:
            length = None
        if length is not None and length > self.limit:
            if length <= DRAIN_FACTOR * self.limit:
                more = True
                while more:
                    message = await receive()
                    more = message.get("more_body", False) and message["type"] == "http.request"
            response = error(413, _too_large(length, self.limit))
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge(_too_large(None, self.limit))
            return message

        await self.app(scope, limited, send)


def _size(n: int, spec: str = ",.1f") -> str:
    return f"{n / 2**20:{spec}} MB" if n >= 2**20 else f"{n / 1024:{spec}} KB"


def _too_large(length: int | None, limit: int) -> str:
    size = f"is {_size(length)}" if length is not None else "passed the limit"
    return f"the request body {size}; the limit is {_size(limit, ',.4g')} (zoo serve --max-body-mb)"


def _parse_json(body: bytes, hint: str):
    """A request's JSON, or one line saying why it is not."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the body is not JSON ({exc}); send {hint}") from None
    except RecursionError:
        raise ConfigError(f"the body's JSON is nested too deeply; send {hint}") from None


def create_app(models: list, *, max_body: int = MAX_BODY, max_pixels: int = MAX_PIXELS, host: str = "127.0.0.1"):
    """The Starlette app serving `models` (zoo.serve.models.Served)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    by_name = {m.name: m for m in models}
    page = _page(models)

    def model(name: str):
        if name not in by_name:
            raise UnknownModel(f"no model {name!r} here; this server has {', '.join(by_name)}")
        return by_name[name]

    async def home(request):
        return HTMLResponse(page, headers={
            # the page is all there is: no script, style, font or picture from anywhere else
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                       "img-src data: blob:; connect-src 'self'; form-action 'none'",
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

    def predict(served, body: bytes) -> dict:  # in a worker thread: 14 MB of JSON held the event loop for 2 s
        return served.predict(_parse_json(body, '{"instances": [...]}'))

    async def models_route(request):
        found = ROUTE.fullmatch(request.path_params["rest"])
        if found is None:
            return error(404, f"no such path {request.url.path}; the API is GET /v1/models/NAME, "
                              "GET /v1/models/NAME/metadata and POST /v1/models/NAME:predict|:classify|:explain")
        served = model(found["name"])
        if found["version"] not in (None, "1"):
            raise UnknownModel(f"{served.name} has version 1 only, not {found['version']!r}")
        if found["label"] is not None:
            raise UnknownModel(f"{served.name} has no version labels; its one version is /v1/models/{served.name}"
                               "/versions/1, or none")
        tail, method = found["tail"], request.method
        verbs = {":classify": served.classify, ":explain": served.explain}  # and :predict, below
        if tail in (None, "/metadata"):
            if method not in ("GET", "HEAD"):
                return error(405, f"{request.url.path} answers GET; POST to /v1/models/{served.name}:predict",
                             allow="GET, HEAD")
            return _json(served.status() if tail is None else served.metadata())
        if tail != ":predict" and tail not in verbs:
            return error(404, f"no verb {tail!r}; POST to :predict, :classify or :explain")
        if method != "POST":
            return error(405, f"{tail} answers POST", allow="POST")
        if tail == ":predict":
            return _json(await run_in_threadpool(predict, served, await request.body()))
        document = None
        if _content_type(request)[0] == "application/json":
            hint = '{"text": "..."}, {"image": "<base64>"}' + (' or {"examples": [...]}' if tail == ":classify" else "")
            document = await run_in_threadpool(_parse_json, await request.body(), hint)
            if tail == ":classify" and isinstance(document, dict) and "examples" in document:
                # TF Serving's own :classify: its clients send tensors as examples
                return _json(await run_in_threadpool(served.classify_examples, document))
        given, name = await _given(request, served, document)
        top_k = _top_k(request)
        answer = await run_in_threadpool(verbs[tail], given, name=name, top_k=top_k, max_pixels=max_pixels)
        return _json(answer)

    async def zoo_error(request, exc: ZooError):
        status = 404 if isinstance(exc, UnknownModel) else 413 if isinstance(exc, TooLarge) else (
            400 if isinstance(exc, (ConfigError, DataError)) else 500)
        return error(status, str(exc))

    async def http_error(request, exc: HTTPException):
        message = {404: f"no such path {request.url.path}; the page is / and the API /v1/models/NAME",
                   405: f"{request.url.path} does not answer {request.method}"}.get(exc.status_code, str(exc.detail))
        return error(exc.status_code, message)

    async def server_error(request, exc: Exception):  # uvicorn logs its traceback
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return error(500, f"the server failed on this request ({type(exc).__name__}: {first}); it is still serving")

    hosts = tuple(dict.fromkeys((*LOOPBACK, host))) if is_loopback(host) else None
    return Starlette(
        routes=[Route("/", home, methods=["GET"]),
                Route("/v1/models/{rest:path}", models_route,
                      methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])],
        middleware=[Middleware(Guard, limit=max_body, hosts=hosts)],
        exception_handlers={ZooError: zoo_error, HTTPException: http_error, Exception: server_error},
    )


def _top_k(request) -> int:
    given = request.query_params.get("top_k", "5")
    try:
        top_k = int(given)
    except ValueError:
        raise ConfigError(f"top_k must be a whole number, not {given!r}") from None
    ranges.check("top_k", top_k)
    return top_k


def _content_type(request) -> tuple[str, dict]:
    """The media type, lowercased, and its parameters (`charset`, ...)."""
    kind, *params = request.headers.get("content-type", "").split(";")
    named = {}
    for param in params:
        key, _, value = param.partition("=")
        named[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), named


async def _given(request, served, document=None) -> tuple[bytes | str, str]:
    """What :classify was sent, and what to call it: an image's bytes or a text, from a multipart
    form (a file field, or a field `text`), JSON ({"text": ...} or {"image": base64}), text/plain,
    or the raw bytes of an image file. `document`: the JSON body, parsed."""
    kind, params = _content_type(request)
    if kind == "multipart/form-data":
        from starlette.datastructures import UploadFile

        try:
            form = await request.form(max_files=1, max_fields=8)
        except TooLarge:
            raise
        except Exception as exc:  # python-multipart's own errors, and Starlette's limits
            raise ConfigError(f"the multipart form cannot be read ({getattr(exc, 'detail', exc)})") from None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                return await value.read(), value.filename or key
        if "text" in form:
            return str(form["text"]), "text"
        raise ConfigError("the form has no file and no field 'text'; send the image as a file field")
    body = await request.body()  # read once: Starlette keeps it
    if not body:
        raise ConfigError(f"the body is empty; send {'an image file' if served.kind == 'image' else 'a text'}")
    if kind == "application/json":
        if isinstance(document, dict) and isinstance(document.get("text"), str):
            return document["text"], "text"
        if isinstance(document, dict) and isinstance(document.get("image"), str):
            data = document["image"].split(",", 1)[-1] if document["image"].startswith("data:") else document["image"]
            try:
                return base64.b64decode(data, validate=True), "image"
            except (binascii.Error, ValueError):
                raise ConfigError('"image" is not base64') from None
        raise ConfigError('send JSON {"text": "..."} or {"image": "<base64>"}, or the image file itself')
    if kind.startswith("text/"):
        charset = params.get("charset", "utf-8").lower()
        if charset not in CHARSETS:
            raise ConfigError(f"charset {charset!r} is not taken; send the text as UTF-8 (charset=utf-8)")
        try:
            return body.decode(charset), "text"
        except UnicodeDecodeError:
            raise ConfigError(f"the text is not valid {charset}; send it as UTF-8") from None
    return body, "image" if served.kind == "image" else "input"


def _page(models: list) -> str:
    """The page, with what it needs of each model written into it."""
    described = [{"name": m.name, "kind": m.kind, "labels": m.labels, "runtime": m.runner.kind,
                  "input_shape": m.input_shape, "form": (m.spec.get("normalize") or {}).get("name")}
                 for m in models]
    data = json.dumps(described).replace("</", "<\\/")
    return PAGE.read_text(encoding="utf-8").replace("/*ZOO_MODELS*/[]", data)
