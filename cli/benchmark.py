"""`zoo benchmark`: every export of a run beside the Keras model."""

from __future__ import annotations

import click

from .app import console, echo_json, json_option, main, model_file_options, table


@main.command("benchmark")
@click.argument("run", metavar="RUN|MODEL_FILE")
@model_file_options()
@json_option()
def benchmark_cmd(run, out, stated, as_json):
    """Size, accuracy, latency and throughput of every export of RUN beside the Keras model.

    Exports the standard set first where it is missing (SavedModel, TFLite
    float32 / dynamic / float16 / int8, ONNX, and the micro build in TFLite
    Micro). Latency is the median and 99th percentile of 200 batch-1 calls;
    throughput uses batches of 256. LiteRT runs batches on every core and
    batch-1 calls on one thread unless more measure faster. A model file is
    taken in as the run OUT/<stem>/ first.
    """
    from zoo.deploy.benchmark import benchmark

    report = benchmark(run, out=out, **stated)
    if as_json:
        echo_json(report)
        return
    grid = table(
        f"{report['run']} ({report['model']}): {report['examples']:,} test examples",
        [("format", "left"), ("quantize", "left"), ("size KB", "right"), ("accuracy", "right"),
         ("ECE", "right"), ("batch-1 ms", "right"), ("p99 ms", "right"), ("x predict", "right"), ("x call", "right"),
         ("examples/s", "right"), ("status", "left")],
    )
    for row in report["rows"]:
        fmt = row["format"] + ("/edgetpu" if row.get("target") == "edgetpu" else "")
        if "arena_kb" in row:
            fmt += f" (TFLM, arena {row['arena_kb']:,.1f} KB)"
        grid.add_row(
            fmt, row["quantize"], f"{row['size_kb']:,.1f}" if "size_kb" in row else "-",
            f"{row['accuracy']:.2%}" if "accuracy" in row else (
                f"agree {row['top1_agreement']:.2%}" if "top1_agreement" in row else "-"),
            f"{row['ece']:.2%}" if "ece" in row else "-",
            f"{row['latency_ms']:.3f}" if "latency_ms" in row else "-",
            f"{row['latency_p99_ms']:.3f}" if "latency_p99_ms" in row else "-",
            f"{row['speedup_vs_keras_predict']:,.1f}" if "speedup_vs_keras_predict" in row else "-",
            f"{row['speedup_vs_keras_call']:,.1f}" if "speedup_vs_keras_call" in row else "-",
            (f"{row['throughput']:,.0f}" + (" (derived)" if row.get("throughput_derived") else ""))
            if "throughput" in row else "-", row["status"][:80],
        )
    console().print(grid)
    if report.get("verified_on"):
        console().print(report["verified_on"], highlight=False)
    keras_row = report["rows"][0]
    console().print(f"Keras: model.predict on one example {keras_row['latency_ms']:.2f} ms, "
                    f"a direct model call {keras_row['latency_call_ms']:.2f} ms. Every row was timed in turn "
                    f"with the others, {report['repeats']} batch-1 calls each (median and 99th percentile); examples/s "
                    f"uses batches of exactly {report['batch']}; (derived): a batch-1 artifact's 1000 / latency.",
                    highlight=False)
    litert = next((row["threads"] for row in report["rows"] if "threads" in row), None)
    if litert:
        tried = ", ".join(f"{n}: {ms:.3f} ms" for n, ms in litert.get("batch_1_tried_ms", {}).items())
        console().print(f"LiteRT threads: {litert['batch']} for batches, {litert['batch_1']} for batch-1 calls"
                        + (f" (the first file's batch-1 median with {tried})" if tried else ""), highlight=False)
    if any("arena_kb" in row for row in report["rows"]):
        console().print("micro (TFLM): TFLite Micro's reference kernels on this host CPU, not on a "
                        "microcontroller; the arena is the RAM it needs there, measured.", highlight=False)
