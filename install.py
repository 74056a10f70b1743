#!/usr/bin/env python3
"""Set up S2CRNet Harmonize: virtual environment, dependencies, GIMP plug-ins, and a demo run.

    python3 install.py            set up, register the plug-ins with every GIMP found, harmonize the sample
    python3 install.py --test     the same set-up plus test tools, then run the whole test suite
    python3 install.py --flatpak  also give the Flathub GIMP a worker inside its sandbox (its own Python)

Standard library only (it runs before anything is installed). Re-runs are fast: the dependency step is skipped
when setup.cfg and pyproject.toml have not changed since the last successful install.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".s2crnet-installed"
MIN_PY = (3, 9)


def say(msg: str) -> None:
    print(f"[install] {msg}", flush=True)


def fail(msg: str) -> NoReturn:  # type: ignore[name-defined]  # noqa: F821
    print(f"[install] error: {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], **kw) -> None:
    say("$ " + " ".join(str(c) for c in cmd))
    res = subprocess.run([str(c) for c in cmd], **kw)
    if res.returncode != 0:
        fail(f"command failed with exit status {res.returncode}: {' '.join(str(c) for c in cmd)}")


def dependency_key(extras: str) -> str:
    h = hashlib.sha256(extras.encode())
    for name in ("setup.cfg", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def ensure_venv(extras: str) -> Path:
    """Create .venv and install the project (editable, so resources/ is found) unless already up to date."""
    py = venv_python()
    if not py.exists():
        say(f"creating virtual environment {VENV}")
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    key = dependency_key(extras)
    if STAMP.exists() and STAMP.read_text().strip() == key:
        say("dependencies up to date")
        return py
    spec = f".[{extras}]" if extras else "."
    # torch is pinned exactly in setup.cfg (torch==2.13.0, the CPU build): a looser pin pulls a multi-GB CUDA build.
    run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", spec], cwd=ROOT)
    STAMP.write_text(key + "\n")
    return py


def _plugin_module(name: str):
    """A module of plugin/ (standard library only): registration.py, sandbox.py."""
    sys.path.insert(0, str(ROOT / "plugin"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def flatpak_worker(py: Path) -> str:
    """Set up the worker inside the Flatpak GIMP's sandbox (plugin/sandbox.py); its interpreter's path."""
    sandbox = _plugin_module("sandbox")
    why = sandbox.flatpak_installed()
    if why:
        fail(f"--flatpak: {why}")
    try:
        return sandbox.setup_worker(sandbox.flatpak_sandbox(), ROOT, py, say=say)
    except sandbox.SandboxError as exc:
        fail(f"--flatpak: {exc}")


def register_plugins(
    py: Path, gimp_dirs: list[Path] | None, uninstall: bool, flatpak_python: str | None = None
) -> None:
    """Install into every GIMP folder; a Flatpak GIMP's folders name the worker inside its sandbox when one was
    set up (now or by an earlier ``--flatpak``), else they get a hint."""
    registration, sandbox = _plugin_module("registration"), _plugin_module("sandbox")
    flatpak = sandbox.flatpak_sandbox()
    if flatpak_python is None and not uninstall:
        flatpak_python = sandbox.ready_python(flatpak)

    def python_for(folder: Path) -> Path | None:
        return Path(flatpak_python) if flatpak_python and sandbox.is_flatpak_folder(folder) else None

    dirs = [Path(d).expanduser() for d in gimp_dirs] if gimp_dirs else registration.find_gimp_dirs()
    for line in registration.install(
        venv_python=py, project_dir=ROOT, gimp_dirs=dirs or None, uninstall=uninstall, python_for=python_for
    ):
        say(line)
    data = flatpak.host_path(flatpak.data_dir)
    if uninstall and data.is_dir():
        shutil.rmtree(data)
        say(f"removed the Flatpak GIMP's worker venv {data}")
    if not uninstall and not flatpak_python and any(sandbox.is_flatpak_folder(d) for d in dirs):
        say(
            "the Flatpak GIMP runs plug-ins in a sandbox that cannot start this venv's Python: run "
            "`python3 install.py --flatpak` once to give it a worker of its own"
        )
    if not uninstall and any(sandbox.is_snap_folder(d) for d in dirs):
        say(f"note: {sandbox.SNAP_UNSUPPORTED}")


def check_dialog_libraries(py: Path) -> None:
    """The Qt dialog needs X11 libraries that minimal Linux installs lack; say so now rather than in GIMP."""
    if not sys.platform.startswith("linux"):
        return
    code = "from s2crnet.dialog.run import xcb_missing_message as m; print(m() or '')"
    res = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=False)
    note = res.stdout.strip() or (res.stderr.strip().splitlines() or [""])[-1]
    if note:
        say(f"note: the interactive dialog will not open yet: {note}")


def demo(py: Path) -> None:
    out = ROOT / "out"
    run([py, "-m", "s2crnet", "demo", "--out", out], cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    if sys.version_info < MIN_PY:
        fail(f"Python {sys.version.split()[0]} is too old; run this with Python 3.9 or newer.")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", action="store_true", help="install test tools and run the whole test suite")
    ap.add_argument(
        "--gimp-dir",
        action="append",
        type=Path,
        metavar="DIR",
        help="a GIMP user folder (e.g. ~/.config/GIMP/3.0) to install into, instead of searching; repeatable",
    )
    ap.add_argument("--uninstall", action="store_true", help="remove the plug-ins from every GIMP folder and stop")
    ap.add_argument("--no-demo", action="store_true", help="skip harmonizing the bundled sample")
    ap.add_argument(
        "--flatpak",
        action="store_true",
        help="also set up the worker inside the Flathub GIMP's sandbox, with its own Python (downloads "
        "CPU torch and the other wheels for it with this machine's pip)",
    )
    ap.add_argument("pytest_args", nargs="*", help="with --test: extra arguments for pytest (after --)")
    args = ap.parse_args(argv)

    if args.uninstall:
        register_plugins(venv_python(), args.gimp_dir, uninstall=True)
        return 0
    py = ensure_venv("train,test" if args.test else "")
    register_plugins(py, args.gimp_dir, uninstall=False, flatpak_python=flatpak_worker(py) if args.flatpak else None)
    check_dialog_libraries(py)
    if args.test:
        say("running the test suite")
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
        return subprocess.run([str(py), "-m", "pytest", "-ra", *args.pytest_args], cwd=ROOT, env=env).returncode
    if not args.no_demo:
        demo(py)
    return 0


if __name__ == "__main__":
    sys.exit(main())
