"""Find, verify and load trained weights.

Weights live in ``resources/weights`` of the project (or the folder named by ``S2CRNET_WEIGHTS``) next to
``weights.json``, which records each file's sha256 and the default variant. A file whose hash does not
match is refused: a truncated download or a stray edit must not silently change results, and randomly
initialised networks are never used in their place.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from s2crnet.errors import BadInput, ModelError

MANIFEST = "weights.json"
HALF_STORED = re.compile(r"members\.\d+\.mlp\.\d+\.weight")  # see _stored
FORMAT = "s2crnet-weights"


def weights_dir() -> Path:
    env = os.environ.get("S2CRNET_WEIGHTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "resources" / "weights"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(folder: Path | None = None) -> dict[str, Any]:
    folder = folder or weights_dir()
    path = folder / MANIFEST
    if not path.is_file():
        return {"default": None, "files": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.setdefault("files", {})
        data.setdefault("default", None)
        return data
    except ValueError as exc:
        raise ModelError(
            f"{path} is not valid JSON ({exc}); restore it from the project (git checkout {MANIFEST})."
        ) from exc


def available_variants(folder: Path | None = None) -> list[str]:
    """Variants that have a weight file listed in the manifest and present on disk (hash checked at load), after
    the blends all of whose parts have."""
    from s2crnet.model.registry import BLENDS, VARIANTS

    folder = folder or weights_dir()
    files = read_manifest(folder)["files"]
    nets = [name for name, v in VARIANTS.items() if v.weight_file in files and (folder / v.weight_file).is_file()]
    blends = [name for name, b in BLENDS.items() if all(p in nets for p, _ in b.parts)]
    return [*blends, *nets]


def default_variant(folder: Path | None = None) -> str:
    folder = folder or weights_dir()
    avail = available_variants(folder)
    if not avail:
        raise ModelError(
            f"no trained weights found in {folder}; run `python3 install.py` from a complete checkout "
            "(resources/weights must hold the .pt files) or set S2CRNET_WEIGHTS to a folder that has them."
        )
    default = read_manifest(folder).get("default")
    return default if default in avail else avail[0]


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    from s2crnet.curves import atomic_write_bytes

    atomic_write_bytes(folder / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def set_default(folder: Path, variant: str) -> None:
    """Record ``variant`` as the folder's default: a network with its file there, or a blend all of whose parts
    have theirs."""
    from s2crnet.model.registry import known

    known(variant)
    if variant not in available_variants(folder):
        raise BadInput(
            f"{variant!r} cannot be the default of {folder}: it lacks weights there "
            f"(available: {', '.join(available_variants(folder)) or 'none'}); fit its networks first."
        )
    manifest = read_manifest(folder)
    manifest["default"] = variant
    _write_manifest(folder, manifest)


def load_checkpoint(variant: str, folder: Path | None = None) -> dict[str, Any]:
    """The verified checkpoint dict of ``variant``: config, state_dict, meta."""
    import torch

    from s2crnet.model.registry import get_variant

    folder = folder or weights_dir()
    v = get_variant(variant)
    path = folder / v.weight_file
    entry = read_manifest(folder)["files"].get(v.weight_file)
    if entry is None or not path.is_file():
        have = ", ".join(available_variants(folder)) or "none"
        raise ModelError(
            f"variant {variant!r} has no trained weights in {folder} (available: {have}); "
            "choose an available variant or train one with `s2crnet train`."
        )
    digest = sha256_file(path)
    if digest != entry.get("sha256"):
        raise ModelError(
            f"{path} is corrupt or was changed (sha256 {digest[:12]}… does not match {MANIFEST}); "
            "restore it with `git checkout resources/weights` or re-run `python3 install.py`."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged zip
        raise ModelError(f"cannot read {path} ({exc}); restore it with `git checkout resources/weights`.") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or ckpt.get("variant") != variant:
        raise ModelError(
            f"{path} is not an S2CRNet checkpoint for {variant!r}; restore it with `git checkout resources/weights`."
        )
    return ckpt


def load_model(variant: str, device: str = "cpu", folder: Path | None = None):
    """An eval-mode network with verified weights on ``device``."""
    import torch

    from s2crnet.model.net import NetConfig, S2CRNet

    ckpt = load_checkpoint(variant, folder)
    cfg = NetConfig(**ckpt["config"])
    net = S2CRNet(cfg)
    try:
        net.load_state_dict({k: _as_float32(v) for k, v in ckpt["state_dict"].items()})
    except RuntimeError as exc:
        raise ModelError(
            f"weights of {variant!r} do not fit its network ({str(exc).splitlines()[0]}); "
            "they were made by another version: retrain or restore them."
        ) from exc
    # channels-last runs the depthwise and 1×1 convolutions of both encoders ~1.3–2× faster on CPU
    return net.eval().to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # Module.to takes it; the stubs miss it


def _stored(name: str, tensor):
    """The tensor as the weight file keeps it: the context members' layer weights in float16 (half the bytes, so
    more members fit the 20 MB a file may have; measured on the validation split, a member's curve moves by at
    most 4e-5 of the value range), everything else as trained. Loading casts them back to float32."""
    import torch

    if HALF_STORED.fullmatch(name) and tensor.dtype == torch.float32:
        return tensor.half()
    return tensor


def _as_float32(tensor):
    """A float16 tensor of the file as float32, converted by numpy: torch's own half-to-float copy asks cpuinfo
    for the CPU's F16C support, which fails where /proc and /sys are not mounted (measured: GIMP in a chroot)."""
    import numpy as np
    import torch

    if tensor.dtype != torch.float16:
        return tensor
    return torch.from_numpy(tensor.numpy().astype(np.float32))


def save_checkpoint(net, variant: str, folder: Path, meta: dict[str, Any] | None = None, default: bool = False) -> Path:
    """Write ``<variant>.pt`` atomically and record its hash in the manifest."""
    import io

    import torch

    from s2crnet.curves import atomic_write_bytes

    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    state = {k: _stored(k, v.detach().cpu().contiguous()) for k, v in net.state_dict().items()}
    torch.save(
        {"format": FORMAT, "variant": variant, "config": net.cfg.to_dict(), "state_dict": state, "meta": meta or {}},
        buf,
    )
    path = folder / f"{variant}.pt"
    atomic_write_bytes(path, buf.getvalue())
    manifest = read_manifest(folder)
    manifest["files"][path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    if default or not manifest.get("default"):
        manifest["default"] = variant
    _write_manifest(folder, manifest)
    return path
