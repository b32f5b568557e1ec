"""Shared fixtures: real data through ZOO_DATA_DIR, models built once per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ZOO_DATA_DIR", str(ROOT.parent / "shared" / "data"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["ZOO_OFFLINE"] = "1"  # a missing dataset is an error here, never a download
# the speed probe's cache is the user's; tests keep their own, and train with the fixed split (its
# default) unless a test unsets this: a probing run and a cached one may pick different pools
os.environ.setdefault("ZOO_CACHE_DIR", tempfile.mkdtemp(prefix="zoo-test-cache-"))
os.environ.setdefault("ZOO_CPU_SHARDS", "2")


@pytest.fixture(scope="session")
def keras():
    from zoo.backend import keras as _keras

    return _keras()


@pytest.fixture(scope="session")
def registry_model():
    """Build each registry model once per session (image_cnn alone holds 85M weights)."""
    import zoo

    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = zoo.create_model(name)
        return cache[name]

    return get


@pytest.fixture
def zoo_home(tmp_path, monkeypatch):
    """An empty output folder for runs."""
    home = tmp_path / "runs"
    home.mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    return home
