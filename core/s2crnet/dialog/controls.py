"""The settings panel: variant, object class for the semantic variant, strength, and where the result goes.

It only knows values, not the network: ``choice_changed`` means "the curves must be predicted again",
``strength_changed`` means "re-render what is already there". The variant list arrives with ``set_catalog``
once the loader thread has read it; until then the combo says so and is disabled. Variants show under titles a
GIMP user understands; the variant's name and technical description are the item's tooltip. The output row
(filter, change the layer, new layer) appears only when the caller offers choices (``set_outputs``).
"""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QSlider, QSpinBox, QWidget

from s2crnet import __version__
from s2crnet.dialog.loader import Catalog

STRENGTH_MAX = 150  # percent; Curves allows up to 1.5
AUTO_LABEL = "auto"  # no class sent: the engine asks its ImageNet classifier
DEFAULT_LABEL = AUTO_LABEL


class ControlsPanel(QWidget):
    choice_changed = pyqtSignal()
    strength_changed = pyqtSignal(int)  # percent

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.catalog = Catalog()
        self.variant_combo = QComboBox()
        self.variant_combo.addItem("Loading…")
        self.variant_combo.setEnabled(False)
        self.variant_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.description = QLabel("Reading the installed variants…")
        self.description.setWordWrap(True)
        self.description.setEnabled(False)  # the disabled palette renders it as secondary text

        self.output_combo = QComboBox()
        self.output_caption = QLabel("Res&ult:")
        self.output_caption.setBuddy(self.output_combo)

        self.label_combo = QComboBox()
        self.label_caption = QLabel("Object cl&ass:")
        self.label_caption.setBuddy(self.label_combo)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STRENGTH_MAX)
        self.slider.setPageStep(10)
        self.slider.setTickPosition(QSlider.TicksBelow)
        self.slider.setTickInterval(50)
        self.slider.setAccessibleName("Strength")
        self.spin = QSpinBox()
        self.spin.setRange(0, STRENGTH_MAX)
        self.spin.setSuffix(" %")
        self.spin.setAccessibleName("Strength in percent")
        strength_row = QHBoxLayout()
        strength_row.setContentsMargins(0, 0, 0, 0)
        strength_row.addWidget(self.slider, 1)
        strength_row.addWidget(self.spin)
        variant_caption = QLabel("&Variant:")
        variant_caption.setBuddy(self.variant_combo)
        strength_caption = QLabel("&Strength:")
        strength_caption.setBuddy(self.slider)

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow(variant_caption, self.variant_combo)
        form.addRow("", self.description)
        form.addRow(self.label_caption, self.label_combo)
        form.addRow(strength_caption, strength_row)
        form.addRow(self.output_caption, self.output_combo)

        self.variant_combo.currentIndexChanged.connect(self._variant_changed)
        self.label_combo.currentIndexChanged.connect(lambda _i: self.choice_changed.emit())
        self.slider.valueChanged.connect(self._slider_moved)
        self.spin.valueChanged.connect(self.slider.setValue)
        self.set_strength(100)
        self.label_caption.hide()
        self.label_combo.hide()
        self.output_caption.hide()
        self.output_combo.hide()

    def set_outputs(self, outputs: list[tuple[str, str, str]], current: str | None) -> None:
        """Offer where the result goes: ``(value, label, tooltip)`` in order; hidden when there is no choice."""
        self.output_combo.clear()
        for value, text, tip in outputs:
            self.output_combo.addItem(text, value)
            self.output_combo.setItemData(self.output_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        i = self.output_combo.findData(current)
        self.output_combo.setCurrentIndex(max(0, i))
        shown = len(outputs) > 1
        self.output_caption.setVisible(shown)
        self.output_combo.setVisible(shown)

    def output(self) -> str | None:
        return self.output_combo.currentData()

    def set_catalog(self, catalog: Catalog) -> None:
        """Fill the variant and class lists (no signal: the caller restores the choice, then asks for curves)."""
        self.catalog = catalog
        for combo in (self.variant_combo, self.label_combo):
            combo.blockSignals(True)
            combo.clear()
        for name in catalog.variants:
            self.variant_combo.addItem(catalog.title(name), name)
            self.variant_combo.setItemData(
                self.variant_combo.count() - 1, self._tooltip(name), Qt.ItemDataRole.ToolTipRole
            )
        self.label_combo.addItem("Automatic", AUTO_LABEL)
        self.label_combo.setItemData(0, "What an ImageNet classifier sees in the object", Qt.ItemDataRole.ToolTipRole)
        for key in catalog.labels:
            self.label_combo.addItem(key.capitalize(), key)
        self.label_combo.setCurrentIndex(max(0, self.label_combo.findData(DEFAULT_LABEL)))
        self.variant_combo.setEnabled(bool(catalog.variants))
        for combo in (self.variant_combo, self.label_combo):
            combo.blockSignals(False)
        self._show_variant()

    # -- values -------------------------------------------------------------------------------------------
    def variant(self) -> str | None:
        return self.variant_combo.currentData()

    def is_semantic(self) -> bool:
        return self.variant() in self.catalog.semantic

    def label(self) -> str | None:
        """The class label the network gets: only for the semantic variants, and None for "Automatic"."""
        key = self.label_combo.currentData() if self.is_semantic() else None
        return None if key == AUTO_LABEL else key

    def strength(self) -> int:
        return self.slider.value()

    def set_variant(self, name: str | None) -> bool:
        i = self.variant_combo.findData(name) if name else -1
        if i >= 0:
            self.variant_combo.setCurrentIndex(i)
        return i >= 0

    def set_label(self, label: str | None) -> None:
        i = self.label_combo.findData(str(label).lower() if label is not None else DEFAULT_LABEL)
        self.label_combo.setCurrentIndex(i if i >= 0 else self.label_combo.findData(DEFAULT_LABEL))

    def set_strength(self, percent: int) -> None:
        self.slider.setValue(max(0, min(STRENGTH_MAX, int(round(percent)))))

    # -- wiring ---------------------------------------------------------------------------------------------
    def _slider_moved(self, value: int) -> None:
        self.spin.blockSignals(True)
        self.spin.setValue(value)
        self.spin.blockSignals(False)
        self.strength_changed.emit(value)

    def _tooltip(self, name: str) -> str:
        return f"Variant {name}: {self.catalog.descriptions[name]}"

    def _show_variant(self) -> None:
        v = self.variant()
        self.description.setText(f"Network {v}, S2CRNet {__version__}" if v else "No trained weights are installed.")
        self.description.setToolTip(self._tooltip(v) if v else "")
        self.variant_combo.setToolTip(self._tooltip(v) if v else "")
        semantic = self.is_semantic()
        self.label_caption.setVisible(semantic)
        self.label_combo.setVisible(semantic)

    def _variant_changed(self, _index: int = 0) -> None:
        self._show_variant()
        self.choice_changed.emit()
