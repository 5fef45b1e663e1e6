"""Tests for ctinpaint.phantom: the synthetic CT volume and injected artifacts."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from scipy import ndimage

from ctinpaint.phantom import Corrupted, _add_noise, add_artifacts, make_phantom

#: Median-filtered grey-level bands of the three phases on the 8-bit scale, as
#: read off the histograms of the real slices (matrix ~86, grains ~106,
#: Si-rich ~171); the median removes noise so each pixel falls in its phase.
BANDS = {"matrix": (0, 97), "grain": (97, 140), "silicon": (140, 256)}
PLANE8 = np.ones((3, 3), bool)
CUBE26 = np.ones((3, 3, 3), bool)


def phase_fractions(image: np.ndarray) -> dict[str, float]:
    smooth = ndimage.median_filter(image, size=5)
    return {name: float(((smooth >= lo) & (smooth < hi)).mean()) for name, (lo, hi) in BANDS.items()}


@pytest.fixture(scope="module")
def slices() -> np.ndarray:
    """Six independent 384 x 384 phantom slices (seeds 0..5), uint8."""
    return np.stack([make_phantom((1, 384, 384), seed=s, dtype="uint8")[0] for s in range(6)])


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return make_phantom((12, 160, 160), seed=5, dtype="uint16")


# --------------------------------------------------------------------------- make_phantom


def test_same_seed_same_volume_and_seeds_differ():
    a = make_phantom((4, 64, 64), seed=3, dtype="uint8")
    b = make_phantom((4, 64, 64), seed=3, dtype="uint8")
    c = make_phantom((4, 64, 64), seed=4, dtype="uint8")
    np.testing.assert_array_equal(a, b)
    # Different structure, not just different noise.
    assert np.abs(a.astype(float) - c).mean() > 10


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_shape_dtype_and_grey_levels_per_dtype(dtype):
    vol = make_phantom((3, 48, 80), seed=1, dtype=dtype)
    ref = make_phantom((3, 48, 80), seed=1, dtype="uint8").astype(np.float64)
    assert vol.shape == (3, 48, 80)
    assert vol.dtype == np.dtype(dtype)
    # The same 8-bit levels in every dtype, scaled by 257 / 128 / (1/255).
    scale = {"uint8": 1.0, "uint16": 257.0, "int16": 128.0, "float32": 1 / 255}[dtype]
    np.testing.assert_allclose(vol / scale, ref, atol=0.51)
    if dtype == "float32":
        assert 0.0 <= vol.min() and vol.max() <= 1.0


@pytest.mark.parametrize("shape", [(1, 16, 16), (1, 40, 300), (2, 300, 20)])
def test_single_slices_and_thin_shapes(shape):
    vol = make_phantom(shape, seed=0, dtype="uint8")
    assert vol.shape == shape
    assert vol.std() > 1


def test_accepts_a_list_and_numpy_integers():
    vol = make_phantom([np.int64(2), 32, np.int32(32)], seed=np.int64(2), dtype=np.uint8)
    np.testing.assert_array_equal(vol, make_phantom((2, 32, 32), seed=2, dtype="uint8"))


def test_three_phases_in_real_like_fractions_and_levels(slices):
    fractions = [phase_fractions(image) for image in slices]
    for f in fractions:
        # Wide per-slice ranges (the real slices: matrix 0.42-0.56, grain
        # 0.16-0.33, Si-rich 0.25-0.30); a missing or runaway phase fails.
        assert 0.30 < f["matrix"] < 0.70, f
        assert 0.10 < f["grain"] < 0.38, f
        assert 0.12 < f["silicon"] < 0.48, f
    mean = {k: np.mean([f[k] for f in fractions]) for k in BANDS}
    assert 0.40 < mean["matrix"] < 0.60 and 0.15 < mean["grain"] < 0.30 and 0.20 < mean["silicon"] < 0.38, mean
    smooth = ndimage.median_filter(slices[0], size=5)
    image = slices[0].astype(float)
    assert np.median(image[smooth < 97]) == pytest.approx(86, abs=4)
    assert np.median(image[(smooth >= 97) & (smooth < 140)]) == pytest.approx(106, abs=5)
    assert np.median(image[smooth >= 140]) == pytest.approx(171, abs=5)
    # A few saturated inclusions, not a saturated phase.
    saturated = (slices == 255).mean()
    assert 0 < saturated < 0.003


def test_fractions_close_to_the_real_slices(slices, sic_dir):
    real = [phase_fractions(iio.imread(sic_dir / f"slice{n}.png")) for n in (24, 202, 431)]
    ours = [phase_fractions(image) for image in slices]
    for name in BANDS:
        real_mean = np.mean([f[name] for f in real])
        our_mean = np.mean([f[name] for f in ours])
        assert abs(our_mean - real_mean) < 0.08, (name, our_mean, real_mean)


def test_noise_is_present_and_ct_like(slices):
    image = slices[1].astype(float)
    smooth = ndimage.median_filter(slices[1], size=5)
    flat = ndimage.binary_erosion(smooth < 97, iterations=6)
    residual = (image - ndimage.uniform_filter(image, 15))[flat]
    # The real matrix has a noise standard deviation of about 4 grey levels.
    assert 2.5 < residual.std() < 6.0
    high_pass = image - ndimage.gaussian_filter(image, 1.0)
    assert (high_pass[flat] ** 2).mean() > 1.0


def test_noise_grows_with_signal():
    # The noise model on its own, on flat matrix-level and Si-level volumes.
    dark = np.full((4, 64, 64), 86.0, np.float32)
    bright = np.full((4, 64, 64), 171.0, np.float32)
    _add_noise(np.random.default_rng(0), dark)
    _add_noise(np.random.default_rng(0), bright)
    assert 3.0 < (dark - 86.0).std() < 5.0
    assert (bright - 171.0).std() > 1.15 * (dark - 86.0).std()


def test_neighbouring_slices_are_correlated_distant_ones_are_not():
    vol = make_phantom((40, 128, 128), seed=0, dtype="float32")

    def corr(a, b):
        return np.corrcoef(a.ravel(), b.ravel())[0, 1]

    near = corr(vol[10], vol[11])
    far = corr(vol[0], vol[39])
    assert near > 0.9
    assert far < 0.5


def test_rings_switch_on_and_off():
    with_rings = make_phantom((6, 96, 96), seed=2, dtype="float32")
    without = make_phantom((6, 96, 96), seed=2, dtype="float32", rings=False)
    diff = with_rings - without
    # Faint: a few percent of the signal at most.
    assert 0 < np.abs(diff).max() < 0.05 * without.max()
    assert np.abs(diff).mean() > 1e-3
    # Rings do not move between slices: the same pixels are brighter
    # (or darker) in every slice.
    strong = np.abs(diff).min(axis=0) > 0.002
    assert strong.sum() > 500
    signs = np.sign(diff[:, strong])
    assert (signs == signs[0]).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": (64, 256)}, ValueError, "shape"),
        ({"shape": (1, 2, 3, 4)}, ValueError, "shape"),
        ({"shape": (0, 32, 32)}, ValueError, "shape"),
        ({"shape": (2, 15, 64)}, ValueError, "shape"),
        ({"shape": (2, 64, 8)}, ValueError, "shape"),
        ({"shape": (2.0, 32, 32)}, TypeError, "shape"),
        ({"shape": (True, 32, 32)}, TypeError, "shape"),
        ({"shape": "abc"}, TypeError, "shape"),
        ({"shape": 64}, TypeError, "shape"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"dtype": "float64"}, TypeError, "dtype"),
        ({"dtype": "not-a-type"}, TypeError, "dtype"),
        ({"rings": "yes"}, TypeError, "rings"),
    ],
)
def test_make_phantom_rejects_bad_arguments(kwargs, error, match):
    args = {"shape": (2, 32, 32)} | kwargs
    with pytest.raises(error, match=match):
        make_phantom(**args)


# --------------------------------------------------------------------------- add_artifacts


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_outside_the_mask_is_the_input_bit_for_bit(dtype):
    volume = make_phantom((6, 96, 96), seed=1, dtype=dtype)
    before = volume.copy()
    out = add_artifacts(volume, n=15, seed=4)
    assert isinstance(out, Corrupted)
    assert out.volume.dtype == volume.dtype and out.truth.dtype == volume.dtype
    assert out.mask.dtype == bool
    assert out.volume.shape == out.mask.shape == out.truth.shape == volume.shape
    bits = np.dtype(f"u{volume.dtype.itemsize}")
    np.testing.assert_array_equal(out.volume.view(bits)[~out.mask], volume.view(bits)[~out.mask])
    np.testing.assert_array_equal(out.truth.view(bits), before.view(bits))
    np.testing.assert_array_equal(volume.view(bits), before.view(bits))
    assert out.truth is not volume and out.volume is not volume
    # Inside the mask the data really is damaged.
    assert out.mask.any()
    assert (out.volume[out.mask] != out.truth[out.mask]).mean() > 0.8


def test_n_zero_gives_an_empty_mask(clean):
    out = add_artifacts(clean, n=0)
    assert not out.mask.any()
    np.testing.assert_array_equal(out.volume, clean)


def test_deterministic_per_seed(clean):
    a = add_artifacts(clean, n=10, seed=1)
    b = add_artifacts(clean, n=10, seed=1)
    c = add_artifacts(clean, n=10, seed=2)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.volume, b.volume)
    assert not np.array_equal(a.mask, c.mask)


def test_each_artifact_is_its_own_component(clean):
    out = add_artifacts(clean, n=40, seed=3)
    # Even with diagonal neighbours across slices, n separate objects.
    _, count = ndimage.label(out.mask, structure=CUBE26)
    assert count == 40
    per_slice = sum(ndimage.label(plane, structure=PLANE8)[1] for plane in out.mask)
    assert per_slice >= 40


def _components(mask):
    """(height, width, pixels, max inscribed distance) of each per-slice component."""
    found = []
    for plane in mask:
        labels, _ = ndimage.label(plane, structure=PLANE8)
        for sl in ndimage.find_objects(labels):
            piece = labels[sl] == labels[sl][labels[sl] > 0][0]
            found.append((piece.shape[0], piece.shape[1], int(piece.sum()), ndimage.distance_transform_edt(np.pad(piece, 1)).max()))
    return np.array(found, float)


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        # Full rectangles, 4..18 on each side.
        ("box", lambda h, w, px, _: (h >= 4) & (h <= 18) & (w >= 4) & (w <= 18) & (px == h * w)),
        # Irregular, within 18 x 18; not all of them fill their box.
        ("blob", lambda h, w, px, _: (h <= 18) & (w <= 18)),
        # Thin (no pixel more than ~2 from the edge) and up to 40 long.
        ("streak", lambda h, w, px, depth: (np.maximum(h, w) <= 40) & (np.maximum(h, w) >= 7) & (depth <= 2.5)),
        # Beyond the 18 x 18 hole: 20..40 across.
        ("large", lambda h, w, px, _: (np.maximum(h, w) >= 20) & (np.maximum(h, w) <= 40)),
    ],
)
def test_each_kind_has_sizes_in_its_range(clean, kind, check):
    out = add_artifacts(clean, n=30, seed=7, kinds=(kind,))
    comps = _components(out.mask)
    assert len(comps) >= 30
    assert check(*comps.T).all(), comps[~check(*comps.T)]
    if kind == "blob":
        assert (comps[:, 2] < comps[:, 0] * comps[:, 1]).mean() > 0.8
    if kind == "streak":
        assert comps[:, 3].min() >= 1 and (np.maximum(comps[:, 0], comps[:, 1]) > 25).any()


def test_some_artifacts_run_through_several_slices(clean):
    out = add_artifacts(clean, n=40, seed=0, kinds=("box", "blob"))
    labels, count = ndimage.label(out.mask, structure=CUBE26)
    depths, changing = [], 0
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        piece = labels[sl] == i
        depths.append(piece.shape[0])
        # Consecutive slices, each holding part of the artifact.
        assert piece.any(axis=(1, 2)).all()
        if piece.shape[0] > 1 and not (piece == piece[:1]).all():
            changing += 1
    depths = np.array(depths)
    assert depths.max() <= 5
    assert 0.1 < (depths > 1).mean() < 0.45
    assert changing >= 1


def test_the_four_defect_kinds_occur():
    volume = make_phantom((8, 128, 128), seed=0, dtype="uint8")
    out = add_artifacts(volume, n=40, seed=1)
    labels, count = ndimage.label(out.mask, structure=CUBE26)
    seen = set()
    for i in range(1, count + 1):
        bad = out.volume[labels == i].astype(int)
        good = out.truth[labels == i].astype(int)
        shift = bad - good
        if (bad == 0).all():
            seen.add("zero")
        elif (bad == 255).all():
            seen.add("saturate")
        elif (shift == shift[0]).mean() > 0.8:
            seen.add("offset")  # constant, except where clipped at 0 or 255
        else:
            seen.add("noise")
    assert seen == {"zero", "saturate", "offset", "noise"}


@pytest.mark.parametrize(
    ("volume", "kwargs", "error", "match"),
    [
        ([[[1]]], {}, TypeError, "volume"),
        (np.zeros((32, 32), np.uint8), {}, ValueError, "volume"),
        (np.zeros((2, 32, 32), np.float64), {}, TypeError, "volume"),
        (np.zeros((2, 32, 32), np.uint8), {"n": -1}, ValueError, r"^n must"),
        (np.zeros((2, 32, 32), np.uint8), {"n": 2.0}, TypeError, r"^n must"),
        (np.zeros((1, 16, 16), np.uint8), {"n": 50}, ValueError, r"n=50"),
        (np.zeros((2, 32, 32), np.uint8), {"seed": -3}, ValueError, "seed"),
        (np.zeros((2, 32, 32), np.uint8), {"kinds": ()}, ValueError, "kinds"),
        (np.zeros((2, 32, 32), np.uint8), {"kinds": ("box", "hole")}, ValueError, "kinds"),
        (np.zeros((2, 32, 32), np.uint8), {"kinds": "box"}, TypeError, "kinds"),
        (np.zeros((2, 32, 32), np.uint8), {"kinds": 3}, TypeError, "kinds"),
    ],
)
def test_add_artifacts_rejects_bad_arguments(volume, kwargs, error, match):
    with pytest.raises(error, match=match):
        add_artifacts(volume, **kwargs)


def test_a_constant_volume_is_still_visibly_damaged():
    volume = np.full((3, 64, 64), 100, np.uint8)
    out = add_artifacts(volume, n=20, seed=0)
    assert (out.volume[out.mask] != 100).mean() > 0.8
