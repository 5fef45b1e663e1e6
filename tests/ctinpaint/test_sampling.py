"""Tests for ctinpaint.sampling: streamed statistics equal direct ones; the z-ignoring check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ctinpaint.losses import laplacian
from ctinpaint.models import build_model, config_for
from ctinpaint.sampling import (
    QUANTILE_BINS, RunningMoments, draw_fills, fill_diversity, filled_depth, sample_fills, tilt_texture,
)  # fmt: skip


class _LinearG(nn.Module):
    """fill = bias + scale * z[:, 0] in every pixel: mean and std known exactly."""

    def __init__(self, bias, scale):
        super().__init__()
        self.bias, self.scale = bias, scale
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, z, cond):
        return (self.bias + self.scale * z[:, :1, None, None] + 0 * cond).expand(-1, 1, 18, 18)


class _TinyModel(nn.Module):
    """The sampling interface of InpaintingGAN with a hand-made generator."""

    def __init__(self, generator):
        super().__init__()
        self.config = config_for("seed")
        self.generator = generator
        self.conditioned = 0

    def condition(self, y, hole):
        self.conditioned += y.shape[0]
        return y[:, :, 7:25, 7:25].mean(dim=(1, 2, 3), keepdim=True)

    def generate(self, z, cond):
        return self.generator(z, cond)

    def generate_grouped(self, z, cond):
        w, s = z.shape[:2]
        return self.generator(z.reshape(w * s, -1), cond.repeat_interleave(s, dim=0)).view(w, s, 1, 18, 18)

    def sample_z(self, n, generator=None, device=None):
        return torch.randn(n, 4, generator=generator, device=device)


def _windows(n=3, seed=0):
    rng = np.random.default_rng(seed)
    windows = rng.random((n, 32, 32)).astype(np.float32)
    masks = np.zeros((n, 32, 32), bool)
    masks[:, 9:20, 10:23] = True
    masks[:, 0:3, 0:3] = True  # unknown but outside the hole box: never filled
    return windows, masks


def test_running_moments_equal_numpy_for_any_split():
    rng = np.random.default_rng(0)
    data = rng.normal(1000.0, 0.5, size=(4, 1000, 7)).astype(np.float32)  # far from 0: naive sums fail
    for sizes in ([1000], [1, 999], [333, 333, 334], [7] * 142 + [6]):
        acc = RunningMoments((4, 7), "cpu")
        start = 0
        for size in sizes:
            acc.update(torch.from_numpy(data[:, start : start + size]))
            start += size
        np.testing.assert_allclose(acc.mean.numpy(), data.astype(np.float64).mean(axis=1), rtol=1e-6)
        np.testing.assert_allclose(acc.std().numpy(), data.astype(np.float64).std(axis=1, ddof=1), rtol=2e-3)


def test_mean_and_std_match_the_direct_computation():
    model = _TinyModel(_LinearG(0.4, 0.1))
    windows, masks = _windows()
    stats = sample_fills(model, windows, masks, n_samples=4000, seed=1, batch=1000)
    box = np.zeros_like(masks)
    box[:, 7:25, 7:25] = True
    filled = masks & box
    np.testing.assert_array_equal(stats.filled, filled)
    np.testing.assert_allclose(stats.mean[filled], 0.4, atol=0.1 * 4 / np.sqrt(4000))
    np.testing.assert_allclose(stats.std[filled], 0.1, rtol=0.05)
    # Known pixels and unknown pixels outside the box: input values, zero std.
    outside = ~filled
    np.testing.assert_array_equal(stats.mean[outside & ~masks], windows[outside & ~masks])
    assert (stats.std[outside] == 0).all()
    assert model.conditioned == 3  # C once per window, never per sample


def test_exact_against_the_same_noise():
    """With the noise replayed by hand, the streamed result equals a one-shot computation."""
    model = _TinyModel(_LinearG(0.2, 0.3))
    windows, masks = _windows(n=1)
    stats = sample_fills(model, windows, masks, n_samples=300, seed=[123], batch=64)
    gen = torch.Generator().manual_seed(123)
    z = torch.cat([torch.randn(s, 4, generator=gen) for s in [64, 64, 64, 64, 44]])
    values = (0.2 + 0.3 * z[:, 0]).double().numpy()
    np.testing.assert_allclose(stats.mean[0, 12, 12], values.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats.std[0, 12, 12], values.std(ddof=1), rtol=1e-4)


def test_quantiles_within_one_bin():
    model = _TinyModel(_LinearG(0.5, 0.1))
    windows, masks = _windows(n=2)
    stats = sample_fills(model, windows, masks, n_samples=20000, seed=0, quantiles=(0.025, 0.5, 0.975))
    lo, mid, hi = (q[stats.filled] for q in stats.quantiles)
    tolerance = 1.0 / QUANTILE_BINS + 3 * 0.1 / np.sqrt(20000) * 3
    np.testing.assert_allclose(lo, 0.5 - 1.96 * 0.1, atol=tolerance)
    np.testing.assert_allclose(mid, 0.5, atol=tolerance)
    np.testing.assert_allclose(hi, 0.5 + 1.96 * 0.1, atol=tolerance)


def test_results_do_not_depend_on_batching_or_neighbours():
    model = build_model(config_for("unet"))
    windows, masks = _windows(n=4)
    a = sample_fills(model, windows, masks, n_samples=64, seed=5, batch=64)
    b = sample_fills(model, windows, masks, n_samples=64, seed=5, batch=256)
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-5)
    np.testing.assert_allclose(a.std, b.std, atol=1e-5)
    c = sample_fills(model, windows, masks, n_samples=64, seed=6, batch=256)
    assert np.abs(a.mean - c.mean).max() > 1e-4  # another seed, other noise


class _RegressedModel(_TinyModel):
    """A tiny model whose mean is regressed: 0.6 everywhere, whatever G's own mean (0.4)."""

    def regressed_mean(self, cond):
        return torch.full((cond.shape[0], 1, 18, 18), 0.6)


def test_samples_are_centred_on_a_regressed_mean():
    model = _RegressedModel(_LinearG(0.4, 0.1))
    windows, masks = _windows(n=2)
    stats = sample_fills(model, windows, masks, n_samples=20000, seed=0, quantiles=(0.025, 0.5, 0.975))
    np.testing.assert_allclose(stats.mean[stats.filled], 0.6, atol=1e-6)  # exactly the regression
    np.testing.assert_allclose(stats.std[stats.filled], 0.1, rtol=0.02)  # G's spread, unchanged
    lo, mid, hi = (q[stats.filled] for q in stats.quantiles)
    tolerance = 1.0 / QUANTILE_BINS + 3 * 0.1 / np.sqrt(20000) * 3
    np.testing.assert_allclose(lo, 0.6 - 1.96 * 0.1, atol=tolerance)  # the quantiles move with the samples
    np.testing.assert_allclose(mid, 0.6, atol=tolerance)
    np.testing.assert_allclose(hi, 0.6 + 1.96 * 0.1, atol=tolerance)
    np.testing.assert_array_equal(stats.mean[~stats.filled], np.where(masks, 0.0, windows)[~stats.filled])

    # Single draws come from the same centred distribution.
    draws = np.stack([draw_fills(model, windows, masks, seed=s)[stats.filled] for s in range(400)])
    assert abs(draws.mean() - 0.6) < 0.02 and draws.std() == pytest.approx(0.1, rel=0.15)
    assert ((draws >= 0) & (draws <= 1)).all()


def test_a_real_mean_net_model_samples_around_its_regression():
    torch.manual_seed(0)
    model = build_model(config_for("harmonic", mean_net=True)).eval()
    with torch.no_grad():  # move the regression and G's own mean apart
        model.conditioner.mean_head.bias.fill_(0.5)
        model.generator.out.bias.fill_(-0.5)
    windows, masks = _windows(n=2)
    stats = sample_fills(model, windows, masks, n_samples=64, seed=0)
    y = torch.from_numpy(np.where(masks, 0.0, windows).astype(np.float32))[:, None]
    with torch.no_grad():
        regressed = model.regressed_mean(model.condition(y, torch.from_numpy(masks[:, None].astype(np.float32))))
    box = regressed[:, 0].numpy()
    inner = stats.filled[:, 7:25, 7:25]
    np.testing.assert_allclose(stats.mean[:, 7:25, 7:25][inner], box[inner], atol=1e-5)
    assert stats.std[stats.filled].mean() > 1e-3  # the spread survives the shift
    assert build_model(config_for("harmonic", mean_net=False)).regressed_mean(torch.zeros(1, 17, 18, 18)) is None


class _RegressedStdModel(_RegressedModel):
    """... whose spread is regressed too: 0.05 in the top half of the box, 0.2 below, whatever G's (0.1)."""

    def regressed_std(self, cond):
        std = torch.full((cond.shape[0], 1, 18, 18), 0.05)
        std[:, :, 9:] = 0.2
        return std


def test_samples_are_scaled_to_a_regressed_std():
    model = _RegressedStdModel(_LinearG(0.4, 0.1))
    windows, masks = _windows(n=2)
    stats = sample_fills(model, windows, masks, n_samples=20000, seed=0, quantiles=(0.025, 0.975))
    top, bottom = np.zeros_like(stats.filled), np.zeros_like(stats.filled)
    top[:, 7:16, 7:25], bottom[:, 16:25, 7:25] = True, True
    top, bottom = top & stats.filled, bottom & stats.filled
    assert top.any() and bottom.any()
    np.testing.assert_allclose(stats.mean[stats.filled], 0.6, atol=1e-6)
    np.testing.assert_allclose(stats.std[top], 0.05, rtol=1e-5)  # the regressed std, not G's
    np.testing.assert_allclose(stats.std[bottom], 0.2, rtol=1e-5)
    lo, hi = stats.quantiles
    tolerance = 2 * (1.0 / QUANTILE_BINS + 3 * 0.1 / np.sqrt(20000) * 3)  # a bin of G's, scaled up to 2x
    np.testing.assert_allclose(lo[top], 0.6 - 1.96 * 0.05, atol=tolerance)  # the quantiles scale with the samples
    np.testing.assert_allclose(hi[bottom], 0.6 + 1.96 * 0.2, atol=tolerance)

    draws = np.stack([draw_fills(model, windows, masks, seed=s) for s in range(400)])
    assert draws[:, top].std() == pytest.approx(0.05, rel=0.15)
    assert draws[:, bottom].std() == pytest.approx(0.2, rel=0.15)
    assert abs(draws[:, top].mean() - 0.6) < 0.01


def test_with_draw_returns_one_of_the_samples_moved_as_they_are():
    windows, masks = _windows(n=2)
    plain = _TinyModel(_LinearG(0.4, 0.1))
    stats = sample_fills(plain, windows, masks, n_samples=8, seed=[5, 6], with_draw=True)
    # The first fill of each window: G on the first noise of that window's first launch.
    z0 = torch.stack([torch.randn(8, 4, generator=torch.Generator().manual_seed(s)) for s in (5, 6)])[:, 0]
    np.testing.assert_allclose(stats.draw[stats.filled], np.repeat(0.4 + 0.1 * z0[:, 0].numpy(), stats.filled[0].sum()), rtol=1e-6)
    np.testing.assert_array_equal(stats.draw[~stats.filled], stats.mean[~stats.filled])
    assert sample_fills(plain, windows, masks, n_samples=8, seed=0).draw is None

    # With a regressed mean and std, the draw is moved and scaled as every sample is.
    scaled = _RegressedStdModel(_LinearG(0.4, 0.1))
    draws = np.stack([sample_fills(scaled, windows, masks, n_samples=64, seed=s, with_draw=True).draw for s in range(300)])
    top = np.zeros_like(stats.filled)
    top[:, 7:16, 7:25] = True
    top &= stats.filled
    assert draws[:, top].std() == pytest.approx(0.05, rel=0.15)
    assert abs(draws[:, top].mean() - 0.6) < 0.01
    with pytest.raises(TypeError, match="with_draw"):
        sample_fills(plain, windows, masks, n_samples=8, with_draw=1)


def test_pixels_where_g_does_not_vary_keep_a_zero_std():
    model = _RegressedStdModel(_LinearG(0.4, 0.0))
    windows, masks = _windows(n=2)
    stats = sample_fills(model, windows, masks, n_samples=50, seed=0, quantiles=(0.025, 0.975))
    np.testing.assert_array_equal(stats.std, 0.0)
    np.testing.assert_allclose(stats.quantiles[0][stats.filled], 0.6, atol=1e-6)


def test_a_real_std_head_model_samples_with_its_regressed_std():
    torch.manual_seed(0)
    model = build_model(config_for("harmonic")).eval()
    assert model.config.std_head
    with torch.no_grad():
        model.conditioner.std_head[-1].bias.fill_(np.log(0.03))
    windows, masks = _windows(n=2)
    stats = sample_fills(model, windows, masks, n_samples=64, seed=0)
    np.testing.assert_allclose(stats.std[stats.filled], 0.03, rtol=1e-4)


def test_generator_that_ignores_z_is_flagged():
    ignoring = _TinyModel(_LinearG(0.3, 0.0))
    windows, masks = _windows()
    stats = sample_fills(ignoring, windows, masks, n_samples=50, seed=0)
    assert np.abs(stats.std[stats.filled]).max() < 1e-6
    assert fill_diversity(ignoring, windows, masks) < 1e-6
    assert fill_diversity(_TinyModel(_LinearG(0.3, 0.1)), windows, masks) > 0.05


def test_real_model_keeps_known_pixels_and_mode():
    model = build_model(config_for("seed"))
    model.train()
    windows, masks = _windows(n=2)
    before = windows.copy()
    stats = sample_fills(model, windows, masks, n_samples=8, seed=0)
    assert model.training  # mode restored
    np.testing.assert_array_equal(windows, before)  # input untouched
    np.testing.assert_array_equal(stats.mean[~masks], windows[~masks])
    assert stats.mean.dtype == np.float32 and stats.std.dtype == np.float32
    assert ((stats.mean >= 0) & (stats.mean <= 1)).all()


def test_accepts_channel_axis():
    model = _TinyModel(_LinearG(0.5, 0.1))
    windows, masks = _windows()
    stats = sample_fills(model, windows[:, None], masks[:, None], n_samples=4, seed=0)
    assert stats.mean.shape == (3, 32, 32)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_samples": 1}, ValueError, "n_samples"),
        ({"n_samples": 2.5}, TypeError, "n_samples"),
        ({"batch": 0}, ValueError, "batch"),
        ({"quantiles": (0.0,)}, ValueError, "quantiles"),
        ({"quantiles": (1.5,)}, ValueError, "quantiles"),
        ({"seed": [1, 2]}, ValueError, "seed"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    model = _TinyModel(_LinearG(0.5, 0.1))
    windows, masks = _windows()
    with pytest.raises(error, match=match):
        sample_fills(model, windows, masks, **kwargs)


def test_bad_windows_and_masks():
    model = _TinyModel(_LinearG(0.5, 0.1))
    windows, masks = _windows()
    with pytest.raises(ValueError, match="windows"):
        sample_fills(model, windows[:, :30], masks)
    with pytest.raises(ValueError, match="masks"):
        sample_fills(model, windows, masks[:2])
    bad = windows.copy()
    bad[0, 0, 5] = np.nan  # a known pixel
    with pytest.raises(ValueError, match="non-finite"):
        sample_fills(model, bad, masks)
    nan_in_hole = windows.copy()
    nan_in_hole[0, 12, 12] = np.nan  # unknown: ignored
    assert np.isfinite(sample_fills(model, nan_in_hole, masks, n_samples=4, seed=0).mean).all()
    with pytest.raises(ValueError, match="masks"):
        fill_diversity(model, windows, np.zeros_like(masks))


def test_context_model_takes_every_slice_and_returns_the_centre():
    torch.manual_seed(0)
    model = build_model(config_for("harmonic", width=8, context=1)).eval()
    rng = np.random.default_rng(0)
    windows = rng.random((3, 3, 32, 32)).astype(np.float32)
    masks = np.zeros((3, 3, 32, 32), bool)
    masks[:, 1, 7:25, 7:25] = True
    stats = sample_fills(model, windows, masks, n_samples=16, seed=0)
    assert stats.mean.shape == stats.std.shape == stats.filled.shape == (3, 32, 32)
    np.testing.assert_array_equal(stats.filled, masks[:, 1])
    np.testing.assert_array_equal(stats.mean[~masks[:, 1]], windows[:, 1][~masks[:, 1]])
    one = draw_fills(model, windows, masks, seed=0)
    assert one.shape == (3, 32, 32)
    with pytest.raises(ValueError, match=r"windows: expected shape \(N, 3, P, P\)"):
        sample_fills(model, windows[:, 1], masks[:, 1], n_samples=4)
    with pytest.raises(ValueError, match="masks"):
        sample_fills(model, windows, masks[:, :2], n_samples=4)


# --------------------------------------------------------------------------- texture tilt


def _laplacian_energy(images, filled):
    lap, inner = laplacian(images.astype(np.float64), filled)
    return float(np.mean(lap[inner] ** 2))


def test_tilt_texture_keeps_the_box_mean_and_moves_the_fine_frequencies():
    fills = torch.from_numpy(np.random.default_rng(0).random((50, 18, 18)).astype(np.float32))
    np.testing.assert_allclose(tilt_texture(fills, 0.0), fills, atol=1e-5)
    energy = {}
    for tilt in (-1.0, 0.0, 0.5):
        out = tilt_texture(fills, tilt)
        assert out.shape == fills.shape and out.dtype == torch.float32
        np.testing.assert_allclose(out.mean(dim=(1, 2)), fills.mean(dim=(1, 2)), atol=1e-5)
        energy[tilt] = _laplacian_energy(out.numpy(), np.ones((50, 18, 18), bool))
    assert energy[-1.0] < 0.2 * energy[0.0] and energy[0.5] > 2 * energy[0.0]


@pytest.mark.parametrize(
    ("fills", "tilt", "error", "match"),
    [
        (torch.zeros(2, 18, 17), 0.5, ValueError, "fills"),
        (np.zeros((2, 18, 18)), 0.5, ValueError, "fills"),
        (torch.zeros(2, 18, 18), 4.5, ValueError, "texture_tilt"),
        (torch.zeros(2, 18, 18), float("nan"), ValueError, "texture_tilt"),
        (torch.zeros(2, 18, 18), "0.5", TypeError, "texture_tilt"),
    ],
)
def test_tilt_texture_errors(fills, tilt, error, match):
    with pytest.raises(error, match=match):
        tilt_texture(fills, tilt)


def test_filled_depth_counts_steps_to_the_nearest_pixel_not_filled():
    filled = np.zeros((1, 7, 9), bool)
    filled[0, 1:6, 1:8] = True
    depth = filled_depth(filled)
    assert depth.dtype == np.int64
    assert depth[0, 3].tolist() == [0, 1, 2, 3, 3, 3, 2, 1, 0]
    assert filled_depth(np.ones((1, 3, 3), bool))[0, 1, 1] == 2  # the array's edge counts as not filled
    with pytest.raises(ValueError, match="filled"):
        filled_depth(np.ones((3, 3), bool))


def test_a_texture_tilt_reshapes_the_draws_but_not_the_mean_or_the_std():
    torch.manual_seed(0)
    model = build_model(config_for("harmonic")).eval()
    windows, masks = _windows(n=4)
    masks[:, 7:25, 7:25] = True  # the whole hole box: every depth
    plain = sample_fills(model, windows, masks, n_samples=64, seed=0, quantiles=(0.1, 0.9), with_draw=True)
    draws = {}
    for tilt in (-1.0, 0.5):
        tilted = sample_fills(model, windows, masks, n_samples=64, seed=0, quantiles=(0.1, 0.9), with_draw=True,
                              texture_tilt=tilt)  # fmt: skip
        np.testing.assert_allclose(tilted.mean, plain.mean, atol=1e-6)
        np.testing.assert_allclose(tilted.std[plain.filled], plain.std[plain.filled], rtol=1e-3)
        assert not np.allclose(tilted.quantiles, plain.quantiles)  # the shape of the spread may change
        draws[tilt] = tilted.draw
    filled = plain.filled
    energy = {tilt: _laplacian_energy(d, filled) for tilt, d in draws.items()}
    assert energy[-1.0] < _laplacian_energy(plain.draw, filled) < energy[0.5]
    # draw_fills applies it the same way.
    single = draw_fills(model, windows, masks, seed=3, texture_tilt=-1.0)
    assert _laplacian_energy(single, filled) < _laplacian_energy(draw_fills(model, windows, masks, seed=3), filled)


def test_a_tilt_per_depth_bin_changes_only_the_pixels_whose_bins_it_changes():
    torch.manual_seed(0)
    model = build_model(config_for("harmonic")).eval()
    windows, masks = _windows(n=3)
    masks[:, 7:25, 7:25] = True
    plain = draw_fills(model, windows, masks, seed=1)
    # Only the deepest bin (centre 8) is tilted: pixels up to depth 5.5 (the next centre) mix no part of it.
    deep_only = draw_fills(model, windows, masks, seed=1, texture_tilt=(0.0, 0.0, 0.0, -1.0))
    depth = np.zeros(masks.shape, np.int64)
    depth[:, 7:25, 7:25] = filled_depth(masks[:, 7:25, 7:25])
    shallow = (depth >= 1) & (depth <= 5)
    np.testing.assert_allclose(deep_only[shallow], plain[shallow], atol=1e-5)
    assert np.abs(deep_only - plain)[depth >= 7].mean() > 1e-3
    # The same tilt in every bin is the uniform one.
    np.testing.assert_allclose(
        draw_fills(model, windows, masks, seed=1, texture_tilt=(-0.5,) * 4),
        draw_fills(model, windows, masks, seed=1, texture_tilt=-0.5), atol=1e-5,
    )  # fmt: skip


def _context_model_and_windows():
    """A 2.5D model and windows whose hole box is guided (both neighbours known) above row 16, unguided below."""
    torch.manual_seed(0)
    model = build_model(config_for("harmonic", context=1)).eval()
    windows, masks = _windows(n=3)
    windows, masks = np.stack([windows] * 3, axis=1), np.stack([masks] * 3, axis=1)
    masks[:, 1, 7:25, 7:25] = True
    masks[:, [0, 2]] = False
    masks[:, [0, 2], 16:25, 7:25] = True
    return model, windows, masks


def test_a_guided_tilt_changes_only_the_guided_pixels():
    model, windows, masks = _context_model_and_windows()
    plain = draw_fills(model, windows, masks, seed=1, texture_tilt=-0.5)
    split = draw_fills(model, windows, masks, seed=1, texture_tilt=-0.5, guided_texture_tilt=0.5)
    np.testing.assert_allclose(split[:, 16:25], plain[:, 16:25], atol=1e-5)
    assert np.abs(split - plain)[:, 7:16].mean() > 1e-3
    # The mean stays the regressed one; the same tilt for both kinds is the one tilt.
    stats = sample_fills(model, windows, masks, n_samples=32, seed=0, texture_tilt=-0.5, guided_texture_tilt=0.5)
    np.testing.assert_allclose(stats.mean, sample_fills(model, windows, masks, n_samples=32, seed=0).mean, atol=1e-6)
    np.testing.assert_allclose(
        draw_fills(model, windows, masks, seed=1, texture_tilt=-0.5, guided_texture_tilt=-0.5), plain, atol=1e-5
    )


def test_a_flanked_tilt_changes_only_the_pixels_with_both_neighbours_known():
    model, windows, masks = _context_model_and_windows()
    masks[:, 0, 7:12, 7:25] = True  # one side known: rows 7-11; both: rows 12-15
    two = draw_fills(model, windows, masks, seed=1, texture_tilt=-0.5, guided_texture_tilt=0.5)
    three = draw_fills(model, windows, masks, seed=1, texture_tilt=-0.5, guided_texture_tilt=0.5, flanked_texture_tilt=1.0)
    np.testing.assert_allclose(three[:, 16:25], two[:, 16:25], atol=1e-5)
    np.testing.assert_allclose(three[:, 7:12], two[:, 7:12], atol=1e-5)
    assert np.abs(three - two)[:, 12:16].mean() > 1e-3
    # Without a flanked tilt, the guided one serves the flanked pixels; with it equal, nothing changes.
    same = draw_fills(model, windows, masks, seed=1, texture_tilt=-0.5, guided_texture_tilt=0.5, flanked_texture_tilt=0.5)
    np.testing.assert_allclose(same, two, atol=1e-5)
    stats = sample_fills(model, windows, masks, n_samples=32, seed=0, texture_tilt=-0.5, guided_texture_tilt=0.5,
                         flanked_texture_tilt=1.0)  # fmt: skip
    np.testing.assert_allclose(stats.mean, sample_fills(model, windows, masks, n_samples=32, seed=0).mean, atol=1e-6)


@pytest.mark.parametrize(
    ("preset", "tilt", "match"),
    [
        ("seed", -0.5, "regressed mean"),
        ("harmonic", (0.1, 0.2), "one per depth bin"),
        ("harmonic", (0.1, 0.2, 0.3, 9.0), "texture_tilt"),
    ],
)
def test_texture_tilt_errors(preset, tilt, match):
    model = build_model(config_for(preset))
    windows, masks = _windows(n=1)
    for call in (sample_fills, draw_fills):
        with pytest.raises(ValueError, match=match):
            call(model, windows, masks, seed=0, texture_tilt=tilt)
    # No tilt at all is always fine.
    draw_fills(model, windows, masks, seed=0, texture_tilt=0.0)


def test_guided_and_flanked_texture_tilt_errors():
    windows, masks = _windows(n=1)
    for name in ("guided_texture_tilt", "flanked_texture_tilt"):
        with pytest.raises(ValueError, match=f"{name}: only a model with 2.5D context"):
            draw_fills(build_model(config_for("harmonic")), windows, masks, seed=0, **{name: 0.5})
    model = build_model(config_for("harmonic", context=1))
    windows, masks = np.stack([windows] * 3, axis=1), np.stack([masks] * 3, axis=1)
    for call in (sample_fills, draw_fills):
        with pytest.raises(ValueError, match="guided_texture_tilt"):
            call(model, windows, masks, seed=0, texture_tilt=0.1, guided_texture_tilt=(0.1, 9.0, 0.0, 0.0))
        with pytest.raises(ValueError, match="needs guided_texture_tilt"):
            call(model, windows, masks, seed=0, texture_tilt=0.1, flanked_texture_tilt=0.2)
        with pytest.raises(ValueError, match="flanked_texture_tilt"):
            call(model, windows, masks, seed=0, texture_tilt=0.1, guided_texture_tilt=0.1, flanked_texture_tilt=(9.0,) * 4)
