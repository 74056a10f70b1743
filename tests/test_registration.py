"""install.py's plug-in registration: every GIMP user folder, idempotent, uninstall, config and run bits."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from plugin_helpers import ROOT

sys.path.insert(0, str(ROOT / "plugin"))
import registration

sys.path.pop(0)


def test_finds_native_flatpak_and_snap_folders_and_adds_every_known_3x(tmp_path):
    home = tmp_path
    (home / ".config/GIMP/3.0").mkdir(parents=True)
    (home / ".config/GIMP/2.10").mkdir(parents=True)
    (home / ".var/app/org.gimp.GIMP/config/GIMP/3.2").mkdir(parents=True)
    dirs = registration.find_gimp_dirs(home, "linux", {"PATH": ""})
    rel = {str(d.relative_to(home)) for d in dirs}
    assert {
        ".config/GIMP/2.10",
        ".config/GIMP/3.0",
        ".config/GIMP/3.2",
        ".var/app/org.gimp.GIMP/config/GIMP/3.0",
        ".var/app/org.gimp.GIMP/config/GIMP/3.2",
    } <= rel
    assert not any("snap" in r for r in rel)


def test_macos_and_windows_locations(tmp_path):
    (tmp_path / "Library/Application Support/GIMP/3.0").mkdir(parents=True)
    assert tmp_path / "Library/Application Support/GIMP/3.2" in registration.find_gimp_dirs(tmp_path, "darwin", {})
    appdata = tmp_path / "AppData"
    (appdata / "GIMP/2.10").mkdir(parents=True)
    assert registration.find_gimp_dirs(tmp_path, "win32", {"APPDATA": str(appdata)}) == [appdata / "GIMP/2.10"]


def test_install_is_idempotent_sets_run_bits_writes_config_and_uninstalls(tmp_path):
    g3, g2 = tmp_path / "GIMP/3.0", tmp_path / "GIMP/2.10"
    py = Path(sys.executable)
    lines = registration.install(py, ROOT, [g3, g2])
    assert any("installed in" in line for line in lines)
    main3 = g3 / "plug-ins/s2crnet-harmonize/s2crnet-harmonize.py"
    assert os.access(main3, os.X_OK) and (main3.parent / "bridge.py").exists()
    assert (main3.parent / "s2crnet_common.py").exists()
    cfg = json.loads((main3.parent / "s2crnet-config.json").read_text())
    assert cfg == {
        "python": str(py),
        "project": str(ROOT),
        "pythonpath": str(ROOT / "core"),
        "protocol": 1,
        "worker_idle": 600,
    }
    assert os.access(g2 / "plug-ins/s2crnet_harmonize.py", os.X_OK)
    assert (g2 / "plug-ins/s2crnet_harmonize_support/s2crnet-config.json").exists()
    assert (g2 / "plug-ins/s2crnet_harmonize_support/s2crnet_common.py").exists()
    again = registration.install(py, ROOT, [g3, g2])
    assert all("up to date" in line for line in again[:2])
    (main3.parent / "s2crnet-config.json").write_text(json.dumps(dict(cfg, worker_idle=60)))  # the user's choice
    registration.install(py, ROOT, [g3, g2])
    assert json.loads((main3.parent / "s2crnet-config.json").read_text())["worker_idle"] == 60  # survives
    gone = registration.install(py, ROOT, [g3, g2], uninstall=True)
    assert all(line.startswith("removed") for line in gone)
    assert not main3.parent.exists() and not (g2 / "plug-ins/s2crnet_harmonize.py").exists()


def test_no_gimp_found_says_how_to_point_at_one(tmp_path):
    lines = registration.install(Path(sys.executable), ROOT, None, home=tmp_path, platform="linux", env={"PATH": ""})
    assert "--gimp-dir" in lines[0]
