"""Microcontrollers: flash, tensor arena and accuracy in TFLite Micro, per model.

    ZOO_DATA_DIR=../shared/data python benchmarks/micro.py [--home DIR] [--models ...] [--repeats N]

Exports each pretrained model (default recipe, seed 0: `MODEL.TAG`) with `--target micro`
into --home, which verifies it in the TFLite Micro interpreter on the whole test split and
measures the smallest arena it runs in. Prints, per model: flash (the model's bytes), the
arena, accuracy in TFLM beside Keras's, top-1 agreement, the smallest board in zoo's table
it fits, and the median of N batch-1 invokes, interleaved with LiteRT's int8 file of the
same model. TFLM runs its reference kernels on this host CPU here, not a microcontroller:
the latency says how the two interpreters compare on one machine, not how fast a board is.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _pretrained import PRETRAINED, arguments

GOALS = {"lenet5": "flash <= 70 KB, arena <= 12 KB, within 0.1 point", "mnist_cnn": "fits 1 MB / 256 KB",
         "mnist_cnn_dropout": "fits 1 MB / 256 KB", "text_cnn": "flash <= 1.5 MB, >= 99% agreement"}


def measure(model: str, home: Path, repeats: int) -> dict:
    import zoo
    from zoo.deploy.benchmark import interleaved
    from zoo.deploy.exporter import prepare_run
    from zoo.deploy.micro import BOARDS
    from zoo.deploy.runtime import load_runner

    name = PRETRAINED[model]
    (micro,) = zoo.export(name, target="micro", out=str(home))
    (litert,) = zoo.export(name, quantize="int8", out=str(home))
    job = prepare_run(home / name, 1)
    runners = {"tflm": load_runner(micro["path"]), "litert": load_runner(litert["path"])}
    ms = interleaved({k: r.run_batch for k, r in runners.items()}, job.x_test[:1], repeats)
    m = micro["micro"]
    fits = [b.key for b in sorted(BOARDS.values(), key=lambda b: (b.flash_kb, b.ram_kb))
            if m["flash_kb"] <= b.flash_kb and m["ram_kb"] <= b.ram_kb]
    return {"model": model, "run": name, "flash_kb": m["flash_kb"], "arena_kb": m["ram_kb"],
            "accuracy": micro["accuracy"], "keras_accuracy": micro["keras_accuracy"],
            "agreement": micro["top1_agreement"], "examples": micro["examples"],
            "smallest_board": fits[0] if fits else "none", "tflm_ms": ms["tflm"], "litert_ms": ms["litert"],
            "goal": GOALS[model]}


def main(argv=None) -> int:
    args, home = arguments(__doc__, "zoo-micro-", argv)
    rows = [measure(model, home, args.repeats) for model in args.models]
    print(f"\n{'model':<18} {'flash KB':>9} {'arena KB':>9} {'TFLM acc':>9} {'Keras':>7} {'agree':>7} "
          f"{'fits':>10} {'TFLM ms':>8} {'LiteRT ms':>9} {'ratio':>6}  goal")
    for r in rows:
        print(f"{r['model']:<18} {r['flash_kb']:>9,.1f} {r['arena_kb']:>9,.1f} {r['accuracy']:>9.2%} "
              f"{r['keras_accuracy']:>7.2%} {r['agreement']:>7.2%} {r['smallest_board']:>10} {r['tflm_ms']:>8.3f} "
              f"{r['litert_ms']:>9.3f} {r['tflm_ms'] / r['litert_ms']:>5.1f}x  {r['goal']}")
    print("\nTFLM: reference kernels on this host CPU (batch 1); LiteRT: the int8 file of the same run, "
          f"XNNPACK; medians of {args.repeats} interleaved calls. Accuracy on the whole test split "
          "(MNIST 10,000 images, BBC News 444 texts).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
