"""The dock widget: mark artifacts, train or load a model, inpaint, inspect the uncertainty.

The widget only gathers parameters and shows results. Marking uses
:func:`napari_ctinpaint._marking.shapes_to_mask` and
:func:`ctinpaint.suggest_mask`; models come from :func:`ctinpaint.load_model`
or :func:`ctinpaint.train_model`; filling is :func:`ctinpaint.inpaint_volume`,
the same calls the ``ctinpaint`` command makes. Long jobs run in the workers
of :mod:`napari_ctinpaint._workers`; their layers are added in the handlers
below, in the GUI thread.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels, Shapes
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ._marking import shapes_to_mask
from ._workers import (
    Failed,
    InpaintCancelled,
    InpaintDone,
    InpaintProgress,
    InpaintRequest,
    TrainDone,
    TrainProgress,
    TrainRequest,
    inpaint_worker,
    train_worker,
)

if TYPE_CHECKING:
    import napari

MEAN_LAYER = "inpainted (mean)"
STD_LAYER = "uncertainty (std)"
MASK_LAYER = "artifacts"
#: Perceptual, dark at zero: unfilled voxels (std 0) stay black.
STD_COLORMAP = "magma"
TABLE_COLUMNS = ("id", "slice", "pixels", "mean std", "max std")


@dataclass
class WidgetState:
    """Everything the widget knows besides its input fields."""

    model_dir: Path | None = None
    result: InpaintDone | None = None
    worker: object | None = None
    stop: threading.Event | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None


def _short(value: float) -> str:
    """A std for the table: whole units when large (uint16 volumes), 3 significant digits otherwise."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


class InpaintWidget(QWidget):
    """Dock widget of the ctinpaint plugin."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.state = WidgetState()
        layout = QVBoxLayout(self)
        layout.addWidget(self._data_box())
        layout.addWidget(self._mark_box())
        layout.addWidget(self._model_box())
        layout.addWidget(self._inpaint_box())
        layout.addWidget(self._job_box())
        layout.addWidget(self._results_box())
        layout.addStretch(1)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self._refresh_layer_choices)
        self._refresh_layer_choices()
        self._set_busy(False)

    # ------------------------------------------------------------------ layout

    def _data_box(self) -> QGroupBox:
        box = QGroupBox("Data")
        form = QFormLayout(box)
        self.volume_choice = QComboBox()
        self.mask_choice = QComboBox()
        form.addRow("volume", self.volume_choice)
        form.addRow("artifacts", self.mask_choice)
        self.axis = QSpinBox()
        self.axis.setRange(0, 2)
        self.axis.setToolTip("Slices are taken along this axis (0: the slider axis of a (Z, Y, X) volume)")
        form.addRow("slice axis", self.axis)
        return box

    def _mark_box(self) -> QGroupBox:
        box = QGroupBox("Mark artifacts")
        form = QFormLayout(box)
        self.extend = QSpinBox()
        self.extend.setRange(0, 10_000)
        self.extend.setToolTip("Also mark this many slices before and after the slice each shape was drawn on")
        form.addRow("slices ±", self.extend)
        self.shapes_button = QPushButton("Add shapes to artifacts")
        self.shapes_button.setToolTip("Rasterise the rectangles, polygons and ellipses of the selected Shapes layer")
        self.shapes_button.clicked.connect(self.add_shapes_to_mask)
        self.suggest_button = QPushButton("Suggest artifacts")
        self.suggest_button.setToolTip("Outliers and saturated voxels, added to the artifacts layer for editing")
        self.suggest_button.clicked.connect(self.suggest_artifacts)
        row = QHBoxLayout()
        row.addWidget(self.shapes_button)
        row.addWidget(self.suggest_button)
        form.addRow(row)
        return box

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("model folder (model.json + model.safetensors)")
        browse = QPushButton("…")
        browse.clicked.connect(lambda: self._choose_folder(self.model_path))
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self.load_model)
        row = QHBoxLayout()
        row.addWidget(self.model_path)
        row.addWidget(browse)
        row.addWidget(self.load_button)
        form.addRow("folder", row)
        self.model_label = QLabel("no model")
        form.addRow("", self.model_label)

        self.train_dir = QLineEdit()
        self.train_dir.setPlaceholderText("folder to train into (resumes a training found there)")
        browse_out = QPushButton("…")
        browse_out.clicked.connect(lambda: self._choose_folder(self.train_dir))
        row = QHBoxLayout()
        row.addWidget(self.train_dir)
        row.addWidget(browse_out)
        form.addRow("train into", row)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.1, 10_000)
        self.minutes.setValue(10.0)
        self.minutes.setSuffix(" min")
        form.addRow("time budget", self.minutes)
        from ctinpaint.models import DEFAULT_PRESET, PRESETS

        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setCurrentText(DEFAULT_PRESET)
        form.addRow("network", self.preset)
        self.context = QSpinBox()
        self.context.setRange(0, 8)
        self.context.setValue(0)
        self.context.setToolTip(
            "Neighbouring slices on each side the networks also see (2.5D). Use 1 or 2 for a real 3D scan; "
            "0 for a single slice or a stack of unrelated slices. Not available for the seed network."
        )
        form.addRow("neighbour slices", self.context)
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.start_training)
        form.addRow(self.train_button)
        return box

    def _inpaint_box(self) -> QGroupBox:
        box = QGroupBox("Inpaint")
        form = QFormLayout(box)
        self.samples = QSpinBox()
        self.samples.setRange(2, 1_000_000)
        self.samples.setValue(5000)
        self.samples.setToolTip("Generated fills per window; fewer is faster, more gives a steadier mean and std")
        form.addRow("samples", self.samples)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        form.addRow("device", self.device)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("seed", self.seed)
        self.out_path = QLineEdit()
        self.out_path.setPlaceholderText("optional: write result.zarr (+ report), resumable")
        form.addRow("output", self.out_path)
        self.inpaint_button = QPushButton("Inpaint")
        self.inpaint_button.clicked.connect(self.start_inpainting)
        form.addRow(self.inpaint_button)
        return box

    def _job_box(self) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        column = QVBoxLayout()
        wrapper = QWidget()
        wrapper.setLayout(column)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(box)
        column.addWidget(self.status)
        return wrapper

    def _results_box(self) -> QGroupBox:
        box = QGroupBox("Artifacts (click a row to go there)")
        column = QVBoxLayout(box)
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.cellClicked.connect(lambda row, _column: self.go_to_artifact(row))
        column.addWidget(self.table)
        self.save_button = QPushButton("Save results…")
        self.save_button.setToolTip("Zarr group (inpainted, std) or TIFF files, with report.json")
        self.save_button.clicked.connect(lambda: self._choose_save_path())
        column.addWidget(self.save_button)
        return box

    # ------------------------------------------------------------------ layer choices

    def _refresh_layer_choices(self, event=None) -> None:
        for combo, kinds in ((self.volume_choice, (Image,)), (self.mask_choice, (Labels,))):
            current = combo.currentText()
            combo.clear()
            names = [layer.name for layer in self.viewer.layers if isinstance(layer, kinds) and layer.name not in (MEAN_LAYER, STD_LAYER)]
            combo.addItems(names)
            if current in names:
                combo.setCurrentText(current)
            elif combo is self.mask_choice and MASK_LAYER in names:
                combo.setCurrentText(MASK_LAYER)

    def _volume_layer(self) -> Image:
        name = self.volume_choice.currentText()
        if not name:
            raise ValueError("volume: open a volume (File > Open, or File > Open Sample > ctinpaint) first")
        return self.viewer.layers[name]

    def _mask_layer(self, *, create: bool = False) -> Labels:
        name = self.mask_choice.currentText()
        if name:
            return self.viewer.layers[name]
        if not create:
            raise ValueError("artifacts: mark the artifacts on a Labels layer first (paint, shapes or Suggest)")
        volume = self._volume_layer()
        layer = self.viewer.add_labels(np.zeros(volume.data.shape, np.uint8), name=MASK_LAYER, opacity=0.5,
                                       scale=volume.scale, translate=volume.translate)  # fmt: skip
        self.mask_choice.setCurrentText(layer.name)
        return layer

    def _set_mask(self, layer: Labels, marked: np.ndarray) -> None:
        data = np.asarray(layer.data)
        updated = np.where(marked & (data == 0), 1, data).astype(data.dtype)
        layer.data = updated  # a new array: napari redraws, and the old one is left as it was

    # ------------------------------------------------------------------ marking

    def add_shapes_to_mask(self) -> None:
        """Rasterise the selected (else the topmost) Shapes layer into the artifacts layer."""
        try:
            shapes = self._shapes_layer()
            volume = self._volume_layer()
            marked = shapes_to_mask(shapes.data, shapes.shape_type, volume.data.shape, axis=self.axis.value(),
                                    extend=self.extend.value())  # fmt: skip
            self._set_mask(self._mask_layer(create=True), marked)
        except (ValueError, TypeError) as exc:
            show_error(f"Shapes to artifacts: {exc}")

    def _shapes_layer(self) -> Shapes:
        active = self.viewer.layers.selection.active
        if isinstance(active, Shapes):
            return active
        candidates = [layer for layer in self.viewer.layers if isinstance(layer, Shapes)]
        if not candidates:
            raise ValueError("shapes: draw rectangles or polygons on a Shapes layer first")
        return candidates[-1]

    def suggest_artifacts(self) -> None:
        """Add :func:`ctinpaint.suggest_mask`'s guess to the artifacts layer."""
        from ctinpaint import suggest_mask

        try:
            volume = self._volume_layer()
            guess = np.asarray(suggest_mask(volume.data, axis=self.axis.value()).compute())
            self._set_mask(self._mask_layer(create=True), guess)
            show_info(f"Suggested {int(guess.sum())} artifact voxels; check and edit them before inpainting")
        except (ValueError, TypeError) as exc:
            show_error(f"Suggest artifacts: {exc}")

    # ------------------------------------------------------------------ model

    def load_model(self) -> None:
        """Check the model folder with the safe loader and use it for inpainting."""
        from ctinpaint import load_model

        path = Path(self.model_path.text().strip())
        try:
            if not self.model_path.text().strip():
                raise ValueError("model_dir: choose a model folder first")
            model = load_model(path, device="cpu")
        except (ValueError, TypeError, OSError) as exc:
            show_error(f"Loading the model failed: {exc}")
            return
        self._use_model(path, model.meta.get("step"))

    def _use_model(self, path: Path, step) -> None:
        self.state.model_dir = path
        self.model_path.setText(str(path))
        self.model_label.setText(f"{path.name} (step {step})")

    def start_training(self, request: TrainRequest | None = None) -> None:
        """Train on the chosen volume outside the artifacts, for the time budget."""
        try:
            request = request or self._train_request()
        except (ValueError, TypeError) as exc:
            show_error(f"Training: {exc}")
            return
        self.status.setText("training: preparing patches…")
        self._start(train_worker(request, self._new_stop()), self._on_train_update, self._on_train_done)

    def _train_request(self) -> TrainRequest:
        out = self.train_dir.text().strip()
        if not out:
            raise ValueError("out_dir: choose a folder to train into")
        mask = self._mask_layer().data if self.mask_choice.currentText() else None
        return TrainRequest(volume=self._volume_layer().data, mask=mask, out_dir=Path(out), preset=self.preset.currentText(),
                            minutes=self.minutes.value(), device=self.device.currentText(),
                            model_overrides={"context": self.context.value()})  # fmt: skip

    def _on_train_update(self, update: TrainProgress) -> None:
        if update.total:
            self.progress.setRange(0, update.total)
            self.progress.setValue(update.step)
        losses = ", ".join(f"{name} {value:.3g}" for name, value in update.losses.items())
        self.status.setText(f"training: step {update.step}{f'/{update.total}' if update.total else ''} — loss {losses}")

    def _on_train_done(self, done: TrainDone | Failed) -> None:
        if isinstance(done, Failed):
            show_error(f"Training failed: {done.message}")
            self.status.setText("training failed")
            return
        self._use_model(done.model_dir, done.step)
        how = "cancelled, model saved" if done.stopped_by == "cancelled" else "done"
        self.status.setText(f"training {how}: step {done.step}, model in {done.model_dir}")
        show_info(f"Model trained ({done.step} steps, {how}) and saved in {done.model_dir}")

    # ------------------------------------------------------------------ inpainting

    def start_inpainting(self, request: InpaintRequest | None = None) -> None:
        """Fill the marked artifacts with the mean of the generated samples."""
        try:
            request = request or self._inpaint_request()
        except (ValueError, TypeError) as exc:
            show_error(f"Inpainting: {exc}")
            return
        self.status.setText("inpainting…")
        self.progress.setRange(0, 0)
        self._start(inpaint_worker(request, self._new_stop()), self._on_inpaint_update, self._on_inpaint_done)

    def _inpaint_request(self) -> InpaintRequest:
        if self.state.model_dir is None:
            raise ValueError("model: load or train a model first")
        out = self.out_path.text().strip()
        return InpaintRequest(
            volume=self._volume_layer().data, mask=self._mask_layer().data, model_dir=self.state.model_dir,
            n_samples=self.samples.value(), axis=self.axis.value(), device=self.device.currentText(),
            seed=self.seed.value(), out=Path(out) if out else None,
        )  # fmt: skip

    def _on_inpaint_update(self, update: InpaintProgress) -> None:
        self.progress.setRange(0, update.total)
        self.progress.setValue(update.done)
        self.status.setText(f"inpainting: {update.done}/{update.total} slabs")

    def _on_inpaint_done(self, done: InpaintDone | InpaintCancelled | Failed) -> None:
        if isinstance(done, InpaintCancelled):
            self.status.setText(f"inpainting cancelled after {done.slabs_done} slabs")
            show_info("Inpainting cancelled")
            return
        if isinstance(done, Failed):
            self.status.setText("inpainting failed")
            show_error(f"Inpainting failed: {done.message}")
            return
        self.state.result = done
        volume = self._volume_layer()
        result = done.result
        # Written to Zarr: stay lazy (the volume may be large); in memory: small, show the arrays.
        mean, std = (result.inpainted, result.std) if result.out is not None else (np.asarray(result.inpainted), np.asarray(result.std))
        self._show(MEAN_LAYER, mean, contrast_limits=list(volume.contrast_limits), colormap=volume.colormap.name)
        top = max((row["max_std"] for row in result.report), default=0.0)
        self._show(STD_LAYER, std, contrast_limits=[0.0, top if top > 0 else 1.0], colormap=STD_COLORMAP)
        self._fill_table(done.result.report)
        where = f", written to {done.result.out}" if done.result.out is not None else ""
        self.status.setText(f"inpainted {len(done.result.report)} artifacts{where}")

    def _show(self, name: str, data: np.ndarray, **kwargs) -> None:
        volume = self._volume_layer()
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = data
            for key, value in kwargs.items():
                setattr(layer, key, value)
        else:
            self.viewer.add_image(data, name=name, scale=volume.scale, translate=volume.translate, **kwargs)

    def _fill_table(self, report: list) -> None:
        self.table.setRowCount(len(report))
        for i, row in enumerate(report):
            values = (row["id"], row["slice"], row["pixels"], _short(row["mean_std"]), _short(row["max_std"]))
            for j, value in enumerate(values):
                self.table.setItem(i, j, QTableWidgetItem(str(value)))

    def go_to_artifact(self, row: int) -> None:
        """Show the slice of the artifact in table row ``row`` and centre the view on it."""
        if self.state.result is None:
            return
        artifact = self.state.result.result.report[row]
        axis = artifact["axis"]
        order = (axis, *(i for i in range(3) if i != axis))
        if tuple(self.viewer.dims.order) != order:
            self.viewer.dims.order = order
        self.viewer.dims.set_current_step(axis, artifact["slice"])
        scale = self._volume_layer().scale
        plane = [i for i in range(3) if i != axis]
        centre = ((artifact["r0"] + artifact["r1"] - 1) / 2, (artifact["c0"] + artifact["c1"] - 1) / 2)
        self.viewer.camera.center = tuple(c * scale[i] for c, i in zip(centre, plane, strict=True))

    # ------------------------------------------------------------------ saving

    def _choose_save_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save results", "result.zarr", "Zarr (*.zarr);;TIFF (*.tif *.tiff)")
        if path:
            self.save_results(Path(path))

    def save_results(self, path: Path) -> list[Path]:
        """Write the last result: a Zarr group ``inpainted``/``std``, or two TIFFs; ``report.json`` beside.

        Returns the paths written (empty when it failed; the reason is a notification).
        """
        from ctinpaint import save_volume

        if self.state.result is None:
            show_error("Save results: inpaint first")
            return []
        result = self.state.result.result
        try:
            if path.suffix.lower() in (".tif", ".tiff"):
                std_path = path.with_name(f"{path.stem}_std{path.suffix}")
                written = [save_volume(result.inpainted, path), save_volume(result.std, std_path)]
                report = path.with_name(f"{path.stem}_report.json")
            else:
                written = [save_volume({"inpainted": result.inpainted, "std": result.std}, path)]
                report = path / "report.json"
            tmp = report.with_name(f".{report.name}.tmp")
            tmp.write_text(json.dumps(result.report, indent=1))
            tmp.replace(report)
        except (ValueError, TypeError, OSError) as exc:
            show_error(f"Save results: {exc}")
            return []
        show_info(f"Saved {', '.join(str(p) for p in written)} and {report.name}")
        return [*written, report]

    # ------------------------------------------------------------------ jobs

    def _new_stop(self) -> threading.Event:
        self.state.stop = threading.Event()
        return self.state.stop

    def _start(self, worker, on_update, on_done) -> None:
        self.state.worker = worker
        worker.yielded.connect(on_update)
        worker.returned.connect(on_done)
        worker.finished.connect(self._on_finished)
        self._set_busy(True)
        worker.start()

    def cancel(self) -> None:
        """Ask the running job to stop (training saves its model first)."""
        if self.state.stop is not None:
            self.state.stop.set()
            self.status.setText(self.status.text() + " — cancelling…")

    def _on_finished(self) -> None:
        self.state.worker = None
        self.state.stop = None
        self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        for button in (self.train_button, self.inpaint_button, self.load_button, self.shapes_button,
                       self.suggest_button, self.save_button):  # fmt: skip
            button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setTextVisible(busy)
        if not busy:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def _choose_folder(self, field: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", field.text() or str(Path.home()))
        if folder:
            field.setText(folder)
