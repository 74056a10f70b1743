"""Host side of the real-GIMP suite: inputs, the chroot run, and reading back what GIMP wrote.

One ``gimp-console`` run per GIMP version executes every case of ``gimp_batch.py``; the test module then judges
each case from the dumps. The chroot comes from ``gimp3-e2e.sh`` next to this file (a copy of the steering
repo's ``shared/gimp3-e2e.sh``: a CI clone of the project has no ``../shared``), which builds it on first use.

How the real plug-in gets into that GIMP: ``plugin/registration.py``'s ``install()`` — the code install.py runs —
writes it into a GIMP user folder inside the chroot, and ``GIMP3_DIRECTORY`` points GIMP at that folder. The
config it writes names this venv's interpreter; the project (venv included), the venv's base Python and the
weights folder are bind-mounted read-only at their own paths so the worker runs inside the chroot unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers import fitting_scene

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "gimp3-e2e.sh"
BATCH = HERE / "gimp_batch.py"
SAMPLES = ROOT / "resources" / "samples"

# GIMP version -> (Debian suite, chroot folder); the folders can be moved with E2E_GIMP30_ROOT / E2E_GIMP32_ROOT
VERSIONS = {
    "3.0": ("trixie", os.environ.get("E2E_GIMP30_ROOT", "/opt/gimp3-root")),
    "3.2": ("testing", os.environ.get("E2E_GIMP32_ROOT", "/opt/gimp32-root")),
}
GIMP_DIR_IN_CHROOT = "/var/lib/s2crnet-e2e"  # GIMP3_DIRECTORY parent inside the chroot
DTYPES = {"u8": np.uint8, "u16": np.uint16, "float": np.float32}
CURVES_DIALOG_AT = (520, 90)  # where the GUI suite moves GIMP's Curves dialog: over the canvas, the docks visible


def skip_reason() -> str | None:
    """Why this machine cannot run GIMP in a chroot, or None when it can (root, Linux, chroot, debootstrap)."""
    if os.environ.get("S2CRNET_E2E", "1") == "0":
        return "S2CRNET_E2E=0 turns the real-GIMP suite off"
    if not sys.platform.startswith("linux"):
        return "the real-GIMP suite needs Linux (a Debian chroot)"
    if os.geteuid() != 0:
        return "the real-GIMP suite needs root (debootstrap, chroot and bind mounts); run it as root, as CI does"
    if shutil.which("chroot") is None or shutil.which("mount") is None:
        return "chroot/mount are not available on this machine"
    if shutil.which("debootstrap") is None and shutil.which("apt-get") is None:
        return "neither debootstrap nor apt-get (to install it) is available"
    if _interpreter_binds() is None:
        return (
            f"the venv's base Python ({sys.base_prefix}) lives in the system's /usr, which cannot be "
            "bind-mounted into the chroot; create .venv from a Python installed under its own prefix "
            "(e.g. pyenv), as CI does"
        )
    return None


def venv_python() -> Path:
    """The interpreter install.py records: the project venv's (this process runs in it under install.py)."""
    cand = Path(sys.prefix) / "bin" / "python"
    return cand if cand.exists() else Path(sys.executable)


def _interpreter_binds() -> list[Path] | None:
    """Folders the worker interpreter needs at the same path inside the chroot (None: not possible)."""
    binds = []
    base = Path(sys.base_prefix).resolve()
    if base == Path("/usr") or base == Path("/"):
        return None
    binds.append(base)
    prefix = Path(sys.prefix).resolve()
    if prefix != base and ROOT not in prefix.parents and prefix != ROOT:
        binds.append(prefix)
    return binds


def _scene(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth RGB u8 picture (bicubic upsampling of random colours)."""
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)


def _tinted_scene(h: int, w: int, seed: int, tint) -> np.ndarray:
    """``_scene`` with each channel scaled by ``tint``: an object whose colour differs from a plain scene's."""
    return np.clip(_scene(h, w, seed) * np.asarray(tint), 0, 255).astype(np.uint8)


def _ellipse(h: int, w: int, soft: bool) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((yy - (h - 1) / 2) / (h / 2 - 2), (xx - (w - 1) / 2) / (w / 2 - 2))
    if not soft:
        return np.where(r <= 1.0, 255, 0).astype(np.uint8)
    return np.clip(np.rint((1.15 - r) / 0.3 * 255), 0, 255).astype(np.uint8)  # a ramp ~0.3 radius wide


def make_inputs(work: Path, variants: list[str]) -> None:
    """Write the raw input pictures and ``inputs.json`` that gimp_batch.py reads."""
    from PIL import Image

    files: dict[str, dict] = {}

    def put(name: str, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr)
        (work / "in").mkdir(exist_ok=True)
        (work / "in" / f"{name}.raw").write_bytes(arr.tobytes())
        files[name] = {
            "file": f"in/{name}.raw",
            "w": int(arr.shape[1]),
            "h": int(arr.shape[0]),
            "channels": int(arr.shape[2]) if arr.ndim == 3 else 1,
            "dtype": str(arr.dtype),
        }

    W, H = 160, 120
    put("bg", _scene(H, W, 1))
    tint = np.array([1.25, 0.85, 0.6])  # a warm object on a neutral background: curves must do something
    obj = _tinted_scene(48, 64, 2, tint)
    put("obj", np.dstack([obj, _ellipse(48, 64, soft=True)]))
    obj_mask = np.full((48, 64), 255, np.uint8)
    obj_mask[:, :8] = 0
    obj_mask[:, 8:24] = np.linspace(0, 255, 16).astype(np.uint8)  # a soft edge in the layer mask too
    put("obj_mask", obj_mask)

    photo = _scene(96, 128, 3)
    photo[20:70, 30:90] = np.clip(photo[20:70, 30:90] * np.array([0.7, 0.9, 1.3]), 0, 255)
    mask = np.zeros((96, 128), np.uint8)
    mask[20:70, 30:90] = 255
    mask[16:20, 30:90] = np.array([40, 90, 150, 210], np.uint8)[:, None]  # soft edge
    mask[20:70, 90:96] = np.array([220, 180, 128, 80, 30, 5], np.uint8)[None, :]
    rng = np.random.default_rng(4)
    put("photo_u8", photo)
    put("soft_mask_u8", mask)
    put("photo_u16", (photo.astype(np.uint16) * 257 + rng.integers(0, 200, photo.shape)).astype(np.uint16))
    put("soft_mask_u16", mask.astype(np.uint16) * 257)
    put("photo_f32", np.clip(photo / 255.0 + rng.uniform(0, 1e-3, photo.shape), 0, 1).astype(np.float32))
    put("soft_mask_f32", (mask / 255.0).astype(np.float32))
    sel = np.zeros((96, 128), np.uint8)
    sel[10:80, 20:100] = 255
    put("sel_rect", sel)
    fits, fits_mask = fitting_scene(96, 128)  # an object that continues its background: the default changes nothing
    put("fits_u8", fits)
    put("fits_mask", fits_mask)

    offsets = [(10, 10), (30, 25), (100, 60)]
    for i, t in enumerate(([1.3, 0.8, 0.7], [0.6, 0.9, 1.3], [1.0, 1.2, 0.6])):
        o = _tinted_scene(30, 36, 10 + i, t)
        put(f"batch_obj{i}", np.dstack([o, _ellipse(30, 36, soft=False)]))

    # round trips, at the sizes the README quotes: objects the default changes (a cool cast under the mask, a warm
    # object over its own background), so the calls time real work rather than an object left as it was
    for label, side in (("1mp", 1024), ("4mp", 2048)):
        mask = np.zeros((side, side), np.uint8)
        mask[side // 4 : side // 4 + side // 2, side // 3 : side // 3 + side // 2] = _ellipse(
            side // 2, side // 2, True
        )
        photo = _scene(side, side, 20).astype(np.float32)
        cool = photo * np.array([0.7, 0.9, 1.3], np.float32)
        m = mask[..., None] / 255.0
        put(f"big_{label}", np.clip(np.rint(photo + (cool - photo) * m), 0, 255).astype(np.uint8))
        put(f"big_{label}_mask", mask)
    put("big_obj_1mp", _tinted_scene(1024, 1024, 21, tint))
    shutil.copyfile(SAMPLES / "sample.jpg", work / "sample.jpg")
    put("sample_mask", np.asarray(Image.open(SAMPLES / "sample_mask.png").convert("L")))
    sample = np.asarray(Image.open(SAMPLES / "sample.jpg").convert("RGB"))
    put("sample_shifted", np.clip(sample * np.array([0.78, 0.69, 0.56]), 0, 255).astype(np.uint8))  # darker, warmer
    spec = {
        "files": files,
        "canvas": [W, H],
        "obj_offsets": [60, 40],
        "batch_offsets": offsets,
        "camera_size": [4000, 2667],  # the sample (1600×1067) scaled in GIMP to a camera photo's size
        "variants": variants,
        "curves_dialog_at": list(CURVES_DIALOG_AT),
    }
    (work / "inputs.json").write_text(json.dumps(spec, indent=1))


@dataclass
class GimpRun:
    """The outcome of one gimp-console run: per-case facts plus the dumps they point at."""

    version: str
    work: Path
    returncode: int
    log: str
    seconds: float
    results: dict = field(default_factory=dict)

    @property
    def gimp(self) -> str:
        return self.results.get("gimp", "?")

    def case(self, name: str) -> dict | None:
        return self.results.get("cases", {}).get(name)

    def load(self, name: str, key: str) -> np.ndarray:
        """A dump as an H×W×C (or H×W) array in the dtype of its babl format."""
        d = self.case(name)["dumps"][key]
        fmt = d["fmt"]
        dtype = DTYPES[fmt.split()[-1]]
        channels = 4 if fmt.startswith("R'G'B'A") else 1
        a = np.frombuffer((self.work / d["file"]).read_bytes(), dtype=dtype)
        return a.reshape(d["h"], d["w"], channels) if channels > 1 else a.reshape(d["h"], d["w"])

    def input(self, name: str) -> np.ndarray:
        spec = json.loads((self.work / "inputs.json").read_text())["files"][name]
        a = np.frombuffer((self.work / spec["file"]).read_bytes(), dtype=spec["dtype"])
        shape = (spec["h"], spec["w"], spec["channels"]) if spec["channels"] > 1 else (spec["h"], spec["w"])
        return a.reshape(shape)

    def spec(self) -> dict:
        return json.loads((self.work / "inputs.json").read_text())


def build_chroot(version: str, attempts: int = 3, own_python: bool = False) -> None:
    """Make sure the version's chroot exists, trying a failed build again before it counts.

    On a fresh machine both versions' builds start at once and each installs debootstrap on the host first: the
    second apt-get then found dpkg's lock taken and failed (exit status 100; a clean-clone run on 2026-12-01). The
    script now waits for that lock; the retry also covers a mirror hiccup. The script removes an incomplete root."""
    suite, root = VERSIONS[version]
    env = dict(os.environ, GIMP3_SUITE=suite, GIMP3_ROOT=root)
    for attempt in range(1, attempts + 1):
        proc = subprocess.run(
            ["bash", str(SCRIPT), "--build-only", *(["--own-python"] if own_python else [])],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if proc.returncode == 0:
            return
        if attempt < attempts:
            time.sleep(10 * attempt)
    tail = "\n".join(proc.stderr.splitlines()[-20:])
    raise RuntimeError(
        f"building the GIMP {version} chroot ({suite}, {root}) failed {attempts} times, "
        f"last exit status {proc.returncode}:\n{tail}"
    )


def plugin_module(name: str):
    """A module of plugin/ (install.py's own code: registration.py, sandbox.py), imported as install.py does."""
    import importlib

    sys.path.insert(0, str(ROOT / "plugin"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "plugin"))


SANDBOX_DIR_IN_CHROOT = "/var/lib/s2crnet-e2e/sandbox"  # the sandbox worker's venv and wheels (as Flatpak's data)


def sandbox_worker(version: str) -> str:
    """What ``python3 install.py --flatpak`` does, with the chroot as the sandbox: the chroot's own Python (with
    the distribution's torch, ``--own-python``) gets the worker's venv, the wheels it lacks downloaded by this
    machine's pip for its version and installed inside offline. Returns the interpreter's path in the chroot."""
    sandbox = plugin_module("sandbox")
    build_chroot(version, own_python=True)
    sb = sandbox.chroot_sandbox(Path(VERSIONS[version][1]), SANDBOX_DIR_IN_CHROOT, binds=[ROOT])
    return sandbox.setup_worker(sb, ROOT, venv_python(), say=lambda m: print(f"[sandbox] {m}", flush=True))


KEEP_IN_USER_FOLDER = {"plug-ins", "pluginrc", "gimprc"}  # the installed plug-in, GIMP's plug-in cache, settings


def forget_sessions(gimp_dir: Path) -> None:
    """Remove what earlier GIMP runs left in the user folder besides the plug-in and the settings (window sizes,
    devices, tool options, dialogs' places), so a GUI run starts as the first one on a fresh machine (CI) does.
    With such a folder left by earlier runs, GIMP 3.2.6 once mapped its Curves dialog but never painted it."""
    for entry in gimp_dir.iterdir():
        if entry.name not in KEEP_IN_USER_FOLDER:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def share_one_tool(gimprc: Path) -> None:
    """Set ``(devices-share-tool yes)`` in GIMP's gimprc. The hand's clicks come from X's XTEST device, which GTK
    does not list; with a tool per input device (GIMP's default) a GIMP 3.2.6 under Xvfb that has had one such click
    never opens a filter tool's dialog again (Curves from the Colors menu or from a layer's filter list: the tool
    switches, no window maps). With one tool for all devices, a setting a user with a tablet may also choose, it
    does; nothing else the suite looks at depends on it."""
    keep = [ln for ln in gimprc.read_text().splitlines() if "devices-share-tool" not in ln] if gimprc.is_file() else []
    gimprc.write_text("\n".join([*keep, "(devices-share-tool yes)", ""]))


MENU_SHORTCUTS = {"plug-in-s2crnet-harmonize": "<Primary><Alt>h", "plug-in-s2crnet-harmonize-layers": "<Primary><Alt>j"}


def menu_shortcuts(shortcutsrc: Path) -> None:
    """Keyboard shortcuts for the two menu entries, as a user assigns them in GIMP's Keyboard Shortcuts dialog: the
    GUI suite's hand presses them to run the entries' own actions (the menu's path: GIMP hands the image window as
    the call's progress, and on GIMP 3.2 the resident process answers)."""
    lines = [f'(action "{name}" "{accel}")' for name, accel in MENU_SHORTCUTS.items()]
    shortcutsrc.write_text("\n".join(lines) + "\n")


def run_gimp(
    version: str,
    work: Path,
    weights: Path,
    timeout: int | None = None,
    cases: list[str] | None = None,
    gui: bool = False,
    worker_python: str | None = None,
    host_interpreter: bool = True,
    gimp_env: dict[str, str] | None = None,
) -> GimpRun:
    """Install the plug-in into the chroot's GIMP with install.py's own code, then run the cases in one go (every
    case of gimp_batch.py, or ``cases``, or those $E2E_CASES names). ``gui``: the real ``gimp`` on an Xvfb screen
    running gimp_batch.py's GUI cases (the dialog driven by xdotool). ``worker_python``: the interpreter the config
    names instead of this venv's (a path inside the chroot); ``host_interpreter`` False: this venv's base Python
    is not mounted, as inside a Flatpak sandbox (the project folder still is, as Flathub's GIMP sees the host).
    ``gimp_env``: more variables in GIMP's environment (and so its plug-ins')."""
    timeout = timeout or int(os.environ.get("E2E_TIMEOUT", "900"))  # seconds for one gimp-console run
    registration = plugin_module("registration")
    suite, root = VERSIONS[version]
    env = dict(os.environ, GIMP3_SUITE=suite, GIMP3_ROOT=root, GIMP3_QUIET="1")
    build_chroot(version)  # a no-op once the chroot exists; ~1 min (network) the first time
    gimp_dir_in = f"{GIMP_DIR_IN_CHROOT}/{version}"  # named like a user folder, so registration sees GIMP 3
    gimp_dir = Path(root + gimp_dir_in)
    lines = registration.install(Path(worker_python) if worker_python else venv_python(), ROOT, gimp_dirs=[gimp_dir])
    plugin_dir = gimp_dir / "plug-ins" / registration.GIMP3_NAME
    assert (plugin_dir / registration.CONFIG_NAME).is_file(), lines
    if gui:
        forget_sessions(gimp_dir)
        share_one_tool(gimp_dir / "gimprc")
        menu_shortcuts(gimp_dir / "shortcutsrc")
    binds = [ROOT, weights.resolve(), *(_interpreter_binds() if host_interpreter else [])]
    cmd = [
        "bash",
        str(SCRIPT),
        "--work",
        str(work),
        "--timeout",
        str(timeout),
        "--env",
        f"GIMP3_DIRECTORY={gimp_dir_in}",
        "--env",
        f"S2CRNET_WEIGHTS={weights.resolve()}",
        "--env",
        "S2CRNET_TIMEOUT=300",
    ]
    if gui:  # a fresh HOME: no last-used values of GIMP's or the dialog's settings from an earlier run
        cmd += ["--gui", "--fresh-home", "--env", "E2E_GUI=1"]
    if cases or os.environ.get("E2E_CASES"):
        cmd += ["--env", f"E2E_CASES={','.join(cases) if cases else os.environ['E2E_CASES']}"]
    for key, value in (gimp_env or {}).items():
        cmd += ["--env", f"{key}={value}"]
    for b in binds:
        cmd += ["--bind", str(b)]
    # the script wants the plug-in folder (it also copies it into the chroot HOME, which GIMP3_DIRECTORY
    # makes GIMP ignore): hand it the folder registration just wrote, so both copies are the installed one
    cmd += [str(plugin_dir), str(BATCH)]
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout + 120,
    )
    run = GimpRun(version, work, proc.returncode, proc.stdout, time.perf_counter() - t0)
    res = work / "results.json"
    if res.is_file():
        run.results = json.loads(res.read_text())
    return run


def xwd_to_array(data: bytes) -> np.ndarray:
    """An X window dump (``xwd``: ZPixmap, 24/32 bits a pixel, the format the suite's Xvfb writes) as H×W×3 RGB."""
    import struct

    head = struct.unpack(">25I", data[:100])
    header_size, fmt, depth, width, height = head[0], head[2], head[3], head[4], head[5]
    byte_order, bpp, bytes_per_line, ncolors = head[7], head[11], head[12], head[19]
    if fmt != 2 or bpp not in (24, 32) or depth not in (24, 32):
        raise ValueError(f"unsupported xwd: format {fmt}, depth {depth}, {bpp} bits a pixel")
    n = bpp // 8
    start = header_size + ncolors * 12
    px = np.frombuffer(data[start : start + bytes_per_line * height], np.uint8).reshape(height, bytes_per_line)
    px = px[:, : width * n].reshape(height, width, n)
    if byte_order == 0:  # LSBFirst: B G R (x)
        return np.ascontiguousarray(px[..., [2, 1, 0]])
    return np.ascontiguousarray(px[..., [n - 3, n - 2, n - 1]])
