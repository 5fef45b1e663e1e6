"""Render the napari plugin at work to a PNG: phantom, inpainted mean, uncertainty, and the widget.

Drives the dock widget the way a user would: opens the phantom sample, trains a
model with the widget's Train button for a short time budget (or loads one),
inpaints the marked artifacts, goes to the largest artifact and takes a
screenshot of the whole window::

    python examples/napari_screenshot.py --out docs/napari_screenshot.png --minutes 2

Needs a display; on a machine without one run it under ``xvfb-run -a -s "-screen 0 1600x1000x24"``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/napari_screenshot.png"))
    parser.add_argument("--model", type=Path, help="use this model folder instead of training one")
    parser.add_argument("--minutes", type=float, default=2.0, help="training time budget (default 2)")
    parser.add_argument("--samples", type=int, default=500, help="fills per window (default 500)")
    parser.add_argument("--size", type=int, nargs=2, default=(1500, 900), metavar=("W", "H"))
    args = parser.parse_args()

    import napari
    from napari.qt import get_qapp

    from napari_ctinpaint._widget import MEAN_LAYER, STD_LAYER
    from napari_ctinpaint._workers import TrainRequest

    viewer = napari.Viewer(show=True, title="ctinpaint")
    viewer.window._qt_window.resize(*args.size)
    viewer.open_sample("ctinpaint", "phantom")
    _, widget = viewer.window.add_plugin_dock_widget("ctinpaint", "Inpaint artifacts")
    app = get_qapp()

    def wait():
        while widget.state.busy:
            app.processEvents()
            time.sleep(0.05)

    phantom = viewer.layers["phantom"]
    if args.model is None:
        model_dir = Path(tempfile.mkdtemp(prefix="ctinpaint-model-"))
        widget.train_dir.setText(str(model_dir))
        widget.minutes.setValue(args.minutes)
        widget.start_training(TrainRequest(volume=phantom.data, mask=viewer.layers["artifacts"].data, out_dir=model_dir,
                                           minutes=args.minutes, device="cpu",
                                           train_overrides={"batch_size": 32, "validate_every": 10_000}))  # fmt: skip
        wait()
    else:
        widget.model_path.setText(str(args.model))
        widget.load_model()
    if widget.state.model_dir is None:
        raise SystemExit("no model: training or loading failed (see the messages above)")

    widget.samples.setValue(args.samples)
    widget.start_inpainting()
    wait()
    if MEAN_LAYER not in viewer.layers:
        raise SystemExit("inpainting failed (see the messages above)")

    # A 2 x 2 grid: the input and its marked artifacts above, the mean fill and its uncertainty below
    # (napari fills the grid from the first layer of the list).
    viewer.layers.remove("truth")
    for index, name in enumerate(["phantom", "artifacts", MEAN_LAYER, STD_LAYER]):
        viewer.layers.move(viewer.layers.index(name), index)
    viewer.layers["artifacts"].opacity = 1.0
    grid = viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid
    grid.shape = (2, 2)
    grid.enabled = True
    # Show the slice with the most artifact pixels, and select its largest artifact in the table.
    report = widget.state.result.result.report
    per_slice = {}
    for row in report:
        per_slice[row["slice"]] = per_slice.get(row["slice"], 0) + row["pixels"]
    busiest = max(per_slice, key=per_slice.get)
    row = max((i for i, r in enumerate(report) if r["slice"] == busiest), key=lambda i: report[i]["pixels"])
    widget.table.selectRow(row)
    widget.go_to_artifact(row)
    viewer.reset_view()
    _close_notifications(viewer)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False, flash=False)
    print(f"wrote {args.out}")
    viewer.close()


def _close_notifications(viewer) -> None:
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()


if __name__ == "__main__":
    main()
