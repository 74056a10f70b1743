"""The preview: the composite zoomed to fit, harmonized, with a before/after comparison.

Two ways to compare: a split view (drag the divider, or move it with the arrow keys) and "hold to compare"
(``set_holding(True)`` shows the original while a button or key is held). Images are RGB uint8 arrays; the
widget keeps its own QImage copies, so callers may reuse their buffers.
"""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QImage, QPainter, QPalette, QPen
from PyQt5.QtWidgets import QSizePolicy, QWidget


def to_qimage(rgb: np.ndarray) -> QImage:
    """An owned QImage copy of an H×W×3 uint8 array."""
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()


class PreviewWidget(QWidget):
    """Shows ``after`` scaled to fit; in split view ``before`` is shown left of the divider."""

    first_painted = pyqtSignal()  # the window is on screen: heavy work may start now

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._painted = False
        self._before = QImage()
        self._after = QImage()
        self._split: float | None = None
        self._holding = False
        self._message = ""
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(240, 180)
        self.setAccessibleName("Preview")

    # -- content ----------------------------------------------------------------------------------------------
    def set_images(self, before: np.ndarray, after: np.ndarray | None = None) -> None:
        self._before = to_qimage(before)
        self._after = self._before if after is None else to_qimage(after)
        self.update()

    def set_after(self, after: np.ndarray) -> None:
        self._after = to_qimage(after)
        self.update()

    def set_message(self, text: str) -> None:
        """A short line drawn over the image (e.g. while the model loads); empty to hide."""
        self._message = text
        self.update()

    def set_split(self, enabled: bool) -> None:
        self._split = (self._split if self._split is not None else 0.5) if enabled else None
        self.update()

    def set_holding(self, holding: bool) -> None:
        self._holding = holding
        self.update()

    @property
    def split(self) -> float | None:
        return self._split

    def sizeHint(self) -> QSize:
        return QSize(640, 440)

    # -- geometry -------------------------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the image is drawn: fitted to the widget, aspect kept, centred."""
        if self._after.isNull():
            return QRectF()
        iw, ih = self._after.width(), self._after.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    # -- painting -------------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(QPalette.Dark))
        rect = self.image_rect()
        if not rect.isEmpty():
            p.setRenderHint(QPainter.SmoothPixmapTransform)
            p.drawImage(rect, self._before if self._holding else self._after)
            if self._split is not None and not self._holding:
                self._paint_split(p, rect, self._split)
        if self._holding:
            self._paint_tag(p, rect, "Before", left=True)
        if self._message:
            self._paint_message(p)
        if self.hasFocus() and self._split is not None:
            pen = QPen(self.palette().color(QPalette.Highlight), 2)
            p.setPen(pen)
            p.drawRect(self.rect().adjusted(1, 1, -1, -1))
        p.end()
        if not self._painted:
            self._painted = True
            self.first_painted.emit()

    def _paint_split(self, p: QPainter, rect: QRectF, split: float) -> None:
        x = rect.left() + rect.width() * split
        src_w = self._before.width() * split
        p.drawImage(
            QRectF(rect.left(), rect.top(), x - rect.left(), rect.height()),
            self._before,
            QRectF(0, 0, src_w, self._before.height()),
        )
        p.setRenderHint(QPainter.Antialiasing)
        p.setPen(QPen(QColor(255, 255, 255, 230), 2))
        p.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        p.setBrush(QColor(255, 255, 255, 230))
        p.setPen(QPen(QColor(0, 0, 0, 120), 1))
        p.drawEllipse(QPointF(x, rect.center().y()), 7, 7)
        self._paint_tag(p, rect, "Before", left=True)
        self._paint_tag(p, rect, "After", left=False)

    def _paint_tag(self, p: QPainter, rect: QRectF, text: str, left: bool) -> None:
        if rect.isEmpty():
            return
        fm = p.fontMetrics()
        pad = 4
        w, h = fm.horizontalAdvance(text) + 2 * pad, fm.height() + pad
        x = rect.left() + 8 if left else rect.right() - 8 - w
        box = QRectF(x, rect.top() + 8, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 140))
        p.drawRoundedRect(box, 3, 3)
        p.setPen(QColor(255, 255, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_message(self, p: QPainter) -> None:
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(self._message) + 24, fm.height() + 12
        box = QRectF((self.width() - w) / 2, self.height() - h - 12, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 160))
        p.drawRoundedRect(box, 4, 4)
        p.setPen(QColor(255, 255, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, self._message)

    # -- interaction: drag or arrow keys move the divider --------------------------------------------------------
    def _move_split_to(self, x: float) -> None:
        rect = self.image_rect()
        if self._split is None or rect.isEmpty():
            return
        self._split = min(1.0, max(0.0, (x - rect.left()) / rect.width()))
        self.update()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._move_split_to(event.pos().x())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._move_split_to(event.pos().x())

    def keyPressEvent(self, event) -> None:
        if self._split is not None and event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            step = 0.05 if event.key() == Qt.Key.Key_Right else -0.05
            self._split = min(1.0, max(0.0, self._split + step))
            self.update()
        else:
            super().keyPressEvent(event)
