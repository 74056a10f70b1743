"""A small plot of the three channel curves (strength applied), so the user sees what will be done, not only its effect."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import QPointF, QRectF, QSize, Qt
from PyQt5.QtGui import QColor, QPainter, QPainterPath, QPalette, QPen
from PyQt5.QtWidgets import QSizePolicy, QWidget

from s2crnet.curves import Curves

CHANNEL_COLOURS = ((220, 50, 47), (40, 160, 60), (38, 110, 220))
SAMPLES = 129


class CurvePlot(QWidget):
    """Input on x, output on y, both 0–1; a dashed diagonal marks 'no change'."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._values: np.ndarray | None = None  # (3, SAMPLES) in [0, 1]
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.setMinimumSize(150, 150)
        self.setAccessibleName("Channel curves")

    def set_curves(self, curves: Curves | None) -> None:
        self._values = None if curves is None else curves.lut(SAMPLES)
        self.setToolTip("" if curves is None else f"Curves of the {curves.variant} variant at {curves.strength:.0%}")
        self.update()

    def values(self) -> np.ndarray | None:
        return self._values

    def sizeHint(self) -> QSize:
        return QSize(200, 170)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        pal = self.palette()
        side = min(self.width(), self.height()) - 2
        box = QRectF((self.width() - side) / 2, 1, side, side)
        p.fillRect(box, pal.color(QPalette.Base))
        grid = pal.color(QPalette.Mid)
        grid.setAlpha(110)
        p.setPen(QPen(grid, 1))
        for k in (1, 2, 3):
            t = k / 4
            p.drawLine(QPointF(box.left() + t * side, box.top()), QPointF(box.left() + t * side, box.bottom()))
            p.drawLine(QPointF(box.left(), box.top() + t * side), QPointF(box.right(), box.top() + t * side))
        p.setPen(QPen(pal.color(QPalette.Mid), 1, Qt.PenStyle.DashLine))
        p.drawLine(box.bottomLeft(), box.topRight())
        if self._values is not None:
            xs = np.linspace(0.0, 1.0, self._values.shape[1])
            for c, rgb in enumerate(CHANNEL_COLOURS):
                path = QPainterPath()
                for i, (x, y) in enumerate(zip(xs, self._values[c])):
                    pt = QPointF(box.left() + x * side, box.bottom() - y * side)
                    path.moveTo(pt) if i == 0 else path.lineTo(pt)
                p.setPen(QPen(QColor(*rgb), 1.6))
                p.drawPath(path)
        p.setPen(QPen(pal.color(QPalette.Mid), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(box)
        p.end()
