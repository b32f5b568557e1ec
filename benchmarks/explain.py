"""`zoo explain`: how long a page takes once TensorFlow is imported, and how large it is.

    ZOO_DATA_DIR=../shared/data python benchmarks/explain.py [--repeats N]

Goals (issue #19): the LeNet-5 page at most 1 MB, written in at most 3 s after TensorFlow is
imported; the image_cnn page at most 10 MB. Times `zoo.explain(...).save(...)` as a whole
(model load, forward pass, pictures, page), after one untimed call; TensorFlow's import is
left out, as the goal says, and printed apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(describe())
    started = time.perf_counter()
    from zoo.backend import keras

    keras()
    print(f"importing TensorFlow and Keras: {time.perf_counter() - started:.2f} s (not counted)")
    import numpy as np
    from PIL import Image

    import zoo
    from zoo.data.datasets import load_dataset
    from zoo.data.digits import photograph

    tmp = Path(tempfile.mkdtemp(prefix="zoo-explain-"))
    digit = tmp / "photo.png"
    Image.fromarray(photograph(load_dataset("mnist", kind="image").x_test[0, :, :, 0], seed=0)).save(digit)
    noise = tmp / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 150, 3)).astype(np.uint8)).save(noise)
    cases = [("lenet5.mnist, a photo", "lenet5.mnist", digit, 1.0, 3.0),
             ("text_cnn.bbc_news, its first test text", "text_cnn.bbc_news", None, None, None),
             ("image_cnn (untrained), 150x150 noise", "image_cnn", noise, 10.0, None)]
    print(f"\n{'page':<40} {'first s':>7} {'min s':>7} {'median s':>9} {'size KB':>9}  goal")
    for label, target, given, goal_mb, goal_s in cases:
        times = []
        for _ in range(args.repeats + 1):
            start = time.perf_counter()
            page = zoo.explain(target, None if given is None else str(given), out=str(tmp)).save(tmp / "page.html")
            times.append(time.perf_counter() - start)
        first, times = times[0], times[1:]  # the first call also writes MODEL.TAG's run folder, and warms caches
        size = page.stat().st_size / 1024
        goal = " ".join(g for g in ((f"<= {goal_mb:g} MB" if goal_mb else ""), (f"<= {goal_s:g} s" if goal_s else "")) if g)
        met = (goal_mb is None or size <= goal_mb * 1024) and (goal_s is None or first <= goal_s)
        print(f"{label:<40} {first:>7.2f} {min(times):>7.2f} {statistics.median(times):>9.2f} {size:>9,.1f}  "
              f"{goal or '-'}{': met' if goal and met else (': NOT met' if goal else '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
