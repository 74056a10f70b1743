"""What ``s2crnet train`` is asked to do, as one typed value: the trainer and the fitting modes read this, not the
command line's namespace, so a run can be set up from Python as well."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class TrainConfig:
    """The options of ``s2crnet train`` (``--help`` says what each does); defaults are the command line's."""

    variant: str = "lite0-crm"
    data: str = str(PROJECT / "data" / "synth")
    run_dir: str | None = None
    epochs: int = 8
    minutes: float = 0.0
    batch: int = 8
    lr: float = 2e-4
    lr_head: float = 1e-3
    loss: str = "l1"
    weight_decay: float = 0.1
    size_weight: list[float] = field(default_factory=lambda: [0.0])
    freeze_upto: int = 11
    protocol_share: float = 0.0
    member_data: list[str] | None = None
    member_skip_kinds: list[str] | None = None
    limit: int | None = None
    val_limit: int | None = None
    save_every: int = 200
    threads: int = 2
    seed: int = 0
    device: str = "auto"
    restart: bool = False
    init_from: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainConfig:
        """The namespace's values for every option this class has (the export options stay with the CLI)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})

    @property
    def run_path(self) -> Path:
        """The run folder: ``run_dir``, else runs/VARIANT in the project."""
        return Path(self.run_dir) if self.run_dir else PROJECT / "runs" / self.variant
