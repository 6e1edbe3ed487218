"""Every test folder has a layer marker (tests/conftest.py), and the markers are registered."""

from __future__ import annotations

import pytest

from tests.conftest import LAYER_OF_FOLDER, LAYERS, REPO_ROOT, layer_of


def test_every_folder_with_tests_has_a_layer() -> None:
    folders = {p.relative_to(REPO_ROOT / "tests").parts[0] for p in (REPO_ROOT / "tests").rglob("test_*.py")}
    assert folders, "no test files found"
    assert folders <= set(LAYER_OF_FOLDER), f"folders without a layer: {sorted(folders - set(LAYER_OF_FOLDER))}"
    assert set(LAYER_OF_FOLDER.values()) == set(LAYERS)


def test_the_layer_is_the_folder_under_tests() -> None:
    assert layer_of(REPO_ROOT / "tests" / "unit" / "test_wire.py") == "unit"
    assert layer_of(REPO_ROOT / "tests" / "integration" / "functions" / "tasks" / "app.py") == "integration"
    assert layer_of(REPO_ROOT / "tests" / "test_at_the_top.py") is None
    assert layer_of(REPO_ROOT / "tests" / "nowhere" / "test_x.py") is None


def test_the_markers_are_registered() -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        markers = tomllib.load(f)["tool"]["pytest"]["ini_options"]["markers"]
    assert sorted(m.split(":")[0] for m in markers) == sorted(LAYERS)
