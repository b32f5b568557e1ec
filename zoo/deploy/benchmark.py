"""`zoo benchmark`: every exported artifact of a run side by side with the Keras model.

One row per format and quantization (like Ultralytics' benchmark): size,
accuracy and expected calibration error on the test split measured in the
artifact's own runtime, batch-1 latency and batched throughput. A format that
fails is a row with its error, not an abort.

The contenders are timed in turn, round after round, with the same number of
calls each, and the medians compared: latency at batch 1 against both Keras
`model.predict` (what most scripts call) and a direct `model(x)` call (the
fastest Keras path); throughput with batches of exactly `batch` examples. A
static batch-1 artifact (edge TPU) has no batched run: its throughput is
derived from its latency, and marked `throughput_derived`. The micro build
runs in TFLite Micro with its reference kernels on this host CPU: its row
shows the tensor arena it needs, and its latency is the host's, not a
microcontroller's.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from zoo import runs
from zoo.deploy.exporter import size_kb
from zoo.deploy.runtime import LiteRTRunner

STANDARD = (("saved_model", "none"), ("tflite", "none"), ("tflite", "dynamic"), ("tflite", "float16"),
            ("tflite", "int8"), ("onnx", "none"))


def timings(cases: dict, x: np.ndarray, repeats: int, warmup: int = 3) -> dict:
    """Milliseconds of every call of each `case(x)`, the cases called in turn, round after round,
    the same number of times each: a machine that slows down for a while slows every case alike.
    A case that raises is dropped, and its value is the exception."""
    results: dict = {}
    alive = dict(cases)
    for name, fn in list(alive.items()):
        try:
            for _ in range(warmup):
                fn(x)
        except Exception as exc:  # noqa: BLE001 - measured, not judged: the row shows the error
            results[name] = exc
            del alive[name]
    times = {name: [] for name in alive}
    for round_ in range(repeats):
        order = list(alive)
        for name in order[round_ % max(len(order), 1):] + order[: round_ % max(len(order), 1)]:
            start = time.perf_counter()
            alive[name](x)
            times[name].append((time.perf_counter() - start) * 1000)
    results.update(times)
    return results


def medians(calls: dict) -> dict:
    """Each case's median of `timings`' milliseconds; an exception as it is."""
    return {name: value if isinstance(value, Exception) else statistics.median(value) for name, value in calls.items()}


def interleaved(cases: dict, x: np.ndarray, repeats: int, warmup: int = 3) -> dict:
    """Median milliseconds of each `case(x)`, timed as `timings` times them; an exception as it is."""
    return medians(timings(cases, x, repeats, warmup))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, linearly interpolated (NumPy's default method)."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def _litert_threads(runner, path: Path, one_example: np.ndarray, row: dict):
    """Two interpreters of a LiteRT file: batches on every core, and batch-1 calls on one thread unless
    every core measures at least 10% faster: a batch of one has little to share out, and a thread
    hand-off adds jitter to the tail (LeNet-5's float32 file, 2026-12-03, 2-core AMD EPYC: 0.046 ms on
    one thread, 0.040 ms on two, inside the noise). The row records the choice and the times behind it."""
    from zoo.machine import cpu_cores

    cores = cpu_cores()
    many = type(runner)(path, num_threads=cores)
    if cores == 1:
        row["threads"] = {"batch": 1, "batch_1": 1}
        return many, many
    single = type(runner)(path, num_threads=1)
    tried = interleaved({1: single.run_batch, cores: many.run_batch}, one_example, 50)
    if not all(isinstance(ms, float) for ms in tried.values()):  # a failure shows in the row's own timing
        row["threads"] = {"batch": cores, "batch_1": 1}
        return single, many
    faster = cores if tried[cores] < tried[1] / 1.1 else 1
    row["threads"] = {"batch": cores, "batch_1": faster,
                      "batch_1_tried_ms": {str(n): round(ms, 4) for n, ms in tried.items()}}
    return (many if faster == cores else single), many


def benchmark(run, *, repeats: int = 200, batch: int = 256, examples: int = 2048, out=None, **stated) -> dict:
    """Measure the Keras model and each artifact in `RUN/export/` (exporting the standard set if missing).

    `run` may be a model file (or keras.Model), taken in as a run first with `stated`: data,
    labels, normalize, vocab, custom_objects (zoo.models.adopted.Stated). Without data its rows
    show agreement with Keras on random inputs, and the int8 rows say they need data."""
    from zoo import locks

    from zoo import targets
    from zoo.models.adopted import Stated

    folder = targets.resolve(run, targets.RUNS, out=out).run_folder(out, Stated.of(stated))
    with locks.hold(folder.parent, folder.name, locks.BENCHMARK):
        return _benchmark(folder, repeats, batch, examples)


def _benchmark(folder: Path, repeats: int, batch: int, examples: int) -> dict:
    from zoo.metrics import ece
    from zoo.deploy.exporter import FORMATS, export_one, prepare_run, record, recorded
    from zoo.metrics import as_class_probabilities

    job = prepare_run(folder, 500)  # the run, its test split and Keras's answers, once
    known = recorded(job)
    have = {(a["format"], a["quantize"]) for a in known if not a.get("target")}
    rows = []
    # the standard set, and the microcontroller build in TFLite Micro: each through its row of the
    # formats table, its own checks included (micro: refused before converting if it cannot fit)
    missing = [(fmt, quant, None) for fmt, quant in STANDARD if (fmt, quant) not in have]
    if not any(a["format"] == "micro" for a in known):
        missing.append(("micro", "int8", "micro"))
    for fmt, quant, target in missing:
        if quant == "int8" and job.calibration is None:
            rows.append({"format": fmt, "quantize": quant, **({"target": target} if target else {}),
                         "status": "skipped: int8 is calibrated on real examples; give --data SPEC"})
            continue
        try:
            known = record(job, [export_one(job, fmt, quant, target)])  # listed as soon as it is in place
        except Exception as exc:  # a failed format is a row, not an abort
            rows.append({"format": fmt, "quantize": quant, **({"target": target} if target else {}),
                         "status": f"error: {exc}"})

    folder, card, model = job.folder, job.card, job.model
    x, y = job.x_test, job.y_test
    sample = x[:examples]

    def quality(probs) -> dict:
        probs = as_class_probabilities(probs)
        agreement = {"top1_agreement": round(float((probs.argmax(1) == job.keras_probs.argmax(1)).mean()), 6)}
        if y is None:  # no labels: how often it agrees with Keras is all that can be said
            return agreement
        return {"accuracy": float((probs.argmax(1) == y).mean()), "ece": round(ece(probs, y), 6), **agreement}

    keras_file = folder / runs.MODEL_FILE
    if not keras_file.exists():  # a SavedModel taken in as it is
        keras_file = folder / runs.SAVED_MODEL_DIR
    keras_row = {
        "format": "keras", "quantize": "none", "path": str(keras_file),
        "size_kb": size_kb(keras_file), **quality(job.keras_probs), "status": "ok",
    }
    measured, latency, throughput = [keras_row], {"keras predict": lambda b: model.predict(b, verbose=0),
                                                  "keras call": lambda b: model(b, training=False)}, {}
    throughput["keras predict"] = latency["keras predict"]
    for artifact in known:
        row = {"format": artifact["format"], "quantize": artifact["quantize"], "path": artifact["path"],
               "target": artifact.get("target")}
        try:
            path = Path(artifact["path"])
            runner = FORMATS[artifact["format"]].load(path)  # its row's runtime, not its file's suffix
            row["size_kb"] = size_kb(path)
            if hasattr(runner, "arena_bytes"):  # TFLite Micro: the RAM it needs, and whose kernels run it
                row["arena_kb"] = round(runner.arena_bytes / 1024, 1)
                row["runtime"] = "TFLite Micro reference kernels on the host CPU, not a microcontroller"
            row.update(quality(runner(x)))
            one, many = _litert_threads(runner, path, x[:1], row) if isinstance(runner, LiteRTRunner) \
                else (runner, runner)
            latency[row["path"]] = one.run_batch
            if getattr(runner, "dynamic_batch", True):
                throughput[row["path"]] = many.run_batch
            row["status"] = "ok"
        except Exception as exc:
            row["status"] = f"error: {exc}"
        measured.append(row)
    # every contender in turn, the same number of calls each: batch 1, then batches of exactly `batch`
    batch = min(batch, len(sample))
    calls = timings(latency, x[:1], repeats)
    ms1 = medians(calls)
    ms_batch = interleaved(throughput, sample[:batch], max(5, repeats // 5))
    keras_row["latency_call_ms"] = ms1.pop("keras call")
    for row, key in zip(measured, ["keras predict"] + [row["path"] for row in measured[1:]]):
        value = ms1.get(key)
        if isinstance(value, Exception):
            row["status"] = f"error: {value}"
        elif value is not None:
            row["latency_ms"] = value
            row["latency_p99_ms"] = percentile(calls[key], 99)
            row["speedup_vs_keras_predict"] = round(ms1["keras predict"] / value, 1)
            row["speedup_vs_keras_call"] = round(keras_row["latency_call_ms"] / value, 1)
        if isinstance(ms_batch.get(key), float):
            row["throughput"] = batch / (ms_batch[key] / 1000)
        elif "latency_ms" in row:  # a static batch of 1 (edgetpu): one example at a time, derived
            row["throughput"], row["throughput_derived"] = 1000 / row["latency_ms"], True
    for row in measured:
        for key in ("latency_ms", "latency_p99_ms", "latency_call_ms"):
            if key in row:
                row[key] = round(row[key], 4)
        if "throughput" in row:
            row["throughput"] = round(row["throughput"], 1)
    return {
        "run": card.run, "model": card.model, "examples": int(len(x)),
        **({"verified_on": job.verified_on} if job.verified_on else {}),
        "batch": batch, "repeats": repeats, "throughput_repeats": max(5, repeats // 5), "rows": measured + rows,
    }
