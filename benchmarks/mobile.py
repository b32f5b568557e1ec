"""Phones: the --target mobile files in MediaPipe Tasks, per pretrained model and quantization.

    ZOO_DATA_DIR=../shared/data python benchmarks/mobile.py [--home DIR] [--models ...] [--repeats N]

Exports each pretrained model with `--target mobile` (float16, then int8) into --home, which checks
it in MediaPipe's ImageClassifier or TextClassifier on the whole test split. Prints, per file: its
size, MediaPipe's top-1 beside Keras's, their agreement, and the median of N single classifications
in MediaPipe (its whole task: resize, normalize or tokenize, invoke, sort the categories)
interleaved with the same file's bare invoke in LiteRT, which zoo's own predict uses. Both run on
this host CPU: the ratio says what the task graph costs around the model, not how fast a phone is.
Needs `pip install ".[mobile]"`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _pretrained import PRETRAINED, arguments



def measure(model: str, quantize: str, home: Path, repeats: int) -> dict:
    import numpy as np

    import zoo
    from zoo.deploy import mobile
    from zoo.deploy.benchmark import interleaved
    from zoo.deploy.exporter import prepare_run
    from zoo.deploy.runtime import load_runner

    name = PRETRAINED[model]
    (report,) = zoo.export(name, target="mobile", quantize=quantize, out=str(home))
    job = prepare_run(home / name, 1)
    mp = mobile._mediapipe()
    from mediapipe.tasks.python.core.base_options import BaseOptions

    base = BaseOptions(model_asset_path=report["path"])
    if job.card.kind == "text":
        from mediapipe.tasks.python import text

        task = text.TextClassifier.create_from_options(text.TextClassifierOptions(base_options=base))
        item = str(job.texts[0])
        classify = lambda _: task.classify(item)  # noqa: E731
    else:
        from mediapipe.tasks.python import vision

        task = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(base_options=base))
        pixels = mobile.pixels(job.card, job.x_test[:1])[0]
        image = mp.Image(image_format=mp.ImageFormat.SRGB,
                         data=np.ascontiguousarray(np.repeat(pixels, 3, -1) if pixels.shape[-1] == 1 else pixels))
        classify = lambda _: task.classify(image)  # noqa: E731
    litert = load_runner(report["path"])
    with task:
        ms = interleaved({"mediapipe": classify, "litert": litert.run_batch}, job.x_test[:1], repeats)
    m = report["mobile"]
    return {"run": name, "quantize": quantize, "kb": report["size_kb"], "accuracy": m["accuracy"],
            "keras_accuracy": report["keras_accuracy"], "agreement": m["top1_agreement"], "examples": m["examples"],
            "task": m["runtime"].split()[-1], "mediapipe_ms": ms["mediapipe"], "litert_ms": ms["litert"]}


def main(argv=None) -> int:
    args, home = arguments(__doc__, "zoo-mobile-", argv)
    rows = [measure(model, quantize, home, args.repeats) for model in args.models for quantize in ("float16", "int8")]
    print(f"\n{'file':<34} {'KB':>8} {'MediaPipe':>9} {'Keras':>7} {'agree':>8} {'task':>15} "
          f"{'MP ms':>7} {'LiteRT ms':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['run'] + ', ' + r['quantize']:<34} {r['kb']:>8,.1f} {r['accuracy']:>9.2%} "
              f"{r['keras_accuracy']:>7.2%} {r['agreement']:>8.2%} {r['task']:>15} {r['mediapipe_ms']:>7.3f} "
              f"{r['litert_ms']:>9.3f} {r['mediapipe_ms'] / r['litert_ms']:>5.1f}x")
    print(f"\nAccuracy and agreement in MediaPipe on the whole test split (MNIST 10,000 images, BBC News 444 "
          f"texts); ms: medians of {args.repeats} interleaved batch-1 calls on this host CPU.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
