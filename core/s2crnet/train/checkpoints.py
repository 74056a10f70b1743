"""A run's state on disk: warm starts from other runs or weight files, the resumable run state (``last.pt``,
``best.pt``), and the export of a run's best state as a shipped weight file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def warm_start_tensors(src: dict, own: dict) -> tuple[dict, list[str]]:
    """The tensors of ``src`` that fit ``own``: same name and shape, or a linear layer whose inputs were widened.

    A widened layer (a context with more edge scales appends its new inputs) keeps the old weights in its leading
    columns and starts at zero in the new ones, so the network computes what the old one did until training
    makes use of the new inputs. Returns the tensors to load and the names of the widened ones.
    """
    import torch

    take, widened = {}, []
    for k, v in src.items():
        o = own.get(k)
        if o is None:
            continue
        if o.shape == v.shape:
            take[k] = v
        elif o.dim() == v.dim() == 2 and o.shape[0] == v.shape[0] and o.shape[1] > v.shape[1]:
            take[k] = torch.cat([v, v.new_zeros(v.shape[0], o.shape[1] - v.shape[1])], 1)
            widened.append(k)
    return take, widened


def network_tensors(path: Path, device: str) -> dict:
    """The network's tensors of a run state (last.pt/best.pt) or a weight file, to warm-start from."""
    import torch

    from s2crnet.errors import BadInput

    st = torch.load(path, map_location=device, weights_only=True)
    src = st.get("model") or st.get("state_dict")
    if src is None:
        raise BadInput(f"{path} is neither a run state (last.pt/best.pt) nor a weight file; pass one of those.")
    return src


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a run state whole or not at all (a ``.part`` file renamed over the old one)."""
    import torch

    tmp = path.with_suffix(".part")
    torch.save(state, tmp)
    tmp.replace(path)


def load_state(path: Path, device: str) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location=device, weights_only=True)


def export(run_dir: Path, variant: str, dest: Path, default: bool) -> Path:
    """Copy the best state of a run into a shipped weight file (network weights only) and the manifest."""
    from s2crnet.model.registry import get_variant
    from s2crnet.weights import save_checkpoint

    st = load_state(run_dir / "best.pt", "cpu")
    net = get_variant(variant).build()
    net.load_state_dict(st["model"])
    meta = {
        "steps": st["step"],
        "epochs": st["epoch"],
        "wall_minutes": round(st["elapsed"] / 60, 1),
        "best_val_mse": round(st["best"], 2),
    }
    return save_checkpoint(net, variant, dest, meta=meta, default=default)
