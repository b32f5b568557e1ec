"""The package as pip builds and installs it: the top-level cli/ lands as zoo.cli, never as `cli`.

Each test builds from a copy of the sources in a temporary folder, so nothing is
written into the checkout, and runs what it installed from a folder that holds
no sources (the checkout's own zoo/ would otherwise shadow the installed one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # pip builds the project: about 2 s each


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("sources") / "zoo-src"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, copy / name)
    for folder in ("zoo", "cli"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _pip(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def _run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """A `zoo` console script from `site`, with the test environment's dependencies beside it."""
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([str(site / "bin" / "zoo"), *args], capture_output=True, text=True, cwd=cwd, env=env)


def _where_cli(site: Path, cwd: Path, *, process_pth: bool) -> str:
    """The file `zoo.cli` is imported from, with `site` as a site folder (its .pth files read) or on the path.

    `-S`: the test environment's own site folder, and the install of zoo it may hold, stay out."""
    load = f"import site; site.addsitedir({str(site)!r})" if process_pth else f"import sys; sys.path.insert(0, {str(site)!r})"
    code = f"{load}; import importlib.util; print(importlib.util.find_spec('zoo.cli').origin, importlib.util.find_spec('cli'))"
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=cwd,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_wheel_holds_the_command_line_as_zoo_cli(sources, tmp_path):
    _pip("wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(sources))
    (wheel,) = (tmp_path / "dist").glob("zoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = sorted(p.name for p in (ROOT / "cli").glob("*.py"))
    assert {"__init__.py", "__main__.py", "app.py", "train.py", "export.py", "predict.py"} <= set(modules)
    assert {f"zoo/cli/{m}" for m in modules} <= names
    assert not [n for n in names if n.startswith("cli/")], "a generic top-level 'cli' package would collide"
    assert "zoo/cli.py" not in names
    # the pretrained weights, with their cards (and the text model's vocabulary), and within budget
    for name in ("lenet5.mnist", "mnist_cnn.mnist", "mnist_cnn_dropout.mnist", "text_cnn.bbc_news"):
        assert {f"zoo/weights/{name}.weights.h5", f"zoo/weights/{name}.json"} <= names, name
    assert "zoo/weights/text_cnn.bbc_news.vocab.txt" in names
    # the verified float32 files that let predict skip TensorFlow, each with its sidecar
    for name in ("lenet5.mnist", "mnist_cnn.mnist"):
        assert {f"zoo/weights/{name}.tflite", f"zoo/weights/{name}.tflite.json"} <= names, name
    (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert "Apache License\n                           Version 2.0" in zipfile.ZipFile(wheel).read(license_file).decode()
    added = sum(info.file_size for info in zipfile.ZipFile(wheel).infolist() if info.filename.startswith("zoo/weights/"))
    assert added <= 12 * 1024 * 1024

    site = tmp_path / "site"
    _pip("install", "--no-deps", "--target", str(site), str(wheel))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    origin, generic = _where_cli(site, elsewhere, process_pth=False)
    assert Path(origin) == site / "zoo" / "cli" / "__init__.py" and generic == "None"
    version = _run_installed(site, elsewhere, "--version")
    assert version.returncode == 0 and version.stdout.startswith("zoo, version "), version.stderr
    listed = _run_installed(site, elsewhere, "list", "lenet*", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["lenet5"]
    assert [p["name"] for p in json.loads(listed.stdout)[0]["pretrained"]] == ["lenet5.mnist"]
    # from the install alone, with no dataset and no training: a digit read by the pretrained LeNet-5
    import numpy as np
    from PIL import Image

    page = np.full((160, 120), 225, np.uint8)
    page[40:120, 55:63] = 30  # a one, written in dark ink
    Image.fromarray(page).save(elsewhere / "one.png")
    predicted = _run_installed(site, elsewhere, "predict", "lenet5.mnist", "one.png", "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)[0]["predictions"][0]["label"] == "1"
    # from the packaged .tflite in LiteRT: no fallback to Keras, so no warning and no run folder written
    assert predicted.stderr == "" and not (elsewhere / "saved_models").exists()
    # and the explain page, whose template is package data
    assert "zoo/inspect/templates/explain.html" in names
    explained = _run_installed(site, elsewhere, "explain", "lenet5.mnist", "one.png", "-o", "one.html")
    assert explained.returncode == 0, explained.stderr
    assert "c3" in (elsewhere / "one.html").read_text(encoding="utf-8")


def test_an_editable_install_reads_cli_from_the_checkout(sources, tmp_path):
    site = tmp_path / "editable"
    _pip("install", "--no-deps", "--target", str(site), "-e", str(sources))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    origin, generic = _where_cli(site, elsewhere, process_pth=True)
    assert Path(origin) == sources / "cli" / "__init__.py" and generic == "None"
