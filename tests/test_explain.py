"""`zoo explain`: the page is self-contained, renders in a real browser, and its arithmetic and
receptive fields agree with hand-worked numbers and with TensorFlow's own gradients."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from _browser import find as _browser
from zoo.cli import main
from zoo.errors import ConfigError

# ---------------------------------------------------------------- a real browser


def _chromium(*args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--user-data-dir=" + str(Path(os.environ.get("TMPDIR", "/tmp")) / "zoo-chromium")]
    return subprocess.run([_browser(), *flags, *args], capture_output=True, text=True, timeout=120, check=True)


def _dom(page: Path, fragment: str = "") -> str:
    return _chromium("--virtual-time-budget=2000", "--dump-dom", page.resolve().as_uri() + fragment).stdout


# ---------------------------------------------------------------- the page's structure, read independently


class _Links(HTMLParser):
    """Every src and href, and every CSS url(), of a page."""

    def __init__(self):
        super().__init__()
        self.links, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for key, value in attrs:
            if key in ("src", "href", "xlink:href", "srcset", "poster", "data") and value is not None:
                self.links.append(value)
            if key == "style" and value:
                self.links += re.findall(r"url\(\s*['\"]?([^'\")]+)", value)

    def handle_data(self, data):
        self.links += re.findall(r"url\(\s*['\"]?([^'\")]+)", data)
        self.links += re.findall(r"@import\s+['\"]([^'\"]+)", data)


def _external(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    return [link for link in parser.links
            if re.match(r"(?i)\s*(https?:|//|ftp:|file:)", link) or not re.match(r"(?i)\s*(data:|#)", link)]


def test_the_checker_finds_every_kind_of_outside_reference():
    """A checker that finds nothing proves nothing: it must flag each way a page can reach out."""
    bad = ['<img src="https://x/a.png">', '<link rel="stylesheet" href="//cdn/x.css">',
           '<script src="http://x/a.js"></script>', '<div style="background:url(https://x/b.png)"></div>',
           '<style>@import "https://fonts/x.css";</style>', '<style>p { background: url(x.png) }</style>',
           '<svg><image href="https://x/c.png"/></svg>', '<img src="local.png">']
    for snippet in bad:
        assert _external(snippet), snippet
    assert _external('<img src="data:image/png;base64,AAAA"><a href="#c1">c1</a>') == []


# ---------------------------------------------------------------- the report


def test_lenet5_arithmetic_is_the_hand_worked_one():
    report = zoo.explain("lenet5")  # untrained, no input
    data = report.to_dict()
    assert data["kind"] == "registry" and data["trained"] is False and data["input"] is None
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert list(layers) == ["c1", "s2", "c3", "s4", "flatten", "c5", "f6", "output"]
    # out = floor((in + pl + pr - d(k - 1) - 1) / s) + 1, worked by hand for each axis
    expected = {
        "c1": "floor((28 + 2·2 − 1·(5 − 1) − 1) / 1) + 1 = 28",
        "s2": "floor((28 + 2·0 − 1·(2 − 1) − 1) / 2) + 1 = 14",
        "c3": "floor((14 + 2·0 − 1·(5 − 1) − 1) / 1) + 1 = 10",
        "s4": "floor((10 + 2·0 − 1·(2 − 1) − 1) / 2) + 1 = 5",
    }
    for name, formula in expected.items():
        assert [a["formula"] for a in layers[name]["arithmetic"]] == [formula, formula]
    assert layers["flatten"]["arithmetic"] is None
    assert (layers["c1"]["params"], layers["c1"]["macs"], layers["c1"]["groups"]) == (156, 117_600, 1)
    assert (layers["c3"]["params"], layers["c3"]["macs"]) == (2_416, 240_000)
    assert layers["s4"]["receptive_field"] == [16, 16] and layers["s4"]["field"] == [[16, 4, 5.5], [16, 4, 5.5]]
    assert data["kernels"]["layer"] == "c1" and data["kernels"]["shown"] == 6
    assert "feature_maps" not in layers["c1"] and data["prediction"] is None
    assert "untrained" in data["notes"][0]


def test_the_formula_of_a_stride_dilation_and_uneven_padding(keras):
    L = keras.layers
    inputs = keras.Input((11, 16, 3))
    x = L.Conv2D(4, (3, 5), strides=(2, 3), padding="same", dilation_rate=1, name="uneven")(inputs)
    x = L.Conv2D(4, 3, dilation_rate=2, name="dilated")(x)
    model = keras.Model(inputs, x)
    layers = {layer["name"]: layer for layer in zoo.explain(model).to_dict()["layers"]}
    # "same" with stride 2 on 11 rows: ceil(11/2) = 6 outputs need 5*2 + 3 - 11 = 2 zeros, 1 + 1;
    # on 16 columns, stride 3: ceil(16/3) = 6 need 5*3 + 5 - 16 = 4 zeros, 2 + 2
    assert [a["formula"] for a in layers["uneven"]["arithmetic"]] == [
        "floor((11 + 2·1 − 1·(3 − 1) − 1) / 2) + 1 = 6", "floor((16 + 2·2 − 1·(5 − 1) − 1) / 3) + 1 = 6"]
    # valid, dilation 2: a 3-tap kernel spans 5
    assert [a["formula"] for a in layers["dilated"]["arithmetic"]] == [
        "floor((6 + 2·0 − 2·(3 − 1) − 1) / 1) + 1 = 2"] * 2
    assert layers["dilated"]["output_shape"] == [2, 2, 4]


def _ones(keras):
    """All weights 1 and average pooling: the gradient of a position is non-zero exactly on its field."""
    L = keras.layers
    inputs = keras.Input((32, 32, 1))
    x = L.Conv2D(2, 5, padding="same", name="conv_a")(inputs)
    x = L.AveragePooling2D(2, name="pool_a")(x)
    x = L.Conv2D(2, 3, dilation_rate=2, name="conv_b")(x)
    x = L.Flatten()(x)
    model = keras.Model(inputs, L.Dense(2, name="head")(x))
    for weight in model.weights:
        weight.assign(np.ones(weight.shape, dtype="float32"))
    return model


def _gradient_box(model, layer: str, i: int, j: int) -> tuple[list, list]:
    import tensorflow as tf

    from zoo.backend import keras

    probe = keras().Model(model.inputs[0], model.get_layer(layer).output)
    x = tf.constant(np.random.default_rng(0).uniform(0.5, 1.0, (1, 32, 32, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        target = probe(x)[0, i, j, 0]
    hit = np.abs(tape.gradient(target, x)[0, ..., 0].numpy()) > 0
    rows, cols = np.nonzero(hit.any(axis=1))[0], np.nonzero(hit.any(axis=0))[0]
    return [int(rows.min()), int(rows.max())], [int(cols.min()), int(cols.max())]


@pytest.mark.slow
def test_the_page_draws_each_field_where_tensorflows_gradients_put_it(keras, tmp_path):
    """The box the page's own script places, in a real browser, against the input pixels the
    position's gradient reaches."""
    model = _ones(keras)
    page = zoo.explain(model).save(tmp_path / "fields.html")
    for layer, i, j in (("conv_a", 10, 7), ("pool_a", 6, 8), ("conv_b", 4, 5)):
        rows, cols = _gradient_box(model, layer, i, j)
        text = re.search(r'id="rftext"[^>]*>([^<]*)<', _dom(page, f"#probe={layer},{i},{j}")).group(1)
        assert text == (f"{layer} ({i}, {j}) sees {rows[1] - rows[0] + 1}×{cols[1] - cols[0] + 1} input pixels: "
                        f"rows {rows[0]} to {rows[1]}, columns {cols[0]} to {cols[1]}")


@pytest.mark.slow
def test_the_lenet5_page_is_self_contained_small_and_renders_in_a_browser(tmp_path):
    from PIL import Image

    from zoo.data.datasets import load_dataset

    digit = tmp_path / "seven.png"
    Image.fromarray(load_dataset("mnist", kind="image").x_test[0, :, :, 0]).save(digit)
    report = zoo.explain("lenet5.mnist", str(digit), out=str(tmp_path / "runs"))
    page = report.save(tmp_path / "lenet5.html")
    text = page.read_text(encoding="utf-8")
    assert page.stat().st_size <= 1024 * 1024
    assert _external(text) == []
    data = report.to_dict()
    assert data["prediction"][0]["label"] == "7" and data["prediction"][0]["probability"] > 0.9
    maps = {layer["name"]: layer.get("feature_maps") for layer in data["layers"]}
    assert {name: (m["channels"], m["shown"]) for name, m in maps.items() if m} == {
        "c1": (6, 6), "s2": (6, 6), "c3": (16, 16), "s4": (16, 16)}  # every channel of every conv and pool
    dom = _dom(page)
    for name in ("c1", "s2", "c3", "s4", "flatten", "c5", "f6", "output"):
        assert f'id="layer-{name}"' in dom and f">{name}</h3>" in dom
    assert "floor((28 + 2·2 − 1·(5 − 1) − 1) / 1) + 1 = 28" in dom
    assert dom.count('class="fm"') == 6 + 6 + 16 + 16 and dom.count('class="kernel grid"') == 6
    shot = tmp_path / "shot.png"
    _chromium("--window-size=1200,1400", f"--screenshot={shot}", page.resolve().as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (1400, 1200, 3)
    # not blank: many colours (the viridis maps, the digit, the text), and dark ink on white
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
    assert (pixels.min(axis=2) < 60).mean() > 0.01 and (pixels.min(axis=2) > 240).mean() > 0.3


@pytest.mark.slow
def test_a_bbc_news_text_gets_its_words_weighed(tmp_path):
    text = ("Shares in the bank rose sharply after its profits beat forecasts, and the stock market rallied "
            "as investors bought more of its shares.")
    report = zoo.explain("text_cnn.bbc_news", text, out=str(tmp_path / "runs"))
    data = report.to_dict()
    assert data["prediction"][0]["label"] == "business"
    contributions = data["contributions"]
    words = [t["word"] for t in contributions["tokens"]]
    assert words[:4] == ["shares", "in", "the", "bank"] and len(words) == len(text.split())
    # occlusion, checked directly: the log-odds of "business" without "profits", one call to the model
    model = zoo.load_model(tmp_path / "runs" / "text_cnn.bbc_news")
    from zoo.data.inputs import prepare_inputs
    from zoo.deploy.predict import artifact_metadata

    meta, folder = artifact_metadata(tmp_path / "runs" / "text_cnn.bbc_news")
    (item,) = prepare_inputs([text], meta, folder)
    ids = np.repeat(item.x[None], 2, axis=0)
    position = words.index("profits")
    ids[1, position] = 1  # the out-of-vocabulary id
    probs = np.asarray(model(ids)).astype(np.float64)
    business = data["labels"].index("business")
    p, rest = probs[:, business], np.delete(probs, business, axis=1).sum(axis=1)  # 1 - p, not rounded to 0
    expected = np.log(p[0] / rest[0]) - np.log(p[1] / rest[1])
    assert np.isfinite(expected) and expected > 0
    assert contributions["tokens"][position]["contribution"] == pytest.approx(expected, abs=1e-3)
    page = report.save(tmp_path / "text.html")
    assert _external(page.read_text(encoding="utf-8")) == []
    dom = _dom(page, "#probe=conv,3")
    assert 'id="layer-conv"' in dom and "floor((500 + 2·0 − 1·(5 − 1) − 1) / 1) + 1 = 496" in dom
    assert ">conv position 3 sees words 3 to 7<" in dom  # the script, run in the browser
    assert len(re.findall(r'class="tok hl"', dom)) == 5


@pytest.mark.slow
def test_a_run_without_input_shows_its_first_test_example(tmp_path):
    data = zoo.explain("lenet5.mnist", out=str(tmp_path)).to_dict()
    assert data["input"]["name"] == "the first test example of mnist (label 7)"
    assert data["prediction"][0]["label"] == "7"


def test_too_many_channels_are_thinned_and_the_page_says_so(keras, tmp_path):
    from PIL import Image

    L = keras.layers
    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(L.Conv2D(48, 3, name="wide")(inputs))))
    picture = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(picture)
    full = zoo.explain(model, str(picture)).to_dict()["layers"][0]["feature_maps"]
    assert (full["channels"], full["shown"]) == (48, 48)
    thin = zoo.explain(model, str(picture), maps_budget=200_000)
    maps = thin.to_dict()["layers"][0]["feature_maps"]
    assert 1 <= maps["shown"] < 48 and maps["channels"] == 48
    assert sum(len(m["png"]) for m in maps["maps"]) <= 200_000 * 1.2
    assert f"wide: {maps['shown']} of its 48 channels are shown" in " ".join(thin.to_dict()["notes"])
    assert f"{maps['shown']} of 48 channels" in thin.to_html()


@pytest.mark.slow
def test_the_image_cnn_page_stays_under_10_mb(registry_model, tmp_path):
    from PIL import Image

    picture = tmp_path / "noise.png"  # noise: the worst case for PNG
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 150, 3)).astype(np.uint8)).save(picture)
    page = zoo.explain(registry_model("image_cnn"), str(picture)).save(tmp_path / "image_cnn.html")
    assert page.stat().st_size <= 10 * 1024 * 1024


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    "args, message",
    [
        (["lenet5.mnist", "missing.png"], "Error: missing.png: no such image file\n"),
        (["lenet5.mnist", "a digit seven"], "Error: a digit seven: no such image file; lenet5.mnist reads images, "
                                            "not text\n"),
        (["text_cnn.bbc_news", "{png}"], "Error: {png}: an image, but text_cnn.bbc_news reads text; give a text or "
                                         "a .txt file\n"),
        (["text_cnn.bbc_news", "  ...  "], "Error: '  ...  ': the text is empty (no ASCII letters or digits in "
                                           "it); nothing to predict\n"),
        (["text_cnn", "some news"], "Error: text_cnn has no vocabulary (an untrained text model); explain a run or "
                                    "a pretrained model, e.g. text_cnn.bbc_news, to see a text\n"),
        (["lenet9"], "Error: unknown model 'lenet9'; did you mean lenet, lenet5? 'zoo list' shows the 5 models: "
                     "image_cnn, lenet5, mnist_cnn, mnist_cnn_dropout, text_cnn (and no run 'lenet9' under {home}/)\n"),
        (["nothere.keras"], "Error: no model file at nothere.keras\n"),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    png = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(png)
    args = [str(png) if a == "{png}" else a for a in args]
    result = CliRunner().invoke(main, ["explain", *args], env={"ZOO_HOME": str(tmp_path / "runs")})
    assert result.exit_code in (1, 2) and len(result.stderr.splitlines()) == 1, result.output
    assert result.stderr == message.replace("{png}", str(png)).replace("{home}", str(tmp_path / "runs"))
    assert not list(tmp_path.glob("*.html"))


def test_cli_writes_the_page_and_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["explain", "lenet5"])
    assert result.exit_code == 0, result.output
    page = tmp_path / "lenet5-explain.html"
    assert result.stdout == f"Wrote {page.name} ({page.stat().st_size / 1024:,.1f} KB): open it in a browser.\n"
    document = json.loads(CliRunner().invoke(main, ["explain", "lenet5", "--json"]).stdout)
    assert [layer["name"] for layer in document["layers"]][:2] == ["c1", "s2"]
    bad = CliRunner().invoke(main, ["explain", "lenet5", "-o", str(tmp_path / "none" / "x.html")])
    assert bad.exit_code == 2
    assert bad.stderr == f"Error: -o {tmp_path / 'none' / 'x.html'}: the folder {tmp_path / 'none'} does not exist\n"


def test_an_interrupted_save_leaves_the_old_page(tmp_path, monkeypatch):
    report = zoo.explain("lenet5")
    page = report.save(tmp_path / "p.html")
    before = page.read_bytes()

    def boom(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(report), "to_html", lambda self: "<html>half")
    monkeypatch.setattr("os.replace", lambda *a: boom(None))
    with pytest.raises(KeyboardInterrupt):
        report.save(page)
    assert page.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["p.html"]


def test_top_k_is_checked():
    with pytest.raises(ConfigError, match="top-k must be a whole number >= 1, got 0"):
        zoo.explain("lenet5", top_k=0)


def test_an_alias_is_the_registry_model():
    assert zoo.explain("lenet").to_dict()["target"] == "lenet5"


def test_a_keras_file_is_a_target(tmp_path, registry_model, zoo_home):
    path = tmp_path / "lenet.keras"
    registry_model("lenet5").save(path)
    data = zoo.explain(str(path)).to_dict()
    # taken in as the run 'lenet' (zoo.models.adopted), its labels class indices, said as such
    assert data["kind"] == "file" and data["target"] == "lenet" and data["labels"] == [str(i) for i in range(10)]
    assert [layer["name"] for layer in data["layers"]][:2] == ["c1", "s2"]


def test_a_registry_name_shared_with_a_run_points_at_the_run(tmp_path):
    home = tmp_path / "runs"
    zoo.explain("lenet5.mnist", out=str(home))  # writes the pretrained run folder
    shutil.copytree(home / "lenet5.mnist", home / "lenet5")
    said = (f"lenet5 is the untrained registry model; a trained run of the same name is at {home / 'lenet5'}: "
            f"zoo explain {home / 'lenet5'} shows it")
    with pytest.warns(zoo.ZooWarning) as caught:  # said on the terminal, not only inside the page
        notes = zoo.explain("lenet5", out=str(home)).to_dict()["notes"]
    assert notes[-1] == said and [str(w.message) for w in caught] == [said]
    data = zoo.explain(str(home / "lenet5"), out=str(home)).to_dict()
    assert data["kind"] == "run" and data["trained"] and data["prediction"][0]["label"] == "7"


def test_the_page_is_written_with_the_mode_every_other_file_gets(tmp_path):
    old = os.umask(0o022)
    try:
        page = zoo.explain("lenet5").save(tmp_path / "page.html")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(page.stat().st_mode) == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_conv3d_model_shows_its_middle_slice_and_says_so(keras):
    """A volume model: PIL draws 2-D pictures, so each 3-D map and kernel shows its middle depth
    slice, and the page says which; nothing crashes."""
    from zoo.inspect import explain as explainer

    inputs = keras.Input((6, 10, 10, 1))
    x = keras.layers.Conv3D(4, 3, activation="relu", name="c3d")(inputs)
    x = keras.layers.MaxPooling3D(2, name="p3d")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs, name="volume")
    assert zoo.explain(model).to_dict()["kernels"]["note"].endswith(", the middle of its 3 depth slices")
    # an input: zoo reads images, not volumes, so the test hands the explainer one directly
    example = {"kind": "image", "name": "noise", "steps": ["as given"],
               "x": np.random.default_rng(0).random((1, 6, 10, 10, 1), dtype=np.float32)}
    with mock.patch.object(explainer, "_input", return_value=example):
        report = explainer.explain(model, "noise")
    data = report.to_dict()
    assert data["notes"] == ["c3d: a 3-D output (4×8×8×4); its feature maps show the middle depth slice, 2 of 4",
                             "p3d: a 3-D output (2×4×4×4); its feature maps show the middle depth slice, 1 of 2"]
    maps = {layer["name"]: layer.get("feature_maps") for layer in data["layers"]}
    assert (maps["c3d"]["channels"], maps["c3d"]["shown"], maps["c3d"]["layout"]) == (4, 4, "grid")
    assert report.to_html().count('data-layer="c3d"') == 4


def test_the_page_budget_is_measured_on_channels_spread_across_a_layer():
    """Channel 0 of a ReLU layer is often all zero and compresses to almost nothing: an estimate
    from it alone kept every channel and let the page run past its budget."""
    from zoo.inspect import explain as explainer

    noise = np.random.default_rng(0).random((64, 64, 16), dtype=np.float32)
    noise[..., 0] = 0.0
    one = len(explainer._png(explainer._viridis(noise[..., 1])[0]))
    budget = int(8.5 * one)
    keep = explainer._channels_to_keep({"c": noise}, budget)["c"]
    shown = explainer._spread(16, keep)
    drawn = sum(len(explainer._png(explainer._viridis(noise[..., c])[0])) for c in shown)
    assert 8 <= keep < 16 and drawn <= 1.1 * budget
