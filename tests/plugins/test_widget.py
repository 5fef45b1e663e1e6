"""The dock widget in a real napari viewer (Xvfb): marking, model loading, training, inpainting, cancel, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("napari", reason="the napari plugin needs the napari extra: pip install -e '.[napari]'")

from ctinpaint import inpaint_volume, load_model  # noqa: E402
from ctinpaint.models import DEFAULT_PRESET  # noqa: E402
from napari_ctinpaint._widget import MEAN_LAYER, STD_LAYER, InpaintWidget  # noqa: E402
from napari_ctinpaint._workers import InpaintRequest, TrainRequest  # noqa: E402

JOB_TIMEOUT_MS = 60_000


@pytest.fixture
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("ctinpaint", "Inpaint artifacts")
    return widget


def show_phantom(widget, corrupted):
    widget.viewer.add_image(corrupted.volume, name="scan")
    widget.viewer.add_labels(corrupted.mask.astype(np.uint8), name="artifacts")
    widget.volume_choice.setCurrentText("scan")
    widget.mask_choice.setCurrentText("artifacts")


def wait_until_idle(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.state.busy, timeout=JOB_TIMEOUT_MS)


def test_widget_opens_from_the_viewer_and_lists_layers(widget, tiny_phantom):
    assert isinstance(widget, InpaintWidget)
    assert widget.samples.value() == 5000 and widget.device.currentText() == "auto"
    show_phantom(widget, tiny_phantom)
    assert widget.volume_choice.currentText() == "scan" and widget.mask_choice.currentText() == "artifacts"
    assert widget.cancel_button.isEnabled() is False and widget.inpaint_button.isEnabled()


def test_a_shapes_rectangle_becomes_the_right_mask(widget):
    viewer = widget.viewer
    viewer.add_image(np.zeros((5, 40, 50), np.uint16), name="scan")
    shapes = viewer.add_shapes(
        [np.array([[2, 5, 10], [2, 5, 20], [2, 15, 20], [2, 15, 10]])], shape_type="rectangle", name="boxes"
    )
    viewer.layers.selection.active = shapes
    widget.extend.setValue(1)
    widget.add_shapes_to_mask()
    labels = viewer.layers["artifacts"]  # created on the volume's grid
    expected = np.zeros((5, 40, 50), bool)
    expected[1:4, 5:16, 10:21] = True
    np.testing.assert_array_equal(labels.data != 0, expected)
    assert widget.mask_choice.currentText() == "artifacts"


def test_suggest_adds_the_core_suggestion_to_the_artifacts_layer(widget, tiny_phantom):
    from ctinpaint import suggest_mask

    show_phantom(widget, tiny_phantom)
    widget.viewer.layers["artifacts"].data = np.zeros(tiny_phantom.volume.shape, np.uint8)
    widget.suggest_artifacts()
    np.testing.assert_array_equal(widget.viewer.layers["artifacts"].data != 0, suggest_mask(tiny_phantom.volume).compute())


def test_full_run_adds_mean_and_std_equal_to_inpaint_volume(widget, qtbot, tiny_phantom, tiny_model_dir, tmp_path):
    show_phantom(widget, tiny_phantom)
    widget.model_path.setText(str(tiny_model_dir))
    widget.load_model()
    assert widget.state.model_dir == tiny_model_dir
    widget.samples.setValue(16)
    widget.device.setCurrentText("cpu")
    widget.seed.setValue(7)
    updates = []
    widget.start_inpainting()
    widget.state.worker.yielded.connect(updates.append)
    wait_until_idle(qtbot, widget)

    # The widget runs in-memory jobs one slice per slab (slab=1) for a prompt cancel; the same call here.
    expected = inpaint_volume(tiny_phantom.volume, tiny_phantom.mask, load_model(tiny_model_dir, device="cpu"),
                              n_samples=16, seed=7, slab=1)  # fmt: skip
    mean, std = widget.viewer.layers[MEAN_LAYER], widget.viewer.layers[STD_LAYER]
    np.testing.assert_array_equal(np.asarray(mean.data), expected.inpainted.compute())
    np.testing.assert_array_equal(np.asarray(std.data), expected.std.compute())
    assert std.colormap.name == "magma" and std.contrast_limits[1] == pytest.approx(max(r["max_std"] for r in expected.report))
    assert updates and updates[-1].done == updates[-1].total == tiny_phantom.volume.shape[0]

    # One table row per artifact; a click goes to its slice.
    assert widget.table.rowCount() == len(expected.report) > 0
    last = expected.report[-1]
    assert widget.table.item(len(expected.report) - 1, 1).text() == str(last["slice"])
    widget.go_to_artifact(len(expected.report) - 1)
    assert widget.viewer.dims.current_step[0] == last["slice"]

    # Saving writes what is shown, and the report.
    written = widget.save_results(tmp_path / "result.zarr")
    assert written[0] == tmp_path / "result.zarr"
    from ctinpaint import open_volume

    np.testing.assert_array_equal(open_volume(written[0], key="inpainted").compute(), expected.inpainted.compute())
    assert json.loads((tmp_path / "result.zarr" / "report.json").read_text()) == expected.report


def test_training_from_the_widget_reports_losses_and_cancel_keeps_the_model(widget, qtbot, tiny_phantom, tiny_training, tmp_path):
    show_phantom(widget, tiny_phantom)
    request = TrainRequest(volume=tiny_phantom.volume, mask=tiny_phantom.mask, out_dir=tmp_path / "model", minutes=5.0,
                           device="cpu", **tiny_training)  # fmt: skip
    widget.start_training(request)
    # Cancel once the live readout shows a loss: the worker stops, and the model is saved anyway.
    qtbot.waitUntil(lambda: "loss" in widget.status.text(), timeout=JOB_TIMEOUT_MS)
    assert "D " in widget.status.text() and "G " in widget.status.text()
    widget.cancel()
    wait_until_idle(qtbot, widget)
    assert "cancelled" in widget.status.text()
    assert widget.state.model_dir == tmp_path / "model"
    loaded = load_model(tmp_path / "model", device="cpu")
    assert loaded.meta["step"] >= 1
    assert loaded.model.config.preset == DEFAULT_PRESET  # a request that names no preset trains the library's default


def test_cancel_stops_an_inpainting_worker(widget, qtbot, tiny_phantom, tiny_model_dir):
    show_phantom(widget, tiny_phantom)
    mask = np.zeros(tiny_phantom.volume.shape, np.uint8)
    mask[:, 20:40, 20:40] = 1  # an artifact on every slice: one slab each
    widget.viewer.layers["artifacts"].data = mask
    request = InpaintRequest(volume=tiny_phantom.volume, mask=mask, model_dir=tiny_model_dir, n_samples=1500, device="cpu")
    widget.start_inpainting(request)
    worker = widget.state.worker
    done = []
    worker.yielded.connect(done.append)
    qtbot.waitUntil(lambda: len(done) >= 1, timeout=JOB_TIMEOUT_MS)
    widget.cancel()
    wait_until_idle(qtbot, widget)
    assert "cancelled" in widget.status.text()
    assert len(done) < mask.shape[0]  # it stopped before the last slab
    assert MEAN_LAYER not in widget.viewer.layers and widget.inpaint_button.isEnabled()


def test_a_bad_model_file_is_a_notification_not_a_crash(widget, qtbot, tiny_phantom, tiny_model_dir, tmp_path, errors_shown):
    import shutil

    bad = tmp_path / "bad_model"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "model.json").write_text("{ this is not json")
    widget.model_path.setText(str(bad))
    widget.load_model()
    assert widget.state.model_dir is None
    [message] = errors_shown()
    assert message.startswith("Loading the model failed:") and "model" in message

    # The same file reached by the inpainting worker: a notification as well, and the widget is usable again.
    show_phantom(widget, tiny_phantom)
    widget.start_inpainting(InpaintRequest(volume=tiny_phantom.volume, mask=tiny_phantom.mask, model_dir=bad, n_samples=4))
    wait_until_idle(qtbot, widget)
    assert errors_shown()[-1].startswith("Inpainting failed:") and widget.inpaint_button.isEnabled()

    widget.model_path.setText("")
    widget.load_model()
    assert "choose a model folder" in errors_shown()[-1]


def test_neighbour_slices_reach_the_training_request(widget, tiny_phantom, tmp_path):
    show_phantom(widget, tiny_phantom)
    widget.train_dir.setText(str(tmp_path / "model"))
    assert widget._train_request().model_overrides == {"context": 0}
    widget.context.setValue(2)
    request = widget._train_request()
    assert request.model_overrides == {"context": 2} and request.out_dir == tmp_path / "model"
