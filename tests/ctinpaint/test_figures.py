"""Tests for ctinpaint.figures: valid PNGs of sensible size, written atomically,
with the hole drawn in colour, and clear errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from ctinpaint.figures import HOLE_COLOR, loss_curves, side_by_side, uncertainty_panels
from ctinpaint.sampling import FillStats

P, L = 32, 18
O = (P - L) // 2
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _windows(n=3, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:P, :P]
    truth = np.stack(
        [np.where(xx * np.cos(a) + yy * np.sin(a) > 20, 0.75, 0.25) for a in rng.uniform(0, 1.5, n)]
    ) + rng.normal(0, 0.02, (n, P, P))
    masks = np.zeros((n, P, P), bool)
    masks[:, O : O + L, O : O + L] = True
    mean = np.where(masks, 0.5, truth)
    std = np.where(masks, rng.uniform(0.0, 0.2, (n, P, P)), 0.0)
    sample = np.where(masks, rng.random((n, P, P)), truth)
    stats = FillStats(mean=mean.astype(np.float32), std=std.astype(np.float32), quantiles=None, filled=masks)
    return truth.astype(np.float32), masks, stats, sample.astype(np.float32)


def _read_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    return image[..., :3]


def _has_colour(image, colour, tol=0.03):
    return bool((np.abs(image - np.array(to_rgb(colour))).max(axis=-1) < tol).any())


# --------------------------------------------------------------------------- uncertainty_panels


def test_uncertainty_panels_writes_a_png_with_the_hole_in_colour(tmp_path):
    truth, masks, stats, sample = _windows(3)
    windows = np.where(masks, 0.0, truth).astype(np.float32)  # black hole in the data itself
    copies = [a.copy() for a in (windows, masks, truth, stats.mean, stats.std, sample)]
    out = uncertainty_panels(windows, masks, truth, stats, sample, tmp_path / "panels.png", title="held-out holes")
    assert out == tmp_path / "panels.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panels.png"]  # no temporary left
    image = _read_png(out)
    h, w = image.shape[:2]
    assert 500 < w < 3000 and 400 < h < 3000
    assert w > h  # 3 rows of 5 panels: wider than tall
    assert _has_colour(image, HOLE_COLOR)  # unknown pixels drawn in the hole colour, not black
    assert image.std() > 0.1  # not blank
    for a, c in zip((windows, masks, truth, stats.mean, stats.std, sample), copies):
        np.testing.assert_array_equal(a, c)


def test_uncertainty_panels_rows_and_columns_follow_the_inputs(tmp_path):
    truth, masks, stats, sample = _windows(8)
    full = _read_png(uncertainty_panels(truth, masks, truth, stats, sample, tmp_path / "full.png", max_rows=4))
    few = _read_png(uncertainty_panels(truth, masks, truth, stats, sample, tmp_path / "few.png", max_rows=2))
    no_truth = _read_png(
        uncertainty_panels(truth, masks, None, stats, None, tmp_path / "real.png", max_rows=2, titles=[f"a{i}" for i in range(8)])
    )
    assert few.shape[0] < full.shape[0]  # fewer rows
    assert no_truth.shape[1] < few.shape[1]  # no truth and no sample column
    assert no_truth.shape[0] == pytest.approx(few.shape[0], rel=0.1)


def test_uncertainty_panels_accepts_a_channel_axis_and_plain_stats(tmp_path):
    truth, masks, stats, sample = _windows(2)

    class Stats:  # anything with mean and std; filled defaults to the masks
        mean = stats.mean[:, None]
        std = stats.std[:, None]

    out = uncertainty_panels(truth[:, None], masks[:, None], truth, Stats(), sample, tmp_path / "p.png", units="grey values")
    _read_png(out)


def test_uncertainty_panels_replaces_atomically(tmp_path, monkeypatch):
    truth, masks, stats, sample = _windows(2)
    path = tmp_path / "p.png"
    uncertainty_panels(truth, masks, truth, stats, sample, path)
    before = path.read_bytes()

    from matplotlib.figure import Figure

    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(PNG_SIGNATURE + b"half a picture")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        uncertainty_panels(truth, masks, truth, stats, sample, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_uncertainty_panels_bad_inputs(tmp_path):
    truth, masks, stats, sample = _windows(2)
    path = tmp_path / "p.png"
    with pytest.raises(ValueError, match="masks"):
        uncertainty_panels(truth, masks[:, :-1], truth, stats, sample, path)
    with pytest.raises(ValueError, match="truth"):
        uncertainty_panels(truth, masks, truth[:1], stats, sample, path)
    with pytest.raises(ValueError, match="sample"):
        uncertainty_panels(truth, masks, truth, stats, sample[:, :, :-1], path)
    with pytest.raises(ValueError, match="stats.std"):
        uncertainty_panels(truth, masks, truth, stats._replace(std=-stats.std - 1), sample, path)
    with pytest.raises(TypeError, match="stats"):
        uncertainty_panels(truth, masks, truth, stats.mean, sample, path)
    with pytest.raises(ValueError, match="titles"):
        uncertainty_panels(truth, masks, truth, stats, sample, path, titles=["only one"])
    with pytest.raises(ValueError, match="max_rows"):
        uncertainty_panels(truth, masks, truth, stats, sample, path, max_rows=0)
    with pytest.raises(ValueError, match=r"\.png"):
        uncertainty_panels(truth, masks, truth, stats, sample, tmp_path / "p.jpg")
    with pytest.raises(ValueError, match="does not exist"):
        uncertainty_panels(truth, masks, truth, stats, sample, tmp_path / "missing" / "p.png")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- loss_curves


def _write_log(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_loss_curves_from_a_log_with_gaps(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for step in range(10, 1010, 10):
        record = {"step": step, "elapsed": step * 0.01, "D": {"loss": 1.3 - 0.2 * rng.random()}}
        if step % 30:  # G missing on some lines
            record["G"] = {"loss": 0.8 + 0.2 * rng.random(), "mode_seeking": 0.1 * rng.random()}
        lines.append(json.dumps(record))
        if step % 250 == 0:
            lines.append(json.dumps({"step": step, "validation": {"psnr": 20 + step / 200, "coverage_2sigma": 0.9}}))
    lines.insert(5, "")
    lines.append('{"step": 1010, "D": {"lo')  # half-written last line
    out = loss_curves(_write_log(tmp_path / "log.jsonl", lines), tmp_path / "curves.png")
    image = _read_png(out)
    assert 600 < image.shape[1] < 3000 and 300 < image.shape[0] < 2500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "log.jsonl"]
    # Training-only log: one row of panels, so a shorter figure.
    only_train = _read_png(loss_curves(_write_log(tmp_path / "t.jsonl", lines[:20]), tmp_path / "t.png"))
    assert only_train.shape[0] < image.shape[0]


def test_loss_curves_validation_only_and_bare_numbers(tmp_path):
    lines = [json.dumps({"step": s, "validation": {"mae": 0.1 / s, "diversity": 0.05}}) for s in (100, 200, 300)]
    lines.append(json.dumps({"step": 400, "D": 1.0, "G": 2.0}))  # a bare number is that phase's loss
    _read_png(loss_curves(_write_log(tmp_path / "v.jsonl", lines), tmp_path / "v.png"))


@pytest.mark.parametrize("content", ["", "\n\n", "not json\n", '{"loss": 1.0}\n', "[1, 2]\n"])
def test_loss_curves_without_usable_lines_names_the_file(tmp_path, content):
    log = tmp_path / "empty.jsonl"
    log.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="empty.jsonl"):
        loss_curves(log, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_loss_curves_missing_file(tmp_path):
    with pytest.raises(ValueError, match="nope.jsonl"):
        loss_curves(tmp_path / "nope.jsonl", tmp_path / "c.png")


# --------------------------------------------------------------------------- side_by_side


def test_side_by_side(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.random((64, 64))
    b = (rng.random((40, 80)) * 65535).astype(np.uint16)
    c = np.zeros((1, 30, 30), np.int16)  # constant image with a leading axis
    one = _read_png(side_by_side([a], ["phantom"], tmp_path / "one.png"))
    three = _read_png(side_by_side([a, b, c], ["phantom", "real", "blank"], tmp_path / "three.png", title="compare"))
    shared = _read_png(side_by_side([a, b], ["x", "y"], tmp_path / "shared.png", shared_scale=True))
    assert three.shape[1] > 2 * one.shape[1]
    assert shared.std() > 0.05 and three.std() > 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png", "shared.png", "three.png"]


def test_side_by_side_bad_inputs(tmp_path):
    img = np.zeros((8, 8))
    path = tmp_path / "s.png"
    with pytest.raises(ValueError, match="labels"):
        side_by_side([img, img], ["one"], path)
    with pytest.raises(ValueError, match="labels"):
        side_by_side([img], "one", path)
    with pytest.raises(ValueError, match="images"):
        side_by_side([], [], path)
    with pytest.raises(ValueError, match=r"images\[1\]"):
        side_by_side([img, np.zeros((2, 8, 8))], ["a", "b"], path)
    with pytest.raises(ValueError, match="images"):
        side_by_side(img, ["a"], path)
    with pytest.raises(ValueError, match=r"images\[0\]"):
        side_by_side([np.full((4, 4), np.nan)], ["a"], path)
    assert list(tmp_path.iterdir()) == []


def test_importing_figures_does_not_import_pyplot():
    import subprocess
    import sys

    code = "import ctinpaint.figures, ctinpaint.evaluate, sys; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
