"""The code base stays lint-clean (ruff) and type-checks (mypy), both configured in pyproject.toml; GIMP 2.10's
Python 2.7 syntax is checked by tests/test_bridge_py27.py."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from helpers import ROOT


def _tool(name: str) -> str:
    """A pinned tool of the test extra (setup.cfg): the suite fails rather than skips without it."""
    tool = shutil.which(name) or str(ROOT / ".venv" / "bin" / name)
    assert shutil.which(tool), f"{name} is not installed: pip install -e '.[test]' (python3 install.py --test does)"
    return tool


def _ruff() -> str:
    return _tool("ruff")


def test_ruff_finds_nothing():
    res = subprocess.run([_ruff(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_code_is_formatted():
    """``ruff format`` leaves every file as it is (the Python 2.7 files are excluded in pyproject.toml)."""
    res = subprocess.run(
        [_ruff(), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, "run `.venv/bin/ruff format .`:\n" + res.stdout + res.stderr


@pytest.mark.slow
def test_types_check(tmp_path):
    """mypy over the package and the plug-ins' Python 3 side (files and strictness in pyproject.toml)."""
    res = subprocess.run(
        [_tool("mypy"), "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, "run `.venv/bin/mypy`:\n" + res.stdout + res.stderr


def test_plugin_side_imports_only_the_standard_library():
    """GIMP's own Python runs the bridge and registration: no numpy, torch or project imports there."""
    import ast

    py2_stdlib = {"Queue", "StringIO", "cStringIO", "ConfigParser", "__builtin__"}  # GIMP 2.10 runs Python 2.7
    allowed = (
        set(sys.stdlib_module_names)
        | py2_stdlib
        | {
            "gi",
            "gimpfu",
            "gimp",
            "gimpenums",
            "bridge",
            "s2crnet_gimp3",
            "s2crnet_common",
            "s2crnet_filter",
            "s2crnet_resident",
        }
    )
    for path in list((ROOT / "plugin").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            )
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.relative_to(ROOT)} imports {name}"
