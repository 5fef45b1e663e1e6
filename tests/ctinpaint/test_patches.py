"""Tests for ctinpaint.patches: hole masks, patch sampling, determinism, laziness, errors.

Regions follow the volume's chunks, so the batch sequence is deterministic for a
given chunking (tested), identical for a NumPy volume and a Dask array with the
same chunks (tested), and different, but equally valid, for another chunking.
Tests that need several regions on a small volume shrink the region size target
with ``monkeypatch``.
"""

from __future__ import annotations

import time

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ctinpaint.patches as patches
from ctinpaint.intensity import IntensityMapping
from ctinpaint.io import open_volume, save_volume
from ctinpaint.patches import PatchBatch, PatchSampler, hole_masks

DTYPES = ["uint8", "uint16", "int16", "float32"]


def _volume(shape=(6, 48, 56), dtype="uint16", seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(0.5, 0.2, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def _patch_at(volume, origin, p):
    axis, s, r, c = (int(v) for v in origin)
    return np.moveaxis(np.asarray(volume), axis, 0)[s, r:r + p, c:c + p]


def _assert_same(a: PatchBatch, b: PatchBatch):
    for field_a, field_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(field_a, field_b)


@pytest.fixture
def small_regions(monkeypatch):
    """Regions of a few thousand voxels, so small test volumes hold many of them."""
    monkeypatch.setattr(patches, "_TARGET_REGION_VOXELS", 16384)


# --------------------------------------------------------------------------- hole masks


@pytest.mark.parametrize(("p", "l"), [(32, 18), (32, 17), (9, 4), (5, 1)])
def test_square_holes_are_the_centred_box(p, l):
    m = hole_masks(3, patch=p, hole=l)
    assert m.shape == (3, p, p) and m.dtype == bool
    off = (p - l) // 2
    expected = np.zeros((p, p), bool)
    expected[off:off + l, off:off + l] = True
    for mask in m:
        np.testing.assert_array_equal(mask, expected)


def test_random_holes_lie_inside_the_box_are_never_empty_and_vary():
    p, l = 32, 18
    off = (p - l) // 2
    m = hole_masks(4000, patch=p, hole=l, shape="random", seed=0)
    assert m.shape == (4000, p, p) and m.dtype == bool
    inside = m[:, off:off + l, off:off + l]
    assert inside.sum() == m.sum()  # nothing outside the box
    counts = inside.sum(axis=(1, 2))
    assert counts.min() >= 1
    assert len(np.unique(m.reshape(len(m), -1), axis=0)) > 0.9 * len(m)
    fractions = counts / l**2
    assert fractions.min() < 0.02 and fractions.max() > 0.9  # single pixels to nearly the whole box
    # Not all rectangles: many masks differ from their own bounding box.
    rows, cols = inside.any(axis=2), inside.any(axis=1)
    bbox_area = rows.sum(axis=1) * cols.sum(axis=1)
    assert np.mean(bbox_area > counts) > 0.3


def test_random_holes_follow_the_seed():
    a = hole_masks(50, shape="random", seed=7)
    np.testing.assert_array_equal(a, hole_masks(50, shape="random", seed=7))
    assert not np.array_equal(a, hole_masks(50, shape="random", seed=8))
    rng = np.random.default_rng(7)
    first, second = hole_masks(50, shape="random", seed=rng), hole_masks(50, shape="random", seed=rng)
    assert not np.array_equal(first, second)  # a Generator is advanced, not restarted


def test_ten_thousand_random_holes_are_fast():
    hole_masks(100, shape="random", seed=0)
    start = time.perf_counter()
    hole_masks(10_000, shape="random", seed=0)
    assert time.perf_counter() - start < 1.0


def test_hole_mask_errors_name_the_argument():
    with pytest.raises(ValueError, match="n must be"):
        hole_masks(-1)
    with pytest.raises(ValueError, match="shape"):
        hole_masks(2, shape="circle")
    with pytest.raises(ValueError, match="hole"):
        hole_masks(2, patch=8, hole=8)
    with pytest.raises(TypeError, match="seed"):
        hole_masks(2, shape="random", seed="abc")
    assert hole_masks(0).shape == (0, 32, 32)


# --------------------------------------------------------------------------- batches


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_shapes_dtypes_and_values(dtype):
    vol = _volume(dtype=dtype)
    before = vol.copy()
    batch = next(iter(PatchSampler(vol, patch=16, hole=8, batch_size=10)))
    assert isinstance(batch, PatchBatch)
    assert batch.x.shape == (10, 1, 16, 16) and batch.x.dtype == np.float32
    assert batch.hole.shape == (10, 1, 16, 16) and batch.hole.dtype == np.float32
    assert batch.origin.shape == (10, 4) and batch.origin.dtype == np.int64
    for x, origin in zip(batch.x, batch.origin, strict=True):
        np.testing.assert_array_equal(x[0], _patch_at(vol, origin, 16).astype(np.float32))
    np.testing.assert_array_equal(vol, before)


@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 1, 2), 2, (-1, 0)])
def test_patches_equal_the_volume_at_their_origin(axes):
    vol = _volume(shape=(40, 36, 44))
    sampler = PatchSampler(da.from_array(vol, chunks=(16, 20, 24)), patch=12, hole=6, axes=axes, batch_size=32)
    batch = sampler.take(300)
    wanted = {a % 3 for a in ((axes,) if isinstance(axes, int) else axes)}
    assert set(batch.origin[:, 0].tolist()) == wanted
    for x, origin in zip(batch.x, batch.origin, strict=True):
        np.testing.assert_array_equal(x[0], _patch_at(vol, origin, 12))


def test_square_holes_in_batches_are_centred():
    batch = PatchSampler(_volume(), patch=16, hole=6, batch_size=5).take(5)
    expected = hole_masks(1, patch=16, hole=6)[0].astype(np.float32)
    for hole in batch.hole:
        np.testing.assert_array_equal(hole[0], expected)


def test_random_holes_in_batches_vary_inside_the_box():
    batch = PatchSampler(_volume(), patch=16, hole=8, hole_shape="random", batch_size=64).take(64)
    holes = batch.hole[:, 0]
    assert set(np.unique(holes).tolist()) == {0.0, 1.0}
    assert holes[:, 4:12, 4:12].sum() == holes.sum()
    assert holes.sum(axis=(1, 2)).min() >= 1
    assert len(np.unique(holes.reshape(64, -1), axis=0)) > 40


def test_tile_holes_are_the_box_extended_to_one_to_three_edges():
    batch = PatchSampler(_volume(), patch=16, hole=6, hole_shape="random", batch_size=64, tile_holes=1.0).take(64)
    holes = batch.hole[:, 0] > 0.5
    edges = set()
    for h in holes:
        rows, cols = np.nonzero(h.any(axis=1))[0], np.nonzero(h.any(axis=0))[0]
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        assert h[r0:r1, c0:c1].all() and h.sum() == (r1 - r0) * (c1 - c0)  # one rectangle
        assert h[5:11, 5:11].all()  # holding the whole box
        touched = (r0 == 0, r1 == 16, c0 == 0, c1 == 16)
        assert 1 <= sum(touched) <= 3
        # Sides that do not reach the edge stop at the box.
        assert r0 in (0, 5) and r1 in (11, 16) and c0 in (0, 5) and c1 in (11, 16)
        edges.add(touched)
    assert len(edges) > 8  # many combinations of sides
    some = PatchSampler(_volume(), patch=16, hole=6, batch_size=256, tile_holes=0.25, seed=1).take(256).hole[:, 0]
    share = np.mean(some.sum(axis=(1, 2)) > 36)
    assert 0.15 < share < 0.35
    # Off by default: the same patches and holes as a sampler without the option.
    plain = PatchSampler(_volume(), patch=16, hole=6, hole_shape="random", batch_size=32, seed=2).take(32)
    off = PatchSampler(_volume(), patch=16, hole=6, hole_shape="random", batch_size=32, seed=2, tile_holes=0.0).take(32)
    np.testing.assert_array_equal(plain.hole, off.hole)
    np.testing.assert_array_equal(plain.x, off.x)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="tile_holes"):
            PatchSampler(_volume(), patch=16, hole=6, tile_holes=bad)


def test_intensity_mapping_is_applied():
    vol = _volume(dtype="uint16")
    mapping = IntensityMapping(low=1000.0, high=60000.0, dtype="uint16")
    batch = PatchSampler(vol, patch=16, hole=8, intensity=mapping, batch_size=20).take(20)
    assert batch.x.dtype == np.float32
    assert batch.x.min() >= 0 and batch.x.max() <= 1
    for x, origin in zip(batch.x, batch.origin, strict=True):
        np.testing.assert_array_equal(x[0], mapping.to_network(_patch_at(vol, origin, 16)))


def test_take_returns_exactly_n_and_matches_the_iteration():
    sampler = PatchSampler(_volume(), patch=16, hole=8, batch_size=7, seed=3)
    taken = sampler.take(30)
    assert taken.x.shape == (30, 1, 16, 16) and taken.origin.shape == (30, 4)
    batches = iter(sampler)
    first = [next(batches) for _ in range(5)]
    joined = PatchBatch(*(np.concatenate(f)[:30] for f in zip(*first, strict=True)))
    _assert_same(taken, joined)
    assert sampler.take(0).x.shape == (0, 1, 16, 16)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_batches_different_seed_different():
    vol = _volume()
    a = PatchSampler(vol, patch=16, hole=8, batch_size=16, seed=5).take(200)
    b = PatchSampler(vol, patch=16, hole=8, batch_size=16, seed=5).take(200)
    c = PatchSampler(vol, patch=16, hole=8, batch_size=16, seed=6).take(200)
    _assert_same(a, b)
    assert not np.array_equal(a.origin, c.origin)


def test_numpy_and_dask_with_the_same_chunks_give_the_same_batches():
    vol = _volume()
    chunks = open_volume(vol).chunks
    a = PatchSampler(vol, patch=16, hole=8, seed=2).take(150)
    b = PatchSampler(da.from_array(vol, chunks=chunks), patch=16, hole=8, seed=2).take(150)
    _assert_same(a, b)


@pytest.mark.usefixtures("small_regions")
@pytest.mark.parametrize("chunks", [(3, 16, 16), (6, 20, 28), (2, 48, 10)])
def test_deterministic_for_each_chunking_with_many_regions(chunks):
    # Several regions processed by concurrent worker threads: the order the
    # threads finish in must not change the sequence.
    vol = _volume(shape=(24, 64, 64))
    runs = [
        PatchSampler(da.from_array(vol, chunks=chunks), patch=16, hole=8, axes=(0, 1, 2), seed=1).take(600)
        for _ in range(3)
    ]
    for run in runs[1:]:
        _assert_same(runs[0], run)
    for x, origin in zip(runs[0].x, runs[0].origin, strict=True):
        np.testing.assert_array_equal(x[0], _patch_at(vol, origin, 16))


def test_reading_from_the_store_equals_reading_through_dask(tmp_path):
    vol = _volume(shape=(20, 40, 40))
    path = save_volume(vol, tmp_path / "v.zarr", chunks=(10, 20, 20))
    direct = open_volume(path)
    through_dask = direct.map_blocks(lambda block: block, dtype=direct.dtype)
    assert patches._backing_array(direct) is not None
    assert patches._backing_array(through_dask) is None
    _assert_same(
        PatchSampler(direct, patch=16, hole=8, seed=4).take(100),
        PatchSampler(through_dask, patch=16, hole=8, seed=4).take(100),
    )


# --------------------------------------------------------------------------- masks


def _box_mask(shape, boxes):
    mask = np.zeros(shape, bool)
    for z, y, x, d, h, w in boxes:
        mask[z:z + d, y:y + h, x:x + w] = True
    return mask


_BOX = st.tuples(
    st.integers(0, 7), st.integers(0, 39), st.integers(0, 39), st.integers(1, 8), st.integers(1, 30), st.integers(1, 30)
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mask_boxes=st.lists(_BOX, max_size=6),
    exclude_boxes=st.lists(_BOX, max_size=3),
    noise=st.floats(0, 0.004),
    axes=st.sampled_from([(0,), (2,), (0, 1, 2)]),
    seed=st.integers(0, 2**16),
)
def test_no_patch_touches_a_masked_or_excluded_voxel(mask_boxes, exclude_boxes, noise, axes, seed):
    shape, p = (16, 40, 40), 12
    rng = np.random.default_rng(seed)
    mask = _box_mask(shape, mask_boxes) | (rng.random(shape) < noise)
    labels = mask.astype(np.uint16) * 3  # integer labels: nonzero is an artifact
    exclude = _box_mask(shape, exclude_boxes)
    sampler = PatchSampler(
        _volume(shape, dtype="uint8"), mask=labels, exclude=exclude, patch=p, hole=6, axes=axes, batch_size=8, seed=seed
    )
    bad = mask | exclude
    clean_exists = any(
        not np.moveaxis(bad, a, 0)[s, r:r + p, c:c + p].any()
        for a in axes
        for s in range(np.moveaxis(bad, a, 0).shape[0])
        for r in range(np.moveaxis(bad, a, 0).shape[1] - p + 1)
        for c in range(np.moveaxis(bad, a, 0).shape[2] - p + 1)
    )
    if not clean_exists:
        with pytest.raises(ValueError, match="mask: no artifact-free region"):
            sampler.take(8)
        return
    batch = sampler.take(24)
    for origin in batch.origin:
        assert not _patch_at(bad, origin, p).any()


def test_exclude_alone_keeps_patches_out_of_the_held_out_region():
    vol = _volume(shape=(4, 64, 64))
    exclude = np.zeros(vol.shape, bool)
    exclude[:, :, 20:] = True  # only columns 0..19 usable: patches of 16 start at c <= 4
    batch = PatchSampler(vol, patch=16, hole=8, exclude=exclude).take(200)
    assert batch.origin[:, 3].max() <= 4
    assert not exclude.any(axis=(0, 1))[:20].any()


@pytest.mark.usefixtures("small_regions")
def test_origins_reach_every_position_and_are_uniform():
    # Many regions, many epochs: the shifted tilings reach windows across every
    # chunk and region border, and the fair share makes origins uniform over
    # the usable windows whatever region they fall in.
    vol = _volume(shape=(8, 96, 96), dtype="uint8")
    mask = np.zeros(vol.shape, bool)
    mask[:, 40:56, 40:56] = True
    sampler = PatchSampler(da.from_array(vol, chunks=(4, 16, 16)), mask=mask, patch=16, hole=8, batch_size=64, seed=0)
    batch = sampler.take(3000)
    _, z, r, c = batch.origin.T
    assert set(z.tolist()) == set(range(8))
    assert set(r.tolist()) == set(range(81)) and set(c.tolist()) == set(range(81))
    for origin in batch.origin:
        assert not _patch_at(mask, origin, 16).any()
    # Columns 0..15 and 65..80 hold equally many usable windows (none touches
    # the mask), in different regions: about equal counts.
    left, right = np.sum(c < 16), np.sum(c > 64)
    assert abs(left - right) < 0.2 * (left + right)


@pytest.mark.usefixtures("small_regions")
def test_error_after_a_full_pass_without_a_clean_window():
    vol = _volume(shape=(8, 64, 64))
    mask = np.zeros(vol.shape, bool)
    mask[:, ::12, :] = True  # a masked row every 12 pixels: no clean 16×16 window anywhere
    with pytest.raises(ValueError, match=r"mask: no artifact-free region of 16×16"):
        next(iter(PatchSampler(da.from_array(vol, chunks=(4, 16, 16)), mask=mask, patch=16, hole=8)))
    full = np.ones(vol.shape, bool)
    with pytest.raises(ValueError, match="mask"):
        PatchSampler(vol, mask=full, patch=16, hole=8).take(1)


# --------------------------------------------------------------------------- NaN / Inf


def test_nan_policy_raise_names_the_volume_and_counts():
    vol = _volume(shape=(4, 40, 40), dtype="float32")
    vol[1, 5, 5] = np.nan
    vol[2, 30, 7] = np.inf
    vol[3, 0, 0] = -np.inf
    with pytest.raises(ValueError, match=r"volume: 3 NaN/Inf voxels"):
        PatchSampler(vol, patch=16, hole=8).take(1)


def test_nan_policy_mask_avoids_non_finite_voxels():
    vol = _volume(shape=(4, 40, 40), dtype="float32")
    vol[:, 20, 20] = np.nan
    vol[1, 3, 30] = np.inf
    before = vol.copy()
    batch = PatchSampler(vol, patch=16, hole=8, nan_policy="mask").take(300)
    assert np.isfinite(batch.x).all()
    bad = ~np.isfinite(vol)
    for origin in batch.origin:
        assert not _patch_at(bad, origin, 16).any()
    np.testing.assert_array_equal(vol, before)


# --------------------------------------------------------------------------- laziness


def test_one_batch_reads_only_a_few_blocks():
    reads = []

    def record(block, block_info=None):
        reads.append(block_info[0]["chunk-location"])
        return block

    # 256 × 1024 × 1024 voxels in 1024 blocks, none of which exist until read.
    vol = da.zeros((256, 1024, 1024), dtype=np.uint8, chunks=64).map_blocks(record, dtype=np.uint8)
    sampler = PatchSampler(vol, batch_size=64)
    batches = iter(sampler)
    next(batches)
    batches.close()
    assert 0 < len(reads) <= 64  # a pool of regions plus those read ahead, of 1024 blocks
    assert len(set(reads)) == len(reads)  # no block read twice


# --------------------------------------------------------------------------- region tiling


class _Shift:
    """Stands in for a Generator in ``_intervals``: always draws ``value``."""

    def __init__(self, value):
        self.value = value

    def integers(self, low, high):
        assert low <= self.value < high
        return self.value


@settings(max_examples=80, deadline=None)
@given(
    chunk=st.integers(1, 40),
    n_chunks=st.integers(1, 12),
    last=st.integers(1, 40),
    window=st.integers(2, 50),
    merge_extra=st.integers(0, 2),
    split=st.sampled_from([1, 2, 4]),
)
def test_region_intervals_tile_the_axis_and_hold_every_window_in_some_epoch(
    chunk, n_chunks, last, window, merge_extra, split
):
    chunks = (chunk,) * n_chunks + (min(last, chunk),)
    total = sum(chunks)
    # _region_layout never makes regions shorter than a window, nor cuts chunks below one.
    assume(total >= window and (split == 1 or chunk // split >= window))
    # The merge _region_layout picks for a slice dimension (or 1 after undoing it).
    merge = min(len(chunks), -(-window // chunk) + 1 + merge_extra) if split == 1 else 1
    shifts = merge if merge > 1 else max(1, chunk // split)
    held = np.zeros(total - window + 1, bool)
    for shift in range(shifts):
        groups = patches._intervals(chunks, merge, split, window, _Shift(shift))
        assert groups[0][0] == 0 and groups[-1][1] == total
        assert all(b == a2 for (_, b), (a2, _) in zip(groups, groups[1:]))
        assert all(b - a >= window for a, b in groups)
        if merge > 1:
            edges = set(np.cumsum([0, *chunks]).tolist())
            assert all(a in edges and b in edges for a, b in groups)  # chunk-aligned
        for a, b in groups:
            held[a:b - window + 1] = True
    assert held.all()


def test_region_shape_follows_the_chunks():
    cubes = PatchSampler(da.zeros((512, 512, 512), dtype=np.uint16, chunks=64))
    assert cubes.region_shape == (128, 128, 128)
    slabs = PatchSampler(da.zeros((64, 4096, 4096), dtype=np.uint16, chunks=(4, 4096, 4096)), axes=(0, 1, 2))
    z, y, x = slabs.region_shape
    assert z >= 32 and z % 4 == 0 and y >= 32 and x >= 32
    assert z * y * x <= patches._MAX_REGION_VOXELS


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"patch": 18, "hole": 18}, ValueError, "patch"),
        ({"patch": 16, "hole": 20}, ValueError, "hole"),
        ({"patch": 2.5}, TypeError, "patch"),
        ({"patch": 64}, ValueError, r"patch \(64\) is larger than the volume"),
        ({"patch": 16, "hole": 8, "axes": (1,)}, ValueError, r"patch \(16\) is larger .* axis 0"),
        ({"hole_shape": "circle"}, ValueError, "hole_shape"),
        ({"nan_policy": "ignore"}, ValueError, "nan_policy"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 1.5}, TypeError, "batch_size"),
        ({"axes": (0, 0)}, ValueError, "axes"),
        ({"axes": (3,)}, ValueError, "axes"),
        ({"axes": ()}, TypeError, "axes"),
        ({"axes": "0"}, TypeError, "axes"),
        ({"axes": (0.0,)}, TypeError, "axes"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "x"}, TypeError, "seed"),
        ({"intensity": object()}, TypeError, "intensity"),
        ({"mask": np.zeros((4, 40, 41), bool)}, ValueError, "mask"),
        ({"mask": np.zeros((4, 40, 40), np.float32)}, TypeError, "mask"),
        ({"exclude": np.zeros((4, 41, 40), bool)}, ValueError, "exclude"),
        ({"exclude": np.zeros((4, 40, 40), np.float64)}, TypeError, "exclude"),
        ({"context": -1}, ValueError, "context"),
        ({"context": 1.0}, TypeError, "context"),
        ({"context": 1, "hole_depth": -1}, ValueError, "hole_depth"),
        ({"context": 1, "hole_depth": True}, TypeError, "hole_depth"),
    ],
)
def test_errors_name_the_argument(kwargs, error, match):
    options = {"patch": 32, "hole": 18, **kwargs}
    with pytest.raises(error, match=match):
        PatchSampler(_volume(shape=(4, 40, 40)), **options)


def test_take_checks_n():
    sampler = PatchSampler(_volume(), patch=16, hole=8)
    with pytest.raises(ValueError, match="n must be"):
        sampler.take(-1)
    with pytest.raises(TypeError, match="n must be"):
        sampler.take(2.0)


# --------------------------------------------------------------------------- 2.5D context


def _check_context_batch(batch, vol, mask, k):
    """Every channel is the volume's slice at its offset where known; the rest is unknown and 0."""
    for x, hole, (axis, z, r, c) in zip(batch.x, batch.hole, batch.origin, strict=True):
        view, hidden = np.moveaxis(vol, axis, 0), np.moveaxis(mask, axis, 0)
        assert not hidden[z, r : r + 32, c : c + 32].any()  # the centre slice is clean
        for j, offset in enumerate(range(-k, k + 1)):
            s = z + offset
            if not 0 <= s < view.shape[0]:
                assert (hole[j] == 1).all() and (x[j] == 0).all()
                continue
            if offset == 0:  # the truth, hole included
                assert np.array_equal(x[j], view[s, r : r + 32, c : c + 32].astype(np.float32))
                continue
            known = hole[j] < 0.5
            assert np.array_equal(x[j][known], view[s, r : r + 32, c : c + 32][known].astype(np.float32))
            assert (x[j][~known] == 0).all()
            assert not (known & hidden[s, r : r + 32, c : c + 32]).any()  # neighbours' artifacts are unknown


@pytest.mark.parametrize("axes", [(0,), (0, 1, 2)])
def test_context_channels_are_the_neighbouring_slices(axes):
    vol = _volume(shape=(40, 44, 48), seed=3)
    mask = np.zeros(vol.shape, bool)
    mask[3, :, :20] = True
    mask[20:23, 30:35, 5:9] = True
    for source in (vol, da.from_array(vol, chunks=(7, 9, 11))):
        batch = PatchSampler(source, mask=mask, context=2, batch_size=32, seed=1, axes=axes).take(1500)
        assert batch.x.shape == batch.hole.shape == (1500, 5, 32, 32)
        assert set(np.unique(batch.hole)) == {0.0, 1.0}
        _check_context_batch(batch, vol, mask, 2)
        if axes == (0, 1, 2):
            assert set(batch.origin[:, 0]) == {0, 1, 2}


def test_context_holes_continue_into_neighbours_at_random_or_to_a_fixed_depth():
    vol = _volume(shape=(12, 48, 48), seed=4)
    box = (slice(None), slice(7, 25), slice(7, 25))
    square = np.zeros((32, 32), bool)
    square[7:25, 7:25] = True
    batch = PatchSampler(vol, context=2, batch_size=64, seed=0).take(4000)
    assert (batch.hole[:, 2] == square).all()
    inside = (batch.origin[:, 1] >= 2) & (batch.origin[:, 1] < 10)  # all four neighbours in the volume
    hidden = [(batch.hole[inside, j][box] == 1).all(axis=(1, 2)) for j in range(5)]
    # The hole reaches the adjacent slice on each side half of the time, the next one a quarter.
    for j, share in ((1, 0.5), (3, 0.5), (0, 0.25), (4, 0.25)):
        assert abs(hidden[j].mean() - share) < 0.04
    assert not (hidden[0] & ~hidden[1]).any() and not (hidden[4] & ~hidden[3]).any()  # it never skips a slice
    for depth in (0, 1, 2):
        fixed = PatchSampler(vol, context=2, batch_size=64, seed=0, hole_depth=depth).take(500)
        inner = (fixed.origin[:, 1] >= 2) & (fixed.origin[:, 1] < 10)
        for j, offset in enumerate(range(-2, 3)):
            assert (fixed.hole[inner, j] == (square if abs(offset) <= depth else 0)).all()


def test_random_holes_with_context_are_shared_by_the_continued_slices():
    vol = _volume(shape=(8, 48, 48), seed=5)
    batch = PatchSampler(vol, context=1, hole_shape="random", hole_depth=1, seed=2).take(200)
    inner = (batch.origin[:, 1] >= 1) & (batch.origin[:, 1] < 7)
    assert (batch.hole[inner, 0] == batch.hole[inner, 1]).all() and (batch.hole[inner, 2] == batch.hole[inner, 1]).all()
    assert len({batch.hole[i, 1].tobytes() for i in range(50)}) > 40


def test_context_adds_slices_around_the_same_patches():
    vol = _volume(shape=(6, 48, 48), seed=6)
    one = PatchSampler(vol, seed=3, hole_shape="random").take(300)
    three = PatchSampler(vol, seed=3, hole_shape="random", context=1).take(300)
    assert one.x.shape == (300, 1, 32, 32)
    np.testing.assert_array_equal(three.x[:, 1:2], one.x)
    np.testing.assert_array_equal(three.hole[:, 1:2], one.hole)
    np.testing.assert_array_equal(three.origin, one.origin)
