"""Datasets: MNIST (IDX or npz), text (class folders, CSV, IMDB) and image folders.

`load_dataset(spec, ...)` returns a `Dataset` of NumPy arrays with a train and
a test split. Named datasets are looked up in the given path, then
`$ZOO_DATA_DIR/<name>/`, then the Keras cache, and only then downloaded
(never when `ZOO_OFFLINE=1`). Every problem with the files is a `DataError`
that names the file and what is wrong with it.
"""

from __future__ import annotations

import csv
import gzip
import math
import io
import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import DataError, ZooWarning

NAMED = ("mnist", "imdb")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
TEXT_COLUMNS = ("text", "review", "sentence", "content", "body", "document", "message", "tweet", "article")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment", "y")
TEST_FRACTION = 0.2
SPLIT_SEED = 0  # the test split is part of the dataset: every run and seed is measured on the same one
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass
class Dataset:
    name: str
    kind: str  # "image" or "text"
    labels: list[str]
    x_train: np.ndarray  # images: uint8 (N, H, W, C); text: object array of str
    y_train: np.ndarray  # int32 class indices
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where it was read from
    split: str  # "official", or how the test split was made
    notes: list[str] = field(default_factory=list)  # skipped files, re-decoded files
    labelled: bool = True  # False: a folder of images with no classes, for calibration and agreement only

    def describe(self) -> dict:
        if not self.labelled:
            return {"name": self.name, "kind": self.kind, "source": self.source, "split": self.split,
                    "labelled": False, "examples": int(len(self.x_test)), "notes": self.notes}
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "split": self.split,
            "train_examples": int(len(self.y_train)),
            "test_examples": int(len(self.y_test)),
            "class_counts_train": np.bincount(self.y_train, minlength=len(self.labels)).tolist(),
            "notes": self.notes,
        }


def data_dir() -> Path | None:
    value = os.environ.get("ZOO_DATA_DIR")
    return Path(value) if value else None


def keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


def offline() -> bool:
    return os.environ.get("ZOO_OFFLINE", "") not in ("", "0")


# ---------------------------------------------------------------- splitting


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): `fraction` of every class held out, at least one per class with two or more."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n = int(round(len(idx) * fraction))
        n = min(max(n, 1 if len(idx) > 1 else 0), len(idx) - 1)
        held.append(idx[:n])
        keep.append(idx[n:])
    keep_idx, held_idx = np.concatenate(keep), np.concatenate(held)
    return np.sort(keep_idx), np.sort(held_idx)


def sample_across_classes(y: np.ndarray, n: int, seed: int = SPLIT_SEED) -> np.ndarray:
    """Indices of up to `n` examples, taken from every class in turn (each class shuffled with
    `seed`), in sorted order. The first n of a class-folder dataset are all of its first class:
    int8 calibrated on them saw one class's activations."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y == cls)) for cls in np.unique(y)]
    rounds = max((len(idx) for idx in per_class), default=0)
    order = [idx[i] for i in range(rounds) for idx in per_class if i < len(idx)]
    return np.sort(np.asarray(order[:n], dtype=np.int64))


def _finish(name, kind, labels, x, y, source, seed, notes, test=None) -> Dataset:
    """Check the classes, and split off a seeded stratified test set when there is no official one."""
    y = np.asarray(y, dtype=np.int32)
    if len(y) == 0:
        raise DataError(f"{source}: no examples found")
    present = np.unique(y)
    if len(labels) < 2 or len(present) < 2:
        raise DataError(
            f"{source}: only one class ({labels[int(present[0])] if len(labels) else '?'}); "
            "a classifier needs at least two"
        )
    if test is not None:
        return Dataset(name, kind, labels, x, y, test[0], np.asarray(test[1], np.int32), source, "official", notes)
    train_idx, test_idx = stratified_split(y, TEST_FRACTION, seed)
    split = f"stratified {int((1 - TEST_FRACTION) * 100)}/{int(TEST_FRACTION * 100)}, seed {seed}"
    return Dataset(name, kind, labels, x[train_idx], y[train_idx], x[test_idx], y[test_idx], source, split, notes)


# ---------------------------------------------------------------- MNIST


def _open_maybe_gz(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, big-endian header), raw or gzip-compressed."""
    data = _open_maybe_gz(path)
    if len(data) < 8:
        raise DataError(f"{path}: truncated IDX file ({len(data)} bytes, no header)")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise DataError(f"{path}: wrong IDX magic 0x{magic:08x}, expected 0x{expected_magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    # Python's integers: np.prod in int64 wraps, and dims (2097152, 2097152, 4194304) gave 0,
    # which a 16-byte file "matched" before reshape failed with a traceback
    expected = header + math.prod(dims)
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{path}: {kind}: header says {dims} = {expected} bytes, file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _mnist_from_folder(folder: Path):
    paths = {key: _find(folder, stem) for key, stem in MNIST_FILES.items()}
    if all(paths.values()):
        arrays = {}
        for key, path in paths.items():
            arrays[key] = read_idx(path, 0x803 if key.startswith("x") else 0x801)
        for split in ("train", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if len(x) != len(y):
                raise DataError(
                    f"{paths[f'x_{split}']}: {len(x)} images but {paths[f'y_{split}'].name} has {len(y)} labels"
                )
        return arrays, str(folder)
    if (folder / "mnist.npz").is_file():
        return _mnist_npz(folder / "mnist.npz")
    return None


def _mnist_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in MNIST_FILES}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(f"{path}: not a readable mnist.npz ({exc})") from None
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise DataError(f"{path}: x_{split} and y_{split} hold different numbers of examples")
    return arrays, str(path)


def load_mnist(path: Path | None = None) -> Dataset:
    """MNIST from `path`, `$ZOO_DATA_DIR/mnist`, the Keras cache, or a download. Files of MNIST's
    format at a path are named after it (`fashion/` is "fashion", not "mnist")."""
    looked = []
    candidates = [path] if path is not None else []
    if data_dir() is not None:
        candidates.append(data_dir() / "mnist")
    candidates.append(keras_cache())
    found = None
    for folder in candidates:
        looked.append(str(folder))
        if folder.is_file() and folder.suffix == ".npz":
            found = _mnist_npz(folder)
        elif folder.is_dir():
            found = _mnist_from_folder(folder)
        if found:
            break
        if folder is path:
            raise DataError(
                f"{path}: no MNIST files there; expected the four IDX files "
                f"({', '.join(MNIST_FILES.values())}, raw or .gz) or mnist.npz"
            )
    if not found:
        found = _download_mnist(looked)
    arrays, source = found
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    if x_train.ndim != 3 or x_test.ndim != 3:
        raise DataError(f"{source}: MNIST images must be N×rows×cols, got {x_train.shape}")
    labels = [str(i) for i in range(10)]
    for y in (arrays["y_train"], arrays["y_test"]):
        if y.size and int(y.max()) > 9:
            raise DataError(f"{source}: MNIST label {int(y.max())} is out of range 0-9")
    name = "mnist" if path is None else (Path(path).stem if Path(path).is_file() else Path(path).resolve().name)
    return _finish(
        name, "image", labels, x_train[..., None], arrays["y_train"], source, 0, [],
        test=(x_test[..., None], arrays["y_test"]),
    )


def _download_mnist(looked: list[str]):
    where = "; ".join(looked)
    fix = "point --data at a folder with the four MNIST IDX files or mnist.npz, or set ZOO_DATA_DIR"
    if offline():
        raise DataError(f"MNIST not found (looked in {where}) and ZOO_OFFLINE is set; {fix}")
    try:
        from zoo.backend import keras

        (x_train, y_train), (x_test, y_test) = keras().datasets.mnist.load_data()
    except Exception as exc:  # network errors come in many types
        raise DataError(f"MNIST not found (looked in {where}) and the download failed ({exc}); {fix}") from None
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return arrays, str(keras_cache() / "mnist.npz")


# ---------------------------------------------------------------- text


def read_text(path: Path) -> tuple[str, bool]:
    """A text file as str: UTF-8, else Latin-1 (which decodes any bytes). Returns (text, re-decoded)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return raw.decode("latin-1"), True


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _text_folder(folder: Path) -> tuple[list[str], list[str], list[int], list[str]]:
    classes = _class_folders(folder)
    texts, y, notes = [], [], []
    for index, cls in enumerate(classes):
        for file in sorted(p for p in cls.iterdir() if p.is_file() and not p.name.startswith(".")):
            text, latin = read_text(file)
            if latin:
                notes.append(f"{file}: not UTF-8, read as Latin-1")
            texts.append(text)
            y.append(index)
    return [c.name for c in classes], texts, y, notes


def _class_folders_dataset(folder: Path, kind: str, read, to_array, missing: str, seed: int,
                           name: str | None = None) -> Dataset:
    """One sub-folder per class, or train/ and test/ folders of them (whose split is then kept).

    `read(folder)` returns (labels, examples, classes, notes); `to_array` stacks the examples.
    """
    split = (folder / "train").is_dir() and (folder / "test").is_dir()
    train_dir = folder / "train" if split else folder
    labels, x, y, notes = read(train_dir)
    if not x:
        raise DataError(f"{train_dir}: {missing}")
    test = None
    if split:
        test_labels, xt, yt, test_notes = read(folder / "test")
        if test_labels != labels:
            raise DataError(f"{folder}: train/ has classes {labels} but test/ has {test_labels}")
        notes, test = notes + test_notes, (to_array(xt), yt)
    return _finish(name or folder.name, kind, labels, to_array(x), y, str(folder), seed, notes, test=test)


def load_text_folder(folder: Path, seed: int = SPLIT_SEED, name: str | None = None) -> Dataset:
    """One sub-folder per class (like `text_dataset_from_directory`), or train/ and test/ folders of them."""
    return _class_folders_dataset(folder, "text", _text_folder, lambda texts: np.array(texts, dtype=object),
                                  "no text files found in class sub-folders", seed, name)


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, path: Path) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"{path}: no column '{wanted}'; columns are: {', '.join(columns)}")
        return wanted
    lowered = {c.lower().strip(): c for c in columns}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    flag = "--text-column" if what == "text" else "--label-column"
    raise DataError(f"{path}: no {what} column found among: {', '.join(columns)}; name it with {flag}")


def load_csv(path: Path, text_column: str | None = None, label_column: str | None = None, seed: int = SPLIT_SEED) -> Dataset:
    """A CSV file with a text column and a label column (quoted multi-line fields allowed)."""
    content, latin = read_text(path)
    try:
        sniffed = [csv.Sniffer().sniff(content[:4096], delimiters=",;\t|")]
    except csv.Error:
        sniffed = []
    # The sniffer guesses from the first 4 KB and can guess wrong (a ';' in a text of a comma file):
    # its guess first, then each delimiter in turn, and the first whose header has the columns wins
    dialects = sniffed + [type("Delimited", (csv.excel,), {"delimiter": d}) for d in ",;\t|"]
    failure = None
    for dialect in dialects:
        try:
            reader = csv.DictReader(io.StringIO(content, newline=""), dialect=dialect)
            rows = list(reader)
        except csv.Error as exc:
            failure = failure or DataError(f"{path}: not a readable CSV file ({exc})")
            continue
        # the header's names; cells beyond the header (DictReader files them under None) have none
        columns = [column for column in reader.fieldnames or [] if column is not None]
        if not columns:
            failure = failure or DataError(f"{path}: empty CSV file")
            continue
        try:
            text_col = _pick(columns, text_column, TEXT_COLUMNS, "text", path)
            label_col = _pick(columns, label_column, LABEL_COLUMNS, "label", path)
        except DataError as exc:
            failure = failure or exc  # the sniffer's reading says what is missing
            continue
        break
    else:
        raise failure
    pairs = [
        ((row.get(text_col) or "").strip(), (row.get(label_col) or "").strip())
        for row in rows
    ]
    pairs = [(t, label) for t, label in pairs if t and label]  # blank lines, missing cells
    if not pairs:
        raise DataError(f"{path}: no rows with both '{text_col}' and '{label_col}'")
    labels = sorted({label for _, label in pairs}, key=_label_order)
    index = {label: i for i, label in enumerate(labels)}
    notes = [f"{path}: not UTF-8, read as Latin-1"] if latin else []
    skipped = len(rows) - len(pairs)
    if skipped:
        notes.append(f"{path}: {skipped} rows without text or label skipped")
    x = np.array([t for t, _ in pairs], dtype=object)
    y = [index[label] for _, label in pairs]
    return _finish(path.stem, "text", labels, x, y, str(path), seed, notes)


def _label_order(label: str):
    """Numeric labels in numeric order ('2' < '10'), others alphabetically."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def load_imdb(path: Path | None = None, seed: int = SPLIT_SEED) -> Dataset:
    """IMDB reviews as the aclImdb folder (train/ and test/ with neg/ and pos/)."""
    candidates = [path] if path else []
    if data_dir() is not None:
        candidates += [data_dir() / "imdb", data_dir() / "imdb" / "aclImdb"]
    candidates += [keras_cache() / "aclImdb"]
    for folder in candidates:
        if (folder / "train" / "pos").is_dir() and (folder / "test" / "pos").is_dir():
            return _imdb_folder(folder, seed)
    where = "; ".join(str(c) for c in candidates)
    fix = "point --data at the aclImdb folder, or set ZOO_DATA_DIR"
    if offline():
        raise DataError(f"IMDB not found (looked in {where}) and ZOO_OFFLINE is set; {fix}")
    try:
        from zoo.backend import keras

        archive = keras().utils.get_file(
            "aclImdb_v1.tar.gz", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz", extract=True
        )
    except Exception as exc:
        raise DataError(f"IMDB not found (looked in {where}) and the download failed ({exc}); {fix}") from None
    folder = next(Path(archive).parent.rglob("aclImdb"), None) if not Path(archive).is_dir() else Path(archive)
    return _imdb_folder(folder if folder and folder.name == "aclImdb" else Path(archive) / "aclImdb", seed)


def _imdb_folder(folder: Path, seed: int) -> Dataset:
    def split(name):
        texts, y = [], []
        for index, cls in enumerate(("neg", "pos")):
            for file in sorted((folder / name / cls).glob("*.txt")):
                texts.append(read_text(file)[0].replace("<br />", " "))
                y.append(index)
        return np.array(texts, dtype=object), y

    x, y = split("train")
    xt, yt = split("test")
    return _finish("imdb", "text", ["neg", "pos"], x, y, str(folder), seed, [], test=(xt, yt))


# ---------------------------------------------------------------- images


def _image_folder(folder: Path, shape) -> tuple[list[str], list[np.ndarray], list[int], list[str]]:
    from zoo.data.images import read_resized

    classes = _class_folders(folder)
    images, y, bad = [], [], []
    for index, cls in enumerate(classes):
        for file in sorted(p for p in cls.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                images.append(read_resized(file, shape)[0])
                y.append(index)
            except DataError as exc:
                bad.append(str(exc))
    if bad:
        warnings.warn(f"{folder}: skipped {len(bad)} unreadable image(s), first: {bad[0]}", ZooWarning, stacklevel=3)
    return [c.name for c in classes], images, y, bad


def load_image_folder(folder: Path, shape: tuple[int, int, int], seed: int = SPLIT_SEED) -> Dataset:
    """One sub-folder per class of PNG/JPEG/BMP/GIF images, resized to `shape` (height, width, channels).

    Unreadable images are skipped with a warning and counted in the dataset notes.
    """
    shape = tuple(shape)

    def stack(images):
        return np.stack(images) if images else np.zeros((0, *shape), np.uint8)

    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    return _class_folders_dataset(folder, "image", lambda f: _image_folder(f, shape), stack,
                                  f"no images found (one sub-folder per class, files ending {suffixes})", seed)


# ---------------------------------------------------------------- entry point


def folder_kind(folder: Path) -> str | None:
    """'image' or 'text' by what the class folders hold."""
    root = folder / "train" if (folder / "train").is_dir() else folder
    for cls in _class_folders(root):
        for file in cls.rglob("*"):
            if file.is_file() and not file.name.startswith("."):
                return "image" if file.suffix.lower() in IMAGE_SUFFIXES else "text"
    return None


def load_dataset(
    spec: str | os.PathLike,
    *,
    kind: str,
    image_shape: tuple[int, int, int] | None = None,
    seed: int = SPLIT_SEED,
    text_column: str | None = None,
    label_column: str | None = None,
) -> Dataset:
    """Load a named dataset (`mnist`, `imdb`) or a path, for a model that takes `kind` ('image' or 'text')."""
    spec_str = str(spec)
    if spec_str.lower() in NAMED and not Path(spec_str).exists():
        dataset = load_mnist() if spec_str.lower() == "mnist" else load_imdb(seed=seed)
    else:
        path = Path(spec_str)
        if not path.exists() and os.sep not in spec_str and data_dir() is not None and (data_dir() / spec_str).exists():
            path = data_dir() / spec_str  # a dataset folder by its name, as $ZOO_DATA_DIR holds it (bbc-news)
        if not path.exists():
            raise DataError(f"--data {spec_str}: no such file or folder, and not a dataset name ({', '.join(NAMED)})")
        if path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".txt"):
            dataset = load_csv(path, text_column, label_column, seed)
        elif path.is_file() and path.suffix.lower() == ".npz" and _arrays_npz(path):
            dataset = load_arrays(path, kind, seed)
        elif path.is_file() and path.suffix.lower() == ".npz" or _mnist_like(path):
            dataset = load_mnist(path)
        elif path.is_dir() and _loose_images(path):
            dataset = load_unlabeled_images(path, image_shape or (28, 28, 1))
        elif path.is_dir() and (path / "train" / "pos").is_dir() and (path / "test" / "neg").is_dir():
            dataset = load_imdb(path, seed)
        elif path.is_dir():
            found = folder_kind(path)
            if found is None:
                raise DataError(f"{path}: no class sub-folders with files in them")
            if found == "image":
                dataset = load_image_folder(path, image_shape or (28, 28, 1), seed)
            else:
                dataset = load_text_folder(path, seed)
        else:
            raise DataError(f"{path}: not a dataset: expected a folder of class sub-folders, a CSV file, or MNIST files")
    if dataset.kind == "tensor":  # arrays as the model takes them: their shape is checked against its input
        return dataset
    if dataset.kind != kind:
        raise DataError(f"{dataset.source} holds {dataset.kind} data, but the model takes {kind}")
    if kind == "image" and image_shape is not None and dataset.x_train.shape[1:] != tuple(image_shape):
        raise DataError(
            f"{dataset.source}: images are {'×'.join(map(str, dataset.x_train.shape[1:]))}, "
            f"the model takes {'×'.join(map(str, image_shape))}"
        )
    return dataset


def _arrays_npz(path: Path) -> bool:
    """An .npz of the user's own arrays (`x` and `y`), not MNIST's four."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {"x", "y"} <= set(f.files)
    except (OSError, ValueError, EOFError):
        return False


def load_arrays(path: Path, kind: str, seed: int = SPLIT_SEED) -> Dataset:
    """An .npz holding `x` and `y` (and `x_test`, `y_test` for an official split; `labels` optional).

    uint8 `x` of rank 3 or 4 is pixels, preprocessed as the model's record says; text `x` (strings)
    is tokenized; any other `x` (floats, token ids) is the model's input tensor as it is."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})") from None
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y):
        raise DataError(f"{path}: x holds {len(x)} examples and y {len(y)}; they must match")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise DataError(f"{path}: y must be class indices (whole numbers from 0), one per example; "
                        f"got {y.dtype} of shape {y.shape}")
    classes = int(max(y.max(initial=0), arrays.get("y_test", y).max(initial=0))) + 1
    labels = [str(v) for v in arrays["labels"]] if "labels" in arrays else [str(i) for i in range(classes)]
    if x.dtype == np.uint8 and x.ndim in (3, 4):
        found = "image"
        arrays = {k: (v[..., None] if k.startswith("x") and v.ndim == 3 else v) for k, v in arrays.items()}
    elif x.dtype.kind in "US":
        found = "text"
    else:
        found = "tensor"
    if found != "tensor" and found != kind:
        raise DataError(f"{path} holds {found} data, but the model takes {kind}")
    test = (arrays["x_test"], arrays["y_test"]) if {"x_test", "y_test"} <= arrays.keys() else None
    x = arrays["x"] if found != "text" else x.astype(object)
    if test is not None and found == "text":
        test = (test[0].astype(object), test[1])
    return _finish(path.stem, found, labels, x, y, str(path), seed, [], test=test)


def _loose_images(folder: Path) -> bool:
    """A folder of images with no class sub-folders."""
    return not _class_folders(folder) and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def load_unlabeled_images(folder: Path, shape) -> Dataset:
    """Images with no classes: they calibrate int8 and measure agreement with Keras, not accuracy.
    Every one of them serves both."""
    from zoo.data.images import read_resized

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    images, bad = [], []
    for file in files:
        try:
            images.append(read_resized(file, tuple(shape))[0])
        except DataError as exc:
            bad.append(str(exc))
    if bad:
        warnings.warn(f"{folder}: skipped {len(bad)} unreadable image(s), first: {bad[0]}", ZooWarning, stacklevel=3)
    if not images:
        raise DataError(f"{folder}: no readable images")
    x = np.stack(images)
    none = np.full(len(x), -1, np.int32)
    return Dataset(Path(folder).resolve().name, "image", [], x, none, x, none, str(folder),
                   "unlabeled: every image calibrates and is compared with Keras", [], labelled=False)


def _mnist_like(path: Path) -> bool:
    return path.is_dir() and any(_find(path, stem) for stem in MNIST_FILES.values())
