"""`zoo serve`: a running server, spoken to over real HTTP (httpx), and its page driven in a real
headless Chromium. Expected answers come from LiteRT run directly on the shipped file and from
MNIST's own labels, read from the IDX files here."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

import _browser
from _processes import zoo_process

httpx = pytest.importorskip("httpx")
MNIST = Path(os.environ["ZOO_DATA_DIR"]) / "mnist"
BBC = Path(os.environ["ZOO_DATA_DIR"]) / "bbc-news"
SHIPPED = Path(__file__).resolve().parents[1] / "zoo" / "weights" / "lenet5.mnist.tflite"
LIMIT_MB = 32  # zoo serve's default --max-body-mb


def _idx(name: str) -> np.ndarray:
    """An IDX file (LeCun's format: a magic number whose last byte is the rank, the sizes, the bytes)."""
    with gzip.open(MNIST / f"{name}.gz") as f:
        data = f.read()
    rank = data[3]
    shape = struct.unpack(f">{rank}i", data[4 : 4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


@pytest.fixture(scope="module")
def mnist():
    return _idx("t10k-images-idx3-ubyte")[:300], _idx("t10k-labels-idx1-ubyte")[:300].astype(int)


def _litert(x: np.ndarray) -> np.ndarray:
    """The shipped file in LiteRT, one call per example, without zoo's runner."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(SHIPPED))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for example in x:
        interpreter.set_tensor(inp["index"], example[None].astype(np.float32))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(rows)


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class Server:
    """`zoo serve ARGS --port 0` in a process of its own, and an HTTP client for it."""

    def __init__(self, args, home: Path):
        self.process = zoo_process(["serve", *args, "--port", "0"], home)
        self.lines = []
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Serving "):
                break
        else:
            raise AssertionError(f"zoo serve did not start: {''.join(self.lines)}{self.process.stderr.read()}")
        self.url = self.lines[-1].split(" at ")[1].split()[0]
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def alive(self) -> bool:
        return self.client.get("/v1/models/" + self.name).status_code == 200

    @property
    def name(self) -> str:
        return self.lines[0].split(":")[0]

    def stop(self) -> tuple[int, str]:
        self.client.close()
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(["lenet5.mnist"], tmp_path_factory.mktemp("home"))
    yield running
    running.stop()


# ---------------------------------------------------------------- TF Serving's API


def test_starts_from_the_shipped_litert_file_and_answers_status(server):
    assert server.lines[0] == f"lenet5.mnist: {SHIPPED} (tflite)\n"  # LiteRT: no TensorFlow, no run folder
    assert server.url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
    response = server.client.get("/v1/models/lenet5.mnist")
    assert response.status_code == 200
    assert response.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert server.client.get("/v1/models/lenet5.mnist/versions/1").json() == response.json()


def test_a_shipped_model_is_served_without_tensorflow(tmp_path):
    """What the 1 s start-up rests on: LiteRT, Starlette and uvicorn, and never TensorFlow or Keras,
    from loading the model to answering :explain."""
    import subprocess
    import sys

    code = """
import sys, io
import numpy as np
from PIL import Image
from zoo.serve.server import load
from zoo.serve.app import create_app
import uvicorn
(served,) = load(["lenet5.mnist"])
create_app([served])
page = np.full((120, 120), 255, np.uint8)
page[20:100, 55:63] = 0
buffer = io.BytesIO()
Image.fromarray(page).save(buffer, "PNG")
assert served.explain(buffer.getvalue())["predictions"][0]["label"] == "1"
print(sorted(m for m in ("tensorflow", "keras", "torch") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ZOO_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n" and done.stderr == ""
    assert not any(tmp_path.iterdir())  # no run folder written


def test_metadata_has_tf_servings_signature_and_zoos_labels(server):
    meta = server.client.get("/v1/models/lenet5.mnist/metadata").json()
    assert meta["model_spec"] == {"name": "lenet5.mnist", "signature_name": "", "version": "1"}
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    (name, tensor), = signature["inputs"].items()
    assert name == "input" and tensor["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in tensor["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    (output,) = signature["outputs"].values()
    assert [d["size"] for d in output["tensor_shape"]["dim"]] == ["-1", "10"]
    assert meta["zoo"]["labels"] == [str(i) for i in range(10)]
    assert meta["zoo"]["preprocessing"]["normalize"]["name"] == "mnist"
    assert meta["zoo"]["runtime"] == "tflite"


def test_predict_answers_real_digits_as_litert_does(server, mnist):
    images, labels = mnist
    x = images[:200, :, :, None].astype(np.float32) / 255
    response = server.client.post("/v1/models/lenet5.mnist:predict", json={"instances": x.tolist()})
    assert response.status_code == 200, response.text
    predictions = np.array(response.json()["predictions"])
    assert predictions.shape == (200, 10)
    np.testing.assert_allclose(predictions, _litert(x), atol=1e-6)
    assert (predictions.argmax(1) == labels[:200]).mean() >= 0.98  # LeNet-5 reads 99.27% of the test split
    # TF Serving's other forms: named instances, and the columnar "inputs" that answers "outputs"
    named = server.client.post("/v1/models/lenet5.mnist:predict", json={"instances": [{"input": x[0].tolist()}]})
    np.testing.assert_allclose(named.json()["predictions"], predictions[:1], atol=1e-6)
    columnar = server.client.post("/v1/models/lenet5.mnist:predict", json={"inputs": {"input": x[:3].tolist()}})
    assert list(columnar.json()) == ["outputs"]
    np.testing.assert_allclose(columnar.json()["outputs"], predictions[:3], atol=1e-6)


def test_classify_reads_real_digits_in_every_form_it_takes(server, mnist, tmp_path):
    from zoo.deploy.predict import predict

    images, labels = mnist
    right = 0
    for i in range(20):
        png = _png(images[i])
        form = server.client.post("/v1/models/lenet5.mnist:classify", files={"image": (f"{i}.png", png, "image/png")})
        raw = server.client.post("/v1/models/lenet5.mnist:classify?top_k=2", content=png,
                                 headers={"Content-Type": "image/png"})
        encoded = server.client.post("/v1/models/lenet5.mnist:classify",
                                     json={"image": "data:image/png;base64," + __import__("base64").b64encode(png).decode()})
        assert form.status_code == raw.status_code == encoded.status_code == 200, form.text
        first = form.json()
        assert first["input"] == f"{i}.png" and first["model"] == "lenet5.mnist"
        assert len(first["predictions"]) == 5 and len(raw.json()["predictions"]) == 2
        assert encoded.json()["predictions"] == first["predictions"] == [
            *raw.json()["predictions"], *first["predictions"][2:]]
        right += first["predictions"][0]["label"] == str(labels[i])
    assert right >= 19
    # the same answer as zoo predict --json on the same file
    (tmp_path / "0.png").write_bytes(_png(images[0]))
    (expected,) = predict("lenet5.mnist", [str(tmp_path / "0.png")], top_k=5)
    answer = server.client.post("/v1/models/lenet5.mnist:classify", content=_png(images[0])).json()
    assert answer["predictions"] == expected["predictions"]
    assert answer["preprocessing"] == expected["preprocessing"] and answer["warnings"] == expected["warnings"] == []


def test_explain_gives_the_input_as_seen_and_every_layers_maps(server, mnist):
    images, _ = mnist
    answer = server.client.post("/v1/models/lenet5.mnist:explain", content=_png(images[0])).json()
    assert answer["picture"].startswith("data:image/png;base64,")
    layers = [(layer["name"], layer["type"], layer["output_shape"], layer["feature_maps"]["shown"])
              for layer in answer["layers"]]
    # LeNet-5's (LeCun et al. 1998) C1, S2, C3 and S4, named as the Keras layers are
    assert layers == [("c1", "Conv2D", [28, 28, 6], 6), ("s2", "MaxPooling2D", [14, 14, 6], 6),
                      ("c3", "Conv2D", [10, 10, 16], 16), ("s4", "MaxPooling2D", [5, 5, 16], 16)]


def _bomb() -> bytes:
    """A valid 30000×30000 one-bit PNG of 0.1 MB that decodes to 900 megapixels."""
    width = height = 30_000
    row = b"\x00" + bytes(width // 8)
    squeeze = zlib.compressobj(9)
    data = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def _chunks(total: int, size: int = 1 << 20):
    for _ in range(total // size):
        yield bytes(size)


M = "/v1/models/lenet5.mnist"
# (what, method, path, the request's arguments (made when the test runs), status, the error exactly)
BAD = [
    ("bad JSON", "post", M + ":predict", lambda: {"content": b'{"instances": [1,'}, 400,
     "the body is not JSON (Expecting value: line 1 column 18 (char 17)); send {\"instances\": [...]}"),
    ("wrong shape", "post", M + ":predict", lambda: {"json": {"instances": [[0.0] * 784]}}, 400,
     "each example must be 28×28×1; got 784. lenet5.mnist takes 28×28×1 float32, pixels preprocessed as its "
     "metadata says (x = pixel × 0.00392157 + 0)"),
    ("ragged", "post", M + ":predict", lambda: {"json": {"instances": [[[0.0]] * 28, [[0.0]]]}}, 400, None),
    ("NaN", "post", M + ":predict", lambda: {"content": json.dumps({"instances": [[[[float("nan")]] * 28] * 28]})},
     400, None),
    ("no instances", "post", M + ":predict", lambda: {"json": {"rows": []}}, 400,
     'give "instances" (a list, one per example) or "inputs" (the batch)'),
    ("strings", "post", M + ":predict", lambda: {"json": {"instances": [["a"] * 28]}}, 400, None),
    ("not an image", "post", M + ":classify", lambda: {"content": b"hello", "headers": {"Content-Type": "image/png"}},
     400, "image: not an image file Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP)"),
    ("a text for an image model", "post", M + ":classify",
     lambda: {"content": b"seven", "headers": {"Content-Type": "text/plain"}}, 400,
     "text: a text, but lenet5.mnist reads images; send an image file (PNG, JPEG)"),
    ("a blank drawing", "post", M + ":classify", lambda: {"content": _png(np.full((28, 28), 255, np.uint8))}, 400, None),
    ("PNG bomb", "post", M + ":classify", lambda: {"files": {"image": ("bomb.png", _bomb(), "image/png")}}, 413,
     "bomb.png: too large to decode safely (900,000,000 pixels; the limit is 50,000,000); shrink the image and "
     "try again"),
    ("100 MB body", "post", M + ":classify", lambda: {"content": bytes(100 * 2**20)}, 413,
     f"the request body is 100.0 MB; the limit is {LIMIT_MB} MB (zoo serve --max-body-mb)"),
    ("100 MB in chunks", "post", M + ":predict", lambda: {"content": _chunks(100 * 2**20)}, 413,
     f"the request body passed the limit; the limit is {LIMIT_MB} MB (zoo serve --max-body-mb)"),
    ("unknown model", "post", "/v1/models/resnet:predict", lambda: {"json": {"instances": []}}, 404,
     "no model 'resnet' here; this server has lenet5.mnist"),
    ("unknown version", "get", M + "/versions/2", dict, 404, "lenet5.mnist has version 1 only, not '2'"),
    ("unknown verb", "post", M + ":regress", lambda: {"json": {}}, 404,
     "no verb ':regress'; POST to :predict, :classify or :explain"),
    ("GET a POST verb", "get", M + ":predict", dict, 405, ":predict answers POST"),
    ("top_k out of range", "post", M + ":classify?top_k=0", lambda: {"content": b"x"}, 400, None),
    ("JSON nested 5,000 deep", "post", M + ":predict",
     lambda: {"content": b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}"}, 400,
     'the body\'s JSON is nested too deeply; send {"instances": [...]}'),
    ("whole numbers past 64 bits", "post", M + ":predict", lambda: {"json": {"instances": [[[[10**30]] * 28] * 28]}},
     400, "the examples hold whole numbers too large for 64 bits; lenet5.mnist takes 28×28×1 float32, pixels "
          "preprocessed as its metadata says (x = pixel × 0.00392157 + 0)"),
    ("a charset it does not take", "post", M + ":classify",
     lambda: {"content": b"seven", "headers": {"Content-Type": "text/plain; charset=bogus"}}, 400,
     "charset 'bogus' is not taken; send the text as UTF-8 (charset=utf-8)"),
    ("a version label", "get", M + "/labels/stable", dict, 404,
     "lenet5.mnist has no version labels; its one version is /v1/models/lenet5.mnist/versions/1, or none"),
    ("a POST from another site's page", "post", M + ":predict",
     lambda: {"json": {"instances": []}, "headers": {"Origin": "https://attacker.example"}}, 403,
     "a request from the page https://attacker.example is refused; zoo serve on a loopback address answers its "
     "own page and programs, not other sites"),
]


@pytest.mark.parametrize("case", BAD, ids=[case[0] for case in BAD])
def test_bad_requests_get_their_4xx_and_the_server_goes_on(server, case):
    _, method, path, request, status, message = case
    response = getattr(server.client, method)(path, **request())
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert "\n" not in error
    if message is not None:
        assert error == message
    assert server.alive()


def test_tf_servings_own_classify_and_head_and_host_names(server, mnist):
    images, labels = mnist
    x = images[:3, :, :, None].astype(np.float32) / 255
    # TF Serving's Classify API: examples in, [label, score] for every class out
    response = server.client.post("/v1/models/lenet5.mnist:classify", json={
        "signature_name": "serving_default", "examples": [{"input": e.tolist()} for e in x]})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert [[label for label, _ in row] for row in result] == [[str(i) for i in range(10)]] * 3
    np.testing.assert_allclose([[score for _, score in row] for row in result], _litert(x), atol=1e-6)
    assert [int(np.argmax([s for _, s in row])) for row in result] == list(labels[:3])
    # HEAD answers as GET does; a method a route does not take says which it does
    assert server.client.head("/v1/models/lenet5.mnist").status_code == 200
    wrong = server.client.put("/v1/models/lenet5.mnist/metadata")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, HEAD")
    # loopback names however they are written
    for host in ("LOCALHOST", "localhost.", "127.0.0.1"):
        assert server.client.get("/v1/models/lenet5.mnist", headers={"Host": host}).status_code == 200, host
    # the page's own POSTs carry its origin, and pass
    port = server.url.rstrip("/").rsplit(":", 1)[1]
    own = server.client.post("/v1/models/lenet5.mnist:predict", json={"instances": x[:1].tolist()},
                             headers={"Origin": f"http://127.0.0.1:{port}"})
    assert own.status_code == 200


def test_serves_nothing_else_from_disk(server):
    for path in ("/zoo/weights/lenet5.mnist.tflite", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/index.html",
                 "/v1/models/%2e%2e%2fsetup.py"):
        response = server.client.get(path)
        assert response.status_code == 404 and "error" in response.json(), path
    # a page on another site cannot reach it through a name it controls (DNS rebinding)
    response = server.client.get("/", headers={"Host": "attacker.example"})
    assert response.status_code == 400 and "attacker.example" in response.json()["error"]


def test_the_page_is_self_contained(server):
    response = server.client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    import re

    assert not re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)  # nothing fetched from anywhere
    assert not re.findall(r"@import|url\(", page)
    assert '"name": "lenet5.mnist"' in page


def test_eight_concurrent_clients_get_their_own_answers(server, mnist):
    images, _ = mnist
    x = images[:8, :, :, None].astype(np.float32) / 255
    expected = _litert(x)
    failures = []

    def client(k: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as own:
            body = {"instances": x[k : k + 1].tolist()}
            for _ in range(100):
                response = own.post("/v1/models/lenet5.mnist:predict", json=body)
                if response.status_code != 200:
                    failures.append(response.text)
                elif not np.allclose(response.json()["predictions"][0], expected[k], atol=1e-6):
                    failures.append(f"client {k} got another client's answer")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_port_in_use_is_one_line(server):
    from click.testing import CliRunner

    from zoo.cli import main

    port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    result = CliRunner().invoke(main, ["serve", "lenet5.mnist", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output == (f"Error: port {port} on 127.0.0.1 is in use (another server?); give another with "
                             "--port, or --port 0 for any free one\n")


def test_two_models_by_one_name_are_refused(zoo_home):
    from click.testing import CliRunner

    from zoo.cli import main

    result = CliRunner().invoke(main, ["serve", "lenet5.mnist", str(SHIPPED)])
    assert result.exit_code == 2
    assert result.output == (f"Error: lenet5.mnist and {SHIPPED} would both be served as lenet5.mnist; name one: "
                             f"zoo serve lenet5.mnist2={SHIPPED}\n")


def test_ctrl_c_stops_it_cleanly(tmp_path):
    running = Server(["digits=lenet5.mnist"], tmp_path)
    assert running.name == "digits" and running.alive()
    code, err = running.stop()
    assert (code, err) == (0, "Stopped.\n")


# ---------------------------------------------------------------- a text model


@pytest.mark.slow
def test_a_text_model_classifies_texts_and_never_reads_a_path(tmp_path):
    running = Server(["text_cnn.bbc_news"], tmp_path)
    try:
        right = total = 0
        for folder in sorted(p for p in BBC.iterdir() if p.is_dir()):
            for article in sorted(folder.glob("*.txt"))[:3]:
                answer = running.client.post("/v1/models/text_cnn.bbc_news:classify", files={
                    "text": (None, article.read_text(encoding="utf-8", errors="replace"))}).json()
                right += answer["predictions"][0]["label"] == folder.name
                total += 1
        assert total == 15 and right >= 14
        # a path sent as a text is read as two words, not as the file
        answer = running.client.post("/v1/models/text_cnn.bbc_news:classify", content=b"/etc/passwd",
                                     headers={"Content-Type": "text/plain"}).json()
        assert (answer["input"], answer["words"]) == ("text", 2)
        response = running.client.post("/v1/models/text_cnn.bbc_news:classify", content=_png(np.zeros((8, 8), np.uint8)))
        assert response.status_code == 400
        assert response.json()["error"] == "input: not UTF-8 text, and text_cnn.bbc_news reads text; send a text"
        ids = running.client.post("/v1/models/text_cnn.bbc_news:predict", json={"instances": [[20_000] * 500]})
        assert ids.status_code == 400 and ids.json()["error"] == "token ids must lie in 0..19999; got 20000..20000"
        lone = running.client.post("/v1/models/text_cnn.bbc_news:classify", content=b'{"text": "shares \\ud800"}',
                                   headers={"Content-Type": "application/json"})
        assert lone.status_code == 400
        assert lone.json()["error"] == "text: not valid Unicode (a lone surrogate); send UTF-8 text"
        maps = running.client.post("/v1/models/text_cnn.bbc_news:explain", json={"text": "shares rose"}).json()
        assert [layer["name"] for layer in maps["layers"]] == ["conv", "pool"]
        # the page gives a text model a text box, and answers as the text is typed
        browser = _browser.DevTools()
        try:
            browser.open(running.url)
            assert browser.evaluate("document.getElementById('image-input').hidden") is True
            article = sorted((BBC / "sports").glob("*.txt"))[0].read_text(encoding="utf-8", errors="replace")
            browser.call("Runtime.evaluate", expression="document.getElementById('text').focus()")
            browser.call("Input.insertText", text=article[:600])
            browser.wait_for("zoo.idle() && zoo.answers > 0")
            assert browser.evaluate("document.getElementById('top-label').textContent") == "sports"
            assert browser.errors == []
        finally:
            browser.close()
    finally:
        running.stop()


# ---------------------------------------------------------------- the page in a real browser

def test_without_the_serve_extra_it_says_how_to_get_it(monkeypatch):
    import importlib.util

    from click.testing import CliRunner

    from zoo.cli import main

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else found(name, *a))
    result = CliRunner().invoke(main, ["serve", "lenet5.mnist"])
    assert (result.exit_code, result.output) == (2, "Error: zoo serve needs uvicorn: pip install 'zoo[serve]'\n")


@pytest.mark.slow
def test_a_digit_drawn_in_the_browser_is_read_right(server, mnist, tmp_path):
    browser = _browser.DevTools()
    try:
        browser.open(server.url)
        box = browser.evaluate("JSON.stringify(document.getElementById('pad').getBoundingClientRect())")
        box = json.loads(box)
        for digit, strokes in _browser.STROKES.items():
            browser.evaluate("document.getElementById('clear').click()")
            answers = browser.evaluate("zoo.answers")
            for stroke in strokes:
                browser.drag([(box["left"] + x * box["width"] / 280, box["top"] + y * box["height"] / 280)
                              for x, y in _browser.through(stroke)])
            browser.wait_for(f"zoo.idle() && zoo.answers > {answers}")
            assert browser.evaluate("document.getElementById('top-label').textContent") == digit
            assert browser.evaluate("document.body.dataset.state") == "ready"
        # the input as the model sees it, and every map of every layer
        assert browser.evaluate("document.getElementById('seen').src").startswith("data:image/png;base64,")
        assert browser.evaluate("document.querySelectorAll('#layers .maps img').length") == 6 + 6 + 16 + 16
        assert browser.evaluate("[...document.querySelectorAll('#layers h3')].map(h => h.firstChild.textContent)") == [
            "c1 ", "s2 ", "c3 ", "s4 "]
        # cleared while its answer is on the way: the answer is dropped, the blank pad is not sent
        browser.evaluate("document.getElementById('clear').click()")
        browser.drag([(box["left"] + x * box["width"] / 280, box["top"] + y * box["height"] / 280)
                      for x, y in _browser.through(_browser.STROKES["1"][0])])
        browser.evaluate("document.getElementById('clear').click()")
        browser.wait_for("zoo.idle()")
        assert browser.evaluate("document.getElementById('top-label') === null")
        assert browser.evaluate("[document.body.dataset.state, document.getElementById('message').className]") == [
            "idle", ""]
        # a photo of a test digit on paper, uploaded through the page's file input
        from zoo.data.digits import photograph

        images, labels = mnist
        photo = tmp_path / "photo.png"
        photo.write_bytes(_png(photograph(images[1], seed=1)))
        answers = browser.evaluate("zoo.answers")
        node = browser.call("DOM.querySelector", nodeId=browser.call("DOM.getDocument")["root"]["nodeId"],
                            selector="#photo")["nodeId"]
        browser.call("DOM.setFileInputFiles", files=[str(photo)], nodeId=node)
        browser.wait_for(f"zoo.idle() && zoo.answers > {answers}")
        assert browser.evaluate("document.getElementById('top-label').textContent") == str(labels[1])
        assert browser.evaluate("zoo.last.input") == "photo.png"
        # a file that is no picture: the server's one line, on the page
        notes = tmp_path / "notes.txt"
        notes.write_text("not a digit")
        answers = browser.evaluate("zoo.answers")
        browser.call("DOM.setFileInputFiles", files=[str(notes)], nodeId=node)
        browser.wait_for(f"zoo.idle() && zoo.answers > {answers}")
        assert browser.evaluate("document.body.dataset.state") == "error"
        assert browser.evaluate("document.getElementById('message').textContent") == (
            "notes.txt: not an image file Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP)")
        assert browser.errors == []
    finally:
        browser.close()
