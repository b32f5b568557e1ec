"""`zoo serve lenet5.mnist`: its start-up, and requests per second with p50/p99 latency for
`:predict` (one digit per request) on 1 and on 8 concurrent clients, beside the bare LiteRT invoke.

    python benchmarks/serve.py [--requests 2000] [--starts 5]

Start-up is the wall time from launching `zoo serve` to its first 200 on the status URL (goal:
<= 1 s), beside `zoo --help`, median of --starts. Each client is a thread with its own keep-alive
httpx connection; the 1-client and 8-client rounds send the same total of requests, and
`:classify` (a PNG of the digit: decode, MNIST's form, LiteRT) runs at 1 client beside them.
Client and server share this machine's cores, so the 8-client figure is what 2 cores do with
both; compare only within one run.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from _machine import describe

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "zoo" / "weights" / "lenet5.mnist.tflite"


def start() -> tuple[subprocess.Popen, str, float]:
    """`zoo serve lenet5.mnist --port 0`, its URL, and the seconds until it answered."""
    import httpx

    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "zoo.cli", "serve", "lenet5.mnist", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("Serving "):
            url = line.split(" at ")[1].split()[0]
            break
    else:
        raise SystemExit(f"zoo serve did not start: {process.stderr.read()}")
    while httpx.get(url + "v1/models/lenet5.mnist").status_code != 200:
        time.sleep(0.005)
    return process, url, time.perf_counter() - began


def stop(process: subprocess.Popen) -> None:
    import signal

    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


def rounds(url: str, path: str, clients: int, total: int, **request) -> dict:
    """`total` requests spread over `clients` threads: requests per second, p50 and p99 latency."""
    import httpx

    latencies, failures = [], []
    per = total // clients

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as own:
            own.post(path, **request)  # the connection opened before the clock starts
            mine = []
            barrier.wait()
            for _ in range(per):
                t = time.perf_counter()
                response = own.post(path, **request)
                mine.append(time.perf_counter() - t)
                if response.status_code != 200:
                    failures.append(response.text)
            latencies.extend(mine)

    barrier = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{len(failures)} failed requests, first: {failures[0]}")
    ms = np.array(latencies) * 1000
    return {"rps": len(latencies) / seconds, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


def bare_invoke(x: np.ndarray, repeats: int = 2000) -> float:
    """Milliseconds of one LiteRT invoke of the same file on the same digit (median)."""
    from ai_edge_litert.interpreter import Interpreter

    from zoo.backend import native_output_silenced

    with native_output_silenced():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter = Interpreter(model_path=str(SHIPPED))
        interpreter.allocate_tensors()
        interpreter.invoke()
    index = interpreter.get_input_details()[0]["index"]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    print(describe())

    starts, helps = [], []
    for _ in range(args.starts):  # interleaved, so that a busy moment hits both
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "zoo.cli", "--help"], capture_output=True, check=True)
        helps.append(time.perf_counter() - t)
        process, url, seconds = start()
        starts.append(seconds)
        stop(process)
    started, helped = statistics.median(starts), statistics.median(helps)
    print(f"start-up: zoo serve lenet5.mnist answers after {started:.2f} s (median of {args.starts}; goal <= 1 s); "
          f"zoo --help {helped:.2f} s; ratio {started / helped:.1f}x")

    from PIL import Image, ImageDraw

    page = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(page).line([(70, 70), (210, 70), (120, 230)], fill=0, width=20)  # a 7, as the page draws it
    buffer = io.BytesIO()
    page.save(buffer, "PNG")
    digit = np.asarray(page.resize((28, 28)), np.float32)[None, :, :, None] / 255
    bare = bare_invoke(digit)

    process, url, _ = start()
    try:
        body = {"json": {"instances": digit.tolist()}}
        print(f"\n{'request':<34}{'clients':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p50 / invoke':>14}")
        for name, path, clients, request in [
            (":predict, 1 digit", "v1/models/lenet5.mnist:predict", 1, body),
            (":predict, 1 digit", "v1/models/lenet5.mnist:predict", 8, body),
            (":classify, a 280×280 PNG", "v1/models/lenet5.mnist:classify", 1,
             {"content": buffer.getvalue(), "headers": {"Content-Type": "image/png"}}),
        ]:
            r = rounds(url, path, clients, args.requests, **request)
            print(f"{name:<34}{clients:>8}{r['rps']:>10,.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['p50'] / bare:>13.0f}x")
        print(f"{'bare LiteRT invoke, in process':<34}{'':>8}{1000 / bare:>10,.0f}{bare:>9.3f}")
    finally:
        stop(process)


if __name__ == "__main__":
    main()
