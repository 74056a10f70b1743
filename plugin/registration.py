"""Register the S2CRNet plug-ins with every GIMP on this machine (standard library only, Python >= 3.9).

install.py calls :func:`install`. GIMP 3 loads ``plug-ins/NAME/NAME.py`` only (folder and file named alike,
executable), and each 3.x minor reads its own user folder (3.0 and 3.2 differ), so the GIMP 3 plug-in goes into
every 3.x folder found, plus the known 3.x folders next to any GIMP folder or GIMP program found, so a GIMP that
has never been started finds it too. GIMP 2.10 gets the ``gimpfu`` file flat in ``plug-ins`` and its helpers in
a non-executable side folder. A small JSON config next to the plug-in records the venv interpreter, the project
and the protocol version; the plug-in reads it (or the file named by ``S2CRNET_CONFIG``) to start the worker.
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
GIMP3_NAME = "s2crnet-harmonize"
GIMP2_NAME = "s2crnet_harmonize"
GIMP2_SUPPORT = "s2crnet_harmonize_support"
CONFIG_NAME = "s2crnet-config.json"
SHARED_FILES = ("bridge.py", "s2crnet_common.py")  # plugin/ files both plug-ins import, copied next to each
KNOWN_3X = ("3.0", "3.2")
FLATPAK_ID = "org.gimp.GIMP"


def protocol_version() -> int:
    """The protocol number of the bridge being installed (read from its source, so no import is needed)."""
    m = re.search(r"^PROTOCOL = (\d+)$", (HERE / "bridge.py").read_text(encoding="utf-8"), re.M)
    if not m:
        raise RuntimeError("plugin/bridge.py has no PROTOCOL line; the checkout is damaged")
    return int(m.group(1))


def _bases(home: Path, platform: str, env: Mapping[str, str]) -> list[Path]:
    """Folders that hold per-version GIMP user folders (``<base>/3.0``), native first."""
    if platform.startswith("win"):
        appdata = env.get("APPDATA") or str(home / "AppData" / "Roaming")
        return [Path(appdata) / "GIMP"]
    if platform == "darwin":
        return [home / "Library" / "Application Support" / "GIMP"]
    xdg = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    return [
        Path(xdg) / "GIMP",
        home / ".var" / "app" / FLATPAK_ID / "config" / "GIMP",  # Flatpak
        home / "snap" / "gimp" / "current" / ".config" / "GIMP",
    ]  # Snap


def _gimp_programs(home: Path, platform: str, env: Mapping[str, str]) -> dict[Path, set[str]]:
    """base folder -> versions of GIMP programs found for it (a GIMP installed but never started)."""
    found: dict[Path, set[str]] = {}
    bases = _bases(home, platform, env)
    path = env.get("PATH", "")
    for name, ver in (("gimp-3.0", "3.0"), ("gimp-3.2", "3.2"), ("gimp-2.10", "2.10"), ("gimp", "3.x")):
        if shutil.which(name, path=path):
            found.setdefault(bases[0], set()).add(ver)
    if platform == "darwin":
        for app in Path("/Applications").glob("GIMP*.app"):
            m = re.search(r"(\d+\.\d+)", app.name)
            found.setdefault(bases[0], set()).add(m.group(1) if m else "3.x")
    if platform.startswith("win"):
        for root in (env.get("ProgramFiles"), env.get("LOCALAPPDATA")):
            for exe in Path(root or "/nonexistent").glob("GIMP*/bin/gimp-*.exe"):
                m = re.search(r"gimp-(\d+\.\d+)", exe.name)
                if m:
                    found.setdefault(bases[0], set()).add(m.group(1))
    if len(bases) > 1:
        for fp in (Path("/var/lib/flatpak/app") / FLATPAK_ID, home / ".local/share/flatpak/app" / FLATPAK_ID):
            if fp.exists():
                found.setdefault(bases[1], set()).add("3.x")
        if Path("/snap/gimp").exists():
            found.setdefault(bases[2], set()).add("3.x")
    return found


def find_gimp_dirs(
    home: Path | None = None, platform: str | None = None, env: Mapping[str, str] | None = None
) -> list[Path]:
    """Every GIMP user folder (``.../GIMP/3.0``) the plug-in should go into on this machine."""
    home = Path(home) if home is not None else Path.home()
    platform = platform or sys.platform
    env = os.environ if env is None else env
    programs = _gimp_programs(home, platform, env)
    out: list[Path] = []
    for base in _bases(home, platform, env):
        versions = {p.name for p in base.glob("*") if p.is_dir() and re.fullmatch(r"(2\.10|3\.\d+)", p.name)}
        wanted = set(versions) | {v for v in programs.get(base, ()) if v != "3.x"}
        if any(v.startswith("3") for v in wanted) or "3.x" in programs.get(base, ()):
            wanted |= set(KNOWN_3X)
        for v in sorted(wanted, key=lambda s: tuple(int(x) for x in s.split("."))):
            out.append(base / v)
    return out


def gimp_major(gimp_dir: Path) -> int:
    """2 for a 2.x user folder, else 3 (GIMP 3 is the default for an unknown folder name)."""
    return 2 if re.match(r"^2\.", Path(gimp_dir).name) or (Path(gimp_dir).name.startswith(".gimp-2")) else 3


DEFAULT_WORKER_IDLE = 600  # seconds the shared worker waits for the next call (bridge.DEFAULT_IDLE)


def write_config(folder: Path, venv_python: Path, project_dir: Path) -> Path:
    """The plug-in's config; ``worker_idle`` (seconds, 0 = a worker per call) keeps a value the user set."""
    path = folder / CONFIG_NAME
    idle = DEFAULT_WORKER_IDLE
    try:
        idle = json.loads(path.read_text(encoding="utf-8")).get("worker_idle", idle)
    except (OSError, ValueError, AttributeError):
        pass
    cfg = {
        "python": str(venv_python),
        "project": str(project_dir),
        "pythonpath": str(Path(project_dir) / "core"),
        "protocol": protocol_version(),
        "worker_idle": idle,
    }
    text = json.dumps(cfg, indent=1, sort_keys=True) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(".part")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


def _copy(src: Path, dst: Path, executable: bool) -> bool:
    """Copy when different; True when something changed."""
    changed = not (dst.exists() and filecmp.cmp(src, dst, shallow=False))
    if changed:
        shutil.copyfile(src, dst)
    mode = 0o755 if executable else 0o644
    if stat.S_IMODE(dst.stat().st_mode) != mode:
        dst.chmod(mode)
        changed = True
    return changed


def _remove(path: Path) -> bool:
    if path.is_dir():
        shutil.rmtree(path)
        return True
    if path.exists():
        path.unlink()
        return True
    return False


def targets(gimp_dir: Path) -> list[Path]:
    """What the plug-in occupies inside one GIMP user folder (for uninstall and reporting)."""
    plug = Path(gimp_dir) / "plug-ins"
    if gimp_major(gimp_dir) == 2:
        return [plug / f"{GIMP2_NAME}.py", plug / GIMP2_SUPPORT]
    return [plug / GIMP3_NAME]


def install_one(gimp_dir: Path, venv_python: Path, project_dir: Path) -> str:
    plug = Path(gimp_dir) / "plug-ins"
    src = HERE
    changed = False
    if gimp_major(gimp_dir) == 2:
        support = plug / GIMP2_SUPPORT
        support.mkdir(parents=True, exist_ok=True)
        changed |= _copy(src / "gimp2" / f"{GIMP2_NAME}.py", plug / f"{GIMP2_NAME}.py", True)
        for shared in SHARED_FILES:
            changed |= _copy(src / shared, support / shared, False)
        cfg = support / CONFIG_NAME
        old = cfg.read_bytes() if cfg.exists() else None
        write_config(support, venv_python, project_dir)
        changed |= old != cfg.read_bytes()
        where, what = plug / f"{GIMP2_NAME}.py", "GIMP 2.10 plug-in"
    else:
        folder = plug / GIMP3_NAME
        folder.mkdir(parents=True, exist_ok=True)
        for f in sorted((src / "gimp3" / GIMP3_NAME).glob("*.py")):
            changed |= _copy(f, folder / f.name, f.name == f"{GIMP3_NAME}.py")
        for shared in SHARED_FILES:
            changed |= _copy(src / shared, folder / shared, False)
        cfg = folder / CONFIG_NAME
        old = cfg.read_bytes() if cfg.exists() else None
        write_config(folder, venv_python, project_dir)
        changed |= old != cfg.read_bytes()
        shutil.rmtree(folder / "__pycache__", ignore_errors=True)
        where, what = folder, f"GIMP {Path(gimp_dir).name} plug-in"
    return f"{what} {'installed in' if changed else 'up to date in'} {where}"


def install(
    venv_python: Path,
    project_dir: Path,
    gimp_dirs: list[Path] | None = None,
    uninstall: bool = False,
    *,
    home: Path | None = None,
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
    python_for: Callable[[Path], Path | None] | None = None,
) -> list[str]:
    """Install (or remove) the plug-ins; returns one line per GIMP folder saying what was done where.

    ``gimp_dirs`` None searches (see :func:`find_gimp_dirs`); otherwise exactly those user folders
    (e.g. ``~/.config/GIMP/3.0``). ``python_for(folder)``: another worker interpreter for that folder, or None
    for ``venv_python`` (a sandboxed GIMP's own, see plugin/sandbox.py). Safe to repeat: unchanged files are left
    alone.
    """
    dirs = [Path(d).expanduser() for d in gimp_dirs] if gimp_dirs else find_gimp_dirs(home, platform, env)
    lines: list[str] = []
    if not dirs:
        return ["no GIMP user folder found; start GIMP once, or pass --gimp-dir DIR (e.g. ~/.config/GIMP/3.0)"]
    for d in dirs:
        if uninstall:
            removed = [str(t) for t in targets(d) if _remove(t)]
            lines.append(f"removed {', '.join(removed)}" if removed else f"nothing to remove in {d}")
        else:
            lines.append(install_one(d, Path((python_for and python_for(d)) or venv_python), Path(project_dir)))
    if not uninstall:
        lines.append(
            "restart GIMP; the commands are Colors > Harmonize (S2CRNet)... and Colors > Harmonize Layers (S2CRNet)..."
        )
    return lines


if __name__ == "__main__":  # a manual check: python3 plugin/registration.py
    for d in find_gimp_dirs():
        print(d)
