"""Export a trained run to SavedModel, TFLite (LiteRT) and ONNX, each verified in its own runtime.

The formats are a table of data; each has one function that writes the
artifact, and `export_one` wraps them all with timing, verification against
the Keras model on the run's test split, the metadata sidecar and atomic
placement: an artifact that fails verification is deleted, never left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

import numpy as np

from zoo import runs
from zoo.deploy import mobile, runtime, savedmodel
from zoo.files import write_atomic
from zoo.errors import ConfigError, DamagedFileError, ExportError, ModelLoadError, ZooError, ZooWarning

EXPORT_DIR = "export"
REPORT_FILE = "export.json"


@dataclass(frozen=True)
class Format:
    """One row of the formats table: what the file is, what writes it, what reads it back, and the
    checks that are its own; `export_one` runs them in turn (each field says what it takes)."""

    name: str
    suffix: str  # file suffix; "" for a folder
    quantizations: tuple[str, ...]
    runtime: str  # what verifies it (and what runs it in production)
    write: Callable  # (job, path, quantize, target): the artifact
    load: Callable  # (path): the runner, in the format's own runtime
    needs: Callable | None = None  # (): what must be installed, said before anything is loaded
    before: Callable | None = None  # (run name, model, board): refuse before converting (image_cnn on a board)
    check: Callable | None = None  # (job, runner, path, target, board) -> its report: its own rules
    after: Callable | None = None  # (job, runner, path, verified, report) -> files written beside it


QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
TARGETS = {
    "cpu": (("tflite", "none"), ("tflite", "dynamic")),
    "gpu": (("saved_model", "none"), ("tflite", "float16"), ("onnx", "none")),
    "edgetpu": (("tflite", "int8"),),
    "micro": (("micro", "int8"),),
    "mobile": (("mobile", "float16"), ("mobile", "int8")),
}
# what a target exports when --quantize does not say (the others: all of their pairs)
TARGET_QUANTIZE = {"mobile": "float16"}
# top-1 agreement with Keras below which an export fails, and the largest probability difference
# allowed (None: not checked, the weights or activations are quantized)
TOLERANCE = {"none": (0.999, 1e-4), "float16": (0.999, 5e-3), "dynamic": (0.99, None), "int8": (0.99, None)}


def plan(format: str | None = None, quantize: str | None = None, target: str | None = None):
    """The (format, quantization) pairs to export; an invalid combination lists what is valid."""
    if format is not None and format not in (*FORMATS, "all"):
        raise ConfigError(f"unknown format '{format}'; choose from: {', '.join([*FORMATS, 'all'])}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization '{quantize}'; choose from: {', '.join(QUANTIZATIONS)}")
    if target is not None and target not in TARGETS:
        raise ConfigError(f"unknown target '{target}'; choose from: {', '.join(TARGETS)}")
    if target is not None:
        quantize = quantize or (TARGET_QUANTIZE.get(target) if format in (None, "all", target) else None)
        pairs = [p for p in TARGETS[target]
                 if (format in (None, "all") or p[0] == format) and (quantize is None or p[1] == quantize)]
        if not pairs:
            valid = ", ".join(f"{f}/{q}" for f, q in TARGETS[target])
            asked = " ".join(f"--{k} {v}" for k, v in (("format", format), ("quantize", quantize)) if v)
            raise ConfigError(f"--target {target} exports {valid}; it does not take {asked}")
        return pairs
    quantize = quantize or {"micro": "int8", "mobile": "float16"}.get(format, "none")
    names = [f for f in ALL if quantize in FORMATS[f].quantizations] if format == "all" else [format or "tflite"]
    if quantize not in FORMATS[names[0]].quantizations:
        valid = "; ".join(f"{f.name}: {', '.join(f.quantizations)}" for f in FORMATS.values())
        raise ConfigError(f"{names[0]} does not take quantize {quantize}; valid: {valid}")
    return [(name, quantize) for name in names]


def artifact_name(format: str, quantize: str, target: str | None) -> str:
    if format == "saved_model":
        return "saved_model"
    stem = "model" if quantize == "none" else f"model_{quantize}"
    if format == "tflite" and quantize == "none":
        stem = "model_float32"
    if format == "micro":
        stem = "model_micro"
    if format == "mobile":
        stem = "model_mobile" + ("_int8" if quantize == "int8" else "")
    if target == "edgetpu":
        stem += "_edgetpu"
    return stem + FORMATS[format].suffix


# ---------------------------------------------------------------- one function per format


_saved_model = savedmodel.write  # the SavedModel every TFLite file converts from (zoo.deploy.savedmodel)


def _tflite(model, path: Path, *, quantize: str, calibration: np.ndarray | None, edgetpu: bool = False,
            micro: bool = False, mobile: bool = False) -> None:
    """A LiteRT flatbuffer. edgetpu and mobile: batch 1, uint8 I/O (MediaPipe's text task takes an
    int32 [1, L] input, its image task feeds a quantized model the image's bytes). micro: batch 1,
    int8 I/O; a static batch also makes every shape constant, which TFLM needs (text_cnn's masked
    mean otherwise feeds BROADCAST_TO a shape computed at run time, and TFLM cannot allocate it)."""
    import tensorflow as tf

    from zoo.deploy.micro import plain_embedding_lookup

    with tempfile.TemporaryDirectory() as tmp:
        with plain_embedding_lookup() if micro else contextlib.nullcontext():
            _saved_model(model, Path(tmp) / "sm", batch=1 if edgetpu or micro or mobile else None)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "sm"))
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            float_input = model.inputs[0].dtype in ("float32", "float16")

            def representative():
                for row in calibration:
                    yield [row[None].astype(np.float32 if float_input else np.int32)]

            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if float_input:
                converter.inference_input_type = tf.uint8 if edgetpu or mobile else tf.int8
            converter.inference_output_type = tf.uint8 if edgetpu or mobile else tf.int8
            # One scale per Dense layer rather than per output unit: LeNet-5's int8 file shrinks
            # from 71.4 to 66.5 KB (per-unit scales and zero points), convolutions stay per channel.
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        from zoo.backend import native_output_silenced

        with native_output_silenced((1, 2)):  # the converter prints its settings from C++
            flatbuffer = converter.convert()
        path.write_bytes(flatbuffer)


def _onnx(model, path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Keras's tf2onnx shim probes np.object
        model.export(str(path), format="onnx", verbose=False)


# ---------------------------------------------------------------- the wrapper


@dataclass
class ExportJob:
    folder: Path  # the run folder
    card: object  # a zoo.card.Card
    model: object
    x_test: np.ndarray
    y_test: np.ndarray | None  # None: no labels (random inputs, a folder of loose images): agreement only
    keras_probs: np.ndarray
    calibration: np.ndarray | None  # None: no data to calibrate int8 on
    verified_on: str | None = None  # said when the test inputs are not a test split ("256 random inputs")
    texts: np.ndarray | None = None  # a text run's test split as texts, for a runtime that tokenizes (mobile)


def prepare_run(folder, calibration_samples: int, model=None) -> ExportJob:
    """Load a run folder once for any number of exports: its model, test split, Keras answers,
    calibration data. A model taken in without data is verified on random inputs in its input's
    range, and has nothing to calibrate on."""
    from zoo.data.recorded import run_dataset
    from zoo.metrics import as_class_probabilities

    folder = Path(folder)
    card = runs.read_card(folder)
    model = model if model is not None else runs.load_model(folder)
    verified_on, texts = None, None
    if card.dataset_spec is None:
        from zoo.data.preprocess import from_spec
        from zoo.models.adopted import random_inputs

        x_test, verified_on = random_inputs(card, from_spec(card.preprocessing, folder), model)
        y_test, calibration = None, None
    else:
        prep, dataset = run_dataset(folder, card)
        x_test = prep(dataset.x_test)
        texts = dataset.x_test if card.kind == "text" else None
        from zoo.data.datasets import sample_across_classes

        limit = card.limit
        x_train, y_train = (dataset.x_train[:limit], dataset.y_train[:limit]) if limit else (dataset.x_train, dataset.y_train)
        calibration = prep(x_train[sample_across_classes(y_train, calibration_samples)])
        y_test = dataset.y_test if dataset.labelled else None
        if not dataset.labelled:
            verified_on = f"verified on the {len(x_test):,} images of {dataset.source} (no labels: agreement only)"
    keras_probs = as_class_probabilities(model.predict(x_test, batch_size=1024, verbose=0))
    return ExportJob(folder, card, model, x_test, y_test, keras_probs, calibration, verified_on, texts)


def size_kb(path: Path) -> float:
    if path.is_dir():
        return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1024, 1)
    return round(path.stat().st_size / 1024, 1)


def verify(runner, job: ExportJob, quantize: str) -> dict:
    """Compare an artifact with the Keras model on the test split, in the artifact's runtime."""
    from zoo.metrics import as_class_probabilities

    probs = as_class_probabilities(runner(job.x_test))
    agreement = float((probs.argmax(1) == job.keras_probs.argmax(1)).mean())
    max_diff = float(np.abs(probs - job.keras_probs).max())
    min_agreement, max_allowed = TOLERANCE[quantize]
    labelled = job.y_test is not None
    report = {
        "examples": int(len(job.x_test)),
        "top1_agreement": round(agreement, 6),
        "max_abs_diff": max_diff,
        "accuracy": float((probs.argmax(1) == job.y_test).mean()) if labelled else None,
        "keras_accuracy": float((job.keras_probs.argmax(1) == job.y_test).mean()) if labelled else None,
        "thresholds": {"top1_agreement": min_agreement, "max_abs_diff": max_allowed},
        **({"verified_on": job.verified_on} if job.verified_on else {}),
    }
    report["passed"] = agreement >= min_agreement and (max_allowed is None or max_diff <= max_allowed)
    return report


def _metadata(job: ExportJob, runner, format: str, quantize: str, target: str | None) -> dict:
    meta = {
        "model": job.card.model,
        "run": job.card.run,
        "format": format,
        "quantize": quantize,
        "target": target,
        "labels": job.card.labels,
        **({"labels_source": job.card.source.get("labels"), "source": job.card.source} if job.card.source else {}),
        "input_shape": list(job.model.inputs[0].shape[1:]),
        "preprocessing": job.card.preprocessing,
        "output": "sigmoid" if job.model.output.shape[-1] == 1 else "softmax",
    }
    if format in ("tflite", "micro", "mobile"):
        meta["tflite"] = {
            "input_dtype": np.dtype(runner.input["dtype"]).name,
            "input_quantization": {"scale": float(runner.input_quantization[0]),
                                   "zero_point": int(runner.input_quantization[1])},
            "output_dtype": np.dtype(runner.output["dtype"]).name,
            "output_quantization": {"scale": float(runner.output_quantization[0]),
                                    "zero_point": int(runner.output_quantization[1])},
            "batch": "any" if runner.dynamic_batch else int(runner.batch_size),
        }
    return meta


def export_one(job: ExportJob, format: str, quantize: str, target: str | None, board=None) -> dict:
    """Write one artifact, load it in its own runtime, run its row's checks, verify it against Keras
    and move it into export/: the one wrapper of every row. `board` (a `zoo.deploy.micro.Board`):
    the flash and RAM a micro export must fit."""
    row = _ready(format, job.folder.name, job.model, board)
    export_dir = job.folder / EXPORT_DIR
    export_dir.mkdir(exist_ok=True)
    final = export_dir / artifact_name(format, quantize, target)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=export_dir))
    tmp = staging / final.name
    started = time.perf_counter()
    try:
        try:
            row.write(job, tmp, quantize, target)
        except ExportError:
            raise
        except Exception as exc:  # the converters raise many types
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"{format}/{quantize} export failed: {message}") from exc
        seconds = time.perf_counter() - started
        try:
            runner = row.load(tmp)
        except ModelLoadError as exc:  # TFLM without a kernel for one of the ops, say
            raise ExportError(f"{format}/{quantize} export failed: {exc}; nothing was written") from None
        fits = row.check(job, runner, tmp, target, board) if row.check else None
        check = verify(runner, job, quantize)
        if not check["passed"]:
            where = ""
            if quantize == "int8" and job.calibration is not None:  # say where int8 loses it
                lost = int8_losses(job, target)
                _write_report(job, recorded(job), rejected={"format": format, "quantize": quantize, "target": target,
                                                            **check, **lost})
                worst = ", ".join(f"{r['layer'] or r['tensor']} ({r['op']}, error {r['relative_error']:.2f} of its "
                                  "spread)" for r in lost["worst_layers"][:3])
                where = (f"; the layers that lose most: {worst}" if worst else "") + \
                    (f"; try: {'; or '.join(lost['levers'])}" if lost["levers"] else "") + \
                    f" (all in {job.folder / EXPORT_DIR / REPORT_FILE})"
            raise ExportError(
                f"{format}/{quantize} export disagrees with the Keras model: top-1 agreement "
                f"{check['top1_agreement']:.4%} (needs {check['thresholds']['top1_agreement']:.1%}), "
                f"max difference {check['max_abs_diff']:.2e}; nothing was written{where}"
            )
        meta = _metadata(job, runner, format, quantize, target)
        if row.after is not None:
            fits["sources"] = row.after(job, runner, tmp, check, fits)
        if fits is not None:
            meta[format] = fits
        (staging / f"{final.name}.json").write_text(json.dumps(meta, indent=2) + "\n")
        if job.card.kind == "text":
            shutil.copy(job.folder / job.card.preprocessing["vocab_file"], staging / "vocab.txt")
        # artifact first, sidecar after, each in one rename: a reader never sees half of either
        for item in sorted(staging.iterdir(), key=lambda p: p.name != final.name):
            destination = export_dir / item.name
            if destination.is_dir():
                shutil.rmtree(destination)
            os.replace(item, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):  # a first export that failed leaves no empty export/ behind
            export_dir.rmdir()
    return {
        "format": format,
        "quantize": quantize,
        "target": target,
        "path": str(final),
        "size_kb": size_kb(final),
        "seconds": round(seconds, 2),
        "runtime": FORMATS[format].runtime,
        **check,
        **({format: {**fits, **({"sources": [str(export_dir / name) for name in fits["sources"]]}
                                 if "sources" in fits else {})}} if fits else {}),
    }


def int8_losses(job: ExportJob, target) -> dict:
    """Each layer's int8 error against float (zoo.deploy.quantization, TFLite's QuantizationDebugger),
    the 5 worst, and the levers to try."""
    from zoo.deploy import quantization

    # worst first, by each layer's error against its own output's spread (comparable across layers)
    rows = quantization.layer_errors(job.model, job.calibration, job.x_test[:512], n=None)
    keep = ("layer", "op", "tensor", "relative_error", "rmse_over_scale", "clipped")

    def plain(value):  # a zero scale gives inf, which JSON has no word for
        return None if isinstance(value, float) and not np.isfinite(value) else value

    return {"worst_layers": [{k: plain(r[k]) for k in keep} for r in rows[:5]],
            "levers": quantization.levers(rows, target, calibration_samples=len(job.calibration))}


def _check_micro(job: ExportJob, runner, path: Path, target, board) -> dict:
    """Flash and the measured arena against the board's, in one line when over; the allocation record."""
    from zoo.deploy import micro

    fits = micro.check_fits(job.card.run, path.stat().st_size, runner.arena_bytes, board)
    return {**fits, "arena_bytes": runner.arena_bytes, "arena_headroom_bytes": micro.scratch_headroom(path.read_bytes()),
            "ops": runner.ops, "allocations": runner.allocations}


def _micro_sources(job: ExportJob, runner, path: Path, check: dict, fits: dict) -> list[str]:
    """model_micro.h / .cc beside the verified file: the bytes, the arena, I/O and labels."""
    from zoo.deploy import micro

    def end(detail):
        scale, zero = detail["quantization"]
        return {"dtype": np.dtype(detail["dtype"]).name, "shape": detail["shape"], "scale": scale, "zero_point": zero}

    if check["accuracy"] is None:
        verified = (f"Verified in the TFLM interpreter: {check['top1_agreement']:.2%} top-1 agreement with the Keras "
                    f"model on {check['examples']:,} unlabeled examples.")
    else:
        verified = (f"Verified in the TFLM interpreter: {check['accuracy']:.2%} top-1 on {check['examples']:,} test "
                    f"examples, {check['top1_agreement']:.2%} agreement with the Keras model.")
    written = micro.write_sources(
        path, run=job.card.run, model=job.card.model, arena=runner.arena_bytes,
        io={"input": end(runner.input), "output": end(runner.output), "ops": runner.ops},
        labels=job.card.labels, verified=verified,
        preprocessing=micro.describe_preprocessing(job.card.preprocessing), headroom=fits["arena_headroom_bytes"])
    return [p.name for p in written]


def _check_tflite(job: ExportJob, runner, path: Path, target, board) -> None:
    """The edge TPU's rules, for --target edgetpu: builtin int8 ops only (no Flex / SELECT_TF_OPS)
    and a static batch of 1."""
    if target != "edgetpu":
        return None
    ops = {op["op_name"] for op in runner.interpreter._get_ops_details()}
    flex = sorted(op for op in ops if op.startswith("Flex") or op == "CUSTOM")
    if flex:
        raise ExportError(f"edgetpu export holds ops the Edge TPU cannot run: {', '.join(flex)}")
    if runner.dynamic_batch or runner.batch_size != 1:
        raise ExportError("edgetpu export must have a static batch of 1")


def _ready(format: str, name: str | None = None, model=None, board=None) -> Format:
    """The row of `format`, once what it needs is installed and, given the model, what it refuses
    before converting is not the case."""
    row = FORMATS[format]
    if row.needs is not None:
        row.needs()
    if model is not None and row.before is not None:
        row.before(name, model, board)
    return row


def _micro_needs() -> None:
    from zoo.deploy import micro

    micro.runtime()


def _micro_before(name: str, model, board) -> None:
    from zoo.deploy import micro

    micro.check_weights_fit(name, model.count_params(), board)


FORMATS = {
    f.name: f
    for f in (
        Format("saved_model", "", ("none",), "tf.saved_model (TF Serving, GPU servers)",
               write=lambda job, path, quantize, target: _saved_model(job.model, path / savedmodel.VERSION),
               load=runtime.RUNNERS["saved_model"]),
        Format("tflite", ".tflite", ("none", "dynamic", "float16", "int8"), "LiteRT interpreter",
               write=lambda job, path, quantize, target: _tflite(job.model, path, quantize=quantize,
                                                                 calibration=job.calibration, edgetpu=target == "edgetpu"),
               load=runtime.RUNNERS["tflite"], check=_check_tflite),
        Format("onnx", ".onnx", ("none",), "onnxruntime",
               write=lambda job, path, quantize, target: _onnx(job.model, path), load=runtime.RUNNERS["onnx"]),
        # full-integer int8, batch 1, for microcontrollers (zoo.deploy.micro); asked for by name or
        # --target micro, never by --format all: TFLM's reference kernels take one example at a
        # time, LeNet-5's 14-30x slower than LiteRT's int8 file (benchmarks/RESULTS.md)
        Format("micro", ".tflite", ("int8",), "TFLite Micro interpreter (reference kernels, host CPU)",
               write=lambda job, path, quantize, target: _tflite(job.model, path, quantize="int8",
                                                                 calibration=job.calibration, micro=True),
               load=runtime.RUNNERS["micro"], needs=_micro_needs, before=_micro_before, check=_check_micro,
               after=_micro_sources),
        # float16 or int8 (uint8 I/O), batch 1, with TFLite metadata that MediaPipe Tasks reads
        # (zoo.deploy.mobile); asked for by name or --target mobile: it needs the `mobile` extra
        Format("mobile", ".tflite", ("float16", "int8"), "LiteRT interpreter; MediaPipe Tasks",
               write=lambda job, path, quantize, target: mobile.write(job, path, quantize, _tflite),
               load=runtime.RUNNERS["mobile"], needs=mobile.needs, before=mobile.before, check=mobile.check),
    )
}
# what --format all exports: every format but the microcontroller and phone builds
ALL = tuple(f for f in FORMATS if f not in ("micro", "mobile"))


def export(run, format: str | None = None, quantize: str | None = None, target: str | None = None,
           calibration_samples: int = 500, out=None, *, board: str | None = None, flash_kb: float | None = None,
           ram_kb: float | None = None, data: str | None = None, labels=None, normalize: str | None = None,
           vocab: str | None = None, custom_objects=None) -> list[dict]:
    """Export a run (or any Keras model) and verify each artifact in its runtime; write `export/export.json`.

    Args:
        run: a `Run`, a run name, a run folder; or a model zoo did not make: a `.keras` or `.h5`
            file, a SavedModel folder, a `keras.Model`. Such a model is taken in as a run folder
            (`<out>/<stem>/`) first, with what `data`, `labels`, `normalize`, `vocab` and
            `custom_objects` say of it (zoo.models.adopted.Stated); later commands name it so.
        format: saved_model, tflite, onnx or all (default tflite, or the target's formats).
        quantize: none, dynamic, float16 or int8 (TFLite only).
        target: cpu (float32 + dynamic TFLite), gpu (SavedModel + float16 TFLite + ONNX),
            edgetpu (full-integer int8 TFLite, builtin ops only, batch 1, uint8 I/O) or
            micro (full-integer int8, batch 1, int8 I/O, run in TFLite Micro; with C++ source) or
            mobile (float16, or int8 with uint8 I/O, batch 1, with the TFLite metadata that
            MediaPipe Tasks reads; checked in MediaPipe's ImageClassifier or TextClassifier).
        calibration_samples: training examples that calibrate int8 quantization.
        board: micro only, a board from `zoo.deploy.micro.BOARDS` whose flash and RAM the export must
            fit; or `flash_kb` and `ram_kb` for any other. Default: the largest board known.

    Returns:
        One report per artifact: path, size, seconds and the parity check.

    Raises:
        ConfigError: an invalid combination, or int8 with no data. ExportError: what the target
        cannot run (before converting), a failed or disagreeing export.
    """
    from zoo import locks, ranges, targets
    from zoo.deploy import micro
    from zoo.models.adopted import Stated

    pairs = plan(format, quantize, target)
    ranges.check("calibration_samples", calibration_samples)
    if "micro" not in {f for f, _ in pairs} and (board, flash_kb, ram_kb) != (None, None, None):
        raise ConfigError("--board, --flash-kb and --ram-kb are for --target micro")
    budget = micro.budget(board, flash_kb, ram_kb)
    for f, _ in pairs:  # a missing runtime is one line before anything is loaded
        _ready(f)
    stated = Stated(data, labels, normalize, vocab, custom_objects)
    found = targets.resolve(run, targets.RUNS, out=out)
    folder = found.run_folder(out, stated)  # the run, opened once
    with locks.hold(folder.parent, folder.name, locks.EXPORT):
        card = runs.read_card(folder)
        calibrated = [f"{f}/{q}" for f, q in pairs if q == "int8"]
        if calibrated and card.dataset_spec is None:
            raise ConfigError(f"{', '.join(calibrated)} is calibrated on real examples, and {folder.name} has no data: "
                              "give --data SPEC (a dataset, an .npz with x and y, or a folder of images)")
        # a keras.Model given is used as it is: its custom classes may be nowhere to import from
        model = found.entry if found.kind == targets.MODEL_OBJECT else runs.load_model(folder)
        for f, _ in pairs:  # image_cnn's 85M int8 weights are refused before a minute of converting
            _ready(f, folder.name, model, budget)
        if card.source:  # a model zoo did not make: what the target cannot run is said before converting
            from zoo.deploy import compat

            for f, q in pairs:
                compat.check(model, f, q, target, _saved_model)
        job = prepare_run(folder, calibration_samples, model=model)  # its card and data, read once
        reports = []
        for f, q in pairs:
            try:
                reports.append(export_one(job, f, q, target, board=budget))
            except ExportError as exc:
                if not reports:
                    raise
                kept = ", ".join(f"{r['format']}/{r['quantize']}" for r in reports)
                raise ExportError(f"{exc}; exported before it and kept: {kept} "
                                  f"(listed in {job.folder / EXPORT_DIR / REPORT_FILE})") from exc
            record(job, reports[-1:])  # each artifact is listed as soon as it is in place
    return reports


def recorded(job: ExportJob) -> list[dict]:
    """The artifacts `export/export.json` lists. A damaged export.json is rebuilt, with a warning,
    by verifying each artifact in export/ again (its sidecar says what it is)."""
    report_path = job.folder / EXPORT_DIR / REPORT_FILE
    if not report_path.is_file():
        return []
    fix = "rebuilt it by verifying each artifact in export/ again"
    try:
        artifacts = runs.read_json(report_path, fix, required=("artifacts",))["artifacts"]
        if isinstance(artifacts, list) and all(isinstance(a, dict) and {"path", "format", "quantize"} <= a.keys()
                                               for a in artifacts):
            return artifacts
        raise DamagedFileError(f"{report_path} is damaged (an artifact entry without path, format or quantize); {fix}")
    except DamagedFileError as exc:
        warnings.warn(str(exc), ZooWarning, stacklevel=2)
    return _rebuild(job)


def _rebuild(job: ExportJob) -> list[dict]:
    export_dir = job.folder / EXPORT_DIR
    reports = []
    for sidecar in sorted(export_dir.glob("*.json")):
        artifact = sidecar.with_name(sidecar.name[: -len(".json")])
        if sidecar.name == REPORT_FILE or not artifact.exists():
            continue
        try:
            meta = runs.read_json(sidecar, "re-export it", required=("format", "quantize"))
            if not isinstance(meta["format"], str) or meta["format"] not in FORMATS:
                raise DamagedFileError(f"{sidecar} is damaged (unknown format '{meta['format']}'); re-export it")
            runner = FORMATS[meta["format"]].load(artifact)  # its row's runtime, as the sidecar says
        except ZooError as exc:
            warnings.warn(f"{artifact} left out of {REPORT_FILE}: {exc}", ZooWarning, stacklevel=2)
            continue
        reports.append({"format": meta["format"], "quantize": meta["quantize"], "target": meta.get("target"),
                        "path": str(artifact), "size_kb": size_kb(artifact), "seconds": None,
                        "runtime": FORMATS[meta["format"]].runtime, **verify(runner, job, meta["quantize"])})
    _write_report(job, reports)
    return reports


def record(job: ExportJob, reports: list[dict]) -> list[dict]:
    """Add reports to `export/export.json` (replacing older entries of the same artifact) by read,
    change and atomic replace, under the run's lock; return all entries."""
    done = {r["path"] for r in reports}
    artifacts = [a for a in recorded(job) if a["path"] not in done] + reports
    if reports:
        _write_report(job, artifacts)
    return artifacts


def _write_report(job: ExportJob, artifacts: list[dict], rejected: dict | None = None) -> None:
    """export.json: the artifacts in place, and `rejected`, the exports that failed verification
    with where they lost it (an int8 file's worst layers), until one of the same kind passes."""
    report_path = job.folder / EXPORT_DIR / REPORT_FILE
    report_path.parent.mkdir(exist_ok=True)
    kind = lambda a: (a.get("format"), a.get("quantize"), a.get("target"))  # noqa: E731
    try:
        before = json.loads(report_path.read_text()).get("rejected", [])
        before = [r for r in before if isinstance(r, dict)]
    except (OSError, ValueError, AttributeError):
        before = []
    done = {kind(a) for a in artifacts} | ({kind(rejected)} if rejected else set())
    rejections = [r for r in before if kind(r) not in done] + ([rejected] if rejected else [])
    keras_accuracy = float((job.keras_probs.argmax(1) == job.y_test).mean()) if job.y_test is not None else None
    document = {"run": job.card.run, "model": job.card.model,
                "keras_accuracy": keras_accuracy, **({"verified_on": job.verified_on} if job.verified_on else {}),
                "artifacts": artifacts, **({"rejected": rejections} if rejections else {})}
    write_atomic(report_path, json.dumps(document, indent=2) + "\n")
