"""The README's pictures, drawn from a real run: `python docs/figures.py RUN` (a LeNet-5 run on MNIST).

    calibration-lenet5.png  the run's reliability diagram, as trained and calibrated
    photo-to-mnist.png      photos of MNIST test digits on paper, the form zoo.data.digits brings
                            them into, and what the run reads there
    explain-lenet5.png      `zoo explain lenet5.mnist` on a photographed digit, as headless
                            Chromium shows it, with c3's position (4, 5) hovered
    serve-lenet5.png        `zoo serve lenet5.mnist`'s page after a 7 is drawn on it with the
                            mouse, in headless Chromium (`python docs/figures.py --serve`: this one alone)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main(run_target: str) -> None:
    from scipy.special import softmax

    import zoo
    from zoo.training.calibration import logits, reliability
    from zoo.data.datasets import load_dataset
    from zoo.data.digits import photograph, to_mnist
    from zoo.training.plots import _pyplot, plot_reliability
    from zoo.targets import Run

    run = Run.open(run_target)
    model = run.load_model()
    mnist = load_dataset("mnist", kind="image")
    z = logits(model, mnist.x_test.astype(np.float32) / 255)  # the calibrated model's logits: z / T
    temperature = run.card["calibration"]["temperature"]
    before, after = softmax(z * temperature, axis=1), softmax(z, axis=1)
    plot_reliability([("as trained", reliability(before, mnist.y_test)),
                      (f"calibrated (T = {temperature:.3f})", reliability(after, mnist.y_test))],
                     HERE / "calibration-lenet5.png", title="LeNet-5 on the MNIST test set")

    plt = _pyplot()
    picks = [(0, "plain page", {}), (1, "uneven light, shadow", {"light": 0.6, "shadow": True}),
             (2, "ruled, JPEG 60", {"lines": "ruled", "jpeg": 60}), (3, "squared paper", {"lines": "squared"}),
             (4, "small, large page", {"size": (1.5, 2.5), "page": (4, 6), "light": 0.5}),
             (8, "shadow", {"shadow": True})]
    fig, axes = plt.subplots(2, len(picks), figsize=(2.1 * len(picks), 4.6), constrained_layout=True)
    for column, (index, what, options) in enumerate(picks):
        photo = photograph(mnist.x_test[index, :, :, 0], seed=index, **options)
        form = to_mnist(photo).pixels
        probs = model.predict(form[None, ..., None].astype(np.float32) / 255, verbose=0)[0]
        axes[0, column].imshow(photo, cmap="gray", vmin=0, vmax=255)
        axes[0, column].set_title(f"{what} {photo.shape[1]}×{photo.shape[0]}", fontsize=8)
        axes[1, column].imshow(form, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes[1, column].set_title(f"read {probs.argmax()} ({probs.max():.2f})", fontsize=9)
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("zoo predict: a photo of a digit on paper, brought into MNIST's form (28×28, light on black)")
    fig.savefig(HERE / "photo-to-mnist.png", dpi=90)
    plt.close(fig)
    print(f"wrote {HERE / 'calibration-lenet5.png'} and {HERE / 'photo-to-mnist.png'} from {run.path} "
          f"(zoo {zoo.__version__})")
    explain_page(photograph(mnist.x_test[0, :, :, 0], seed=0))
    serve_page()


def explain_page(photo: np.ndarray) -> None:
    import contextlib
    import shutil
    import subprocess
    import tempfile

    from PIL import Image

    import zoo

    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):  # the page names the photo as given
        Image.fromarray(photo).save("photo-7.png")
        page = zoo.explain("lenet5.mnist", "photo-7.png", out=tmp).save(Path(tmp) / "lenet5.html")
        browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1200,1500", f"--screenshot={HERE / 'explain-lenet5.png'}",
                        page.as_uri() + "#probe=c3,4,5"], check=True, capture_output=True)
    print(f"wrote {HERE / 'explain-lenet5.png'}")


def serve_page() -> None:
    import json
    import signal
    import subprocess

    sys.path.insert(0, str(HERE.parent / "tests"))  # the tests' DevTools driver, and the strokes they draw
    from _browser import STROKES, DevTools, through

    server = subprocess.Popen([sys.executable, "-m", "zoo.cli", "serve", "lenet5.mnist", "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    url = next(line for line in server.stdout if line.startswith("Serving ")).split(" at ")[1].split()[0]
    browser = DevTools(1200, 1180)
    try:
        browser.open(url)
        box = json.loads(browser.evaluate("JSON.stringify(document.getElementById('pad').getBoundingClientRect())"))
        browser.drag([(box["left"] + x * box["width"] / 280, box["top"] + y * box["height"] / 280)
                      for x, y in through(STROKES["7"][0])])
        browser.wait_for("zoo.idle() && zoo.answers > 0")
        (HERE / "serve-lenet5.png").write_bytes(browser.screenshot())
    finally:
        browser.close()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    print(f"wrote {HERE / 'serve-lenet5.png'}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve_page()
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "lenet5")
