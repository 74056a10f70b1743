"""The files GIMP 2.10 runs must be Python 2.7: no python2.7 exists on Debian 12, so an AST check rejects every
Python-3-only construct, and the GIMP 2 plug-in is imported under Python 3 against a gimpfu fake."""

from __future__ import annotations

import ast
import py_compile
from pathlib import Path

import pytest
from plugin_helpers import GIMP2_FILE, ROOT

PY27_FILES = [ROOT / "plugin" / "bridge.py", ROOT / "plugin" / "s2crnet_common.py", GIMP2_FILE]


def py3_only(tree: ast.AST) -> list[str]:
    """Python-3-only syntax found in ``tree``, as 'line: what' strings."""
    found = []

    def add(node, what):
        found.append(f"{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            add(node, "f-string")
        elif isinstance(node, ast.Nonlocal):
            add(node, "nonlocal")
        elif isinstance(node, (ast.AsyncFunctionDef, ast.AsyncFor, ast.AsyncWith, ast.Await)):
            add(node, "async/await")
        elif isinstance(node, ast.YieldFrom):
            add(node, "yield from")
        elif isinstance(node, ast.AnnAssign):
            add(node, "variable annotation")
        elif isinstance(node, ast.NamedExpr):
            add(node, "walrus :=")
        elif isinstance(node, ast.MatchAs) or type(node).__name__ == "Match":
            add(node, "match statement")
        elif isinstance(node, ast.Starred) and isinstance(getattr(node, "ctx", None), ast.Store):
            add(node, "starred assignment")
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            a = node.args
            if a.kwonlyargs:
                add(node, "keyword-only arguments")
            if a.posonlyargs:
                add(node, "positional-only arguments")
            if isinstance(node, ast.FunctionDef) and node.returns is not None:
                add(node, "return annotation")
            for arg in a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
                if arg.annotation is not None:
                    add(node, "argument annotation")
        elif isinstance(node, ast.Raise) and node.cause is not None:
            add(node, "raise ... from")
        elif isinstance(node, ast.Call) and any(isinstance(x, ast.Starred) for x in node.args[1:]) and node.keywords:
            pass
        elif isinstance(node, ast.Constant) and isinstance(node.value, type(...)):
            add(node, "Ellipsis literal")
        elif isinstance(node, ast.ClassDef) and node.keywords:
            add(node, "class keywords (metaclass=)")
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)) and any(isinstance(e, ast.Starred) for e in node.elts):
            add(node, "unpacking in a display")
        elif isinstance(node, ast.Dict) and any(k is None for k in node.keys):
            add(node, "** in a dict display")
    return found


def needs_print_function(source: str, tree: ast.AST) -> bool:
    """print() as a function needs ``from __future__ import print_function`` under 2.7."""
    uses = any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print" for n in ast.walk(tree))
    return uses and "print_function" not in source


@pytest.mark.parametrize("path", PY27_FILES, ids=lambda p: p.name)
def test_file_has_no_python3_only_syntax(path: Path, tmp_path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert py3_only(tree) == []
    assert not needs_print_function(source, tree)
    assert source.splitlines()[1].startswith("# -*- coding: utf-8") or source.splitlines()[0].startswith(
        "# -*- coding: utf-8"
    ), "Python 2.7 needs a coding line for non-ASCII text"
    py_compile.compile(str(path), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_checker_catches_python3_constructs():
    bad = (
        "f'{x}'\n"
        "def f(a, *, b): nonlocal q\n"
        "def g(x: int) -> int: yield from x\n"
        "async def h(): pass\n"
        "y: int = 1\n"
        "raise A from B\n"
        "[*a]\n"
    )
    kinds = {line.split(": ", 1)[1] for line in py3_only(ast.parse(bad))}
    assert {
        "f-string",
        "keyword-only arguments",
        "nonlocal",
        "argument annotation",
        "return annotation",
        "yield from",
        "async/await",
        "variable annotation",
        "raise ... from",
        "unpacking in a display",
    } <= kinds
