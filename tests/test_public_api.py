"""The README's Python API, run exactly as printed there in a fresh interpreter (the names must be the functions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Python API\s+```python\n(.*?)```", text, re.S)
    assert block, "README has a Python API example"
    return block.group(1)


def test_readme_python_api_runs_in_a_fresh_interpreter(tmp_path):
    code = _readme_snippet()
    assert "from s2crnet import Curves, harmonize, predict_curves" in code
    check = code + (
        "import s2crnet, types\n"
        "assert callable(harmonize) and callable(predict_curves) and isinstance(curves, Curves)\n"
        "assert isinstance(s2crnet.harmonize, types.FunctionType) and s2crnet.harmonize is harmonize\n"
        "assert result.shape == composite.shape and result.dtype == composite.dtype\n"
        "assert (result != composite).any() and (weaker != result).any()\n"
        "print('ok')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", check.replace("resources/", str(ROOT / "resources") + "/")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "ok"


def test_each_public_name_imports_alone_in_a_fresh_interpreter():
    for name in ("harmonize", "predict_curves", "Curves", "Engine"):
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from s2crnet import {name}; import s2crnet, s2crnet.engine; "
                f"assert getattr(s2crnet, {name!r}) is {name}; "
                f"assert not isinstance({name}, type(s2crnet))",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, f"from s2crnet import {name}: {run.stderr[-1500:]}"
