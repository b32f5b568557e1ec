"""`--target mobile`: a .tflite file that MediaPipe Tasks loads as it is, on Android, iOS and the web.

MediaPipe's ImageClassifier and TextClassifier (and Android Studio's ML Model Binding) read what they
need from TFLite metadata inside the file, not from zoo's JSON sidecar: the labels, the input's
normalization and, for text, the tokenizer. This module makes that file and checks it:

- the model as the task runs it (`wrap`): a grayscale model takes RGB (the luminance, 0.299 R +
  0.587 G + 0.114 B, is a 1×1 convolution inside the graph: ImageClassifier refuses a 1-channel
  input, "depth = 3 or 4"); a one-unit sigmoid becomes two probabilities, one per label;
- batch 1, float16 weights, or full-integer int8 with uint8 input (raw pixels: the task feeds a
  quantized model the image's bytes) and uint8 output;
- the metadata, built with MediaPipe's own `metadata_info` tables and put into the file through
  the flatbuffer schema (`populate`): MediaPipe 1.2.3's `MetadataPopulator` fails to import (its
  `mediapipe.tasks.cc` extension is not in the wheel), while the schema's generated code and
  `metadata_info` are plain Python and import;
- text: MediaPipe's RegexTokenizer with a vocabulary of "token id" lines, which reproduces zoo's
  WORDS tokenization id for id (zoo.data.preprocess): the same delimiter regex, and each lower-case
  word listed in its lower, Capitalized and UPPER spellings under one id;
- verified in MediaPipe Tasks' Python API, the C++ task graph that Android and iOS run (`check`):
  the test split through ImageClassifier or TextClassifier, top-1 against Keras, and every
  category name against the card's labels.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import numpy as np

from zoo.errors import ConfigError, ExportError

INSTALL = "pip install 'zoo[mobile]'"
LABELS_FILE = "labels.txt"
VOCAB_FILE = "vocab.txt"
LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's convert("L")
# top-1 agreement with Keras that the file must reach in MediaPipe Tasks (the parity rules)
AGREEMENT = {"float16": 0.995, "int8": 0.99}
# the metadata schema version that each part needs (mediapipe/tasks/cc/metadata/metadata_version.cc):
# a vocabulary file 1.0.1, a RegexTokenizer 1.2.1; the rest is 1.0.0
PARSER_VERSION = {"image": "1.0.0", "text": "1.2.1"}
ACCEPTS = ("MediaPipe's ImageClassifier takes an image (H×W×1 or H×W×3 pixels) and its TextClassifier a text "
           "(token ids of a zoo vocabulary)")


def needs() -> None:
    """MediaPipe Tasks, said in one line before anything is loaded (found, not imported: importing
    it imports TensorFlow)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("mediapipe") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(f"--target mobile writes and checks its file with MediaPipe: {INSTALL}")


def _mediapipe():
    """mediapipe, imported after TensorFlow is (quietly, zoo.backend), its own chatter silenced."""
    from zoo.backend import keras, native_output_silenced

    keras()
    with native_output_silenced():
        import mediapipe
        from mediapipe.tasks.metadata import metadata_schema_py_generated  # noqa: F401
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_info  # noqa: F401
        from mediapipe.tasks.python import text, vision  # noqa: F401
    return mediapipe


def task_of(model) -> str:
    """'image' or 'text': the task API that runs the model; one line naming what they take if neither."""
    shape = tuple(model.inputs[0].shape[1:])
    dtype = str(model.inputs[0].dtype)
    if len(shape) == 3 and shape[-1] in (1, 3) and "float" in dtype:
        return "image"
    if len(shape) == 1 and "int" in dtype:
        return "text"
    raise ExportError(f"--target mobile: model '{model.name}' takes {'×'.join(map(str, shape))} {dtype} inputs; "
                      f"{ACCEPTS}; export it with --format tflite instead")


def before(name: str, model, board) -> None:
    task_of(model)


def check_card(card, model) -> None:
    """What the card must say for the task: an image's scaling or a text's vocabulary, as many
    labels as the model has outputs, and for text the WORDS tokenization, the one a MediaPipe
    tokenizer reproduces. One line each, before converting."""
    from zoo.data.preprocess import WORDS

    if card.kind not in ("image", "text"):
        raise ExportError(f"--target mobile: {card.run} takes its {card.kind} input as it is, and MediaPipe's tasks "
                          "take an image or a text: give an image model --normalize, a text model --vocab FILE")
    classes = max(2, int(model.output.shape[-1]))
    if len(card.labels) != classes:
        raise ExportError(f"--target mobile: {card.run} has {len(card.labels)} labels for {classes} classes; "
                          "give --labels with one per class")
    standardize = card.preprocessing.get("standardize", "lower_and_strip_punctuation")
    if card.kind == "text" and standardize != WORDS and card.source:
        raise ExportError(
            f"--target mobile: {card.run}'s vocabulary is read as Keras's {standardize}, which deletes punctuation "
            "inside words; no tokenizer that MediaPipe reads does that, so a model file's text model cannot be "
            f"exported for phones; train one with zoo train text_cnn --data ... (zoo's '{WORDS}' tokenization)")
    if card.kind == "text" and standardize != WORDS:
        raise ExportError(
            f"--target mobile: {card.run} tokenizes text as {standardize}, which deletes punctuation inside "
            f"words (\"don't\" -> \"dont\"); no tokenizer that MediaPipe reads does that. Train it again with "
            f"this zoo (zoo train {card.model} --data ...), whose '{WORDS}' tokenization MediaPipe's "
            "RegexTokenizer reproduces id for id")


def wrap(model, card):
    """The model as the task runs it: RGB in for a grayscale model, two probabilities out for a
    one-unit sigmoid; the model itself where neither applies."""
    from zoo.backend import keras

    k = keras()
    spec = model.inputs[0]
    shape, changed = tuple(spec.shape[1:]), False
    if card.kind == "text":
        x = inputs = k.Input(shape=shape, dtype="int32", name="ids")  # the RegexTokenizer's int32 [1, L]
    else:
        x = inputs = k.Input(shape=(*shape[:2], 3), dtype="float32", name="image")
        if shape[-1] == 1:
            luminance = k.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="luminance")
            x = luminance(x)
            luminance.set_weights([np.array(LUMINANCE, np.float32).reshape(1, 1, 3, 1)])
            changed = True
    y = model(x)
    if model.output.shape[-1] == 1:
        y = k.layers.Concatenate(name="probabilities")([1 - y, y])
        changed = True
    return k.Model(inputs, y, name=model.name) if changed or card.kind == "text" else model


def calibration(job) -> np.ndarray:
    """int8's calibration set in the wrapped model's input: RGB for a grayscale model, with an
    all-black and an all-white image, so that the uint8 input's scale is the card's (one pixel
    level a step) and its zero point the card's mean."""
    x = job.calibration
    if job.card.kind == "text":
        return x
    pre = job.card.preprocessing
    ends = np.stack([np.full(x.shape[1:], level * pre["scale"] + pre["offset"], np.float32) for level in (0, 255)])
    x = np.concatenate([ends, x]).astype(np.float32)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def write(job, path: Path, quantize: str, convert) -> None:
    """The wrapped model converted by `convert` (the exporter's TFLite converter, batch 1), then its
    metadata."""
    check_card(job.card, job.model)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain.tflite"
        convert(wrap(job.model, job.card), plain, quantize=quantize,
                calibration=calibration(job) if quantize == "int8" else None, mobile=True)
        path.write_bytes(populate(plain.read_bytes(), job.card, Path(tmp), job.folder))


def normalization(card) -> tuple[float, float]:
    """The card's x = pixel * scale + offset as MediaPipe's (pixel - mean) / std."""
    pre = card.preprocessing
    return -pre["offset"] / pre["scale"] + 0.0, 1 / pre["scale"]


def general(card) -> dict:
    """What the metadata says of the model: the card's name, description, version, author, license."""
    from zoo import __version__

    accuracy = card.test_accuracy
    dataset = card.dataset.get("name") or "data it was not given"
    description = card.description or (
        f"{card.model} trained on {dataset}" + (f": {accuracy:.2%} top-1 on its test split" if accuracy else "") +
        " (zoo)")
    return {"name": card.run, "description": description, "version": (card.date or "")[:10] or __version__,
            "author": card.author or f"zoo {__version__}", "licenses": card.license}


def populate(model: bytes, card, tmp: Path, folder: Path) -> bytes:
    """`model` with TFLite metadata for its task and the associated files packed after it."""
    _mediapipe()
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mediapipe.tasks.metadata import schema_py_generated as schema
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info as info
    from mediapipe.tasks.python.metadata.metadata_writers import writer_utils

    labels = tmp / LABELS_FILE
    labels.write_text("\n".join(card.labels) + "\n", encoding="utf-8")
    files = [labels]
    index_labels = _index_labels(card)
    described = ("class indices: the model came without labels (give --labels)" if index_labels
                 else f"one per label: {', '.join(card.labels[:10])}{', ...' if len(card.labels) > 10 else ''}")
    if card.kind == "text":
        from zoo.data.preprocess import DELIMITER

        vocab = tmp / VOCAB_FILE
        vocab.write_text(tokenizer_vocabulary(card, folder), encoding="utf-8")
        files.append(vocab)
        tokens = card.preprocessing["sequence_length"]
        inputs = info.InputTextTensorMd(
            name="text", description=f"Token ids of the text, padded with <PAD> or cut to {tokens}",
            tokenizer_md=info.RegexTokenizerMd(delim_regex_pattern=DELIMITER, vocab_file_path=str(vocab)))
    else:
        mean, std = normalization(card)
        inputs = info.InputImageTensorMd(
            name="image", description=_image_description(card), norm_mean=[mean], norm_std=[std],
            color_space_type=fb.ColorSpaceType.RGB, tensor_type=writer_utils.get_input_tensor_types(model)[0])
    outputs = info.ClassificationTensorMd(
        name="probabilities", description=f"Probabilities of the {len(card.labels)} classes, {described}",
        label_files=[info.LabelFileMd(str(labels))], tensor_type=writer_utils.get_output_tensor_types(model)[0])
    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [inputs.create_metadata()]
    subgraph.outputTensorMetadata = [outputs.create_metadata()]
    metadata = info.GeneralMd(**general(card)).create_metadata()
    metadata.subgraphMetadata = [subgraph]
    metadata.minParserVersion = PARSER_VERSION[card.kind]
    for tensor in (*subgraph.inputTensorMetadata, *subgraph.outputTensorMetadata):
        for unit in tensor.processUnits or []:  # the vocabulary's path: its name in the zip
            if getattr(unit.options, "vocabFile", None):
                for f in unit.options.vocabFile:
                    f.name = Path(f.name.decode() if isinstance(f.name, bytes) else f.name).name
        for f in tensor.associatedFiles or []:
            f.name = Path(f.name.decode() if isinstance(f.name, bytes) else f.name).name
    built = flatbuffers.Builder(0)
    built.Finish(metadata.Pack(built), b"M001")
    # the model's Metadata entry "TFLITE_METADATA" points at a buffer holding it, as the
    # TFLite schema has it (and MediaPipe's MetadataPopulator does)
    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(bytes(built.Output()), np.uint8)
    tree.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "TFLITE_METADATA", len(tree.buffers) - 1
    tree.metadata = [m for m in tree.metadata or [] if m.name not in (b"TFLITE_METADATA", "TFLITE_METADATA")] + [entry]
    built = flatbuffers.Builder(0)
    built.Finish(tree.Pack(built), b"TFL3")
    out = tmp / "with_metadata.tflite"
    out.write_bytes(bytes(built.Output()))
    with zipfile.ZipFile(out, "a") as archive:  # the associated files: a zip after the flatbuffer
        for f in files:
            archive.write(f, f.name)
    return out.read_bytes()


def _index_labels(card) -> bool:
    """A model file taken in without --labels: its labels are its class indices (zoo.models.adopted)."""
    return str((card.source or {}).get("labels", "")).startswith("class indices")


def _image_description(card) -> str:
    pre = card.preprocessing
    h, w, c = pre["input_shape"]
    form = ("a digit in MNIST's form: light ink on black, fitted into 20×20 and centred by mass "
            "(docs/mobile.md: the app does this)" if pre.get("normalize") else "the whole picture")
    return f"A {w}×{h} RGB image{' (read as its luminance)' if c == 1 else ''}, {form}"


def tokenizer_vocabulary(card, folder: Path) -> str:
    """The RegexTokenizer's vocabulary: <PAD> 0, <UNKNOWN> 1, then each token in every spelling that
    WORDS reads as it (zoo.data.preprocess.spellings), under its id."""
    from zoo.data.preprocess import from_spec, spellings

    vocabulary = from_spec(card.preprocessing, folder).vocabulary
    lines = [f"<PAD> {card.preprocessing['padding_id']}", f"<UNKNOWN> {card.preprocessing['oov_id']}"]
    for index, token in enumerate(vocabulary[2:], start=2):
        lines += [f"{spelling} {index}" for spelling in spellings(token)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- in MediaPipe Tasks


def classify(path: Path, card, inputs) -> np.ndarray:
    """Class probabilities (N, classes) from MediaPipe Tasks' own classifier for the file: uint8
    images (N, H, W, C) through ImageClassifier, texts through TextClassifier; each category's name
    must be the card's label of its index."""
    mp = _mediapipe()
    from mediapipe.tasks.python.core.base_options import BaseOptions

    from zoo.backend import native_output_silenced

    base = BaseOptions(model_asset_path=str(path))
    probs = np.zeros((len(inputs), len(card.labels)), np.float32)
    try:
        with native_output_silenced():  # the task graph logs its setup from C++
            _classify(mp, base, card, inputs, probs)
    except ExportError:
        raise
    except Exception as exc:  # the task graph's errors are C++ status texts, many lines long
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"mobile export: MediaPipe could not run the file: {first}; nothing was written") from None
    return probs


def _classify(mp, base, card, inputs, probs) -> None:
    """Fill `probs` from the task for the file, one input at a time."""
    if card.kind == "text":
        from mediapipe.tasks.python import text

        task = text.TextClassifier.create_from_options(text.TextClassifierOptions(base_options=base, max_results=-1))
        call = lambda item: task.classify(str(item))  # noqa: E731
    else:
        from mediapipe.tasks.python import vision

        task = vision.ImageClassifier.create_from_options(
            vision.ImageClassifierOptions(base_options=base, max_results=-1))

        def call(pixels):
            rgb = np.ascontiguousarray(np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels)
            return task.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    with task:
        for row, item in enumerate(inputs):
            for category in call(item).classifications[0].categories:
                if category.category_name != card.labels[category.index]:
                    raise ExportError(f"mobile export: MediaPipe reads class {category.index} as "
                                      f"'{category.category_name}', the card as '{card.labels[category.index]}'")
                probs[row, category.index] = category.score


def pixels(card, x: np.ndarray) -> np.ndarray:
    """The uint8 pixels that the card's scaling turned into `x` (pixel = (x - offset) / scale)."""
    pre = card.preprocessing
    return np.clip(np.round((np.asarray(x, np.float64) - pre["offset"]) / pre["scale"]), 0, 255).astype(np.uint8)


def check(job, runner, path: Path, target, board) -> dict:
    """The file in MediaPipe Tasks on the test split: its top-1 against Keras's, at the parity rule
    of its quantization; one line and nothing written below it."""
    mediapipe = _mediapipe()

    quantize = "int8" if np.dtype(runner.input["dtype"]) == np.uint8 or runner.output["dtype"] == np.uint8 else "float16"
    task = "TextClassifier" if job.card.kind == "text" else "ImageClassifier"
    if job.card.kind == "text":
        if job.texts is None:
            raise ExportError("--target mobile checks the tokenizer on texts, and this run has none to read: "
                              "give --data SPEC")
        inputs = job.texts
    else:
        inputs = pixels(job.card, job.x_test)
    probs = classify(path, job.card, inputs)
    agreement = float((probs.argmax(1) == job.keras_probs.argmax(1)).mean())
    report = {"runtime": f"MediaPipe Tasks {mediapipe.__version__} {task}", "examples": int(len(inputs)),
              "top1_agreement": round(agreement, 6),
              "accuracy": float((probs.argmax(1) == job.y_test).mean()) if job.y_test is not None else None,
              "threshold": AGREEMENT[quantize], "metadata": metadata_summary(job.card)}
    report["passed"] = agreement >= AGREEMENT[quantize]
    if not report["passed"]:
        raise ExportError(f"mobile/{quantize} export disagrees with the Keras model in MediaPipe's {task}: top-1 "
                          f"agreement {agreement:.4%} (needs {AGREEMENT[quantize]:.1%}); nothing was written")
    return report


def metadata_summary(card) -> dict:
    """What the file's metadata holds, for the sidecar and export.json."""
    summary = {**general(card), "labels": f"{LABELS_FILE}: class indices (the model came without labels)"
               if _index_labels(card) else LABELS_FILE}
    if card.kind == "text":
        from zoo.data.preprocess import DELIMITER

        summary["tokenizer"] = {"type": "RegexTokenizer", "delim_regex_pattern": DELIMITER, "vocab_file": VOCAB_FILE}
    else:
        mean, std = normalization(card)
        summary["normalization"] = {"mean": mean, "std": std}
    return summary
