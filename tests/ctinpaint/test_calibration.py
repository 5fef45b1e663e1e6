"""Tests for ctinpaint.calibration: fitting spread factors on known truth and applying them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctinpaint.calibration import (
    NORMAL_COVERAGE,
    TEXTURE_DEPTHS,
    TILED_DEPTHS,
    Calibration,
    bin_centres,
    check_texture_tilt,
    fit_calibration,
    fit_texture_tilt,
    fit_tiled_calibration,
    guided_pixels,
    guided_sides,
)
from ctinpaint.sampling import FillStats


def gaussian_stats(spread: float, *, n=40, side=32, seed=0, with_quantiles=True):
    """Truth ~ N(0, 1) around a zero mean, with a claimed std ``spread`` times too large."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(n, side, side)).astype(np.float32)
    mean = np.zeros_like(truth)
    std = np.full_like(truth, spread)
    quantiles = None
    if with_quantiles:  # the 2.5% / 97.5% quantiles a normal with that std would have
        quantiles = np.stack([mean - 1.959964 * std, mean + 1.959964 * std]).astype(np.float32)
    filled = np.zeros(truth.shape, bool)
    filled[:, 7:25, 7:25] = True
    return truth, FillStats(mean=mean, std=std, quantiles=quantiles, filled=filled)


@pytest.mark.parametrize("spread", [0.25, 1.0, 3.0])
def test_fit_recovers_the_true_scale_of_gaussian_errors(spread):
    truth, stats = gaussian_stats(spread)
    cal = fit_calibration(truth, stats)
    assert cal.std_scale == pytest.approx(1 / spread, rel=0.05)
    assert cal.interval_scale == pytest.approx(1 / spread, rel=0.06)
    assert cal.n_pixels == 40 * 18 * 18
    assert cal.after["coverage_1sigma"] == pytest.approx(NORMAL_COVERAGE[0], abs=0.02)
    assert cal.after["coverage_2sigma"] == pytest.approx(NORMAL_COVERAGE[1], abs=0.02)
    assert cal.after["interval_coverage"] == pytest.approx(0.95, abs=0.02)
    if spread > 1:  # too wide: everything covered before
        assert cal.before["coverage_1sigma"] > 0.9
    if spread < 1:  # too narrow: over-confident before
        assert cal.before["coverage_2sigma"] < 0.5


def test_apply_scales_std_and_moves_quantiles_about_the_mean():
    truth, stats = gaussian_stats(2.0)
    mean = stats.mean + 0.5  # a non-zero mean, so "about the mean" is visible
    stats = stats._replace(mean=mean, quantiles=stats.quantiles + 0.5)
    original = [a.copy() for a in (stats.mean, stats.std, stats.quantiles)]
    cal = Calibration(std_scale=0.5, interval_scale=0.25)
    out = cal.apply(stats)
    np.testing.assert_array_equal(out.std, stats.std * np.float32(0.5))
    sel = stats.filled
    np.testing.assert_allclose(out.quantiles[1][sel] - mean[sel], 0.25 * (stats.quantiles[1][sel] - mean[sel]), rtol=1e-6)
    np.testing.assert_array_equal(out.quantiles[:, ~sel], stats.quantiles[:, ~sel])  # unfilled pixels untouched
    assert out.mean is stats.mean and out.filled is stats.filled
    for before, after in zip(original, (stats.mean, stats.std, stats.quantiles)):
        np.testing.assert_array_equal(before, after)  # the input was not modified


def test_apply_without_quantiles():
    _, stats = gaussian_stats(2.0, with_quantiles=False)
    out = Calibration(std_scale=2.0).apply(stats)
    assert out.quantiles is None and out.std.dtype == np.float32
    np.testing.assert_array_equal(out.std, stats.std * 2)


def test_fitted_interval_covers_95_percent_to_a_fifth_of_a_point():
    # Many pixels, and a spread whose best factor (1 / 0.78) falls between two factors 4 % apart:
    # a grid that coarse would leave the coverage ~0.45 points off 95 %.
    rng = np.random.default_rng(3)
    truth = rng.normal(0.0, 1.0, size=(1200, 18, 18)).astype(np.float32)
    std = np.full_like(truth, 0.78)
    mean = np.zeros_like(truth)
    quantiles = np.stack([mean - 1.959964 * std, mean + 1.959964 * std]).astype(np.float32)
    stats = FillStats(mean=mean, std=std, quantiles=quantiles, filled=np.ones(truth.shape, bool))
    cal = fit_calibration(truth, stats)
    assert cal.after["interval_coverage"] == pytest.approx(0.95, abs=0.002)


def test_fit_without_quantiles_leaves_the_interval_alone():
    truth, stats = gaussian_stats(0.5, with_quantiles=False)
    cal = fit_calibration(truth, stats)
    assert cal.interval_scale == 1.0 and "interval_coverage" not in cal.after


def test_zero_spread_stays_zero_and_exact_hits_count_as_covered():
    truth, stats = gaussian_stats(1.0)
    stats = stats._replace(std=np.zeros_like(stats.std))
    truth = truth.copy()
    truth[:5] = stats.mean[:5]  # 5 of 40 windows filled exactly
    cal = fit_calibration(truth, stats)
    assert cal.before["coverage_1sigma"] == pytest.approx(5 / 40)
    assert cal.after["coverage_1sigma"] == pytest.approx(5 / 40)  # no factor can widen a zero spread
    assert not cal.apply(stats).std.any()


def test_dict_round_trip_through_json():
    truth, stats = gaussian_stats(1.5)
    cal = fit_calibration(truth, stats)
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    tilted = Calibration(texture_tilt=[0.5, 0, -0.25, -1], texture={"box_before": 2.0, "box_after": 1.0})
    assert tilted.texture_tilt == (0.5, 0.0, -0.25, -1.0)
    assert Calibration.from_dict(json.loads(json.dumps(tilted.to_dict()))) == tilted
    guided = Calibration(texture_tilt=-0.5, guided_texture_tilt=[0.25, 0, 0, 1])
    assert Calibration.from_dict(json.loads(json.dumps(guided.to_dict()))) == guided
    assert guided.texture_tilts() == {
        "texture_tilt": (-0.5,) * 4, "guided_texture_tilt": (0.25, 0.0, 0.0, 1.0), "flanked_texture_tilt": None
    }  # fmt: skip
    # Model files written before the texture tilt (or its guided or flanked one) existed have none.
    gone = ("texture_tilt", "texture", "guided_texture_tilt", "flanked_texture_tilt")
    old = {k: v for k, v in cal.to_dict().items() if k not in gone}
    assert Calibration.from_dict(old).texture_tilt is None
    assert Calibration.from_dict(old).guided_texture_tilt is None
    assert Calibration.from_dict(old).flanked_texture_tilt is None


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([1.0], "calibration: expected a JSON object"),
        ({"std_scale": 1.0}, "missing"),
        ({**Calibration().to_dict(), "code": "print(1)"}, "unknown"),
        ({**Calibration().to_dict(), "std_scale": 0.0}, "std_scale"),
        ({**Calibration().to_dict(), "interval_scale": float("nan")}, "interval_scale"),
        ({**Calibration().to_dict(), "std_scale": "2"}, "std_scale"),
        ({**Calibration().to_dict(), "n_pixels": -1}, "n_pixels"),
        ({**Calibration().to_dict(), "after": {"coverage_1sigma": "high"}}, "after"),
        ({**Calibration().to_dict(), "tiled_depths": [3]}, "given together"),
        ({**Calibration().to_dict(), "tiled_depths": [3, 6], "tiled_std_scale": [1.0], "tiled_interval_scale": [1.0]}, "same length"),
        ({**Calibration().to_dict(), "tiled_depths": [6, 3], "tiled_std_scale": [1, 1], "tiled_interval_scale": [1, 1]}, "increasing"),
        ({**Calibration().to_dict(), "tiled_depths": [3], "tiled_std_scale": [0.0], "tiled_interval_scale": [1.0]}, "tiled_std_scale"),
        ({**Calibration().to_dict(), "tiled_depths": "3", "tiled_std_scale": [1.0], "tiled_interval_scale": [1.0]}, "sequences"),
        ({**Calibration().to_dict(), "texture_tilt": [0.1, 0.2]}, "one per depth bin"),
        ({**Calibration().to_dict(), "texture_tilt": [0.1, 0.2, 0.3, -5.0]}, "texture_tilt"),
        ({**Calibration().to_dict(), "texture_tilt": "0.1"}, "texture_tilt"),
        ({**Calibration().to_dict(), "texture": {"box_after": None}}, "texture"),
        ({**Calibration().to_dict(), "guided_texture_tilt": [0.1, 0.2, 0.3, 0.4]}, "needs texture_tilt"),
        ({**Calibration().to_dict(), "texture_tilt": 0.0, "guided_texture_tilt": [0.1, 9.0, 0.3, 0.4]}, "guided_texture_tilt"),
        ({**Calibration().to_dict(), "texture_tilt": 0.0, "flanked_texture_tilt": 0.1}, "needs guided_texture_tilt"),
        ({**Calibration().to_dict(), "texture_tilt": 0.0, "guided_texture_tilt": 0.0, "flanked_texture_tilt": [9.0] * 4},
         "flanked_texture_tilt"),
    ],
)
def test_from_dict_refuses_bad_documents(data, match):
    with pytest.raises(ValueError, match=match):
        Calibration.from_dict(data)


def test_fit_errors():
    truth, stats = gaussian_stats(1.0)
    with pytest.raises(ValueError, match="truth shape"):
        fit_calibration(truth[:3], stats)
    with pytest.raises(ValueError, match="stats: no filled pixel"):
        fit_calibration(truth, stats._replace(filled=np.zeros_like(stats.filled)))


# --------------------------------------------------------------------------- guided pixels (2.5D context)


def _two_regimes(seed=0, n=40, size=32):
    """Guided pixels (left half) whose spread is twice too wide, others (right half) half as wide as needed."""
    rng = np.random.default_rng(seed)
    std = np.full((n, size, size), 0.1, np.float32)
    guided = np.zeros((n, size, size), bool)
    guided[:, :, : size // 2] = True
    err = rng.normal(size=std.shape) * np.where(guided, 0.05, 0.2)
    truth = err.astype(np.float32)
    stats = FillStats(mean=np.zeros_like(truth), std=std, quantiles=None, filled=np.ones(truth.shape, bool))
    return truth, stats, guided


def test_guided_pixels_get_their_own_factors():
    truth, stats, guided = _two_regimes()
    one = fit_calibration(truth, stats)
    two = fit_calibration(truth, stats, guided)
    assert one.guided_std_scale is None
    assert two.guided_std_scale == pytest.approx(0.5, rel=0.05) and two.std_scale == pytest.approx(2.0, rel=0.05)
    calibrated = two.apply(stats, guided)
    for part in (guided, ~guided):
        err, std = np.abs(truth[part]), calibrated.std[part]
        assert abs(np.mean(err <= std) - NORMAL_COVERAGE[0]) < 0.02
        assert abs(np.mean(err <= 2 * std) - NORMAL_COVERAGE[1]) < 0.02
    # One factor for both kinds covers the guided pixels far too often and the others far too rarely.
    single = one.apply(stats)
    assert np.mean(np.abs(truth[guided]) <= single.std[guided]) > 0.9
    assert np.mean(np.abs(truth[~guided]) <= single.std[~guided]) < 0.5
    assert Calibration.from_dict(json.loads(json.dumps(two.to_dict()))) == two


def test_too_few_guided_pixels_fit_one_factor():
    truth, stats, guided = _two_regimes()
    few = np.zeros_like(guided)
    few[0, 0, :10] = True
    assert fit_calibration(truth, stats, few).guided_std_scale is None
    assert fit_calibration(truth, stats, np.zeros_like(guided)).guided_std_scale is None


def test_guided_factors_need_the_guided_map():
    truth, stats, guided = _two_regimes()
    two = fit_calibration(truth, stats, guided)
    with pytest.raises(ValueError, match="sides: .*guided"):
        two.apply(stats)
    with pytest.raises(ValueError, match="sides: .*guided"):
        two.apply(stats, guided[:, :3])
    with pytest.raises(ValueError, match="sides shape"):
        fit_calibration(truth, stats, guided[:2])
    with pytest.raises(ValueError, match="given together"):
        Calibration(guided_std_scale=1.0)
    with pytest.raises(ValueError, match="guided_std_scale"):
        Calibration(guided_std_scale=-1.0, guided_interval_scale=1.0)
    old = Calibration(std_scale=0.7).to_dict()
    del old["guided_std_scale"], old["guided_interval_scale"]  # a model file from before guided factors
    assert Calibration.from_dict(old) == Calibration(std_scale=0.7)


def _three_regimes(seed=0, n=40, size=32):
    """Unguided pixels (left third) twice too narrow, one-sided ones (middle) right, flanked ones (right) twice too wide."""
    rng = np.random.default_rng(seed)
    std = np.full((n, size, size), 0.1, np.float32)
    sides = np.zeros((n, size, size), np.int8)
    sides[:, :, 11:22], sides[:, :, 22:] = 1, 2
    err = rng.normal(size=std.shape) * np.array([0.2, 0.1, 0.05])[sides]
    truth = err.astype(np.float32)
    stats = FillStats(mean=np.zeros_like(truth), std=std, quantiles=None, filled=np.ones(truth.shape, bool))
    return truth, stats, sides


def test_flanked_pixels_get_their_own_factors():
    truth, stats, sides = _three_regimes()
    cal = fit_calibration(truth, stats, sides)
    assert cal.std_scale == pytest.approx(2.0, rel=0.05)
    assert cal.guided_std_scale == pytest.approx(1.0, rel=0.05)
    assert cal.flanked_std_scale == pytest.approx(0.5, rel=0.05)
    calibrated = cal.apply(stats, sides)
    for k in (0, 1, 2):
        part = sides == k
        err, std = np.abs(truth[part]), calibrated.std[part]
        assert abs(np.mean(err <= std) - NORMAL_COVERAGE[0]) < 0.03
        assert abs(np.mean(err <= 2 * std) - NORMAL_COVERAGE[1]) < 0.03
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    # Pooled, the guided factor lies between the two kinds' and fits neither.
    pooled = fit_calibration(truth, stats, sides > 0)
    assert pooled.flanked_std_scale is None and 0.55 < pooled.guided_std_scale < 0.95
    # Too few flanked pixels: one guided pair for both kinds.
    few = np.where(sides == 2, 1, sides).astype(np.int8)
    few[0, 0, 22:] = 2
    single = fit_calibration(truth, stats, few)
    assert single.flanked_std_scale is None and single.guided_std_scale is not None


def test_flanked_factors_errors_and_old_files():
    truth, stats, sides = _three_regimes()
    cal = fit_calibration(truth, stats, sides)
    with pytest.raises(ValueError, match="not a bool map"):
        cal.apply(stats, sides > 0)
    with pytest.raises(ValueError, match="given together"):
        Calibration(guided_std_scale=1.0, guided_interval_scale=1.0, flanked_std_scale=0.5)
    with pytest.raises(ValueError, match="needs guided_std_scale"):
        Calibration(flanked_std_scale=0.5, flanked_interval_scale=0.5)
    with pytest.raises(ValueError, match="flanked_interval_scale"):
        Calibration(guided_std_scale=1.0, guided_interval_scale=1.0, flanked_std_scale=0.5, flanked_interval_scale=0.0)
    old = cal.to_dict()
    del old["flanked_std_scale"], old["flanked_interval_scale"]  # a model file from before flanked factors
    loaded = Calibration.from_dict(old)
    assert loaded.flanked_std_scale is None
    # Then the guided factors serve every guided pixel, one-sided or flanked.
    applied = loaded.apply(stats, sides)
    assert np.all(applied.std[sides == 2] == applied.std[sides == 1][0])


def test_guided_sides_count_the_known_adjacent_slices():
    masks = np.ones((1, 5, 8, 8), bool)
    masks[0, 1, :, :4] = False  # above: known on the left
    masks[0, 3, :, 2:6] = False  # below: known in the middle
    masks[0, 0] = False  # two slices away: does not count
    sides = guided_sides(masks, 2)[0]
    assert sides.dtype == np.int8
    assert sides[0].tolist() == [1, 1, 2, 2, 1, 1, 0, 0]
    assert np.array_equal(guided_pixels(masks, 2)[0], sides > 0)
    assert not guided_sides(np.zeros((2, 1, 8, 8), bool), 0).any()


def test_guided_pixels_of_context_windows():
    masks = np.ones((2, 5, 8, 8), bool)
    masks[0, 1, :, :4] = False  # the slice just above is known on the left
    masks[1, 0] = False  # two slices away: does not count
    guided = guided_pixels(masks, 2)
    assert guided[0, :, :4].all() and not guided[0, :, 4:].any() and not guided[1].any()
    assert not guided_pixels(np.zeros((2, 8, 8), bool), 0).any()


# --------------------------------------------------------------------------- tiled artifacts


def test_tiled_factors_interpolate_between_bin_centres_and_round_trip():
    cal = Calibration(tiled_depths=(3, 9), tiled_std_scale=(1.5, 3.0), tiled_interval_scale=(1.2, 2.0))
    # Bin centres: depths 1-3 -> 2, depths 4-9 -> 6.5; constant outside them.
    std_f, int_f = cal.tiled_factors(np.array([[1, 2, 4], [6.5, 9, 40]]))
    assert std_f.dtype == np.float32 and std_f.shape == (2, 3)
    np.testing.assert_allclose(std_f, [[1.5, 1.5, 1.5 + 1.5 * 2 / 4.5], [3.0, 3.0, 3.0]], rtol=1e-6)
    np.testing.assert_allclose(int_f, [[1.2, 1.2, 1.2 + 0.8 * 2 / 4.5], [2.0, 2.0, 2.0]], rtol=1e-6)
    depth = np.arange(1, 12)
    assert (np.diff(cal.tiled_factors(depth)[0]) >= 0).all()  # no step at the bin edge (3 -> 4)
    assert np.diff(cal.tiled_factors(depth)[0]).max() < 0.34
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    ones = Calibration().tiled_factors(np.array([1, 20]))
    np.testing.assert_array_equal(ones[0], [1.0, 1.0])
    # Files written before tiled factors existed load as "no extra factor".
    old = {k: v for k, v in Calibration().to_dict().items() if not k.startswith("tiled")}
    assert Calibration.from_dict(old).tiled_depths is None


def test_fit_tiled_recovers_a_spread_that_is_too_small_by_depth():
    rng = np.random.default_rng(0)
    n, size = 60, 40
    depth = np.broadcast_to(np.minimum.outer(np.arange(1, size + 1), np.arange(1, size + 1)), (n, size, size)).copy()
    true_std = np.where(depth <= 6, 0.05, 0.2)
    truth = rng.normal(0.0, true_std).astype(np.float32)
    std = np.full(truth.shape, 0.05, np.float32)  # right near the border, 4x too small deeper in
    mean = np.zeros_like(truth)
    q = np.stack([mean - 1.96 * std, mean + 1.96 * std])
    stats = FillStats(mean=mean, std=std, quantiles=q, filled=np.ones(truth.shape, bool))
    base = Calibration(std_scale=0.9)
    fitted = fit_tiled_calibration(base, truth, stats, depth, depths=(3, 6, 12, 40))
    assert fitted.std_scale == 0.9 and fitted.tiled_depths == (3, 6, 12, 40)
    np.testing.assert_allclose(fitted.tiled_std_scale, [1.0, 1.0, 4.0, 4.0], rtol=0.05)
    np.testing.assert_allclose(fitted.tiled_interval_scale, [1.0, 1.0, 4.0, 4.0], rtol=0.1)
    # Applied interpolated between bin centres (5 and 9.5), the factors smooth this step at depth 6.
    assert fitted.tiled_after["coverage_2sigma"] == pytest.approx(NORMAL_COVERAGE[1], abs=0.02)
    assert fit_tiled_calibration(base, truth, stats, depth).tiled_depths == TILED_DEPTHS


def test_fit_tiled_bins_with_few_pixels_take_the_factors_before_them():
    rng = np.random.default_rng(1)
    truth = rng.normal(0.0, 0.1, (4, 20, 20)).astype(np.float32)
    depth = np.ones(truth.shape, int)
    depth[0, 0, :10] = 50  # 10 pixels in the deepest bin
    stats = FillStats(mean=np.zeros_like(truth), std=np.full_like(truth, 0.05), quantiles=None,
                      filled=np.ones(truth.shape, bool))  # fmt: skip
    fitted = fit_tiled_calibration(Calibration(), truth, stats, depth, depths=(3, 40))
    assert fitted.tiled_std_scale[0] == pytest.approx(2.0, rel=0.1)
    assert fitted.tiled_std_scale[1] == fitted.tiled_std_scale[0]
    assert fitted.tiled_interval_scale == (1.0, 1.0)  # no quantiles: the interval is left alone


def test_fit_tiled_errors():
    truth, stats = gaussian_stats(1.0)
    depth = np.ones(truth.shape, int)
    with pytest.raises(ValueError, match="must match"):
        fit_tiled_calibration(Calibration(), truth, stats, depth[:2])
    with pytest.raises(ValueError, match="no filled pixel"):
        fit_tiled_calibration(Calibration(), truth, stats._replace(filled=np.zeros_like(stats.filled)), depth)


def test_apply_tiled_scales_std_and_moves_quantiles_by_depth():
    cal = Calibration(tiled_depths=(3, 9), tiled_std_scale=(2.0, 4.0), tiled_interval_scale=(3.0, 5.0))
    mean = np.array([0.5, 0.5, 0.2])
    std = np.array([0.1, 0.1, 0.1])
    quantiles = np.array([[0.4, 0.4, 0.1], [0.6, 0.6, 0.3]])
    new_std, new_q = cal.apply_tiled(mean, std, quantiles, np.array([1, 6.5, 30]))  # at or beyond the bin centres
    np.testing.assert_allclose(new_std, [0.2, 0.4, 0.4], atol=1e-6)  # float32 factors
    np.testing.assert_allclose(new_q, [[0.2, 0.0, -0.3], [0.8, 1.0, 0.7]], atol=1e-6)
    assert cal.apply_tiled(mean, std, None, np.array([1, 5, 30]))[1] is None
    same_std, same_q = Calibration().apply_tiled(mean, std, quantiles, np.array([1, 5, 30]))
    np.testing.assert_allclose(same_std, std)
    np.testing.assert_allclose(same_q, quantiles)


# --------------------------------------------------------------------------- texture tilt


def test_check_texture_tilt_and_bin_centres():
    assert check_texture_tilt(0.5) == (0.5,) * len(TEXTURE_DEPTHS)
    assert check_texture_tilt(np.array([1, 2, 3, 4])) == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="one per depth bin"):
        check_texture_tilt([0.1])
    with pytest.raises(TypeError, match="texture_tilt"):
        check_texture_tilt(b"1")
    assert bin_centres((3, 6)).tolist() == [2.0, 5.0]


def _textured_windows(n=48, seed=0):
    """Smooth phases plus fine grain, like CT: the truth has texture at every depth."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=(n, 32, 32)), (0, 3, 3))
    windows = 0.5 + 0.25 * np.tanh(4 * smooth) + 0.03 * rng.normal(size=(n, 32, 32))
    masks = np.zeros((n, 32, 32), bool)
    for i in range(n):  # holes of different sizes inside the box
        r, c, h, w = rng.integers(7, 12), rng.integers(7, 12), rng.integers(4, 14), rng.integers(4, 14)
        masks[i, r : r + h, c : c + w] = True
    return windows.clip(0, 1).astype(np.float32), masks


def test_fit_texture_tilt_brings_single_samples_towards_the_truth_texture():
    import torch

    from ctinpaint.models import build_model, config_for

    torch.manual_seed(0)
    model = build_model(config_for("harmonic", width=8)).eval()
    windows, masks = _textured_windows()
    fitted = fit_texture_tilt(model, windows, masks, seed=0)
    tilt, texture = fitted["texture_tilt"], fitted["texture"]
    assert fitted["guided_texture_tilt"] is None and fitted["flanked_texture_tilt"] is None  # no context
    assert Calibration(**fitted).texture_tilt == tilt  # the fields of a calibration
    assert len(tilt) == len(TEXTURE_DEPTHS) and all(-1.5 <= t <= 1.5 for t in tilt)
    assert set(texture) == {"holes_before", "holes_after", "box_before", "box_after"}
    for kind in ("holes", "box"):  # the untrained G is far off; the tilt brings it closer
        assert abs(np.log(texture[f"{kind}_after"])) < abs(np.log(texture[f"{kind}_before"])) - 0.3
    # The same seed fits the same tilt; the inputs are not modified.
    before = windows.copy(), masks.copy()
    assert fit_texture_tilt(model, windows, masks, seed=0)["texture_tilt"] == tilt
    np.testing.assert_array_equal(windows, before[0])
    np.testing.assert_array_equal(masks, before[1])


def _context_windows(grain_by_row):
    """Windows (64, 3, 32, 32) of a context model whose centre slice's grain varies by row, and their masks."""
    base, _ = _textured_windows(n=64)
    rng = np.random.default_rng(1)
    grain = np.asarray(grain_by_row)[:, None] * rng.normal(size=(64, 32, 32))
    centre = (base + grain).clip(0, 1).astype(np.float32)
    windows = np.stack([base, centre, base], axis=1)
    masks = np.zeros(windows.shape, bool)
    masks[:, 1, 7:25, 7:25] = True
    masks[:, [0, 2], 16:25, 7:25] = True  # the box's lower half is hidden in both neighbours: unguided
    return windows, masks


def _context_model():
    import torch

    from ctinpaint.models import build_model, config_for

    torch.manual_seed(0)
    return build_model(config_for("harmonic", width=8, context=1)).eval()


def test_fit_texture_tilt_fits_guided_pixels_apart():
    """Truth grainy where a neighbouring slice is known and smooth where it is not: two tilts."""
    model = _context_model()
    windows, masks = _context_windows(np.where(np.arange(32) < 16, 0.08, 0.01))
    fitted = fit_texture_tilt(model, windows, masks, seed=0)
    tilt, guided_tilt, texture = fitted["texture_tilt"], fitted["guided_texture_tilt"], fitted["texture"]
    assert guided_tilt is not None and len(guided_tilt) == len(TEXTURE_DEPTHS)
    assert fitted["flanked_texture_tilt"] is None  # every guided pixel has both sides known: one group
    assert np.mean(guided_tilt) > np.mean(tilt) + 0.3  # rougher where the truth is
    for kind in ("holes", "box"):
        assert abs(np.log(texture[f"{kind}_after"])) < abs(np.log(texture[f"{kind}_before"]))
    # Every pixel guided: one tilt for all.
    masks[:, [0, 2]] = False
    assert fit_texture_tilt(model, windows, masks, seed=0)["guided_texture_tilt"] is None


def test_fit_texture_tilt_fits_flanked_pixels_apart():
    """Among guided pixels, truth grainy where one side is known and smooth where both are: a third tilt."""
    model = _context_model()
    rows = np.arange(32)
    windows, masks = _context_windows(np.where(rows < 12, 0.08, np.where(rows < 16, 0.01, 0.04)))
    masks[:, 0, 0:12, 7:25] = True  # rows 7-11: only the slice below is known; rows 12-15: both
    fitted = fit_texture_tilt(model, windows, masks, seed=0)
    guided, flanked = fitted["guided_texture_tilt"], fitted["flanked_texture_tilt"]
    assert guided is not None and flanked is not None and len(flanked) == len(TEXTURE_DEPTHS)
    assert np.mean(guided) > np.mean(flanked) + 0.3
    calibration = Calibration(**fitted)
    assert calibration.texture_tilts()["flanked_texture_tilt"] == flanked
    assert Calibration.from_dict(json.loads(json.dumps(calibration.to_dict()))) == calibration


def test_fit_texture_tilt_errors():
    import torch

    from ctinpaint.models import build_model, config_for

    torch.manual_seed(0)
    windows, masks = _textured_windows(n=4)
    with pytest.raises(ValueError, match="regressed mean"):
        fit_texture_tilt(build_model(config_for("seed")), windows, masks)
    model = build_model(config_for("harmonic", width=8))
    with pytest.raises(ValueError, match="without texture"):
        fit_texture_tilt(model, np.full_like(windows, 0.5), masks)
    with pytest.raises(ValueError, match="masks"):
        fit_texture_tilt(model, windows, masks[:2])
    with pytest.raises(TypeError, match="seed"):
        fit_texture_tilt(model, windows, masks, seed=1.5)
