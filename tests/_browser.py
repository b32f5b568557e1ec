"""A real headless Chromium for the tests: found on the machine, or driven over its DevTools protocol."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import numpy as np
import pytest


def find() -> str:
    """The browser's path; in CI a missing one fails (.ci/run installs it), elsewhere it skips."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("CI"):
        pytest.fail("no headless browser in CI: .ci/run installs chromium with apt-get")
    pytest.skip("no chromium on this machine, and none can be installed here (apt-get install chromium)")


class DevTools:
    """One headless Chromium tab, driven over the Chrome DevTools Protocol: navigate, evaluate
    JavaScript, dispatch real mouse input. https://chromedevtools.github.io/devtools-protocol/"""

    def __init__(self, width: int = 1200, height: int = 1000):
        import websocket

        self.profile = tempfile.TemporaryDirectory(prefix="zoo-chromium-", ignore_cleanup_errors=True)
        self.process = subprocess.Popen(
            [find(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             f"--window-size={width},{height}", "--remote-debugging-port=0", f"--user-data-dir={self.profile.name}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            port = int(found.group(1)) if found else None
        if port is None:
            self.process.kill()
            raise RuntimeError("chromium gave no DevTools port within 60 s")
        import threading

        # the rest of chromium's stderr is read and dropped: a full pipe would stall it
        threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(p for p in pages if p["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.errors = []
        self.call("Runtime.enable")
        self.call("Page.enable")

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("method") == "Runtime.exceptionThrown":
                self.errors.append(message["params"]["exceptionDetails"])
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"not true within {timeout} s: {expression}")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def drag(self, points: list[tuple[float, float]]) -> None:
        """Press the left button at the first point, move through the rest, release at the last."""
        def mouse(kind, x, y, buttons):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", buttons=buttons, clickCount=1)

        mouse("mousePressed", *points[0], 1)
        for x, y in points[1:]:
            mouse("mouseMoved", x, y, 1)
        mouse("mouseReleased", *points[-1], 0)

    def screenshot(self) -> bytes:
        import base64

        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        try:
            self.socket.close()
        except AttributeError:
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.profile.cleanup()


# strokes on the 280×280 pad, as a hand draws them
STROKES = {
    "7": [[(70, 70), (210, 70), (120, 230)]],
    "1": [[(140, 50), (140, 230)]],
    "4": [[(170, 50), (80, 170), (210, 170)], [(170, 90), (170, 240)]],
    "0": [[(140 + 70 * np.sin(t), 140 - 100 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]],
    "3": [[(80, 60), (150, 50), (190, 90), (140, 135), (195, 180), (150, 230), (80, 220)]],
}


def through(points, step: float = 6.0):
    """A stroke's corners with the mouse's moves between them, every few pixels."""
    path = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(1, int(np.hypot(x1 - x0, y1 - y0) / step))
        path += [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(1, n + 1)]
    return path
