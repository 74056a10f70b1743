"""The Harmonize dialog: shows at once, asks the loader thread for curves, and re-renders locally on every slider move.

The network runs once per (layer, variant, label); strength only re-renders the 1024-px preview from the cached
Curves. OK pressed while curves are still coming waits for them and then accepts; Cancel returns at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import QByteArray, QSettings, QSize, Qt, QTimer
from PyQt5.QtGui import QIcon, QKeySequence, QPalette, QPixmap
from PyQt5.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QShortcut,
    QSplitter,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from s2crnet.curves import Curves
from s2crnet.dialog.controls import ControlsPanel
from s2crnet.dialog.loader import Catalog, CurveLoader, Job
from s2crnet.dialog.plot import CurvePlot
from s2crnet.dialog.preview import PreviewWidget, to_qimage
from s2crnet.dialog.state import THUMB_SIZE, LayerState

log = logging.getLogger(__name__)
SETTINGS_ORG, SETTINGS_APP = "s2crnet", "harmonize-dialog"
SIDE_MIN_WIDTH, SIDE_MAX_WIDTH = 300, 440  # the controls and curve plot beside the preview, in pixels
# over the preview when the curves are the identity: the model leaves an object that already fits alone
ALREADY_FITS = "Already matches its background: no change (another variant changes it anyway)"


def default_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, SETTINGS_ORG, SETTINGS_APP)


class HarmonizeDialog(QDialog):
    def __init__(
        self,
        layers: list[LayerState],
        variant: str | None = None,
        strength: float | None = None,
        label: str | None = None,
        engine: Any = None,
        engine_factory: Callable[[], Any] | None = None,
        settings: QSettings | None = None,
        parent: QWidget | None = None,
        started_at: float | None = None,
        outputs: list[tuple[str, str, str]] | None = None,
        output: str | None = None,
    ) -> None:
        super().__init__(parent)
        self._t0 = started_at if started_at is not None else time.perf_counter()
        self._layers = layers
        self._current = 0
        self._pending: set[tuple[int, str, str | None]] = set()
        self._errors: dict[tuple[int, str, str | None], str] = {}
        self._job_text = ""
        self._accept_when_ready = False
        self._shown_once = False
        self._working = False  # the loader starts once the window is painted (importing torch holds the GIL)
        self.settings = settings if settings is not None else default_settings()
        self.visible_after: float | None = None  # seconds from ``started_at`` to the first show (measured)
        self._wanted = (variant, label)  # applied when the catalog arrives
        self._weights_error: str | None = None
        self._catalog_loaded = False
        for layer in layers:
            layer.validate()

        self.setWindowTitle("Harmonize Layers (S2CRNet)" if self.is_batch else "Harmonize (S2CRNet)")
        self._build()
        self.controls.set_outputs(list(outputs or []), output)
        self._restore(strength)

        self._loader = CurveLoader(engine, engine_factory, self)
        self._loader.catalog_ready.connect(self._catalog_ready)
        self._loader.started_job.connect(self._job_started)
        self._loader.finished_job.connect(self._job_finished)
        self._loader.failed.connect(self._job_failed)

        self._render_timer = QTimer(self)  # coalesces slider events
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self.refresh_preview)
        self.controls.choice_changed.connect(self._choice_changed)
        self.controls.strength_changed.connect(lambda _v: self._render_timer.start())
        self.preview.first_painted.connect(lambda: QTimer.singleShot(0, self._begin_work))
        self._select(0)

    # -- construction ---------------------------------------------------------------------------------------
    @property
    def is_batch(self) -> bool:
        return len(self._layers) > 1

    def _build(self) -> None:
        self.preview = PreviewWidget()
        self.hold_button = QPushButton("Hold for &before")
        self.hold_button.setToolTip("Shows the composite as it was while the button (or Space on it) is held")
        self.hold_button.setAutoDefault(False)
        self.hold_button.pressed.connect(lambda: self.preview.set_holding(True))
        self.hold_button.released.connect(lambda: self.preview.set_holding(False))
        self.split_check = QCheckBox("S&plit view")
        self.split_check.setToolTip("Original left of the divider, harmonized right; drag it or use the arrow keys")
        self.split_check.toggled.connect(self.preview.set_split)
        compare = QHBoxLayout()
        compare.addWidget(self.hold_button)
        compare.addWidget(self.split_check)
        compare.addStretch(1)
        centre = QWidget()
        centre_box = QVBoxLayout(centre)
        centre_box.setContentsMargins(0, 0, 0, 0)
        centre_box.addWidget(self.preview, 1)
        centre_box.addLayout(compare)

        self.controls = ControlsPanel()
        self.plot = CurvePlot()
        plot_group = QGroupBox("Curves")
        plot_box = QVBoxLayout(plot_group)
        plot_box.addWidget(self.plot)
        self.side = side = QWidget()
        side_box = QVBoxLayout(side)
        side_box.setContentsMargins(0, 0, 0, 0)
        side_box.addWidget(self.controls)
        side_box.addWidget(plot_group)
        side_box.addStretch(1)
        side.setMinimumWidth(SIDE_MIN_WIDTH)
        side.setMaximumWidth(SIDE_MAX_WIDTH)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.layer_list: QListWidget | None = None
        if self.is_batch:
            self.layer_list = self._build_layer_list()
            self.splitter.addWidget(self.layer_list)
            # keyboard: Alt+L to the list, Space ticks or unticks the current layer
            QShortcut(QKeySequence("Alt+L"), self).activated.connect(self.layer_list.setFocus)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(side)
        self.splitter.setStretchFactor(self.splitter.count() - 2, 1)

        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate
        self.busy.setTextVisible(False)
        self.busy.setMaximumWidth(120)
        self.busy.setAccessibleName("Working")
        self.status_icon = QLabel()
        style = self.style()
        assert style is not None  # a widget always has one
        icon_px = style.pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self.status_icon.setPixmap(
            style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(icon_px, icon_px)
        )
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel | QDialogButtonBox.Reset)
        self.ok_button = self._button(QDialogButtonBox.Ok)
        self.reset_button = self._button(QDialogButtonBox.Reset)
        self.reset_button.setText("&Reset")
        self.reset_button.setToolTip("Default variant and 100 % strength")
        self.ok_button.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.reset_button.clicked.connect(self.reset)

        bottom = QHBoxLayout()
        bottom.addWidget(self.busy)
        bottom.addWidget(self.status_icon)
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.buttons)
        root = QVBoxLayout(self)
        root.addWidget(self.splitter, 1)
        root.addLayout(bottom)

        order: list[QWidget] = [self.layer_list] if self.layer_list is not None else []
        order += [
            self.controls.variant_combo,
            self.controls.label_combo,
            self.controls.slider,
            self.controls.spin,
            self.controls.output_combo,
            self.preview,
            self.hold_button,
            self.split_check,
            self.ok_button,
            self._button(QDialogButtonBox.Cancel),
            self.reset_button,
        ]
        for a, b in zip(order, order[1:]):
            QWidget.setTabOrder(a, b)
        self.resize(1000 if self.is_batch else 880, 560)

    def _button(self, which: QDialogButtonBox.StandardButton) -> QPushButton:
        button = self.buttons.button(which)
        assert button is not None  # the box was made with it
        return button

    def _build_layer_list(self) -> QListWidget:
        lst = QListWidget()
        lst.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        lst.setAccessibleName("Layers")
        lst.setMinimumWidth(170)
        lst.setMaximumWidth(240)
        lst.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lst.setTextElideMode(Qt.TextElideMode.ElideRight)
        for layer in self._layers:
            item = QListWidgetItem(layer.name)
            item.setFlags(
                Qt.ItemFlags(Qt.ItemFlag.ItemIsEnabled) | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable
            )
            item.setCheckState(Qt.CheckState.Checked if layer.checked and not layer.error else Qt.CheckState.Unchecked)
            item.setToolTip(layer.name)
            if layer.error:
                item.setFlags(item.flags() & ~Qt.ItemFlags(Qt.ItemFlag.ItemIsUserCheckable))
                item.setToolTip(layer.error)
                item.setForeground(lst.palette().brush(QPalette.Disabled, QPalette.Text))
            lst.addItem(item)
        lst.currentRowChanged.connect(self._select)
        lst.itemChanged.connect(self._item_changed)
        return lst

    def _restore(self, strength: float | None) -> None:
        """Explicit request values first, then the last accepted ones (QSettings), then the defaults."""
        s = self.settings
        pct = round(strength * 100) if strength is not None else s.value("strength", 100, type=int)
        self.controls.set_strength(pct)
        self.split_check.setChecked(s.value("split", False, type=bool))
        geometry = s.value("geometry", QByteArray(), type=QByteArray)
        if not geometry.isEmpty():
            self.restoreGeometry(geometry)

    def _catalog_ready(self, catalog: Catalog) -> None:
        """The variant list is known: restore the choice (request, then QSettings, then default) and start."""
        self.controls.set_catalog(catalog)
        # the variants' names are known now: the side panel grows to show the longest whole (fonts vary by desktop)
        self.side.setMinimumWidth(min(SIDE_MAX_WIDTH, max(SIDE_MIN_WIDTH, self.controls.sizeHint().width())))
        self._weights_error = catalog.error
        variant, label = self._wanted
        if not self.controls.set_variant(variant or self.settings.value("variant", type=str)):
            self.controls.set_variant(catalog.default)
        self.controls.set_label(label or self.settings.value("label", type=str) or None)
        self._catalog_loaded = True
        self._request()
        self.refresh_preview()
        self._refresh_status()

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue("variant", self.controls.variant() or "")
        s.setValue("label", self.controls.label_combo.currentData())
        s.setValue("strength", self.controls.strength())
        s.setValue("split", self.split_check.isChecked())
        s.setValue("geometry", self.saveGeometry())
        s.sync()

    # -- what is chosen -------------------------------------------------------------------------------------
    def choice(self) -> tuple[str | None, str | None]:
        return self.controls.variant(), self.controls.label()

    def strength(self) -> float:
        return self.controls.strength() / 100.0

    def output(self) -> str | None:
        """Where the caller should put the result (one of the offered outputs), None when none were offered."""
        return self.controls.output()

    def curves_for(self, index: int) -> Curves | None:
        """Layer ``index``'s curves for the current choice at the current strength (None until predicted)."""
        curves = self._layers[index].curves.get(self.choice())
        return None if curves is None else curves.with_strength(self.strength())

    def usable(self, index: int) -> bool:
        layer = self._layers[index]
        v, lab = self.choice()
        return v is not None and not layer.error and (index, v, lab) not in self._errors

    def targets(self) -> list[int]:
        """Layers OK applies to: checked (single-layer mode: the one layer) and without an error."""
        return [i for i, layer in enumerate(self._layers) if (layer.checked or not self.is_batch) and self.usable(i)]

    def is_busy(self) -> bool:
        """True while the variant list or the curves for the current choice are loading."""
        if not self._catalog_loaded:
            return True
        v, lab = self.choice()
        return any(k[1] == v and k[2] == lab for k in self._pending)

    def result_layers(self) -> list[tuple[LayerState, bool, Curves | None, str | None]]:
        """(layer, applied?, curves, error) for every layer, in order; what ``run_dialog`` returns."""
        targets = set(self.targets())
        v, lab = self.choice()
        out = []
        for i, layer in enumerate(self._layers):
            err = (layer.error or self._errors.get((i, v, lab))) if v else self._weights_error
            applied = i in targets and self.curves_for(i) is not None
            out.append((layer, applied, self.curves_for(i) if applied else None, err))
        return out

    # -- network requests -------------------------------------------------------------------------------------
    def _begin_work(self) -> None:
        if not self._working:
            self._working = True
            self._loader.start()

    def _request(self) -> None:
        v, lab = self.choice()
        if v is None or not self._catalog_loaded:
            return
        order = [self._current] + [i for i in self.targets() if i != self._current]
        for i in order:
            layer = self._layers[i]
            key = (i, v, lab)
            if layer.error or key in self._errors or key in self._pending or (v, lab) in layer.curves:
                continue
            self._pending.add(key)
            self._loader.submit(Job(i, v, lab, layer.image, layer.mask))

    def _choice_changed(self) -> None:
        for job in self._loader.drop_queued():
            self._pending.discard(job.key)
        self._accept_when_ready = False
        self._request()
        self.refresh_preview()
        self._refresh_status()

    def _job_started(self, job: Job, text: str) -> None:
        if (job.variant, job.label) == self.choice():
            self._job_text = text
            self._refresh_status()
            if job.index == self._current:
                self.refresh_preview()

    def _job_finished(self, job: Job, curves: Curves) -> None:
        self._pending.discard(job.key)
        self._layers[job.index].curves[(job.variant, job.label)] = curves
        if job.index == self._current and (job.variant, job.label) == self.choice():
            self.refresh_preview()
        self._refresh_status()
        if self._accept_when_ready and not self.is_busy():
            self.accept()

    def _job_failed(self, job: Job, message: str) -> None:
        self._pending.discard(job.key)
        self._errors[job.key] = message
        if self._accept_when_ready:
            self._accept_when_ready = False  # let the user read it and decide
        if job.index == self._current:
            self.refresh_preview()
        self._refresh_status()

    # -- view updates ------------------------------------------------------------------------------------------
    def refresh_preview(self) -> None:
        """Re-render preview and plot from cached curves at the current strength: no network."""
        layer = self._layers[self._current]
        if layer.error:
            self.plot.set_curves(None)
            self.preview.set_message("This layer cannot be harmonized")
            return
        curves = self.curves_for(self._current)
        self.plot.set_curves(curves)
        if curves is not None:
            self.preview.set_after(layer.render_preview(curves))
            self.preview.set_message(ALREADY_FITS if curves.changes_nothing else "")
            return
        self.preview.set_after(layer.preview()[0])
        v, lab = self.choice()
        busy = not self._catalog_loaded or (self._current, v, lab) in self._pending
        self.preview.set_message((self._job_text or "Loading the model…") if busy else "")

    def _refresh_status(self) -> None:
        v, lab = self.choice()
        layer = self._layers[self._current]
        error = self._weights_error if v is None else (layer.error or self._errors.get((self._current, v, lab)))
        if not self._catalog_loaded:
            error = layer.error
        busy = self.is_busy()
        self.busy.setVisible(busy)
        self.status_icon.setVisible(bool(error))
        if error:
            text = error
        elif busy and self._accept_when_ready:
            text = "Finishing the curves of the checked layers…"
        elif busy:
            text = self._job_text or "Loading the model…"
        elif self.is_batch:
            n = len(self.targets())
            text = f"{n} of {len(self._layers)} layers will be harmonized."
        else:
            text = ""
        self.status.setText(text)
        self.ok_button.setEnabled(bool(self.targets()))

    def _select(self, row: int) -> None:
        if row < 0:
            return
        self._current = row
        layer = self._layers[row]
        self.preview.set_images(layer.preview_image())
        self._request()
        self.refresh_preview()
        self._refresh_status()

    def _item_changed(self, item: QListWidgetItem) -> None:
        assert self.layer_list is not None  # only its items change
        row = self.layer_list.row(item)
        self._layers[row].checked = item.checkState() == Qt.CheckState.Checked
        self._request()
        self._refresh_status()

    def _load_thumbnails(self, start: int = 0) -> None:
        """One thumbnail per event-loop turn, so a big batch does not delay the first paint."""
        if self.layer_list is None or start >= len(self._layers):
            return
        icon = QIcon(QPixmap.fromImage(to_qimage(self._layers[start].thumbnail())))
        item = self.layer_list.item(start)
        if item is not None:
            item.setIcon(icon)
        QTimer.singleShot(0, lambda: self._load_thumbnails(start + 1))

    # -- buttons ------------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.controls.set_variant(self.controls.catalog.default)
        self.controls.set_label(None)
        self.controls.set_strength(100)

    def accept(self) -> None:
        if not self.targets():
            return
        if self.is_busy():
            self._accept_when_ready = True
            self._refresh_status()
            return
        self._save_settings()
        super().accept()

    def done(self, result: int) -> None:
        self._accept_when_ready = False
        super().done(result)
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the loader thread (waits for a running job); safe to call twice."""
        self._loader.stop()  # after hiding: a model still loading must not keep the window on screen

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self.visible_after = time.perf_counter() - self._t0
            log.debug("dialog visible %.0f ms after start", self.visible_after * 1000)
            QTimer.singleShot(0, self._load_thumbnails)
            QTimer.singleShot(300, self._begin_work)  # in case the platform never paints (minimised)
            if self.layer_list is not None:
                self.layer_list.setCurrentRow(self._current)
                self.layer_list.setFocus()
            else:
                self.controls.slider.setFocus()


__all__ = ["HarmonizeDialog", "default_settings"]
