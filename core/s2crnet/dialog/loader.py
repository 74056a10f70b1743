"""The thread that runs the network, so the dialog can open before torch is imported and never freezes.

First it reads the catalog (which variants have weights; importing the variant registry imports torch, ~1.5 s),
then it runs jobs in order, one at a time; the dialog drops queued jobs whose choice went stale. Every failure
comes back as a sentence (``failed``), never as a traceback in the window; internal errors are logged.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PyQt5.QtCore import QThread, pyqtSignal

from s2crnet.errors import S2CRNetError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Catalog:
    """What the controls offer: variants with shipped weights (in registry order) and the class labels."""

    variants: list[str] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)
    semantic: frozenset[str] = frozenset()
    labels: list[str] = field(default_factory=list)
    default: str | None = None
    error: str | None = None  # why there is nothing to choose (no weights, unreadable manifest)
    titles: dict[str, str] = field(default_factory=dict)  # what the combo shows; the name is in its tooltip

    def title(self, name: str) -> str:
        return self.titles.get(name) or name


def load_catalog() -> Catalog:
    from s2crnet import weights
    from s2crnet.model.registry import LABELS, is_semantic, known

    labels = list(LABELS)
    try:
        avail = weights.available_variants()
        default = weights.default_variant()
    except S2CRNetError as exc:
        return Catalog(labels=labels, error=str(exc))
    return Catalog(
        avail,
        {n: known(n).description for n in avail},
        frozenset(n for n in avail if is_semantic(n)),
        labels,
        default,
        titles={n: known(n).display_name for n in avail},
    )


@dataclass(frozen=True)
class Job:
    """Predict curves of layer ``index`` for one (variant, label) choice; ``image``/``mask`` as the engine takes them."""

    index: int
    variant: str
    label: str | None
    image: Any
    mask: Any

    @property
    def key(self) -> tuple[int, str, str | None]:
        return (self.index, self.variant, self.label)


class CurveLoader(QThread):
    """Owns the engine (made in this thread when none is given, since that imports torch) and runs jobs.

    Signals carry Python objects and are delivered in the dialog's thread (queued connections).
    """

    catalog_ready = pyqtSignal(object)  # Catalog, once, before any job runs
    started_job = pyqtSignal(object, str)  # Job, status text ("Loading the crm model…" / "Predicting curves…")
    finished_job = pyqtSignal(object, object)  # Job, Curves
    failed = pyqtSignal(object, str)  # Job, a sentence for the user

    def __init__(self, engine: Any = None, engine_factory: Callable[[], Any] | None = None, parent=None) -> None:
        super().__init__(parent)
        self._engine = engine
        self._factory = engine_factory
        self._jobs: deque[Job] = deque()
        self._cv = threading.Condition()
        self._stop = False
        self._warm: set[str] = set()

    # -- called from the dialog's thread ------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._cv:
            self._jobs.append(job)
            self._cv.notify()

    def drop_queued(self) -> list[Job]:
        """Forget jobs that have not started; returns them so the caller can update its bookkeeping."""
        with self._cv:
            dropped = list(self._jobs)
            self._jobs.clear()
        return dropped

    def stop(self, wait_ms: int = 10000) -> None:
        """Finish the running job (the network cannot be interrupted) and end the thread."""
        with self._cv:
            self._stop = True
            self._jobs.clear()
            self._cv.notify()
        self.wait(wait_ms)

    # -- the thread ---------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            catalog = load_catalog()
        except Exception as exc:  # a broken install: say so instead of a window that waits forever
            log.exception("cannot read the variant catalog")
            catalog = Catalog(
                error=f"Cannot read the installed variants ({exc.__class__.__name__}: {exc}); "
                "re-run `python3 install.py`."
            )
        self.catalog_ready.emit(catalog)
        while True:
            with self._cv:
                while not self._jobs and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                job = self._jobs.popleft()
            self._run_job(job)

    def _run_job(self, job: Job) -> None:
        cold = job.variant not in self._warm
        self.started_job.emit(job, f"Loading the {job.variant} model…" if cold else "Predicting curves…")
        try:
            if self._engine is None:
                self._engine = self._factory() if self._factory else _default_engine()
            curves = self._engine.predict_curves(job.image, job.mask, job.variant, job.label, 1.0)
        except S2CRNetError as exc:
            self.failed.emit(job, str(exc))
            return
        except Exception as exc:  # a bug or a broken install: log the traceback, show a sentence
            log.exception("curve prediction failed")
            self.failed.emit(
                job,
                f"Internal error while predicting curves ({exc.__class__.__name__}: {exc}); see the log for details.",
            )
            return
        self._warm.add(job.variant)
        self.finished_job.emit(job, curves)


def _default_engine() -> Any:
    from s2crnet.engine import Engine

    return Engine()
