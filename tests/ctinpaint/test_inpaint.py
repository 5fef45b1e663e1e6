"""Tests for ctinpaint.inpaint: bit identity outside the mask, chunking, resume, reports, errors."""

from __future__ import annotations

import json
import os

import dask.array as da
import numpy as np
import pytest
import torch

from ctinpaint.inpaint import REPORT_FIELDS, inpaint_volume
from ctinpaint.intensity import IntensityMapping
from ctinpaint.io import open_mask, open_volume, save_volume
from ctinpaint.models import build_model, config_for
from ctinpaint.train import LoadedModel


def _model(dtype="uint16", low=0.0, high=4000.0):
    torch.manual_seed(0)
    net = build_model(config_for("unet", width=8))
    return LoadedModel(model=net.eval(), intensity=IntensityMapping(low=low, high=high, dtype=dtype), meta={"step": 0})


def _data(dtype="uint16", shape=(6, 48, 56), seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        vol = rng.normal(0.5, 0.1, shape).astype(dtype)
    else:
        vol = rng.integers(0, 255 if dtype == "uint8" else 4000, shape).astype(dtype)
    mask = np.zeros(shape, bool)
    mask[0, 10:16, 12:20] = True  # small
    mask[2, 0:5, 30:34] = True  # at the top border
    mask[3, 20:45, 5:40] = True  # larger than the hole: tiled
    mask[5, 40:48, 50:56] = True  # in the bottom-right corner
    mask[5, 5:7, 5:7] = True
    return vol, mask


@pytest.mark.parametrize("dtype, high", [("uint8", 255.0), ("uint16", 4000.0), ("float32", 1.0)])
def test_outside_the_mask_is_the_input_bit_for_bit(dtype, high):
    vol, mask = _data(dtype)
    before = vol.copy()
    result = inpaint_volume(vol, mask, _model(dtype, high=high), n_samples=8, seed=0)
    out = np.asarray(result.inpainted.compute())
    assert out.dtype == vol.dtype
    assert out.tobytes() != vol.tobytes()
    np.testing.assert_array_equal(out.view(np.uint8).reshape(*vol.shape, -1)[~mask], vol.view(np.uint8).reshape(*vol.shape, -1)[~mask])
    np.testing.assert_array_equal(vol, before)  # input untouched
    std = np.asarray(result.std.compute())
    assert std.dtype == np.float32
    assert (std[~mask] == 0).all() and (std[mask] > 0).all()
    assert np.isfinite(out).all()


def test_report_rows():
    vol, mask = _data()
    result = inpaint_volume(vol, mask, _model(), n_samples=4, seed=0)
    assert [r["id"] for r in result.report] == [1, 2, 3, 4, 5]
    assert [r["slice"] for r in result.report] == [0, 2, 3, 5, 5]
    big = result.report[2]
    assert (big["r0"], big["c0"], big["r1"], big["c1"], big["pixels"]) == (20, 5, 45, 40, 25 * 35)
    assert big["windows"] > 1
    std = np.asarray(result.std.compute())
    assert big["max_std"] == pytest.approx(float(std[3][mask[3]].max()), rel=1e-6)
    assert big["mean_std"] == pytest.approx(float(std[3][mask[3]].mean()), rel=1e-4)
    assert all(set(r) == set(REPORT_FIELDS) for r in result.report)
    assert all(r["status"] == "filled" for r in result.report)


def test_input_chunking_does_not_change_the_result():
    vol, mask = _data()
    model = _model()
    a = inpaint_volume(vol, mask, model, n_samples=8, seed=3, slab=2)
    b = inpaint_volume(da.from_array(vol, chunks=(1, 17, 23)), da.from_array(mask, chunks=(4, 48, 9)), model,
                       n_samples=8, seed=3, slab=2)
    np.testing.assert_array_equal(a.inpainted.compute(), b.inpainted.compute())
    np.testing.assert_array_equal(a.std.compute(), b.std.compute())


def test_slab_size_and_workers_do_not_change_the_result():
    vol, mask = _data("float32")
    model = _model("float32", high=1.0)
    a = inpaint_volume(vol, mask, model, n_samples=8, seed=3, slab=1)
    b = inpaint_volume(vol, mask, model, n_samples=8, seed=3, slab=6, workers=2)
    # Same noise per window; only float summation order may differ between batch sizes.
    np.testing.assert_allclose(a.inpainted.compute(), b.inpainted.compute(), atol=1e-5)
    np.testing.assert_allclose(a.std.compute(), b.std.compute(), atol=1e-5)


def test_tasks_run_with_the_callers_torch_thread_count():
    # Dask reuses its threads, and a thread that first ran torch on one thread keeps that count;
    # filling with it would add up in another order than the caller's setting does.
    import dask

    def in_dask_thread(function, *args):  # the one thread of the pool inpaint_volume(workers=1) computes in
        return dask.compute(dask.delayed(function)(*args), scheduler="threads", num_workers=1)[0]

    vol, mask = _data("float32")
    model = _model("float32", high=1.0)
    previous = torch.get_num_threads()
    try:
        in_dask_thread(torch.set_num_threads, 1)
        torch.set_num_threads(2)
        assert in_dask_thread(torch.get_num_threads) == 1  # the pool's thread keeps its own
        inpaint_volume(vol, mask, model, n_samples=8, seed=3, workers=1)
        assert in_dask_thread(torch.get_num_threads) == 2
    finally:
        torch.set_num_threads(previous)
        in_dask_thread(torch.set_num_threads, previous)


def test_other_axis():
    vol, mask = _data(shape=(40, 36, 40))
    result = inpaint_volume(vol, mask, _model(), n_samples=4, axis=1, seed=0)
    out = np.asarray(result.inpainted.compute())
    np.testing.assert_array_equal(out[~mask], vol[~mask])
    assert (np.asarray(result.std.compute())[mask] > 0).all()
    assert {r["axis"] for r in result.report} == {1}


def test_zarr_output_with_quantiles_and_reports(tmp_path):
    vol, mask = _data()
    src = save_volume({"volume": vol, "mask": mask}, tmp_path / "in.zarr")
    result = inpaint_volume(open_volume(src, key="volume"), open_mask(src, key="mask"),
                            _model(), n_samples=16, out=tmp_path / "out.zarr", quantiles=(0.025, 0.975), seed=0)
    assert result.out == tmp_path / "out.zarr"
    assert sorted(os.listdir(tmp_path)) == ["in.zarr", "out.zarr"]  # no partial folder left
    out = open_volume(tmp_path / "out.zarr", key="inpainted").compute()
    np.testing.assert_array_equal(out[~mask], vol[~mask])
    lo, hi = (np.asarray(result.quantiles[q].compute()) for q in (0.025, 0.975))
    mean = out.astype(np.float32)
    assert (lo[mask] <= hi[mask]).all()
    assert np.mean((lo[mask] - 1 <= mean[mask]) & (mean[mask] <= hi[mask] + 1)) > 0.95
    report = json.loads((tmp_path / "out.zarr" / "report.json").read_text())
    assert report == json.loads(json.dumps(result.report))
    csv_lines = (tmp_path / "out.zarr" / "report.csv").read_text().splitlines()
    assert csv_lines[0].split(",") == list(REPORT_FIELDS) and len(csv_lines) == 6


def test_killed_run_resumes_and_matches(tmp_path):
    vol, mask = _data()
    model = _model()
    full = inpaint_volume(vol, mask, model, n_samples=8, seed=1, slab=2, out=tmp_path / "full.zarr")

    class Stop(Exception):
        pass

    def stop_after_first(done, total):
        if done == 1:
            raise Stop

    with pytest.raises(Stop):
        inpaint_volume(vol, mask, model, n_samples=8, seed=1, slab=2, out=tmp_path / "part.zarr", progress=stop_after_first)
    partial = tmp_path / ".part.zarr.partial"
    assert partial.exists() and not (tmp_path / "part.zarr").exists()
    assert len(os.listdir(partial / "slabs")) == 1
    done = []
    resumed = inpaint_volume(vol, mask, model, n_samples=8, seed=1, slab=2, out=tmp_path / "part.zarr",
                             progress=lambda d, t: done.append(d))
    np.testing.assert_array_equal(resumed.inpainted.compute(), full.inpainted.compute())
    np.testing.assert_array_equal(resumed.std.compute(), full.std.compute())
    assert resumed.report == full.report
    assert not partial.exists()


def test_exception_from_progress_cancels_and_leaves_nothing_running(tmp_path):
    import time

    vol, mask = _data()
    model = _model()

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        raise Cancelled

    with pytest.raises(Cancelled):
        inpaint_volume(vol, mask, model, n_samples=8, seed=1, slab=1, workers=2, out=tmp_path / "o.zarr", progress=cancel)
    slabs = tmp_path / ".o.zarr.partial" / "slabs"
    finished = sorted(os.listdir(slabs))
    # Only the slabs already running when it was raised finished; no slab starts or writes afterwards.
    assert 1 <= len(finished) <= 3 and all(name.endswith(".json") for name in finished)
    time.sleep(0.5)
    assert sorted(os.listdir(slabs)) == finished
    resumed = inpaint_volume(vol, mask, model, n_samples=8, seed=1, slab=1, workers=2, out=tmp_path / "o.zarr")
    fresh = inpaint_volume(vol, mask, model, n_samples=8, seed=1, slab=1)
    np.testing.assert_array_equal(resumed.inpainted.compute(), fresh.inpainted.compute())

    with pytest.raises(Cancelled):  # in memory too
        inpaint_volume(vol, mask, model, n_samples=8, slab=1, progress=cancel)


def test_resume_with_other_settings_is_refused(tmp_path):
    vol, mask = _data()

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        inpaint_volume(vol, mask, _model(), n_samples=8, slab=2, out=tmp_path / "o.zarr", progress=stop)
    with pytest.raises(ValueError, match="other settings"):
        inpaint_volume(vol, mask, _model(), n_samples=16, slab=2, out=tmp_path / "o.zarr")


def test_artifact_covering_a_whole_slice_is_refused_and_left_alone():
    vol, mask = _data()
    mask[1] = True
    result = inpaint_volume(vol, mask, _model(), n_samples=4, seed=0)
    row = [r for r in result.report if r["slice"] == 1][0]
    assert row["status"].startswith("refused")
    out = np.asarray(result.inpainted.compute())
    np.testing.assert_array_equal(out[1], vol[1])
    assert [r["status"] for r in result.report].count("filled") == 5


def test_nan_policy():
    vol, mask = _data("float32")
    vol[4, 30, 30] = np.nan
    model = _model("float32", high=1.0)
    with pytest.raises(ValueError, match="NaN"):
        inpaint_volume(vol, mask, model, n_samples=4)
    result = inpaint_volume(vol, mask, model, n_samples=4, nan_policy="mask")
    out = np.asarray(result.inpainted.compute())
    assert np.isfinite(out).all()
    assert len(result.report) == 6


def test_errors(tmp_path):
    vol, mask = _data()
    model = _model()
    with pytest.raises(ValueError, match="n_samples"):
        inpaint_volume(vol, mask, model, n_samples=1)
    with pytest.raises(ValueError, match="mask shape"):
        inpaint_volume(vol, mask[:, :40], model)
    with pytest.raises(ValueError, match="smaller than the model"):
        inpaint_volume(vol[:, :20], mask[:, :20], model)
    with pytest.raises(TypeError, match="model"):
        inpaint_volume(vol, mask, object())
    with pytest.raises(ValueError, match="quantiles"):
        inpaint_volume(vol, mask, model, quantiles=(1.0,))
    with pytest.raises(ValueError, match="axis"):
        inpaint_volume(vol, mask, model, axis=3)
    with pytest.raises(ValueError, match="paths"):
        inpaint_volume(vol, mask, model, paths=0)
    with pytest.raises(TypeError, match="paths"):
        inpaint_volume(vol, mask, model, paths=2.5)
    (tmp_path / "exists.zarr").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        inpaint_volume(vol, mask, model, out=tmp_path / "exists.zarr")
    src = save_volume(vol, tmp_path / "in.zarr")
    with pytest.raises(ValueError, match="overwrite the input"):
        inpaint_volume(open_volume(src), mask, model, out=src, overwrite=True)


def test_the_model_calibration_scales_std_and_interval_but_not_the_fill():
    from ctinpaint.calibration import Calibration

    vol, mask = _data()
    raw_model = _model()
    calibrated = raw_model._replace(calibration=Calibration(std_scale=2.0, interval_scale=0.5))
    # One path: with several, the calibration also scales the draws later tiles condition on.
    common = dict(n_samples=16, quantiles=(0.025, 0.975), seed=3, paths=1)
    raw = inpaint_volume(vol, mask, raw_model, **common)
    cal = inpaint_volume(vol, mask, calibrated, **common)
    np.testing.assert_array_equal(cal.inpainted.compute(), raw.inpainted.compute())
    np.testing.assert_allclose(cal.std.compute()[mask], 2 * raw.std.compute()[mask], rtol=1e-5)
    mean = raw.inpainted.compute().astype(np.float64)[mask]
    for q in (0.025, 0.975):
        moved = cal.quantiles[q].compute()[mask].astype(np.float64)
        original = raw.quantiles[q].compute()[mask].astype(np.float64)
        # Quantiles are stored in the volume's dtype (rounded): within a grey level of half the distance.
        np.testing.assert_allclose(moved - mean, 0.5 * (original - mean), atol=1.0)


def test_the_model_texture_tilt_reshapes_the_draws_but_keeps_the_fill_and_the_std():
    from ctinpaint.calibration import Calibration

    vol, mask = _data("float32")
    torch.manual_seed(0)
    net = build_model(config_for("harmonic", width=8)).eval()
    plain = LoadedModel(model=net, intensity=IntensityMapping(low=0.0, high=1.0, dtype="float32"), meta={"step": 0},
                        calibration=Calibration())  # fmt: skip
    smooth = plain._replace(calibration=Calibration(texture_tilt=-1.0))
    common = dict(n_samples=16, seed=3, paths=1)
    raw, tilted = inpaint_volume(vol, mask, plain, **common), inpaint_volume(vol, mask, smooth, **common)
    np.testing.assert_allclose(tilted.inpainted.compute(), raw.inpainted.compute(), atol=1e-6)
    np.testing.assert_allclose(tilted.std.compute()[mask], raw.std.compute()[mask], rtol=1e-3, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(tilted.inpainted.compute())[~mask], vol[~mask])


# --------------------------------------------------------------------------- 2.5D context


def _context_model(context=1, dtype="float32", high=1.0):
    torch.manual_seed(0)
    net = build_model(config_for("harmonic", width=8, context=context))
    return LoadedModel(model=net.eval(), intensity=IntensityMapping(low=0.0, high=high, dtype=dtype), meta={"step": 0})


def test_context_model_reads_neighbouring_slices_across_slab_borders():
    vol, mask = _data("float32", shape=(8, 48, 56))
    mask[4, 20:30, 20:30] = True  # slice 3 holds an artifact there too, slice 5 does not
    model = _context_model()
    runs = [inpaint_volume(vol, mask, model, n_samples=8, seed=3, slab=slab) for slab in (1, 3, 8)]
    first = np.asarray(runs[0].inpainted.compute())
    np.testing.assert_array_equal(first[~mask], vol[~mask])
    for other in runs[1:]:
        np.testing.assert_allclose(np.asarray(other.inpainted.compute()), first, atol=1e-5)
        np.testing.assert_allclose(np.asarray(other.std.compute()), np.asarray(runs[0].std.compute()), atol=1e-5)
    # The fill of slice 4 follows slice 5 (a known neighbour), not slice 3 where it holds
    # an artifact, nor slice 2 (two slices away).
    changed = vol.copy()
    changed[5, 20:30, 20:30] = 1 - changed[5, 20:30, 20:30]
    near = np.asarray(inpaint_volume(changed, mask, model, n_samples=8, seed=3, slab=2).inpainted.compute())
    assert not np.allclose(near[4][mask[4]], first[4][mask[4]])
    far = vol.copy()
    far[3, 20:30, 20:30] = 1 - far[3, 20:30, 20:30]
    far[2, ~mask[2]] = 1 - far[2, ~mask[2]]
    away = np.asarray(inpaint_volume(far, mask, model, n_samples=8, seed=3, slab=2).inpainted.compute())
    np.testing.assert_allclose(away[4], first[4], atol=1e-6)


def test_context_model_fills_a_single_slice_and_the_volume_ends():
    vol, _ = _data("float32", shape=(6, 48, 56))
    vol, mask = vol[:1], np.zeros((1, 48, 56), bool)
    mask[0, 10:16, 12:20] = True
    mask[0, 30:48, 0:40] = True
    result = inpaint_volume(vol, mask, _context_model(context=2), n_samples=8, seed=0)
    out = np.asarray(result.inpainted.compute())
    np.testing.assert_array_equal(out[~mask], vol[~mask])
    assert np.isfinite(out).all() and (np.asarray(result.std.compute())[mask] > 0).all()


def test_context_model_with_nan_neighbours():
    vol, mask = _data("float32")
    vol[1, 10:14, 12:20] = np.nan  # a non-finite neighbour of the artifact in slice 0
    result = inpaint_volume(vol, mask, _context_model(), n_samples=8, seed=0, nan_policy="mask")
    out = np.asarray(result.inpainted.compute())
    assert np.isfinite(out).all()


def test_guided_calibration_scales_pixels_with_a_known_neighbour_by_its_own_factor():
    from ctinpaint.calibration import Calibration

    vol, mask = _data("float32", shape=(8, 48, 56))
    mask[4, 20:30, 20:40] = True  # slice 3 hides 20:45 x 5:40 too; slice 5 is known there
    mask[5, 20:30, 30:40] = True  # ... except columns 30:40: no adjacent slice known there
    raw_model = _context_model()
    calibration = Calibration(std_scale=3.0, interval_scale=1.0, guided_std_scale=0.5, guided_interval_scale=1.0)
    common = dict(n_samples=16, seed=3, paths=1)
    raw = np.asarray(inpaint_volume(vol, mask, raw_model, **common).std.compute())
    cal = np.asarray(inpaint_volume(vol, mask, raw_model._replace(calibration=calibration), **common).std.compute())
    np.testing.assert_allclose(cal[4, 20:30, 20:30], 0.5 * raw[4, 20:30, 20:30], rtol=1e-5)  # slice 5 known
    np.testing.assert_allclose(cal[4, 20:30, 30:40], 3.0 * raw[4, 20:30, 30:40], rtol=1e-5)  # both hidden


def test_flanked_calibration_scales_pixels_with_both_neighbours_known_by_its_own_factor():
    from ctinpaint.calibration import Calibration

    vol, mask = _data("float32", shape=(8, 48, 56))
    mask[4, 20:30, 30:50] = True  # slice 3 hides 20:45 x 5:40: one side known on 30:40, both on 40:50
    raw_model = _context_model()
    calibration = Calibration(std_scale=3.0, interval_scale=1.0, guided_std_scale=0.5, guided_interval_scale=1.0,
                              flanked_std_scale=0.25, flanked_interval_scale=1.0)  # fmt: skip
    common = dict(n_samples=16, seed=3, paths=1)
    raw = np.asarray(inpaint_volume(vol, mask, raw_model, **common).std.compute())
    cal = np.asarray(inpaint_volume(vol, mask, raw_model._replace(calibration=calibration), **common).std.compute())
    assert (raw[4, 20:30, 30:50] > 0).all()  # so the factors below are seen, not multiplied into zeros
    np.testing.assert_allclose(cal[4, 20:30, 30:40], 0.5 * raw[4, 20:30, 30:40], rtol=1e-5)  # slice 5 known
    np.testing.assert_allclose(cal[4, 20:30, 40:50], 0.25 * raw[4, 20:30, 40:50], rtol=1e-5)  # slices 3 and 5


# --------------------------------------------------------------------------- large artifacts


def _harmonic_model(calibration=None):
    torch.manual_seed(0)
    net = build_model(config_for("harmonic", width=8))
    intensity = IntensityMapping(low=0.0, high=1.0, dtype="float32")
    return LoadedModel(model=net.eval(), intensity=intensity, meta={"step": 0}, calibration=calibration)


def _smooth_data(shape=(2, 64, 96)):
    """Smooth random images: the harmonic prior's fill then depends on the pixels around it."""
    from scipy import ndimage

    rng = np.random.default_rng(1)
    vol = ndimage.gaussian_filter(rng.normal(0.5, 0.3, shape), (0, 4, 4)).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[0, 8:50, 10:64] = True  # 3 x 3 tiles
    mask[1, 20:30, 20:30] = True  # one window
    return vol, mask


def test_paths_carry_the_uncertainty_of_earlier_tiles_and_leave_single_windows_alone():
    vol, mask = _smooth_data()
    model = _harmonic_model()
    one = inpaint_volume(vol, mask, model, n_samples=64, paths=1, seed=0)
    many = inpaint_volume(vol, mask, model, n_samples=64, paths=16, seed=0)
    std1, std16 = np.asarray(one.std.compute()), np.asarray(many.std.compute())
    # One window: the same windows, seeds and sample count, so the same numbers.
    np.testing.assert_array_equal(std16[1], std1[1])
    np.testing.assert_array_equal(np.asarray(many.inpainted.compute())[1], np.asarray(one.inpainted.compute())[1])
    # The tiled artifact: its later tiles condition on draws that differ between paths, so
    # their means differ and the spread grows by that difference.
    tiled = mask[0]
    assert (std16[0][tiled] >= std1[0][tiled] - 1e-6).all()  # within-path spread + between-path spread
    assert (std16[0][tiled] > std1[0][tiled] + 1e-3).mean() > 0.5
    assert (std16[0][~tiled] == 0).all()
    out = np.asarray(many.inpainted.compute())
    np.testing.assert_array_equal(out[~mask], vol[~mask])
    assert many.report[0]["windows"] == 9 and many.report[0]["mean_std"] > one.report[0]["mean_std"]


def test_tiled_calibration_scales_only_artifacts_larger_than_a_window_by_depth():
    from ctinpaint.calibration import Calibration

    vol, mask = _smooth_data()
    base = Calibration(std_scale=1.5)
    tiled = Calibration(std_scale=1.5, tiled_depths=(5, 40), tiled_std_scale=(2.0, 4.0), tiled_interval_scale=(1.0, 1.0))
    common = dict(n_samples=16, seed=3)
    std_base = np.asarray(inpaint_volume(vol, mask, _harmonic_model(base), **common).std.compute())
    std_tiled = np.asarray(inpaint_volume(vol, mask, _harmonic_model(tiled), **common).std.compute())
    np.testing.assert_array_equal(std_tiled[1], std_base[1])  # one window: no extra factor
    from scipy import ndimage

    depth = ndimage.distance_transform_cdt(mask[0], metric="chessboard")
    factor = tiled.tiled_factors(depth)[0]
    assert set(np.unique(factor[mask[0] & (depth <= 3)])) == {2.0}  # up to the first bin's centre
    assert factor[mask[0]].max() > 2.5  # deeper: on the way to the second bin's 4.0
    np.testing.assert_allclose(std_tiled[0][mask[0]], (factor * std_base[0])[mask[0]], rtol=1e-5)


def test_calibrate_large_artifacts_fits_factors_by_depth():
    from ctinpaint.calibration import TILED_DEPTHS, Calibration
    from ctinpaint.inpaint import calibrate_large_artifacts

    vol, _ = _smooth_data((2, 64, 200))
    model = _harmonic_model(Calibration(std_scale=0.8))
    fitted = calibrate_large_artifacts(model, vol, n_samples=16, paths=4)
    assert fitted.std_scale == 0.8  # the window calibration is kept
    assert fitted.tiled_depths == TILED_DEPTHS
    assert len(fitted.tiled_std_scale) == len(TILED_DEPTHS) and min(fitted.tiled_std_scale) > 0
    assert set(fitted.tiled_after) == {"coverage_1sigma", "coverage_2sigma", "interval_coverage"}
    # The fitted factors pull the coverages towards a normal's from wherever the raw spread left them.
    assert abs(fitted.tiled_after["coverage_2sigma"] - 0.954) < 0.15
    # Real artifacts block the places their windows would touch; no room left: None.
    assert calibrate_large_artifacts(model, vol, mask=np.ones(vol.shape, bool), n_samples=4) is None
    assert calibrate_large_artifacts(_harmonic_model(), vol, n_samples=4, paths=2).tiled_depths == TILED_DEPTHS
    with pytest.raises(ValueError, match="planes"):
        calibrate_large_artifacts(model, vol[0])
    with pytest.raises(ValueError, match="planes"):
        calibrate_large_artifacts(model, vol[:, :20])
    with pytest.raises(ValueError, match="mask shape"):
        calibrate_large_artifacts(model, vol, mask=np.zeros((2, 64, 10), bool))
    with pytest.raises(ValueError, match="n_samples"):
        calibrate_large_artifacts(model, vol, n_samples=1)
