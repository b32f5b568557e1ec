"""Data loading: the real files in ../shared/data, and every kind of broken input."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from zoo.data.datasets import load_dataset, load_mnist, stratified_split
from zoo.errors import DataError

DATA = Path(os.environ["ZOO_DATA_DIR"])
MNIST = DATA / "mnist"
BBC = DATA / "bbc-news"


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(MNIST)


def test_real_mnist_matches_its_readme(mnist):
    assert mnist.x_train.shape == (60_000, 28, 28, 1) and mnist.x_test.shape == (10_000, 28, 28, 1)
    assert mnist.x_train.dtype == np.uint8
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert round(float(mnist.x_train.mean()), 3) == 33.318
    assert mnist.split == "official" and mnist.labels == [str(i) for i in range(10)]


def test_mnist_is_found_through_zoo_data_dir(mnist):
    found = load_dataset("mnist", kind="image", image_shape=(28, 28, 1))
    assert found.source == str(MNIST)
    np.testing.assert_array_equal(found.y_test, mnist.y_test)


def _write_idx(path: Path, magic: int, array: np.ndarray, compress: bool = False) -> Path:
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def _small_mnist(folder: Path, n_train=20, n_test=10, compress=False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    gz = ".gz" if compress else ""
    _write_idx(folder / f"train-images-idx3-ubyte{gz}", 0x803, rng.integers(0, 255, (n_train, 28, 28)), compress)
    _write_idx(folder / f"train-labels-idx1-ubyte{gz}", 0x801, np.arange(n_train) % 10, compress)
    _write_idx(folder / f"t10k-images-idx3-ubyte{gz}", 0x803, rng.integers(0, 255, (n_test, 28, 28)), compress)
    _write_idx(folder / f"t10k-labels-idx1-ubyte{gz}", 0x801, np.arange(n_test) % 10, compress)
    return folder


@pytest.mark.parametrize("compress", [False, True])
def test_raw_and_gzip_idx_and_npz(tmp_path, compress):
    folder = _small_mnist(tmp_path / "m", compress=compress)
    data = load_mnist(folder)
    assert data.x_train.shape == (20, 28, 28, 1) and data.y_test.tolist() == list(range(10))
    np.savez(tmp_path / "mnist.npz", x_train=data.x_train[..., 0], y_train=data.y_train,
             x_test=data.x_test[..., 0], y_test=data.y_test)
    from_npz = load_dataset(tmp_path / "mnist.npz", kind="image")
    np.testing.assert_array_equal(from_npz.x_train, data.x_train)


def test_wrong_idx_magic(tmp_path):
    folder = _small_mnist(tmp_path / "m")
    _write_idx(folder / "train-labels-idx1-ubyte", 0x803, np.zeros((20, 1, 1)))
    with pytest.raises(DataError) as err:
        load_mnist(folder)
    assert str(err.value) == f"{folder / 'train-labels-idx1-ubyte'}: wrong IDX magic 0x00000803, expected 0x00000801"


def test_truncated_idx(tmp_path):
    folder = _small_mnist(tmp_path / "m")
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError) as err:
        load_mnist(folder)
    assert str(err.value) == f"{path}: truncated: header says (10, 28, 28) = 7856 bytes, file has 7756"


def test_truncated_gzip(tmp_path):
    folder = _small_mnist(tmp_path / "m", compress=True)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=f"^{path}: cannot read"):
        load_mnist(folder)


def test_image_and_label_counts_disagree(tmp_path):
    folder = _small_mnist(tmp_path / "m")
    _write_idx(folder / "train-labels-idx1-ubyte", 0x801, np.arange(19) % 10)
    with pytest.raises(DataError) as err:
        load_mnist(folder)
    assert str(err.value) == f"{folder / 'train-images-idx3-ubyte'}: 20 images but train-labels-idx1-ubyte has 19 labels"


def test_missing_mnist_offline_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        load_dataset("mnist", kind="image")
    message = str(err.value)
    assert message.startswith("MNIST not found (looked in ")
    assert str(tmp_path / "empty" / "mnist") in message and str(tmp_path / "keras" / "datasets") in message
    assert message.endswith("point --data at a folder with the four MNIST IDX files or mnist.npz, or set ZOO_DATA_DIR")


def test_bbc_news_with_its_latin1_file():
    data = load_dataset(BBC, kind="text", seed=0)
    assert data.labels == ["business", "entertainment", "politics", "sports", "tech"]
    total = np.bincount(data.y_train) + np.bincount(data.y_test)
    assert total.tolist() == [510, 386, 417, 511, 401]
    assert len(data.y_test) == 444 and data.split == "stratified 80/20, seed 0"  # 20% of each class, rounded
    assert any("sports/199.txt: not UTF-8, read as Latin-1" in note for note in data.notes)
    assert all(isinstance(text, str) and text for text in data.x_train)
    again = load_dataset(BBC, kind="text", seed=0)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    other = load_dataset(BBC, kind="text", seed=1)
    assert not np.array_equal(other.x_test, data.x_test)


def test_stratified_split_keeps_class_proportions():
    y = np.repeat(np.arange(3), [50, 30, 20])
    keep, held = stratified_split(y, 0.2, seed=3)
    assert np.bincount(y[held]).tolist() == [10, 6, 4]
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == 100


def _csv(tmp_path, text: str, name="data.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_with_quoted_multiline_fields_string_labels_and_blank_lines(tmp_path):
    rows = ['id,review,sentiment']
    for i in range(10):
        rows.append(f'{i},"line one of {i},\nline two ""quoted""",{"good" if i % 2 else "bad"}')
        rows.append("")
    data = load_dataset(_csv(tmp_path, "\n".join(rows)), kind="text", seed=0)
    assert data.labels == ["bad", "good"]
    assert len(data.y_train) + len(data.y_test) == 10
    assert any('line two "quoted"' in t for t in data.x_train)


def test_csv_named_columns_and_latin1(tmp_path):
    text = "body;topic\n" + "\n".join(f"caf\xe9 {i};{i % 3}" for i in range(12))
    data = load_dataset(_csv(tmp_path, text, encoding="latin-1"), kind="text",
                        text_column="body", label_column="topic")
    assert data.labels == ["0", "1", "2"]
    assert any("café" in t for t in data.x_train) and "read as Latin-1" in data.notes[0]


@pytest.mark.parametrize(
    "content, kwargs, message",
    [
        ("words,label\na,1\nb,2\n", {}, "no text column found among: words, label; name it with --text-column"),
        ("text,label\na,1\nb,2\n", {"label_column": "cls"}, "no column 'cls'; columns are: text, label"),
        ("", {}, "empty CSV file"),
        ("text,label\na,x\nb,x\nc,x\n", {}, "only one class (x); a classifier needs at least two"),
        ("text,label\n,\n", {}, "no rows with both 'text' and 'label'"),
    ],
)
def test_bad_csv_files(tmp_path, content, kwargs, message):
    path = _csv(tmp_path, content)
    with pytest.raises(DataError) as err:
        load_dataset(path, kind="text", **kwargs)
    assert str(err.value) == f"{path}: {message}"


def _image_folder(root: Path, classes=("cat", "dog"), n=6, size=(20, 16)) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 80, (size[1], size[0], 3), dtype=np.uint8) + 120 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_image_folder_resized_to_the_model_input(tmp_path):
    data = load_dataset(_image_folder(tmp_path / "pets"), kind="image", image_shape=(12, 10, 3))
    assert data.x_train.shape[1:] == (12, 10, 3) and data.labels == ["cat", "dog"]
    assert len(data.y_train) + len(data.y_test) == 12
    gray = load_dataset(tmp_path / "pets", kind="image", image_shape=(28, 28, 1))
    assert gray.x_test.shape[1:] == (28, 28, 1)


def test_corrupt_image_is_skipped_with_a_warning_and_counted(tmp_path):
    root = _image_folder(tmp_path / "pets")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        data = load_dataset(root, kind="image", image_shape=(8, 8, 3))
    assert len(data.y_train) + len(data.y_test) == 12
    assert data.notes == [f"{root / 'dog' / 'broken.png'}: not a readable image (cannot identify image file "
                          f"'{root / 'dog' / 'broken.png'}')"]


def test_image_folder_without_images(tmp_path):
    (tmp_path / "x" / "a").mkdir(parents=True)
    (tmp_path / "x" / "a" / "readme.md").write_text("hi")
    (tmp_path / "x" / "b").mkdir()
    (tmp_path / "x" / "b" / "notes.txt").write_text("ho")
    with pytest.raises(DataError, match="holds text data, but the model takes image"):
        load_dataset(tmp_path / "x", kind="image", image_shape=(8, 8, 1))
    shutil.rmtree(tmp_path / "x" / "a")
    (tmp_path / "x" / "b" / "notes.txt").unlink()
    with pytest.raises(DataError, match="no class sub-folders with files in them"):
        load_dataset(tmp_path / "x", kind="image", image_shape=(8, 8, 1))


def test_single_class_folder(tmp_path):
    root = _image_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(DataError) as err:
        load_dataset(root, kind="image", image_shape=(8, 8, 3))
    assert str(err.value) == f"{root}: only one class (only); a classifier needs at least two"


def test_missing_path(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path / "nope", kind="image")
    assert str(err.value) == f"--data {tmp_path / 'nope'}: no such file or folder, and not a dataset name (mnist, imdb)"


# ---------------------------------------------------------------- MNIST's form, read from the pixels


def _clothes(n: int, seed: int = 0) -> np.ndarray:
    """Fashion-MNIST-like items: light shapes on black that fill most of the 28×28 field."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    for image in images:
        top, left = rng.integers(0, 3, 2)
        bottom, right = 28 - rng.integers(0, 3, 2)
        image[top:bottom, left:right] = rng.integers(60, 255)
    return images


def _clothes_folder(folder: Path, n_train: int, n_test: int) -> Path:
    """Those items in MNIST's four IDX files, as Fashion-MNIST ships them."""
    folder.mkdir()
    _write_idx(folder / "train-images-idx3-ubyte", 0x803, _clothes(n_train))
    _write_idx(folder / "t10k-images-idx3-ubyte", 0x803, _clothes(n_test, 1))
    _write_idx(folder / "train-labels-idx1-ubyte", 0x801, np.arange(n_train) % 10)
    _write_idx(folder / "t10k-labels-idx1-ubyte", 0x801, np.arange(n_test) % 10)
    return folder


def test_mnist_form_is_read_from_the_pixels_not_the_name(mnist, tmp_path):
    from zoo.data.digits import in_mnist_form

    assert in_mnist_form(mnist.x_train) and in_mnist_form(mnist.x_test)
    assert not in_mnist_form(_clothes(200)) and not in_mnist_form(255 - mnist.x_test)  # ink on white
    data = load_dataset(_clothes_folder(tmp_path / "fashion", 60, 20), kind="image", image_shape=(28, 28, 1))
    assert data.name == "fashion"  # named after its folder: not "mnist"
    assert load_dataset(MNIST, kind="image").name == "mnist" == load_dataset("mnist", kind="image").name


@pytest.mark.slow
def test_a_run_on_clothes_gets_no_digit_crop_and_a_run_on_digits_does(tmp_path, mnist):
    import zoo

    folder = _clothes_folder(tmp_path / "fashion", 200, 40)
    clothes = zoo.train("lenet", data=str(folder), out=str(tmp_path / "runs"), epochs=1, batch_size=32, verbose=0)
    assert clothes.card["dataset"]["name"] == "fashion" and clothes.card["preprocessing"]["normalize"] is None
    digits = zoo.train("lenet", data=str(MNIST), limit=300, out=str(tmp_path / "runs"), epochs=1, batch_size=32,
                       verbose=0)
    assert digits.card["preprocessing"]["normalize"]["name"] == "mnist"


def test_a_sample_across_classes_takes_each_in_turn():
    from zoo.data.datasets import sample_across_classes

    y = np.repeat([0, 1, 2], [50, 30, 5])  # sorted by class, as a class-folder dataset is
    chosen = sample_across_classes(y, 12, seed=0)
    assert np.bincount(y[chosen]).tolist() == [4, 4, 4] and len(set(chosen.tolist())) == 12
    few = sample_across_classes(y, 30, seed=0)  # class 2 runs out after 5 rounds: 0 and 1 take turns
    assert np.bincount(y[few]).tolist() == [13, 12, 5]
    assert sample_across_classes(y, 12, seed=0).tolist() == chosen.tolist()  # seeded
    assert len(sample_across_classes(y, 1000)) == len(y)
