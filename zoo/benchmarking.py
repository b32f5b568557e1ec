"""`zoo benchmark`: every exported artifact of a run side by side with the Keras model.

One row per format and quantization (like Ultralytics' benchmark): size,
accuracy and expected calibration error on the test split measured in the
artifact's own runtime, batch-1 latency and batched throughput. A format that fails is a row with its error,
not an abort.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from zoo import runs
from zoo.exporter import size_kb

STANDARD = (("saved_model", "none"), ("tflite", "none"), ("tflite", "dynamic"), ("tflite", "float16"),
            ("tflite", "int8"), ("onnx", "none"))


def latency_ms_of(fn, x1: np.ndarray, repeats: int) -> float:
    """Median milliseconds of `fn(x1)` over `repeats` calls, after 3 warm-up calls."""
    for _ in range(3):
        fn(x1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x1)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _throughput(fn, x: np.ndarray, batch: int) -> float:
    fn(x[:batch])
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        fn(x[i : i + batch])
    return len(x) / (time.perf_counter() - start)


def benchmark(run, *, repeats: int = 50, batch: int = 256, examples: int = 2048, out=None) -> dict:
    """Measure the Keras model and each artifact in `RUN/export/` (exporting the standard set if missing)."""
    from zoo import locks

    folder = runs.find_run(getattr(run, "path", run), out)
    with locks.hold(folder.parent, folder.name, locks.BENCHMARK):
        return _benchmark(folder, repeats, batch, examples)


def _benchmark(folder: Path, repeats: int, batch: int, examples: int) -> dict:
    from zoo.calibration import ece
    from zoo.exporter import export_one, prepare_run, record, recorded
    from zoo.metrics import as_class_probabilities
    from zoo.runtime import load_runner

    job = prepare_run(folder, 500)  # the run, its test split and Keras's answers, once
    known = recorded(job)
    have = {(a["format"], a["quantize"]) for a in known if not a.get("target")}
    rows = []
    for fmt, quant in STANDARD:
        if (fmt, quant) not in have:
            try:
                known = record(job, [export_one(job, fmt, quant, None)])  # listed as soon as it is in place
            except Exception as exc:  # a failed format is a row, not an abort
                rows.append({"format": fmt, "quantize": quant, "status": f"error: {exc}"})

    folder, card, model = job.folder, job.card, job.model
    x, y = job.x_test, job.y_test
    sample = x[:examples]

    def quality(probs) -> dict:
        probs = as_class_probabilities(probs)
        return {"accuracy": float((probs.argmax(1) == y).mean()), "ece": round(ece(probs, y), 6)}

    keras_row = {
        "format": "keras", "quantize": "none", "path": str(folder / runs.MODEL_FILE),
        "size_kb": size_kb(folder / runs.MODEL_FILE),
        **quality(job.keras_probs),
        "latency_ms": latency_ms_of(lambda b: model.predict(b, verbose=0), x[:1], max(5, repeats // 5)),
        "latency_call_ms": latency_ms_of(lambda b: model(b, training=False), x[:1], repeats),
        "throughput": _throughput(lambda b: model.predict(b, verbose=0), sample, batch),
        "status": "ok",
    }
    measured = [keras_row]
    for artifact in known:
        row = {"format": artifact["format"], "quantize": artifact["quantize"], "path": artifact["path"],
               "target": artifact.get("target")}
        try:
            path = Path(artifact["path"])
            runner = load_runner(path)
            row["size_kb"] = size_kb(path)
            row.update(quality(runner(x)))
            row["latency_ms"] = latency_ms_of(runner.run_batch, x[:1], repeats)
            if getattr(runner, "dynamic_batch", True):
                row["throughput"] = _throughput(runner.run_batch, sample, batch)
            else:  # a static batch of 1 (edgetpu): its throughput is one example at a time
                row["throughput"] = 1000 / row["latency_ms"]
            row["status"] = "ok"
        except Exception as exc:
            row["status"] = f"error: {exc}"
        measured.append(row)
    for row in measured:
        if row.get("latency_ms"):
            row["speedup_vs_keras_predict"] = round(keras_row["latency_ms"] / row["latency_ms"], 1)
        for key in ("latency_ms", "latency_call_ms"):
            if key in row:
                row[key] = round(row[key], 4)
        if "throughput" in row:
            row["throughput"] = round(row["throughput"], 1)
    return {
        "run": card["run"], "model": card["model"], "examples": int(len(y)),
        "batch": batch, "repeats": repeats, "rows": measured + rows,
    }
