"""plugin/sandbox.py (``install.py --flatpak``): what runs inside the sandbox, and its failures in words.

The whole set-up — venv with the sandbox's own Python, wheels downloaded by the host's pip, pip run from its
wheel inside, GIMP harmonizing with that worker — runs for real in tests/e2e/test_gimp3_sandbox.py (a chroot as
the sandbox). Here: the pieces a Flatpak run depends on that no chroot shows, and the messages.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from plugin_helpers import ROOT

sys.path.insert(0, str(ROOT / "plugin"))
import sandbox

sys.path.pop(0)


def host_sandbox(data_dir: Path) -> sandbox.Sandbox:
    """This machine as the 'sandbox' (programs run as they are), to drive the real probe and its errors."""
    return sandbox.Sandbox(
        "this machine",
        lambda program, env: ["env", *(f"{k}={v}" for k, v in env.items()), program],
        str(data_dir),
        python=sys.executable,
    )


def test_every_requirement_of_setup_cfg_has_a_module_that_proves_it():
    reqs = sandbox.requirements(ROOT)
    assert reqs["torch"].startswith("torch==") and set(reqs) == set(sandbox.IMPORT_NAMES)


def test_flatpak_commands_run_inside_the_app_with_its_data_folder(tmp_path):
    sb = sandbox.flatpak_sandbox(home=tmp_path)
    assert sb.argv("python3", {"PYTHONPATH": "/p/core"}) == [
        "flatpak",
        "run",
        "--command=python3",
        "--env=PYTHONPATH=/p/core",
        "org.gimp.GIMP",
    ]
    assert sb.data_dir == str(tmp_path / ".var/app/org.gimp.GIMP/data/s2crnet")
    assert sb.host_path(sb.data_dir) == Path(sb.data_dir)  # same path inside and outside
    assert sandbox.is_flatpak_folder(tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.0")
    assert not sandbox.is_flatpak_folder(tmp_path / ".config/GIMP/3.0")
    assert sandbox.is_snap_folder(tmp_path / "snap/gimp/current/.config/GIMP/3.0")


def test_platform_tags_follow_the_sandbox_glibc_and_refuse_what_has_no_wheels():
    found = sandbox.Probe((3, 13), "x86_64", "glibc 2.41", True)
    tags = found.platforms()
    assert found.tag == "cp313" and tags[0] == "manylinux_2_41_x86_64" and "manylinux_2_17_x86_64" in tags
    assert tags[-1] == "manylinux2014_x86_64" and "manylinux_2_16_x86_64" not in tags
    with pytest.raises(sandbox.SandboxError, match="glibc Linux"):
        sandbox.Probe((3, 12), "x86_64", "", True).platforms()  # musl: no manylinux torch


def test_the_probe_reports_the_real_interpreter_and_what_it_imports(tmp_path):
    found = sandbox.probe(host_sandbox(tmp_path), sys.executable, ROOT, ["numpy", "no_such_module_here"])
    assert found.version == sys.version_info[:2] and found.sees_project
    import numpy

    assert found.modules == {"numpy": numpy.__version__, "no_such_module_here": None}


def test_a_python_that_cannot_run_inside_is_named(tmp_path):
    sb = host_sandbox(tmp_path)
    sb.python = str(tmp_path / "python3")
    Path(sb.python).write_text(
        "#!/bin/sh\necho 'error while loading shared libraries: libpython3.13.so' >&2\nexit 127\n"
    )
    os.chmod(sb.python, 0o755)
    with pytest.raises(
        sandbox.SandboxError,
        match=r"does not run inside this machine \(exit status 127: error "
        r"while loading shared libraries",
    ):
        sandbox.setup_worker(sb, ROOT, Path(sys.executable), say=lambda m: None)
    flatpak = sandbox.flatpak_sandbox(home=tmp_path)
    flatpak.argv = lambda program, env: [str(tmp_path / "no-flatpak-here"), program]
    with pytest.raises(sandbox.SandboxError, match="is not installed on this machine"):
        sandbox.setup_worker(flatpak, ROOT, Path(sys.executable), say=lambda m: None)


def test_a_project_the_sandbox_cannot_see_gets_the_override_command(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    shutil.copy(ROOT / "setup.cfg", project / "setup.cfg")  # but no core/: the sandbox sees no worker code
    sb = host_sandbox(tmp_path / "data")
    sb.fix = sandbox.flatpak_sandbox().fix
    with pytest.raises(sandbox.SandboxError) as err:
        sandbox.setup_worker(sb, project, Path(sys.executable), say=lambda m: None)
    assert f"cannot see the project folder {project}" in str(err.value)
    assert f"flatpak override --user --filesystem={project}:ro org.gimp.GIMP" in str(err.value)


def test_install_names_the_sandbox_worker_in_the_flatpak_folders_only(tmp_path, monkeypatch, capsys):
    """install.py's registration step (HOME elsewhere): a Flatpak GIMP folder gets the worker an earlier
    ``--flatpak`` set up, a native folder this venv's Python; with none set up, the Flatpak folder gets a hint."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("install_under_test", ROOT / "install.py")
    install = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(install)
    home = tmp_path / "home"
    flat = home / ".var/app/org.gimp.GIMP/config/GIMP/3.0"
    native = home / ".config/GIMP/3.0"
    for d in (flat, native):
        d.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no GIMP program to find
    py = Path(sys.executable)

    def config(folder: Path) -> dict:
        return json.loads((folder / "plug-ins/s2crnet-harmonize/s2crnet-config.json").read_text())

    install.register_plugins(py, None, uninstall=False)
    assert "run `python3 install.py --flatpak` once" in capsys.readouterr().out
    assert config(flat)["python"] == config(native)["python"] == str(py)
    venv = home / ".var/app/org.gimp.GIMP/data/s2crnet/venv-cp313"
    venv.mkdir(parents=True)
    (venv / sandbox.STAMP_NAME).write_text("{}\n")
    install.register_plugins(py, None, uninstall=False)
    assert "--flatpak` once" not in capsys.readouterr().out
    assert config(flat)["python"] == str(venv / "bin/python") and config(native)["python"] == str(py)
    install.register_plugins(py, None, uninstall=True)  # uninstall also removes the sandbox's venv
    assert "removed the Flatpak GIMP's worker venv" in capsys.readouterr().out and not venv.parent.exists()
