"""`zoo explain`: every layer of a model, its arithmetic and what it sees, on one HTML page.

CNN Explainer (Wang et al., IEEE VIS 2020) showed how much a picture of every layer's
activations teaches, for one fixed network in a web demo. This does it for any zoo model,
trained or not, on the user's own input: the model as a flow of layers drawn to scale, each
convolution's and pooling's output-size formula with its numbers put in (Dumoulin & Visin
2016), its receptive field drawn on the input at its true size (hover a feature map to move
it), the feature maps of every channel, the first convolution's kernels, a text model's
per-word contributions (occlusion: the top class's log-odds without each word), and the
top-k prediction.

`explain(target, input)` returns a `Report`: `.to_dict()` is the `--json` document,
`.to_html()` one self-contained page (images inline as PNG data, no script, style or font
from anywhere else), written from the template `templates/explain.html`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import numpy as np

from zoo import ranges, runs
from zoo.errors import ConfigError, DataError, ZooWarning
from zoo.files import write_atomic
from zoo.metrics import as_class_probabilities
from zoo.inspect.summary import shape_text

TEMPLATE = Path(__file__).resolve().parent / "templates" / "explain.html"
# image_cnn's maps at every channel come to 25 MB of PNG; channels are left out, evenly, and
# the page says so, until the maps fit this (the page's other parts stay under 0.5 MB)
MAPS_BUDGET = 9 * 1024 * 1024
MAX_KERNELS = 64  # the first convolution's filters drawn (image_cnn has 64, text_cnn 128)


@dataclass
class Source:
    """What is explained: the model and what is known of its data."""

    model: object
    name: str
    kind: str  # run, pretrained, registry, file, model
    labels: list
    preprocessing: dict | None = None
    folder: Path | None = None  # a run folder: its card, vocabulary and test split
    card: dict | None = None


@dataclass
class Report:
    """An explanation; `to_dict()` is the JSON document, `to_html()` the page."""

    data: dict
    fields: dict = field(default_factory=dict)  # layer -> [[rf, jump, start] per axis], for the page's script

    def to_dict(self) -> dict:
        return self.data

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2) + "\n"

    def to_html(self) -> str:
        return render(self)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page atomically: a reader sees the old page or the new one, never half."""
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"-o {path}: is a folder; give a file name such as {path / 'explain.html'}")
        if not path.parent.is_dir():
            raise ConfigError(f"-o {path}: the folder {path.parent} does not exist")
        return write_atomic(path, self.to_html())


# ---------------------------------------------------------------- what is explained


def _source(target, out=None, stated=None) -> Source:
    """A Keras model; else what `zoo.targets` finds, as `zoo summary` reads it. A pretrained
    `MODEL.TAG` is written as a run the first time."""
    from zoo import targets

    if hasattr(target, "layers") and hasattr(target, "inputs"):
        return Source(target, target.name, "model", _index_labels(target))
    found = targets.resolve(str(target), targets.MODELS, out=out)
    if found.kind == targets.REGISTRY:
        model = found.model()
        return Source(model, found.entry.name, "registry", _index_labels(model))
    # a model file is taken in as a run: its labels and preprocessing as the user stated them
    return _run_source(found.run_folder(out, stated), "file" if found.kind in targets.FILES else found.kind)


def _run_source(folder: Path, kind: str) -> Source:
    card = runs.read_card(folder)
    return Source(runs.load_model(folder), card.run, kind, [str(x) for x in card.labels], card.preprocessing,
                  folder, card)


def _index_labels(model) -> list:
    units = int(model.outputs[0].shape[-1])
    return ["0", "1"] if units == 1 else [str(i) for i in range(units)]


def _text_model(model) -> bool:
    return "int" in str(model.inputs[0].dtype)


def _input(source: Source, given) -> dict | None:
    """The model's input as it takes it (batch of 1), with what is drawn of it; None: no input."""
    from zoo.data.inputs import prepare_inputs

    text_model = _text_model(source.model)
    if given is None:
        has_data = source.folder is not None and source.card is not None and source.card.dataset_spec is not None
        return _test_example(source) if has_data else None
    given = str(given)
    if (source.preprocessing or {}).get("type") == "tensor":
        raise ConfigError(f"{source.name} takes a {'×'.join(map(str, source.preprocessing['input_shape']))} tensor, "
                          "not an image or a text: explain it without an input")
    if text_model:
        if source.preprocessing is None:
            raise ConfigError(f"{source.name} has no vocabulary (an untrained text model); explain a run or a "
                              "pretrained model, e.g. text_cnn.bbc_news, to see a text")
        (item,) = prepare_inputs([given], {"preprocessing": source.preprocessing, "run": source.name}, source.folder)
        if item.error:
            raise DataError(item.error)
        return _text_input(source, item.x, item.name, item.preprocessing["steps"])
    spec = source.preprocessing or _plain_image_spec(source.model)
    (item,) = prepare_inputs([given], {"preprocessing": spec, "run": source.name}, source.folder or Path("."))
    if item.error:
        raise DataError(item.error)
    return {"kind": "image", "name": given, "x": item.x[None], "steps": item.preprocessing["steps"]}


def _plain_image_spec(model) -> dict:
    shape = [int(d) for d in model.inputs[0].shape[1:]]
    return {"type": "image", "input_shape": shape, "scale": 1 / 255, "offset": 0.0, "normalize": None}


def _test_example(source: Source) -> dict:
    from zoo.data.recorded import run_dataset

    prep, dataset = run_dataset(source.folder, source.card)
    x = prep(dataset.x_test[:1])
    truth = f" (label {source.labels[int(dataset.y_test[0])]})" if dataset.labelled else ""
    name = f"the first test example of {source.card.dataset_name}{truth}"
    if prep.kind == "text":
        return _text_input(source, x[0], name, ["the run's own preprocessing"])
    return {"kind": "image", "name": name, "x": x, "steps": ["the run's own preprocessing"]}


def _text_input(source: Source, ids: np.ndarray, name: str, steps: list) -> dict:
    vocab = (source.folder / source.preprocessing.get("vocab_file", "vocab.txt")).read_text(encoding="utf-8")
    words = vocab.split("\n")
    ids = np.asarray(ids, np.int32)
    tokens = [words[i] if 0 < i < len(words) else "" for i in ids.tolist()]
    return {"kind": "text", "name": name, "x": ids[None], "steps": steps, "tokens": tokens}


# ---------------------------------------------------------------- the arithmetic


def _formula(n: int, k: int, s: int, d: int, left: int, right: int) -> tuple[str, int]:
    """The output-size formula with this layer's numbers put in, and its value."""
    out = (n + left + right - d * (k - 1) - 1) // s + 1
    pad = f"2·{left}" if left == right else f"{left} + {right}"
    return f"floor(({n} + {pad} − {d}·({k} − 1) − 1) / {s}) + 1 = {out}", out


def _arithmetic(layer, row) -> list[dict] | None:
    """Per spatial axis: the formula, its value and the values put in; None for a layer without a window."""
    from zoo.models.geometry import padding_amount, window_of

    window = window_of(layer)
    if window is None:
        return None
    sizes = [int(d) for d in layer.input.shape[1 : 1 + len(window.kernel)]]
    out_sizes = row.output_shape[: len(window.kernel)]
    axes = ("rows", "columns", "depth") if len(sizes) > 1 else ("positions",)
    result = []
    for axis, n, k, s, d, out in zip(axes, sizes, window.kernel, window.strides, window.dilation, out_sizes):
        left, right = padding_amount(n, k, s, window.padding, d)
        text, value = _formula(n, k, s, d, left, right)
        if value != out:  # never show arithmetic that disagrees with the layer Keras built
            text = None
        result.append({"axis": axis, "in": n, "kernel": k, "stride": s, "dilation": d, "padding": [left, right],
                       "formula": text, "out": out})
    return result


# ---------------------------------------------------------------- pictures


_VIRIDIS = None


def _lut() -> np.ndarray:
    global _VIRIDIS
    if _VIRIDIS is None:
        from matplotlib import colormaps

        _VIRIDIS = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    return _VIRIDIS


def _png(pixels: np.ndarray) -> str:
    """A data URI of an (H, W) uint8 or (H, W, 3) uint8 array."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=9)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _viridis(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    lo, hi = float(values.min()), float(values.max())
    scaled = np.zeros(values.shape, np.uint8) if hi <= lo else np.round((values - lo) / (hi - lo) * 255).astype(np.uint8)
    return _lut()[scaled], lo, hi


def _diverging(values: np.ndarray) -> np.ndarray:
    """Blue for negative, white for 0, red for positive, symmetric about 0."""
    top = float(np.abs(values).max()) or 1.0
    v = np.clip(values / top, -1, 1)[..., None]
    white, red, blue = np.array([255, 255, 255.0]), np.array([200, 30, 40.0]), np.array([30, 80, 200.0])
    rgb = np.where(v >= 0, white + (red - white) * v, white + (blue - white) * -v)
    return np.round(rgb).astype(np.uint8)


def _input_picture(x: np.ndarray) -> str:
    """The model's input as it sees it (after preprocessing), stretched to 0-255; of a 3-D input
    (D, H, W, C), its middle depth slice."""
    image = x[0] if x[0].ndim == 3 else x[0][x[0].shape[0] // 2]
    lo, hi = float(image.min()), float(image.max())
    scaled = np.zeros(image.shape) if hi <= lo else (image - lo) / (hi - lo)
    pixels = np.round(scaled * 255).astype(np.uint8)
    return _png(pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3])


def _maps(output: np.ndarray, keep: int | None) -> dict:
    """One picture per channel of a (H, W, C) output, or one strip per channel of (L, C) or (C,)."""
    if output.ndim == 3:
        channels = output.shape[-1]
        shown = _spread(channels, keep)
        pictures = []
        for c in shown:
            rgb, lo, hi = _viridis(output[..., c])
            pictures.append({"channel": int(c), "min": round(lo, 4), "max": round(hi, 4), "png": _png(rgb)})
        return {"channels": channels, "shown": len(shown), "layout": "grid", "maps": pictures}
    if output.ndim == 2:  # (L, C): one row per channel, each from its own minimum to maximum
        rows = [_viridis(output[:, c]) for c in range(output.shape[1])]
        rgb = np.stack([r[0] for r in rows])
        lo, hi = min(r[1] for r in rows), max(r[2] for r in rows)
        layout = "strips"
    else:  # (C,): one value per channel, in one row on one scale
        rgb, lo, hi = _viridis(output[None, :])
        layout = "vector"
    return {"channels": int(output.shape[-1]), "shown": int(output.shape[-1]), "layout": layout,
            "maps": [{"channel": None, "min": round(lo, 4), "max": round(hi, 4), "png": _png(rgb)}]}


def _spread(channels: int, keep: int | None) -> list[int]:
    if keep is None or keep >= channels:
        return list(range(channels))
    return sorted({int(round(i * (channels - 1) / max(keep - 1, 1))) for i in range(keep)})


def _kernels(layer) -> dict:
    """The learned kernels of the first convolution, one picture per filter."""
    weights = np.asarray(layer.get_weights()[0], np.float32)
    depth = None
    if weights.ndim == 5:  # a Conv3D's (kd, kh, kw, in, out): its middle depth slice
        depth = weights.shape[0]
        weights = weights[depth // 2]
    filters = weights.shape[-1]
    shown = _spread(filters, MAX_KERNELS)
    pictures = []
    if weights.ndim == 4:  # (kh, kw, in, out)
        note = "each filter's weights, red positive, blue negative"
        if depth is not None:
            note += f", the middle of its {depth} depth slices"
        for f in shown:
            w = weights[..., f]
            if w.shape[-1] == 3:  # an RGB filter shows its colours: 0 is mid grey
                top = float(np.abs(w).max()) or 1.0
                pictures.append(_png(np.round((0.5 + 0.5 * w / top) * 255).astype(np.uint8)))
            else:
                pictures.append(_png(_diverging(w.mean(axis=-1))))
        if weights.shape[2] not in (1, 3):
            note += f", averaged over its {weights.shape[2]} input channels"
    else:  # (k, in, out): one row per position of the window, one column per input channel
        note = "each filter's weights: a row per position of its window, a column per input channel; red positive, blue negative"
        for f in shown:
            pictures.append(_png(_diverging(weights[..., f])))
    return {"layer": layer.name, "shape": list(weights.shape), "filters": filters, "shown": len(shown),
            "note": note, "pictures": pictures, "layout": "grid" if weights.ndim == 4 else "rows"}


# ---------------------------------------------------------------- the report


def explain(target, input=None, *, top_k: int = 5, out=None, maps_budget: int = MAPS_BUDGET, **stated) -> Report:
    """Explain a model layer by layer, on an input where there is one.

    Args:
        target: a Keras model, a registry model name (untrained), `MODEL.TAG` (pretrained), a
            run name or folder, or a `.keras` file.
        input: an image file, or a text (or .txt file) for a text model. Without one, a run
            shows the first example of its test split; an untrained model shows no activations.
        top_k: how many classes the prediction lists.
        **stated: for a model file (.keras, .h5, SavedModel), taken in as a run first: data,
            labels, normalize, vocab, custom_objects (zoo.models.adopted.Stated).

    Returns:
        A `Report`: `.to_html()` the page, `.to_dict()` the same content as JSON, `.save(path)`.

    Raises:
        ConfigError, DataError, ModelLoadError: one line saying what was wrong.
    """
    from zoo.inspect.summary import summarize

    from zoo.models.adopted import Stated

    ranges.check("top_k", top_k)
    source = _source(target, out, Stated.of(stated))
    model = source.model
    example = _input(source, input)
    summary = summarize(model)
    by_name = {layer.name: layer for layer in model.layers}
    rows = [row for row in summary.layers if row.name in by_name and row.type != "InputLayer"]
    drawn = [row.name for row in rows if _has_maps(by_name[row.name])]

    outputs, probabilities = {}, None
    if example is not None:
        from zoo.backend import keras

        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        probe = keras().Model(inputs, [by_name[n].output for n in drawn] + [model.outputs[0]])
        values = probe(example["x"], training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        outputs = {n: np.asarray(v)[0] for n, v in zip(drawn, values)}
        probabilities = as_class_probabilities(np.asarray(values[-1]))[0]
    sliced = []
    for name in list(outputs):  # a Conv3D's (D, H, W, C): its middle depth slice is drawn, and said so
        value = outputs[name]
        if value.ndim == 4:
            outputs[name] = value[value.shape[0] // 2]
            sliced.append(f"{name}: a 3-D output ({shape_text(list(value.shape))}); its feature maps show the "
                          f"middle depth slice, {value.shape[0] // 2} of {value.shape[0]}")
        elif value.ndim > 4:
            del outputs[name]
            sliced.append(f"{name}: its {value.ndim - 1}-D output cannot be drawn; its numbers are above")

    keep = _channels_to_keep(outputs, maps_budget)
    layers = []
    for row in rows:
        layer = by_name[row.name]
        entry = {
            "name": row.name, "type": row.type, "output_shape": row.output_shape, "params": row.params,
            "macs": row.macs, "kernel": row.kernel, "strides": row.strides, "padding": row.padding,
            "dilation": row.dilation, "groups": getattr(layer, "groups", None) if row.kernel else None,
            "receptive_field": row.receptive_field, "jump": row.jump, "field": summary.fields.get(row.name),
            "arithmetic": _arithmetic(layer, row),
        }
        if row.name in outputs:
            entry["feature_maps"] = _maps(outputs[row.name], keep.get(row.name))
        layers.append(entry)

    first_conv = next((by_name[r.name] for r in rows if "Conv" in r.type and by_name[r.name].get_weights()), None)
    data = {
        "model": model.name, "target": source.name, "kind": source.kind,
        "trained": source.kind != "registry",
        "input_shape": summary.input_shape, "params": summary.params, "macs": summary.macs,
        "labels": source.labels, "layers": layers,
        "kernels": _kernels(first_conv) if first_conv is not None else None,
        "input": None, "prediction": None, "contributions": None, "notes": list(sliced),
    }
    if example is not None:
        data["input"] = {"kind": example["kind"], "name": example["name"], "steps": example["steps"]}
        if example["kind"] == "image":
            data["input"]["png"] = _input_picture(example["x"])
        order = np.argsort(-probabilities)[: min(top_k, len(source.labels))]
        data["prediction"] = [{"label": source.labels[i], "probability": round(float(probabilities[i]), 6)}
                              for i in order]
        if example["kind"] == "text":
            data["contributions"] = _contributions(model, example, int(order[0]), source)
    if source.card is not None and source.card.source:  # a model file: what was assumed, not stated
        from zoo.models.adopted import unstated

        data["notes"].extend(unstated({"run": source.name, "preprocessing": source.card.preprocessing,
                                       "labels_source": source.card.source.get("labels")}))
    if source.kind == "registry":
        data["notes"].append("untrained: the weights are the initializer's; train it, or explain a pretrained "
                             "model (zoo list shows them), to see what it learned")
        run = runs.run_dir(source.name, out)
        if (run / runs.CARD_FILE).is_file():  # a name means the registry model first, as in zoo summary
            shadowed = (f"{source.name} is the untrained registry model; a trained run of the same name is at "
                        f"{run}: zoo explain {run} shows it")
            data["notes"].append(shadowed)
            warnings.warn(shadowed, ZooWarning, stacklevel=2)
    for name, count in keep.items():
        if count is not None and name in outputs:
            total = outputs[name].shape[-1]
            data["notes"].append(f"{name}: {min(count, total)} of its {total} channels are shown, evenly spaced, "
                                 f"so that the page stays under {(maps_budget + 1024 * 1024) // (1024 * 1024)} MB")
    return Report(data, summary.fields)


def _has_maps(layer) -> bool:
    kind = type(layer).__name__
    return "Conv" in kind or "Pooling" in kind


# channels per layer whose PNGs measure what a layer's maps cost: channel 0 alone (a ReLU map that
# is all zero, say) compressed to a fraction of the others and let pages past the budget
SAMPLED_CHANNELS = 8


def _channels_to_keep(outputs: dict, budget: int) -> dict:
    """Channels per layer so that the maps fit the budget: all of them where they do. A layer's PNG
    bytes (base64, as the page holds them) are the mean of up to 8 channels spread across it,
    times its channels."""
    if not outputs:
        return {}
    cost = {}
    for name, output in outputs.items():
        if output.ndim == 3:
            sample = _spread(output.shape[-1], SAMPLED_CHANNELS)
            mean = sum(len(_png(_viridis(output[..., c])[0])) for c in sample) / len(sample)
            cost[name] = (mean, output.shape[-1])
    total = sum(size * channels for size, channels in cost.values())
    if total <= budget:
        return {}
    share = budget / total
    return {name: max(1, int(channels * share)) for name, (size, channels) in cost.items()}


def _contributions(model, example: dict, top: int, source: Source) -> dict:
    """How much each word adds to the top class: its log-odds, log(p / (1 - p)), minus the log-odds
    with that word made unknown (the out-of-vocabulary id), all words in one batch. Log-odds,
    because the BBC News run is 99.97% sure of its first test text: one word moves that
    probability, or its log, by 0.0001 at most, and its log-odds by whole units."""
    ids = example["x"][0]
    oov = int(source.preprocessing.get("oov_id", 1))
    positions = [i for i, t in enumerate(ids.tolist()) if t != source.preprocessing.get("padding_id", 0)]
    batch = np.repeat(example["x"], len(positions) + 1, axis=0)
    for row, i in enumerate(positions, start=1):
        batch[row, i] = oov
    probs = np.concatenate([as_class_probabilities(np.asarray(model(batch[i : i + 256], training=False)))
                            for i in range(0, len(batch), 256)])
    # 1 - p as the other classes' sum: a float32 softmax rounds p to 1.0 when the rest is 1e-9, and
    # the BBC News run trained on zoo's words tokenization is that sure of "shares ... profits"
    probs = probs.astype(np.float64)
    p, rest = probs[:, top], probs.sum(axis=1) - probs[:, top]
    odds = np.log(np.clip(p, 1e-300, None)) - np.log(np.clip(rest, 1e-300, None))
    deltas = odds[0] - odds[1:]
    return {"class": source.labels[top], "method": "occlusion: the class's log-odds minus its log-odds with "
            "the word made unknown", "tokens": [{"word": example["tokens"][i], "position": i,
                                              "contribution": round(float(d), 6)}
                                             for i, d in zip(positions, deltas)]}


# ---------------------------------------------------------------- the page


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _flow(data: dict) -> str:
    """The layers left to right, each a box drawn to scale: height and width from its grid, a bar for a vector."""
    first = data["input_shape"]
    scale = 96 / max([d for d in first[:2] if isinstance(d, int)] or [1])
    parts = []
    items = [{"name": "input", "output_shape": first, "type": "Input"}] + data["layers"]
    for item in items:
        shape = item["output_shape"] if isinstance(item["output_shape"], list) else []
        grid = len(shape) == 3 and all(isinstance(d, int) for d in shape)
        if grid:
            h, w, c = shape
            width, height = max(2, w * scale), max(2, h * scale)
            depth = min(12, 1 + int(math.log2(c)) * 2) if c > 1 else 0
            box = (f'<svg width="{width + depth + 2:.0f}" height="{height + depth + 2:.0f}" aria-hidden="true">'
                   f'<rect x="{depth + 1}" y="1" width="{width:.1f}" height="{height:.1f}" class="back"/>'
                   f'<rect x="1" y="{depth + 1}" width="{width:.1f}" height="{height:.1f}" class="front"/></svg>')
        else:
            units = shape[-1] if shape and isinstance(shape[-1], int) else 1
            length = min(120, 8 + 12 * math.log2(max(units, 1)))
            box = (f'<svg width="10" height="{length:.0f}" aria-hidden="true"><rect x="1" y="0" width="8" '
                   f'height="{length:.0f}" class="bar"/></svg>')
        anchor = f'href="#layer-{_e(item["name"])}"' if item["name"] != "input" else 'href="#input"'
        parts.append(f'<a class="node" {anchor}>{box}<span class="lname">{_e(item["name"])}</span>'
                     f'<span class="lshape">{_e(shape_text(item["output_shape"]))}</span></a>')
    return '<div class="flow">' + '<span class="arrow">→</span>'.join(parts) + "</div>"


def _field_box(entry: dict, input_shape: list, picture: str | None, size: int = 112) -> str:
    """The centre position's receptive field on the input, at its true size (an SVG over the input)."""
    f = entry["field"]
    shape = entry["output_shape"]
    if not f or len(f) != 2 or not isinstance(shape, list) or len(input_shape) < 2:
        return ""
    h, w = input_shape[0], input_shape[1]
    s = size / max(h, w)
    (rf_y, jump_y, start_y), (rf_x, jump_x, start_x) = f
    i, j = (shape[0] - 1) // 2, (shape[1] - 1) // 2
    top, left = start_y + i * jump_y - (rf_y - 1) / 2, start_x + j * jump_x - (rf_x - 1) / 2
    return (f'<svg class="field" width="{w * s:.0f}" height="{h * s:.0f}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="receptive field of position ({i}, {j})"><rect width="{w}" height="{h}" class="canvas"/>'
            + (f'<image href="{picture}" width="{w}" height="{h}" preserveAspectRatio="none" '
               f'style="image-rendering:pixelated"/>' if picture else "") +
            f'<rect x="{left}" y="{top}" width="{rf_x}" height="{rf_y}" class="rf"/></svg>'
            f'<div class="caption">position ({i}, {j}) sees {rf_y}×{rf_x} input pixels, rows {top:g} to '
            f'{top + rf_y - 1:g}, columns {left:g} to {left + rf_x - 1:g}</div>')


def _layer_section(entry: dict, data: dict) -> str:
    facts = [("type", entry["type"]), ("output", shape_text(entry["output_shape"])), ("parameters", f"{entry['params']:,}"),
             ("MACs", "-" if entry["macs"] is None else f"{entry['macs']:,}")]
    if entry["kernel"]:
        facts += [("kernel", "×".join(map(str, entry["kernel"]))), ("stride", "×".join(map(str, entry["strides"]))),
                  ("padding", entry["padding"]), ("dilation", "×".join(map(str, entry["dilation"])))]
        if entry["groups"] is not None:
            facts.append(("groups", entry["groups"]))
    if entry["receptive_field"]:
        facts.append(("receptive field", "×".join(map(str, entry["receptive_field"]))))
    body = ['<dl class="facts">' + "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts) + "</dl>"]
    if entry["arithmetic"]:
        lines = []
        axes = entry["arithmetic"]
        same = len(axes) > 1 and all(a["formula"] == axes[0]["formula"] for a in axes)
        for a in axes[:1] if same else axes:
            label = "rows and columns" if same else a["axis"]
            text = a["formula"] or f"{a['out']} (Keras's shape; the formula does not apply)"
            lines.append(f'<div class="formula"><span class="axis">{_e(label)}</span> <code>{_e(text)}</code></div>')
        body.append('<div class="arith">out = floor((in + pad<sub>left</sub> + pad<sub>right</sub> − d·(k − 1) − 1) / s) '
                    "+ 1" + "".join(lines) + "</div>")
        body.append(_field_box(entry, data["input_shape"], (data["input"] or {}).get("png")))
    maps = entry.get("feature_maps")
    if maps:
        layout = maps["layout"]
        note = (f"{maps['shown']} of {maps['channels']} channels" if maps["shown"] < maps["channels"]
                else f"{maps['channels']} channel{'s' if maps['channels'] != 1 else ''}")
        images = []
        shape = entry["output_shape"]
        for m in maps["maps"]:
            if layout == "grid":
                rows, cols = shape[-3], shape[-2]  # a 3-D layer's picture is one depth slice of it
                width = max(48, min(112, cols * 4))
                images.append(f'<figure><img class="fm" src="{m["png"]}" width="{width}" data-layer="{_e(entry["name"])}" '
                              f'data-h="{rows}" data-w="{cols}" alt="{_e(entry["name"])} channel '
                              f'{m["channel"]}"><figcaption>{m["channel"]}</figcaption></figure>')
            elif layout == "strips":
                images.append(f'<img class="strip fm1" src="{m["png"]}" style="height:{min(3 * maps["channels"], 384)}px" '
                              f'data-layer="{_e(entry["name"])}" data-l="{shape[0]}" '
                              f'alt="{_e(entry["name"])}: one row per channel, one column per position">')
            else:
                images.append(f'<img class="strip" src="{m["png"]}" style="height:24px" '
                              f'alt="{_e(entry["name"])}: one value per channel">')
        how = {"grid": "colour: each channel's own minimum to maximum; hover a position to see what it sees",
               "strips": "a row per channel, a column per position, each row from its own minimum to maximum; "
                         "hover a position to see its words",
               "vector": "one value per channel, all on one scale"}[layout]
        body.append(f'<div class="maps-title">feature maps: {_e(note)} ({_e(how)})</div><div class="maps {layout}">'
                    + "".join(images) + "</div>")
    return (f'<section class="layer" id="layer-{_e(entry["name"])}"><h3>{_e(entry["name"])}</h3>'
            + "".join(body) + "</section>")


def _input_panel(data: dict) -> str:
    shape = data["input_shape"]
    parts = ['<section id="input"><h2>Input</h2>']
    given = data["input"]
    if given is None:
        parts.append(f'<p>No input: {_e(shape_text(shape))} positions. Give an image or a text to see what each layer '
                     "makes of it.</p>")
        if len(shape) == 3:
            parts.append(f'<div class="view" data-h="{shape[0]}" data-w="{shape[1]}"><div class="blank"></div>'
                         '<div id="rfbox"></div></div>')
    elif given["kind"] == "image":
        parts.append(f'<div class="view" data-h="{shape[0]}" data-w="{shape[1]}"><img src="{given["png"]}" '
                     f'alt="the input as the model sees it"><div id="rfbox"></div></div>')
    if given is not None:
        parts.append(f'<p class="given">{_e(given["name"])}</p><ul class="steps">'
                     + "".join(f"<li>{_e(s)}</li>" for s in given["steps"]) + "</ul>")
    parts.append('<p id="rftext" class="caption">Hover a feature map: the box shows the input pixels that '
                 "position sees.</p>")
    if data["prediction"]:
        best = data["prediction"][0]["probability"] or 1
        parts.append('<h2>Prediction</h2><table class="pred">' + "".join(
            f'<tr><td>{_e(p["label"])}</td><td><span class="pbar" style="width:{90 * p["probability"] / best:.0f}px">'
            f'</span></td><td>{p["probability"]:.4f}</td></tr>' for p in data["prediction"]) + "</table>")
    parts.append("</section>")
    return "".join(parts)


def _tokens(data: dict) -> str:
    c = data["contributions"]
    if not c:
        return ""
    top = max((abs(t["contribution"]) for t in c["tokens"]), default=0) or 1.0
    spans = []
    for t in c["tokens"]:
        v = t["contribution"] / top
        colour = f"rgba(200,30,40,{v:.2f})" if v >= 0 else f"rgba(30,80,200,{-v:.2f})"
        spans.append(f'<span class="tok" data-i="{t["position"]}" style="background:{colour}" '
                     f'title="{t["contribution"]:+.4f}">{_e(t["word"] or "·")}</span>')
    return (f'<section id="tokens"><h2>What each word adds to “{_e(c["class"])}”</h2><p class="caption">'
            f'{_e(c["method"])}; red adds, blue takes away (strongest: {top:.4f}).</p><div class="text">'
            + " ".join(spans) + "</div></section>")


def _kernels_section(data: dict) -> str:
    k = data["kernels"]
    if not k:
        return ""
    shown = f"{k['shown']} of {k['filters']}" if k["shown"] < k["filters"] else f"all {k['filters']}"
    return (f'<section id="kernels"><h2>Kernels of {_e(k["layer"])}</h2><p class="caption">{_e(shown)} filters, '
            f'{_e(shape_text(k["shape"]))}: {_e(k["note"])}.</p><div class="maps grid">'
            + "".join(f'<img class="kernel {k.get("layout", "grid")}" src="{p}" alt="filter {i}">'
                      for i, p in enumerate(k["pictures"]))
            + "</div></section>")


def render(report: Report) -> str:
    data = report.data
    summary = (f"{data['params']:,} parameters, "
               + ("MACs not known" if data["macs"] is None else f"{data['macs']:,} MACs") + " per example"
               + ("" if data["trained"] else ", untrained"))
    body = [
        f'<header><h1>{_e(data["target"])}</h1><p>{_e(data["model"])}: {_e(summary)}</p>'
        + "".join(f'<p class="note">{_e(n)}</p>' for n in data["notes"]) + "</header>",
        f'<section id="flow"><h2>The layers</h2>{_flow(data)}</section>',
        '<div class="columns"><aside>' + _input_panel(data) + "</aside><main>",
        _tokens(data),
        _kernels_section(data),
        '<h2>Layer by layer</h2>',
        *(_layer_section(entry, data) for entry in data["layers"]),
        "</main></div>",
    ]
    template = Template(TEMPLATE.read_text(encoding="utf-8"))
    fields = json.dumps(report.fields).replace("</", "<\\/")
    return template.substitute(title=_e(f"{data['target']}: zoo explain"), body="\n".join(body), fields=fields)
