"""Models from other packages: `zoo.models` entry points, loaded at the first lookup, named in `zoo list`.

Each test installs a fake distribution without pip: a module and its `.dist-info` (METADATA and
entry_points.txt) in tmp_path, put on sys.path, which is all importlib.metadata reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

import zoo
from zoo.cli import main
from zoo.errors import ZooWarning
from zoo.models import plugins, registry

PLUGIN = '''
from zoo import register_model

SIDE_EFFECT = "zoo_fake_plugin was imported"


@register_model(
    "fake_name",
    task="image",
    reference="LeCun et al. 1989",
    counts={"input_shape": (8, 8, 1), "params": 650, "macs": 640},
)
def fake_name(input_shape: tuple[int, ...] = (8, 8, 1), num_classes: int = 10):
    """A one-layer softmax classifier on 8x8 images (LeCun et al. 1989's smallest net, flattened)."""
    from zoo.backend import keras

    k = keras()
    inputs = k.Input(shape=input_shape)
    outputs = k.layers.Dense(num_classes, activation="softmax")(k.layers.Flatten()(inputs))
    return k.Model(inputs, outputs, name="fake_name")
'''


@pytest.fixture
def install(tmp_path, monkeypatch):
    """install(module, source, entry=..., package=...): a fake installed distribution whose
    `zoo.models` entry point names `module`; the registry forgets every plugin before and after."""
    modules = []

    def make(module: str, source: str, *, entry: str = "fake", package: str = "zoo-fake-plugin"):
        (tmp_path / module).mkdir()
        (tmp_path / module / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = tmp_path / f"{package.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[zoo.models]\n{entry} = {module}\n", encoding="utf-8")
        modules.append(module)

    monkeypatch.syspath_prepend(str(tmp_path))
    plugins._reset()
    yield make
    # the registry is one per process: the rest of the suite must not see these models
    for module in modules:
        sys.modules.pop(module, None)
    monkeypatch.undo()
    plugins._reset()


def _invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Warning:")]


def test_a_plugin_model_is_listed_with_its_package(install):
    install("zoo_fake_plugin", PLUGIN)
    result = _invoke("list")
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if "fake_name" in line]
    assert "zoo-fake-plugin" in line and "LeCun et al. 1989" in line
    assert "package" in result.stdout  # the column's header

    rows = {row["name"]: row for row in json.loads(_invoke("list", "--json").stdout)}
    assert rows["fake_name"]["package"] == "zoo-fake-plugin"
    assert rows["fake_name"]["params"] == 650 and rows["fake_name"]["task"] == "image"
    assert rows["lenet5"]["package"] is None
    assert zoo.get_entry("fake_name").source == "zoo-fake-plugin"
    assert zoo.get_entry("lenet5").source is None


def test_zoo_own_table_has_no_package_column(install):
    result = _invoke("list")
    assert result.exit_code == 0
    assert "package" not in result.stdout and "lenet5" in result.stdout


def test_create_model_builds_a_plugin_model(install):
    install("zoo_fake_plugin", PLUGIN)
    model = zoo.create_model("fake_name", num_classes=3)
    assert model.name == "fake_name" and model.output_shape == (None, 3)
    assert model.count_params() == 8 * 8 * 3 + 3


def test_a_broken_plugin_is_one_warning_and_zoo_keeps_working(install):
    install("zoo_broken_plugin", '''
        from zoo import register_model

        @register_model("half_made", task="image", reference="-", counts={})
        def half_made():
            """Registered before the error: left out with the rest."""

        import nope  # noqa: F401
    ''', entry="broken", package="zoo-broken")
    result = _invoke("list")
    assert result.exit_code == 0, result.output
    assert _warnings(result) == [
        "Warning: plugin 'broken' (package zoo-broken) failed to load: ModuleNotFoundError: "
        "No module named 'nope'; its models are left out"
    ]
    assert "lenet5" in result.stdout and "mnist_cnn" in result.stdout
    assert "half_made" not in zoo.list_models()
    assert _warnings(_invoke("list")) == []  # loaded once: no second warning


def test_a_plugin_with_a_syntax_error_is_one_warning(install):
    install("zoo_syntax_plugin", "def broken(:\n", entry="typo", package="zoo-typo")
    with pytest.warns(ZooWarning, match=r"plugin 'typo' \(package zoo-typo\) failed to load: SyntaxError") as caught:
        assert "lenet5" in zoo.list_models()
    assert len(caught) == 1


def test_a_name_taken_already_is_one_warning_and_zoo_keeps_its_model(install):
    install("zoo_fake_plugin", PLUGIN + '''

@register_model("lenet5", task="text", reference="an impostor", counts=None)
def impostor():
    """Never registered: zoo's lenet5 is there first."""
''')
    result = _invoke("list", "--json")
    assert result.exit_code == 0
    assert _warnings(result) == [
        "Warning: package zoo-fake-plugin registers model 'lenet5', but 'lenet5' is zoo's own model; "
        "its 'lenet5' is left out"
    ]
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["lenet5"]["reference"] == "LeCun et al. 1998" and rows["lenet5"]["package"] is None
    assert rows["fake_name"]["package"] == "zoo-fake-plugin"  # the rest of the plugin still counts


def test_zoo_own_duplicate_is_still_an_error():
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_model("lenet5", task="image", reference="-")(lambda: None)


def test_import_zoo_loads_no_plugin(install, tmp_path):
    install("zoo_fake_plugin", PLUGIN)
    code = ("import sys, zoo; "
            "assert 'zoo_fake_plugin' not in sys.modules and 'importlib.metadata' not in sys.modules; "
            "assert 'fake_name' in zoo.list_models() and 'zoo_fake_plugin' in sys.modules")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
