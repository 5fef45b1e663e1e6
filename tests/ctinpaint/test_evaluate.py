"""Tests for ctinpaint.evaluate: metrics against direct NumPy computations, the
biharmonic baseline, and the held-out evaluation of a model end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from skimage.metrics import structural_similarity
from skimage.restoration import inpaint_biharmonic

from ctinpaint.evaluate import (
    GAUSSIAN_1SIGMA,
    GAUSSIAN_2SIGMA,
    METRICS,
    Evaluation,
    biharmonic_fill,
    evaluate_model,
    hole_metrics,
)
from ctinpaint.intensity import IntensityMapping

P, L = 32, 18
O = (P - L) // 2


def _square_masks(n: int) -> np.ndarray:
    m = np.zeros((n, P, P), bool)
    m[:, O : O + L, O : O + L] = True
    return m


def _smooth_windows(n: int, seed: int = 0, sigma: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.random((n, P, P)), (0, sigma, sigma))
    lo, hi = field.min(axis=(1, 2), keepdims=True), field.max(axis=(1, 2), keepdims=True)
    return (0.2 + 0.6 * (field - lo) / (hi - lo)).astype(np.float32)


# --------------------------------------------------------------------------- hole_metrics


def test_metric_keys_in_documented_order():
    truth = _smooth_windows(2)
    filled = _square_masks(2)
    m = hole_metrics(truth, truth, np.zeros_like(truth), filled)
    assert tuple(m) == METRICS
    assert all(isinstance(v, float) for v in m.values())


@pytest.mark.parametrize("offset", [0.1, 0.01, -0.05])
def test_psnr_and_mae_of_a_known_constant_error(offset):
    truth = _smooth_windows(3)
    filled = _square_masks(3)
    mean = np.where(filled, truth + np.float32(offset), truth).astype(np.float32)
    m = hole_metrics(truth, mean, np.zeros_like(truth), filled)
    assert m["mae"] == pytest.approx(abs(offset), rel=1e-5)
    assert m["psnr"] == pytest.approx(-20.0 * math.log10(abs(offset)), abs=1e-3)


def test_mae_psnr_equal_direct_numpy_on_random_holes():
    rng = np.random.default_rng(1)
    truth = rng.random((5, P, P), dtype=np.float32)
    mean = np.clip(truth + rng.normal(0, 0.07, truth.shape), 0, 1).astype(np.float32)
    filled = np.zeros((5, P, P), bool)
    filled[:, O : O + L, O : O + L] = rng.random((5, L, L)) < 0.4
    m = hole_metrics(truth, mean, np.full_like(truth, 0.05), filled)
    err = mean.astype(np.float64)[filled] - truth[filled]
    assert m["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-6)
    assert m["psnr"] == pytest.approx(10 * np.log10(1.0 / np.mean(err**2)), rel=1e-6)
    assert m["mean_std"] == pytest.approx(0.05, rel=1e-6)


def test_perfect_fill():
    truth = _smooth_windows(2)
    m = hole_metrics(truth, truth.copy(), np.zeros_like(truth), _square_masks(2))
    assert m["mae"] == 0.0
    assert m["psnr"] == math.inf
    assert m["ssim"] == pytest.approx(1.0)
    # Zero std, zero error: every pixel is an exact hit.
    assert m["coverage_1sigma"] == 1.0 and m["coverage_2sigma"] == 1.0


def test_ssim_is_mean_of_skimage_on_each_box():
    truth = _smooth_windows(4, seed=2)
    rng = np.random.default_rng(3)
    filled = _square_masks(4)
    mean = np.where(filled, truth + rng.normal(0, 0.05, truth.shape), truth).astype(np.float32)
    expected = np.mean(
        [
            structural_similarity(
                truth[i, O : O + L, O : O + L].astype(np.float64),
                mean[i, O : O + L, O : O + L].astype(np.float64),
                data_range=1.0,
            )
            for i in range(4)
        ]
    )
    m = hole_metrics(truth, mean, np.zeros_like(truth), filled)
    assert m["ssim"] == pytest.approx(expected, rel=1e-9)
    # The box is inferred from the filled pixels when hole is not given.
    assert hole_metrics(truth, mean, np.zeros_like(truth), filled, hole=L)["ssim"] == m["ssim"]
    assert m["ssim"] < 0.99


def test_coverage_of_calibrated_gaussian_errors():
    rng = np.random.default_rng(4)
    n = 64
    mean = _smooth_windows(n, seed=5)
    sigma = rng.uniform(0.01, 0.08, (n, P, P)).astype(np.float32)  # varies per pixel
    truth = (mean + sigma * rng.standard_normal((n, P, P))).astype(np.float32)
    filled = _square_masks(n)
    low = (mean - 1.959964 * sigma).astype(np.float32)
    high = (mean + 1.959964 * sigma).astype(np.float32)
    m = hole_metrics(truth, mean, sigma, filled, low=low, high=high)
    count = filled.sum()  # 20736 pixels: 4 binomial standard errors is < 0.014
    tol = lambda p: 4 * math.sqrt(p * (1 - p) / count)  # noqa: E731
    assert m["coverage_1sigma"] == pytest.approx(GAUSSIAN_1SIGMA, abs=tol(GAUSSIAN_1SIGMA))
    assert m["coverage_2sigma"] == pytest.approx(GAUSSIAN_2SIGMA, abs=tol(GAUSSIAN_2SIGMA))
    assert m["interval_coverage"] == pytest.approx(0.95, abs=tol(0.95))
    # Larger std where the errors are larger: the correlation is positive.
    assert m["std_error_corr"] > 0.2


def test_coverage_detects_an_overconfident_std():
    rng = np.random.default_rng(6)
    n = 32
    mean = _smooth_windows(n)
    truth = (mean + 0.05 * rng.standard_normal((n, P, P))).astype(np.float32)
    m = hole_metrics(truth, mean, np.full_like(mean, 0.025), _square_masks(n))  # claims half the true spread
    assert m["coverage_1sigma"] == pytest.approx(math.erf(0.5 / math.sqrt(2)), abs=0.02)
    assert m["coverage_2sigma"] == pytest.approx(GAUSSIAN_1SIGMA, abs=0.02)


def test_std_error_corr_sign_and_value():
    rng = np.random.default_rng(7)
    truth = _smooth_windows(8)
    filled = _square_masks(8)
    mean = np.where(filled, truth + rng.normal(0, 0.05, truth.shape), truth).astype(np.float32)
    abs_err = np.abs(mean - truth)
    good = (abs_err + rng.uniform(0, 0.02, truth.shape)).astype(np.float32)
    bad = (abs_err.max() - abs_err).astype(np.float32)
    m_good = hole_metrics(truth, mean, good, filled)
    m_bad = hole_metrics(truth, mean, bad, filled)
    expected = np.corrcoef(good[filled].astype(np.float64), abs_err[filled].astype(np.float64))[0, 1]
    assert m_good["std_error_corr"] == pytest.approx(expected, rel=1e-5)
    assert m_good["std_error_corr"] > 0.5
    assert m_bad["std_error_corr"] == pytest.approx(-1.0, abs=1e-4)


def test_std_error_corr_is_zero_for_constant_std():
    rng = np.random.default_rng(8)
    truth = _smooth_windows(3)
    filled = _square_masks(3)
    mean = np.where(filled, truth + rng.normal(0, 0.05, truth.shape), truth).astype(np.float32)
    for value in (0.0, 0.03):
        assert hole_metrics(truth, mean, np.full_like(truth, value), filled)["std_error_corr"] == 0.0


def test_texture_ratio_near_one_for_a_sample_like_the_truth_and_small_for_a_smooth_one():
    rng = np.random.default_rng(9)
    n = 32
    base = _smooth_windows(n, seed=10)
    truth = (base + rng.normal(0, 0.04, base.shape)).astype(np.float32)
    filled = _square_masks(n)
    like = np.where(filled, base + rng.normal(0, 0.04, base.shape), truth).astype(np.float32)
    smooth = np.where(filled, ndi.gaussian_filter(truth, (0, 1.5, 1.5)), truth).astype(np.float32)
    r_like = hole_metrics(truth, base, np.full_like(base, 0.04), filled, sample=like)["texture_ratio"]
    r_smooth = hole_metrics(truth, base, np.full_like(base, 0.04), filled, sample=smooth)["texture_ratio"]
    assert r_like == pytest.approx(1.0, abs=0.1)
    assert r_smooth < 0.2


def test_texture_ratio_equals_direct_laplacian_energy():
    rng = np.random.default_rng(11)
    truth = rng.random((2, P, P), dtype=np.float32)
    sample = rng.random((2, P, P), dtype=np.float32) * 0.5
    filled = _square_masks(2)
    # Interior of the square hole: pixels whose four neighbours are in the hole.
    inner = np.zeros_like(filled)
    inner[:, O + 1 : O + L - 1, O + 1 : O + L - 1] = True

    def energy(x):
        lap = np.stack([ndi.laplace(w.astype(np.float64)) for w in x])
        return np.mean(lap[inner] ** 2)

    m = hole_metrics(truth, truth, np.zeros_like(truth), filled, sample=sample)
    assert m["texture_ratio"] == pytest.approx(energy(sample) / energy(truth), rel=1e-9)


def test_optional_metrics_are_nan_when_not_given():
    truth = _smooth_windows(2)
    m = hole_metrics(truth, truth, np.zeros_like(truth), _square_masks(2))
    assert math.isnan(m["interval_coverage"]) and math.isnan(m["texture_ratio"])


def test_accepts_channel_axis():
    truth = _smooth_windows(2)
    filled = _square_masks(2)
    a = hole_metrics(truth, truth + 0.01 * filled, np.zeros_like(truth), filled)
    b = hole_metrics(truth[:, None], (truth + 0.01 * filled)[:, None], np.zeros_like(truth)[:, None], filled[:, None])
    assert a == b


@pytest.mark.parametrize("name", ["mean", "std", "filled", "low", "sample"])
def test_mismatched_shape_names_the_argument(name):
    truth = _smooth_windows(2)
    args = {"mean": truth, "std": np.zeros_like(truth), "filled": _square_masks(2)}
    kwargs = {"low": truth, "high": truth, "sample": truth}
    wrong = np.zeros((2, P, P + 1), np.float32) if name != "filled" else np.zeros((3, P, P), bool)
    if name in args:
        args[name] = wrong
    else:
        kwargs[name] = wrong
    with pytest.raises(ValueError, match=name):
        hole_metrics(truth, args["mean"], args["std"], args["filled"], **kwargs)


def test_bad_inputs_raise():
    truth = _smooth_windows(2)
    filled = _square_masks(2)
    zeros = np.zeros_like(truth)
    with pytest.raises(ValueError, match="filled"):
        hole_metrics(truth, truth, zeros, np.zeros_like(filled))
    with pytest.raises(ValueError, match="low and high"):
        hole_metrics(truth, truth, zeros, filled, low=truth)
    with pytest.raises(ValueError, match="std"):
        hole_metrics(truth, truth, zeros - 1.0, filled)
    nan_mean = truth.copy()
    nan_mean[0, 10, 10] = np.nan
    with pytest.raises(ValueError, match="mean"):
        hole_metrics(truth, nan_mean, zeros, filled)
    with pytest.raises(ValueError, match="hole"):
        hole_metrics(truth, truth, zeros, filled, hole=10)  # filled pixels outside a 10x10 box
    with pytest.raises(ValueError, match="truth"):
        hole_metrics(truth[0], truth, zeros, filled)


def test_hole_metrics_does_not_modify_inputs():
    rng = np.random.default_rng(12)
    arrays = [rng.random((2, P, P), dtype=np.float32) for _ in range(5)]
    filled = _square_masks(2)
    copies = [a.copy() for a in arrays] + [filled.copy()]
    truth, mean, std, low, sample = arrays
    hole_metrics(truth, mean, std, filled, low=low, high=low + 1, sample=sample)
    for a, c in zip([*arrays, filled], copies):
        np.testing.assert_array_equal(a, c)


# --------------------------------------------------------------------------- biharmonic


def test_biharmonic_reproduces_a_smooth_ramp_and_metrics_match_direct_computation():
    yy, xx = np.mgrid[:P, :P] / (P - 1)
    truth = np.stack([0.2 + 0.5 * xx, 0.7 - 0.3 * yy + 0.2 * xx, 0.3 + 0.1 * (xx + yy)]).astype(np.float32)
    masks = _square_masks(3)
    windows = np.where(masks, 0.0, truth).astype(np.float32)
    fill = biharmonic_fill(windows, masks)
    direct = np.stack([inpaint_biharmonic(w, m) for w, m in zip(windows, masks)])
    np.testing.assert_allclose(fill[masks], direct[masks], rtol=0, atol=1e-7)
    err = fill.astype(np.float64)[masks] - truth[masks]
    assert np.abs(err).max() < 1e-4  # a plane is biharmonic: reproduced up to solver precision
    m = hole_metrics(truth, fill, np.zeros_like(fill), masks)
    assert m["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-6)
    assert m["psnr"] == pytest.approx(10 * np.log10(1.0 / np.mean(err**2)), rel=1e-6)
    assert m["psnr"] > 80


def test_biharmonic_keeps_known_pixels_bit_identical_and_ignores_unknown_values():
    rng = np.random.default_rng(13)
    windows = rng.random((4, P, P), dtype=np.float32)
    windows[0, 0, 0] = -0.0
    windows[1, 1, 1] = np.float32(1e-38)  # subnormal-adjacent values survive unchanged
    masks = np.zeros((4, P, P), bool)
    masks[:, O : O + L, O : O + L] = rng.random((4, L, L)) < 0.5
    masks[3] = False  # nothing to fill in this window
    garbage = windows.copy()
    garbage[masks] = np.nan
    before = garbage.copy()
    out = biharmonic_fill(garbage, masks)
    assert out.dtype == np.float32 and out.shape == windows.shape
    assert out is not garbage
    np.testing.assert_array_equal(garbage, before)  # input untouched (NaN compares equal here)
    known = ~masks
    assert np.array_equal(out[known].view(np.uint32), windows[known].view(np.uint32))
    assert np.isfinite(out[masks]).all()
    assert np.array_equal(out[3].view(np.uint32), windows[3].view(np.uint32))
    np.testing.assert_array_equal(out, biharmonic_fill(windows, masks))


def test_biharmonic_fills_unknown_pixels_outside_the_box_too():
    windows = _smooth_windows(1)
    masks = np.zeros((1, P, P), bool)
    masks[0, 1:4, 1:4] = True
    out = biharmonic_fill(np.where(masks, 5.0, windows), masks)
    assert np.abs(out[masks] - windows[masks]).max() < 0.1


def test_biharmonic_bad_inputs():
    windows = _smooth_windows(2)
    with pytest.raises(ValueError, match="masks"):
        biharmonic_fill(windows, np.ones((2, P, P), bool))
    with pytest.raises(ValueError, match="masks"):
        biharmonic_fill(windows, np.zeros((2, P, P - 1), bool))
    bad = windows.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="windows"):
        biharmonic_fill(bad, _square_masks(2))


# --------------------------------------------------------------------------- Evaluation


def test_evaluation_to_dict_and_table():
    gan = {
        "mae": 0.0312,
        "psnr": 23.456,
        "ssim": 0.8,
        "coverage_1sigma": 0.655,
        "coverage_2sigma": 0.9412,
        "interval_coverage": 0.95,
        "std_error_corr": 0.31,
        "mean_std": 0.04,
        "texture_ratio": math.nan,
    }
    base = dict(gan, psnr=math.inf, coverage_2sigma=0.0)
    ev = Evaluation(gan=gan, biharmonic=base, n_holes=12, hole_shape="random", n_samples=500)
    data = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert data["gan"]["texture_ratio"] is None and data["biharmonic"]["psnr"] is None
    assert data["n_holes"] == 12 and data["gan"]["mae"] == 0.0312
    text = ev.table()
    lines = text.splitlines()
    assert lines[0].split()[0] == "metric" and "biharmonic" in lines[0] and "GAN (mean of 500)" in lines[0]
    psnr_row = next(line for line in lines if line.startswith("PSNR"))
    assert "23.46" in psnr_row and "∞" in psnr_row
    cov_row = next(line for line in lines if "± 2σ" in line)
    # Biharmonic's spread rows are blank in the table (a point estimate), kept in the dict.
    assert cov_row.split()[-3:] == ["94.1%", "—", "95.4%"] and data["biharmonic"]["coverage_2sigma"] == 0.0
    tex_row = next(line for line in lines if line.startswith("texture"))
    assert "—" in tex_row
    assert "12 held-out random holes" in lines[-1]
    with pytest.raises(AttributeError):
        ev.n_holes = 3  # frozen


# --------------------------------------------------------------------------- evaluate_model


class _NoiseModel(torch.nn.Module):
    """Stand-in whose fills are the known-pixel mean plus white noise of a set std.

    On a volume of white noise with that std, its fills are distributed exactly
    like the truth, so a correct evaluation reports calibrated coverages and a
    texture ratio near 1.
    """

    def __init__(self, sigma: float):
        super().__init__()
        self.config = type("Config", (), {"patch": P, "hole": L, "z_dim": L * L})()
        self.sigma = sigma
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the model a device

    def condition(self, y, hole):
        known = (hole < 0.5).float()
        return ((y * known).sum(dim=(1, 2, 3)) / known.sum(dim=(1, 2, 3))).reshape(-1, 1)

    def sample_z(self, n, generator=None, device=None):
        return torch.randn((n, L * L), generator=generator, device=device)

    def generate(self, z, cond):
        return (cond + self.sigma * z).reshape(-1, 1, L, L)

    def generate_grouped(self, z, cond):
        return self.generate(z.reshape(-1, z.shape[-1]), cond.repeat_interleave(z.shape[1], 0)).view(*z.shape[:2], 1, L, L)


def _noise_volume(sigma=0.05, shape=(4, 64, 64), seed=0):
    rng = np.random.default_rng(seed)
    return (0.5 + sigma * rng.standard_normal(shape)).astype(np.float32)


def test_evaluate_model_is_calibrated_for_a_model_that_samples_like_the_truth():
    model = _NoiseModel(0.05)
    mapping = IntensityMapping(low=0.0, high=1.0, dtype="float32")
    ev = evaluate_model(model, _noise_volume(), intensity=mapping, n_holes=24, n_samples=200, seed=1)
    g, b = ev.gan, ev.biharmonic
    assert (ev.n_holes, ev.hole_shape, ev.n_samples) == (24, "square", 200)
    assert g["coverage_1sigma"] == pytest.approx(GAUSSIAN_1SIGMA, abs=0.04)
    assert g["coverage_2sigma"] == pytest.approx(GAUSSIAN_2SIGMA, abs=0.03)
    assert g["interval_coverage"] == pytest.approx(0.95, abs=0.03)
    assert g["mean_std"] == pytest.approx(0.05, rel=0.05)
    assert g["texture_ratio"] == pytest.approx(1.0, abs=0.1)
    assert g["mae"] == pytest.approx(0.05 * math.sqrt(2 / math.pi), rel=0.1)  # E|N(0, σ²)|
    # Biharmonic smooths the noise away and claims no uncertainty.
    assert b["texture_ratio"] < 0.2
    assert b["coverage_2sigma"] == 0.0 and b["mean_std"] == 0.0 and b["std_error_corr"] == 0.0


def test_evaluate_model_biharmonic_column_equals_a_direct_computation():
    from ctinpaint.patches import PatchSampler

    vol = (_smooth_windows(4, seed=3, sigma=2.0).repeat(2, axis=1).repeat(2, axis=2) * 1000).astype(np.uint16)
    mapping = IntensityMapping(low=0.0, high=1000.0, dtype="uint16")
    ev = evaluate_model(_NoiseModel(0.02), vol, intensity=mapping, n_holes=10, n_samples=4, seed=5, hole_shape="random")
    batch = PatchSampler(
        vol, patch=P, hole=L, hole_shape="random", batch_size=10, seed=5, intensity=mapping
    ).take(10)
    truth, masks = batch.x[:, 0], batch.hole[:, 0] >= 0.5
    fill = biharmonic_fill(truth, masks)
    expected = hole_metrics(truth, fill, np.zeros_like(fill), masks, low=fill, high=fill, sample=fill, hole=L)
    assert ev.biharmonic.keys() == expected.keys()
    for key, value in expected.items():
        assert ev.biharmonic[key] == pytest.approx(value, nan_ok=True), key


def test_evaluate_model_end_to_end_with_an_untrained_model():
    from ctinpaint.models import build_model, config_for

    torch.manual_seed(0)
    model = build_model(config_for("seed"))
    model.train()
    rng = np.random.default_rng(0)
    vol = (ndi.gaussian_filter(rng.random((3, 64, 64)), (0, 2, 2)) * 255).astype(np.uint8)
    mapping = IntensityMapping(low=float(vol.min()), high=float(vol.max()), dtype="uint8")
    ev = evaluate_model(model, vol, intensity=mapping, n_holes=6, n_samples=8, seed=2)
    assert model.training  # left in the mode it was in
    assert ev.n_holes == 6
    for method in (ev.gan, ev.biharmonic):
        assert tuple(method) == METRICS
        assert all(math.isfinite(v) for v in method.values()), method
    text = ev.table()
    for label in ("MAE", "PSNR", "SSIM", "± 1σ", "± 2σ", "quantiles", "corr(std", "mean std", "texture"):
        assert label in text
    json.dumps(ev.to_dict(), allow_nan=False)


def test_evaluate_model_bad_arguments():
    mapping = IntensityMapping(low=0.0, high=1.0, dtype="float32")
    vol = _noise_volume()
    model = _NoiseModel(0.05)
    with pytest.raises(ValueError, match="hole_shape"):
        evaluate_model(model, vol, intensity=mapping, hole_shape="circle")
    with pytest.raises(ValueError, match="n_samples"):
        evaluate_model(model, vol, intensity=mapping, n_samples=1)
    with pytest.raises(ValueError, match="n_holes"):
        evaluate_model(model, vol, intensity=mapping, n_holes=0)
    with pytest.raises(ValueError, match="mask"):
        evaluate_model(model, vol, intensity=mapping, mask=np.ones(vol.shape, bool), n_holes=2, n_samples=2)
    with pytest.raises(TypeError, match="intensity"):
        evaluate_model(model, vol, intensity=None, n_holes=2, n_samples=2)


def test_evaluate_model_stays_out_of_excluded_voxels():
    # Held-out evaluation must never cut a window from the excluded (training) region.
    vol = _noise_volume(shape=(2, 64, 96))
    vol[:, :, :48] = 0.95
    exclude = np.zeros(vol.shape, bool)
    exclude[:, :, :48] = True
    mapping = IntensityMapping(low=0.0, high=1.0, dtype="float32")
    ev = evaluate_model(_NoiseModel(0.05), vol, intensity=mapping, exclude=exclude, n_holes=8, n_samples=50)
    # Noise-only windows give E|N(0, σ²)|; a window inside the flat half would pull the MAE
    # down (its fills match the constant), one straddling the edge would push it up.
    assert ev.gan["mae"] == pytest.approx(0.05 * math.sqrt(2 / math.pi), rel=0.08)


def test_evaluate_model_with_a_calibration_reports_both_spreads():
    from ctinpaint.calibration import Calibration
    from ctinpaint.intensity import IntensityMapping
    from ctinpaint.models import build_model, config_for

    torch.manual_seed(0)
    model = build_model(config_for("unet", width=4)).eval()
    vol = np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8)
    common = dict(intensity=IntensityMapping(low=0, high=255, dtype="uint8"), n_holes=8, n_samples=16, seed=1)
    raw = evaluate_model(model, vol, **common)
    cal = evaluate_model(model, vol, calibration=Calibration(std_scale=3.0, interval_scale=3.0), **common)
    assert cal.gan["mae"] == raw.gan["mae"]  # the mean is not touched
    assert cal.gan["mean_std"] == pytest.approx(3 * raw.gan["mean_std"], rel=1e-5)
    for key in ("coverage_1sigma", "coverage_2sigma", "interval_coverage"):
        assert cal.gan[f"raw_{key}"] == raw.gan[key]
        assert cal.gan[key] >= raw.gan[key]
    assert "raw_coverage_1sigma" not in raw.gan
    assert "uncalibrated" in cal.table()
    with pytest.raises(TypeError, match="calibration"):
        evaluate_model(model, vol, calibration={"std_scale": 2.0}, **common)


def test_evaluate_model_applies_the_calibrated_texture_tilt_and_reports_the_untilted_texture():
    from ctinpaint.calibration import Calibration
    from ctinpaint.intensity import IntensityMapping
    from ctinpaint.models import build_model, config_for

    torch.manual_seed(0)
    model = build_model(config_for("harmonic", width=4)).eval()
    vol = np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8)
    common = dict(intensity=IntensityMapping(low=0, high=255, dtype="uint8"), n_holes=8, n_samples=16, seed=1)
    plain = evaluate_model(model, vol, calibration=Calibration(), **common)
    smooth = evaluate_model(model, vol, calibration=Calibration(texture_tilt=-1.0), **common)
    assert smooth.gan["mae"] == plain.gan["mae"]  # the mean is not touched
    assert smooth.gan["mean_std"] == pytest.approx(plain.gan["mean_std"], rel=1e-3)  # nor the std (a std head)
    assert smooth.gan["raw_texture_ratio"] == plain.gan["texture_ratio"] == plain.gan["raw_texture_ratio"]
    assert smooth.gan["texture_ratio"] < 0.5 * plain.gan["texture_ratio"]
    assert "texture ratio" in smooth.table()


def test_is_spread_metric_names_the_uncertainty_metrics():
    from ctinpaint.evaluate import is_spread_metric

    spread = {"coverage_1sigma", "coverage_2sigma", "interval_coverage", "std_error_corr", "mean_std"}
    assert {k for k in METRICS if is_spread_metric(k)} == spread
    assert is_spread_metric("raw_coverage_1sigma") and not is_spread_metric("texture_ratio")
