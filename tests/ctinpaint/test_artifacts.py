"""Tests for ctinpaint.artifacts: components per slice, boxes, windows and their order."""

from __future__ import annotations

import json
import time

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from ctinpaint.artifacts import Artifact, Window, find_artifacts, mask_from_boxes, suggest_mask, windows_for

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _plane(mask, artifact):
    return np.take(np.asarray(mask), artifact.slice, axis=artifact.axis)


def _summary(artifacts):
    return [(a.id, a.axis, a.slice, a.bbox, a.pixels, a.label, a.seed) for a in artifacts]


def _reference_count(mask, axis, connectivity):
    """Components per slice counted independently with plain per-slice labelling."""
    structure = ndimage.generate_binary_structure(2, connectivity)
    total = 0
    for k in range(mask.shape[axis]):
        plane = np.take(mask, k, axis=axis)
        values = [True] if plane.dtype == bool else [v for v in np.unique(plane) if v != 0]
        for v in values:
            total += ndimage.label(plane == v, structure=structure)[1]
    return total


# --------------------------------------------------------------------------- find_artifacts


def test_components_at_borders_and_corners():
    m = np.zeros((1, 10, 12), bool)
    m[0, 0, 0] = True  # top-left corner
    m[0, 0:2, 11] = True  # top-right corner
    m[0, 9, 0:3] = True  # bottom-left corner
    m[0, 8:10, 10:12] = True  # bottom-right corner
    m[0, 0, 5:7] = True  # top border
    m[0, 4:6, 0] = True  # left border
    m[0, 4, 11] = True  # right border
    m[0, 9, 6] = True  # bottom border
    arts = find_artifacts(m)
    assert [(a.bbox, a.pixels, a.seed) for a in arts] == [
        ((0, 0, 1, 1), 1, (0, 0)),
        ((0, 5, 1, 7), 2, (0, 5)),
        ((0, 11, 2, 12), 2, (0, 11)),
        ((4, 0, 6, 1), 2, (4, 0)),
        ((4, 11, 5, 12), 1, (4, 11)),
        ((8, 10, 10, 12), 4, (8, 10)),
        ((9, 0, 10, 3), 3, (9, 0)),
        ((9, 6, 10, 7), 1, (9, 6)),
    ]
    assert [a.id for a in arts] == list(range(1, 9))
    assert all(a.label == 1 and a.axis == 0 and a.slice == 0 for a in arts)


def test_touching_artifacts_merge_in_bool_masks_and_stay_apart_in_label_volumes():
    labels = np.zeros((2, 8, 8), np.uint16)
    labels[1, 2:5, 1:4] = 7
    labels[1, 2:5, 4:6] = 3  # shares an edge with label 7
    bool_arts = find_artifacts(labels > 0)
    assert _summary(bool_arts) == [(1, 0, 1, (2, 1, 5, 6), 15, 1, (2, 1))]
    label_arts = find_artifacts(labels)
    assert _summary(label_arts) == [
        (1, 0, 1, (2, 1, 5, 4), 9, 7, (2, 1)),
        (2, 0, 1, (2, 4, 5, 6), 6, 3, (2, 4)),
    ]
    # Same top-left corner (1, 1): the label breaks the tie, before the seed does.
    labels2 = np.zeros((1, 6, 6), np.int32)
    labels2[0, 1:3, 1:3] = 9
    labels2[0, 1:4, 3] = 4
    labels2[0, 3, 1:4] = 4
    assert [(a.bbox, a.label, a.seed) for a in find_artifacts(labels2)] == [
        ((1, 1, 4, 4), 4, (1, 3)),
        ((1, 1, 3, 3), 9, (1, 1)),
    ]


def test_equal_labels_in_separate_places_are_separate_artifacts():
    labels = np.zeros((1, 6, 9), np.int64)
    labels[0, 1, 1] = 5
    labels[0, 1, 6:8] = 5
    arts = find_artifacts(labels)
    assert [(a.bbox, a.label) for a in arts] == [((1, 1, 2, 2), 5), ((1, 6, 2, 8), 5)]


def test_diagonal_neighbours_depend_on_connectivity():
    m = np.zeros((1, 5, 5), bool)
    m[0, 1, 1] = m[0, 2, 2] = m[0, 3, 3] = True
    eight = find_artifacts(m, connectivity=2)
    four = find_artifacts(m, connectivity=1)
    assert [(a.bbox, a.pixels) for a in eight] == [((1, 1, 4, 4), 3)]
    assert [(a.bbox, a.pixels) for a in four] == [((1, 1, 2, 2), 1), ((2, 2, 3, 3), 1), ((3, 3, 4, 4), 1)]
    assert {a.connectivity for a in four} == {1}
    # Recovery uses the connectivity the artifact was found with.
    assert four[0].pixel_mask(m[0]).sum() == 1
    assert eight[0].pixel_mask(m[0]).sum() == 3


@pytest.mark.parametrize(
    ("axis", "expected"),
    [
        (0, [(2, (3, 4, 5, 7), 6)]),
        (1, [(3, (2, 4, 3, 7), 3), (4, (2, 4, 3, 7), 3)]),
        (2, [(4, (2, 3, 3, 5), 2), (5, (2, 3, 3, 5), 2), (6, (2, 3, 3, 5), 2)]),
        (-1, [(4, (2, 3, 3, 5), 2), (5, (2, 3, 3, 5), 2), (6, (2, 3, 3, 5), 2)]),
    ],
)
def test_axis_sets_slice_and_plane_coordinates(axis, expected):
    m = np.zeros((5, 6, 8), bool)
    m[2, 3:5, 4:7] = True
    arts = find_artifacts(m, axis=axis)
    assert [(a.slice, a.bbox, a.pixels) for a in arts] == expected
    assert {a.axis for a in arts} == {axis % 3}
    for a in arts:
        plane = _plane(m, a)
        r0, c0, r1, c1 = a.bbox
        np.testing.assert_array_equal(a.pixel_mask(plane), plane[r0:r1, c0:c1])


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("kind", ["bool", "labels"])
def test_chunked_equals_unchunked(axis, kind):
    rng = np.random.default_rng(axis)
    vol = rng.random((11, 17, 13))
    mask = vol > 0.7 if kind == "bool" else np.where(vol > 0.6, rng.integers(1, 4, vol.shape), 0).astype(np.uint8)
    before = mask.copy()
    whole = find_artifacts(mask, axis=axis)
    chunked = find_artifacts(da.from_array(mask, chunks=(3, 7, 5)), axis=axis)
    assert len(whole) > 20
    assert whole == chunked
    assert len(whole) == _reference_count(mask, axis, 2)
    np.testing.assert_array_equal(mask, before)


def test_slabs_are_split_and_merged_along_the_axis(monkeypatch):
    import ctinpaint.artifacts as artifacts

    rng = np.random.default_rng(5)
    mask = rng.random((9, 12, 10)) > 0.6
    reference = find_artifacts(mask)
    # One slice per labelling task: every slab boundary is exercised.
    monkeypatch.setattr(artifacts, "_SLAB_VOXELS", 1)
    assert find_artifacts(da.from_array(mask, chunks=(4, 5, 5))) == reference
    assert artifacts._slab_chunks((4, 4, 1), 3) == (2, 2, 2, 2, 1)
    assert artifacts._slab_chunks((2, 2, 2, 1), 5) == (4, 3)


def test_empty_masks_give_no_artifacts():
    assert find_artifacts(np.zeros((3, 8, 8), bool)) == []
    assert find_artifacts(da.zeros((6, 8, 8), dtype=np.int32, chunks=(2, 3, 5)), axis=1) == []


def test_two_dimensional_mask_is_one_slice():
    m = np.zeros((6, 7), bool)
    m[2:4, 3] = True
    (a,) = find_artifacts(m)
    assert (a.slice, a.bbox, a.pixels) == (0, (2, 3, 4, 4), 2)


def test_interleaved_components_with_the_same_corner_are_ordered_by_seed():
    # Two components whose bboxes both start at (0, 0): an L and the single corner pixel.
    m = np.zeros((1, 4, 4), bool)
    m[0, 0, 0] = True
    m[0, 0, 2] = m[0, 1, 2] = m[0, 2, 2] = m[0, 2, 1] = m[0, 2, 0] = True
    arts = find_artifacts(m, connectivity=1)
    assert [(a.bbox, a.seed, a.pixels) for a in arts] == [((0, 0, 1, 1), (0, 0), 1), ((0, 0, 3, 3), (0, 2), 5)]
    assert arts[1].pixel_mask(m[0]).sum() == 5 and not arts[1].pixel_mask(m[0])[0, 0]


@st.composite
def _masks(draw):
    shape = tuple(draw(st.integers(1, 9)) for _ in range(3))
    density = draw(st.floats(0.05, 0.95))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    hit = rng.random(shape) < density
    if draw(st.booleans()):
        return hit
    return np.where(hit, rng.integers(1, 4, shape), 0).astype(draw(st.sampled_from([np.uint8, np.int32, np.uint64])))


@FAST
@given(mask=_masks(), axis=st.integers(0, 2), connectivity=st.integers(1, 2))
def test_pixel_masks_partition_the_mask(mask, axis, connectivity):
    arts = find_artifacts(mask, axis=axis, connectivity=connectivity)
    assert len(arts) == _reference_count(mask, axis, connectivity)
    covered = np.zeros(mask.shape, np.int64)
    cover_planes = np.moveaxis(covered, axis, 0)
    structure = ndimage.generate_binary_structure(2, connectivity)
    for a in arts:
        plane = _plane(mask, a)
        pix = a.pixel_mask(plane)
        r0, c0, r1, c1 = a.bbox
        assert pix.shape == (r1 - r0, c1 - c0)
        assert pix.sum() == a.pixels
        assert pix[a.seed[0] - r0, a.seed[1] - c0]
        assert np.all(plane[r0:r1, c0:c1][pix] == a.label)
        assert ndimage.label(pix, structure=structure)[1] == 1
        cover_planes[a.slice, r0:r1, c0:c1] += pix
    np.testing.assert_array_equal(covered, mask != 0)
    assert sum(a.pixels for a in arts) == np.count_nonzero(mask)


def test_find_artifacts_errors():
    with pytest.raises(TypeError, match="mask"):
        find_artifacts(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(TypeError, match="mask"):
        find_artifacts([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="axis"):
        find_artifacts(np.zeros((2, 4, 4), bool), axis=3)
    with pytest.raises(TypeError, match="axis"):
        find_artifacts(np.zeros((2, 4, 4), bool), axis=1.0)
    with pytest.raises(ValueError, match="connectivity"):
        find_artifacts(np.zeros((2, 4, 4), bool), connectivity=3)
    with pytest.raises(TypeError, match="connectivity"):
        find_artifacts(np.zeros((2, 4, 4), bool), connectivity="8")


# --------------------------------------------------------------------------- Artifact


def test_to_dict_is_plain_json_and_round_trips():
    labels = np.zeros((1, 4, 4), np.uint64)
    labels[0, 1:3, 2] = 2**40
    (a,) = find_artifacts(labels)
    d = a.to_dict()
    assert all(type(v) is int for k, v in d.items() if k not in ("bbox", "seed"))
    assert all(type(v) is int for v in d["bbox"] + d["seed"])
    assert d == {"id": 1, "axis": 0, "slice": 0, "bbox": [1, 2, 3, 3], "pixels": 2, "label": 2**40,
                 "seed": [1, 2], "connectivity": 2}
    assert Artifact.from_dict(json.loads(json.dumps(d))) == a


def test_artifact_coerces_numpy_ints_and_checks_its_fields():
    a = Artifact(id=np.int64(1), axis=0, slice=np.uint16(2), bbox=np.array([0, 0, 1, 1]), pixels=1, label=1,
                 seed=(np.int32(0), 0))
    assert type(a.slice) is int and a.bbox == (0, 0, 1, 1) and type(a.bbox[0]) is int
    assert hash(a) == hash(Artifact(id=1, axis=0, slice=2, bbox=(0, 0, 1, 1), pixels=1, label=1, seed=(0, 0)))
    with pytest.raises(ValueError, match="bbox"):
        Artifact(id=1, axis=0, slice=0, bbox=(2, 0, 2, 1), pixels=1, label=1, seed=(2, 0))
    with pytest.raises(ValueError, match="seed"):
        Artifact(id=1, axis=0, slice=0, bbox=(0, 0, 1, 1), pixels=1, label=1, seed=(1, 0))
    with pytest.raises(ValueError, match="connectivity"):
        Artifact(id=1, axis=0, slice=0, bbox=(0, 0, 1, 1), pixels=1, label=1, seed=(0, 0), connectivity=4)


def test_pixel_mask_errors_name_mask_slice():
    m = np.zeros((2, 6, 6), np.uint8)
    m[1, 2:4, 2:4] = 3
    (a,) = find_artifacts(m)
    with pytest.raises(ValueError, match="mask_slice"):
        a.pixel_mask(m[0])  # wrong slice: no label at the seed
    with pytest.raises(ValueError, match="mask_slice"):
        a.pixel_mask(m)  # 3D
    with pytest.raises(ValueError, match="mask_slice"):
        a.pixel_mask(m[1, :3, :3])  # does not contain the bbox
    with pytest.raises(ValueError, match="mask_slice"):
        a.pixel_mask(m[1] > 0)  # boolean slice for a label-volume artifact
    with pytest.raises(TypeError, match="mask_slice"):
        a.pixel_mask(m[1].astype(np.float32))


# --------------------------------------------------------------------------- mask_from_boxes


def _numpy_boxes(boxes, shape, axis):
    out = np.zeros(shape, bool)
    moved = np.moveaxis(out, axis, 0)
    for s, r0, c0, r1, c1 in boxes:
        moved[s, r0:r1, c0:c1] = True
    return out


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_mask_from_boxes_matches_numpy(axis):
    shape = (9, 14, 11)
    rng = np.random.default_rng(axis)
    plane = [s for i, s in enumerate(shape) if i != axis]
    boxes = []
    for _ in range(12):
        r0, c0 = rng.integers(0, plane[0] - 1), rng.integers(0, plane[1] - 1)
        boxes.append((int(rng.integers(0, shape[axis])), int(r0), int(c0),
                      int(rng.integers(r0 + 1, plane[0] + 1)), int(rng.integers(c0 + 1, plane[1] + 1))))
    boxes.append((shape[axis] - 1, 0, 0, plane[0], plane[1]))  # a whole last slice
    m = mask_from_boxes(boxes, shape, axis=axis, chunks=(4, 5, 3))
    assert isinstance(m, da.Array) and m.dtype == bool and m.chunks[0] == (4, 4, 1)
    np.testing.assert_array_equal(m.compute(), _numpy_boxes(boxes, shape, axis))
    np.testing.assert_array_equal(mask_from_boxes(np.array(boxes), shape, axis=axis).compute(), m.compute())


def test_mask_from_boxes_round_trips_through_find_artifacts():
    boxes = [(0, 1, 1, 3, 4), (2, 0, 5, 6, 8), (2, 7, 0, 8, 2)]
    arts = find_artifacts(mask_from_boxes(boxes, (3, 8, 8), chunks=(2, 3, 3)))
    assert [(a.slice, *a.bbox) for a in arts] == boxes
    assert mask_from_boxes([], (2, 3, 4)).compute().sum() == 0


def test_mask_from_boxes_is_lazy():
    t = time.perf_counter()
    m = mask_from_boxes([(1000, 10, 20, 30, 40), (5, 0, 0, 2048, 2048)], (2048, 2048, 2048))
    region = m[1000, 8:12, 18:22].compute()
    assert time.perf_counter() - t < 5
    assert m.shape == (2048, 2048, 2048) and m.nbytes == 2048**3
    np.testing.assert_array_equal(region, np.pad(np.ones((2, 2), bool), ((2, 0), (2, 0))))


@pytest.mark.parametrize(
    ("boxes", "error", "pattern"),
    [
        ([(0, 0, 0, 2, 2), (0, 0, 0, 2.5, 2)], TypeError, r"boxes\[1\] r1"),
        ([(0, 0, 0, 2, 2), (0, 0, 0, 2)], ValueError, r"boxes\[1\]"),
        ([(3, 0, 0, 2, 2)], ValueError, r"boxes\[0\]: slice 3"),
        ([(-1, 0, 0, 2, 2)], ValueError, r"boxes\[0\]"),
        ([(0, 0, 0, 9, 2)], ValueError, r"boxes\[0\].*outside"),
        ([(0, -1, 0, 2, 2)], ValueError, r"boxes\[0\].*outside"),
        ([(0, 0, 0, 1, 1), (0, 0, 0, 0, 1), (0, 2, 2, 3, 3)], ValueError, r"boxes\[1\] is empty"),
        ([(0, 3, 0, 2, 2)], ValueError, r"boxes\[0\] is empty"),
        ([5], TypeError, r"boxes\[0\]"),
        (7, TypeError, "boxes"),
    ],
)
def test_mask_from_boxes_errors(boxes, error, pattern):
    with pytest.raises(error, match=pattern):
        mask_from_boxes(boxes, (3, 8, 8))


def test_mask_from_boxes_argument_errors():
    with pytest.raises(ValueError, match="shape"):
        mask_from_boxes([], (8, 8))
    with pytest.raises(ValueError, match="shape"):
        mask_from_boxes([], (0, 8, 8))
    with pytest.raises(TypeError, match="shape"):
        mask_from_boxes([], 8)
    with pytest.raises(ValueError, match="axis"):
        mask_from_boxes([], (2, 8, 8), axis=5)
    with pytest.raises(ValueError, match="chunks"):
        mask_from_boxes([], (2, 8, 8), chunks=(1, 2))
    # The boxes are checked against the plane of the chosen axis.
    with pytest.raises(ValueError, match=r"boxes\[0\]"):
        mask_from_boxes([(0, 0, 0, 8, 3)], (2, 8, 3), axis=2)
    assert mask_from_boxes([(0, 0, 0, 2, 8)], (2, 8, 3), axis=2).compute().sum() == 16


# --------------------------------------------------------------------------- windows_for


def _hole_box(w):
    """Absolute (r0, c0, r1, c1) of a window's hole box."""
    r, c = w.origin[0] + w.hole_origin[0], w.origin[1] + w.hole_origin[1]
    return r, c, r + w.hole, c + w.hole


def _check_windows(windows, artifact, plane):
    """The invariants every window list must satisfy."""
    h, w = plane.shape
    p = windows[0].patch
    count = np.zeros(plane.shape, np.int64)
    for i, win in enumerate(windows):
        assert isinstance(win, Window) and win.order == i
        assert (win.artifact, win.axis, win.slice) == (artifact.id, artifact.axis, artifact.slice)
        r, c = win.origin
        assert 0 <= r <= h - p and 0 <= c <= w - p
        assert win.fill.shape == win.unknown.shape == (p, p) and win.fill.dtype == win.unknown.dtype == bool
        assert not win.fill.flags.writeable and not win.unknown.flags.writeable
        hr, hc = win.hole_origin
        assert 0 <= hr <= p - win.hole and 0 <= hc <= p - win.hole
        inside = np.zeros((p, p), bool)
        inside[hr : hr + win.hole, hc : hc + win.hole] = True
        assert win.fill.any() and not (win.fill & ~inside).any()
        np.testing.assert_array_equal(win.unknown, plane[win.window] != 0)
        count[win.window] += win.fill
    expected = np.zeros(plane.shape, np.int64)
    r0, c0, r1, c1 = artifact.bbox
    expected[r0:r1, c0:c1] = artifact.pixel_mask(plane)
    np.testing.assert_array_equal(count, expected)  # every pixel exactly once


def _check_greedy(windows, plane):
    """Replay the order: each pick has the most known pixels, ties to the raster-first hole box."""
    filled = np.zeros(plane.shape, bool)
    remaining = list(windows)
    for win in windows:
        def known(u):
            return int((~u.unknown | filled[u.window]).sum())

        best = max(known(u) for u in remaining)
        candidates = sorted((_hole_box(u)[:2] for u in remaining if known(u) == best))
        assert known(win) == best and _hole_box(win)[:2] == candidates[0]
        filled[win.window] |= win.fill
        remaining.remove(win)


def test_small_artifact_gets_one_centred_window():
    m = np.zeros((1, 80, 90), bool)
    m[0, 40:45, 30:33] = True
    m[0, 42, 33] = True
    (a,) = find_artifacts(m)
    before = m.copy()
    (w,) = windows_for(a, m[0], patch=32, hole=18)
    _check_windows([w], a, m[0])
    assert w.hole_origin == (7, 7) and w.hole == 18 and w.patch == 32
    # Window centre on the bbox centre (within the half pixel parity allows).
    r0, c0, r1, c1 = a.bbox
    assert abs((w.origin[0] + 16) - (r0 + r1) / 2) <= 0.5
    assert abs((w.origin[1] + 16) - (c0 + c1) / 2) <= 0.5
    np.testing.assert_array_equal(w.fill, m[0][w.window])
    np.testing.assert_array_equal(m, before)
    # An artifact exactly l x l still fits one window, its bbox filling the hole box.
    m2 = np.zeros((64, 64), bool)
    m2[20:38, 10:28] = True
    (a2,) = find_artifacts(m2)
    (w2,) = windows_for(a2, m2)
    assert _hole_box(w2) == (20, 10, 38, 28) and w2.hole_origin == (7, 7)


@pytest.mark.parametrize(
    ("rows", "cols", "hole_origin"),
    [
        ((0, 3), (30, 34), (0, 7)),  # top border
        ((61, 64), (30, 34), (14, 7)),  # bottom border
        ((30, 34), (0, 2), (7, 0)),  # left border
        ((30, 34), (68, 70), (7, 14)),  # right border
        ((0, 2), (0, 1), (0, 0)),  # the four corners
        ((0, 1), (66, 70), (0, 14)),
        ((60, 64), (0, 5), (14, 0)),
        ((63, 64), (69, 70), (14, 14)),
        ((10, 14), (30, 34), (3, 7)),  # near a border: the window shifts, the hole box does not
        ((5, 12), (60, 68), (0, 14)),
    ],
)
def test_window_at_a_border_stays_inside_and_covers_the_artifact(rows, cols, hole_origin):
    m = np.zeros((64, 70), bool)
    m[rows[0] : rows[1], cols[0] : cols[1]] = True
    (a,) = find_artifacts(m)
    (w,) = windows_for(a, m, patch=32, hole=18)
    _check_windows([w], a, m)
    assert w.hole_origin == hole_origin
    hr0, hc0, hr1, hc1 = _hole_box(w)
    assert hr0 <= rows[0] and rows[1] <= hr1 and hc0 <= cols[0] and cols[1] <= hc1
    np.testing.assert_array_equal(w.fill, m[w.window])


def test_large_artifact_is_tiled_with_every_pixel_filled_once():
    m = np.zeros((100, 110), bool)
    m[20:60, 25:75] = True  # 40 x 50
    (a,) = find_artifacts(m)
    windows = windows_for(a, m, patch=32, hole=18)
    _check_windows(windows, a, m)
    _check_greedy(windows, m)
    assert len(windows) == 9  # ceil(40 / 18) * ceil(50 / 18)
    boxes = sorted(_hole_box(w) for w in windows)
    assert sorted({b[0] for b in boxes}) == [20, 38, 42] and sorted({b[1] for b in boxes}) == [25, 43, 57]
    assert all(20 <= b[0] and b[2] <= 60 and 25 <= b[1] and b[3] <= 75 for b in boxes)  # none sticks out
    assert all(w.hole_origin == (7, 7) for w in windows)


def test_tiles_without_artifact_pixels_are_dropped():
    m = np.zeros((80, 80), bool)
    m[10:50, 10] = True  # an L: the inner tiles hold nothing
    m[49, 10:50] = True
    (a,) = find_artifacts(m)
    windows = windows_for(a, m, patch=24, hole=10)
    _check_windows(windows, a, m)
    assert len(windows) == 7  # 4 x 4 grid, only the left column and bottom row filled


def test_greedy_order_starts_where_most_context_is_known():
    m = np.zeros((90, 90), np.uint8)
    m[10:50, 10:50] = 1
    m[0:8, 0:8] = 2  # another artifact eats the top-left tile's context
    m[60:62, 45:50] = 3
    (a,) = [x for x in find_artifacts(m) if x.label == 1]
    windows = windows_for(a, m, patch=24, hole=14)
    _check_windows(windows, a, m)
    _check_greedy(windows, m)
    counts = [int((~w.unknown).sum()) for w in windows]
    assert counts[0] == max(counts)
    # The raster-first tile is the top-left one; it is not first here.
    assert _hole_box(windows[0])[:2] != min(_hole_box(w)[:2] for w in windows)
    assert _hole_box(windows[0])[:2] == (10, 36)


def test_unknown_includes_other_artifacts_and_fill_only_its_own():
    labels = np.zeros((1, 64, 64), np.int32)
    labels[0, 30:34, 30:34] = 1
    labels[0, 30:34, 34:36] = 2  # touching, another label
    labels[0, 40:42, 25:27] = 5  # nearby, separate
    arts = find_artifacts(labels)
    a1 = next(a for a in arts if a.label == 1)
    (w,) = windows_for(a1, labels[0])
    _check_windows([w], a1, labels[0])
    plane = labels[0][w.window]
    np.testing.assert_array_equal(w.fill, plane == 1)
    assert w.unknown[plane == 2].all() and w.unknown[plane == 5].all()
    assert (w.unknown & ~w.fill).sum() == 8 + 4


@st.composite
def _blob_slices(draw):
    h, w = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    height, width = 70, 76
    r, c = draw(st.integers(0, height - h)), draw(st.integers(0, width - w))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    plane = np.zeros((height, width), bool)
    plane[r : r + h, c : c + w] = rng.random((h, w)) < draw(st.floats(0.4, 1.0))
    plane[r + h // 2, c : c + w] = True  # keeps one blob spanning the box
    return plane


@FAST
@given(
    plane=_blob_slices(),
    sizes=st.sampled_from([(32, 18), (16, 8), (12, 7), (20, 5), (9, 8)]),
    connectivity=st.integers(1, 2),
)
def test_windows_fill_every_pixel_exactly_once(plane, sizes, connectivity):
    patch, hole = sizes
    arts = find_artifacts(plane, connectivity=connectivity)
    for a in arts:
        windows = windows_for(a, plane, patch=patch, hole=hole)
        _check_windows(windows, a, plane)
        _check_greedy(windows, plane)


def test_windows_for_errors_name_the_argument():
    m = np.zeros((2, 40, 40), np.uint8)
    m[1, 10:14, 10:14] = 1
    m[0, 10:12, 10:12] = 1  # same seed, other slice, different component
    a = next(x for x in find_artifacts(m) if x.slice == 1)
    with pytest.raises(ValueError, match=r"patch 48 is larger than the volume slice \(40, 40\)"):
        windows_for(a, m[1], patch=48, hole=18)
    with pytest.raises(ValueError, match="patch .* larger than the volume slice"):
        windows_for(a, m[1, :, :30], patch=32, hole=18)
    with pytest.raises(ValueError, match="mask_slice"):
        windows_for(a, m)  # 3D
    with pytest.raises(ValueError, match="mask_slice"):
        windows_for(a, np.zeros((40, 40), bool))  # seed not in the slice
    with pytest.raises(ValueError, match="mask_slice"):
        windows_for(a, m[0])  # seed matches, the component does not
    with pytest.raises(TypeError, match="mask_slice"):
        windows_for(a, m[1].astype(float))
    with pytest.raises(ValueError, match="hole"):
        windows_for(a, m[1], patch=16, hole=16)
    with pytest.raises(TypeError, match="patch"):
        windows_for(a, m[1], patch=32.0)
    with pytest.raises(ValueError, match="hole"):
        windows_for(a, m[1], hole=0)
    with pytest.raises(TypeError, match="artifact"):
        windows_for(a.to_dict(), m[1])


# --------------------------------------------------------------------------- suggest_mask


@pytest.fixture(scope="module")
def corrupted_phantom():
    from ctinpaint.phantom import add_artifacts, make_phantom

    return add_artifacts(make_phantom((8, 128, 128), seed=1), n=16, seed=1)


def test_suggest_mask_finds_most_phantom_artifacts_and_little_else(corrupted_phantom):
    c = corrupted_phantom
    before = c.volume.copy()
    guess = suggest_mask(c.volume)
    assert isinstance(guess, da.Array) and guess.dtype == bool and guess.shape == c.volume.shape
    guess = guess.compute()
    hit = int((guess & c.mask).sum())
    assert hit / c.mask.sum() > 0.7  # recall
    assert hit / guess.sum() > 0.9  # precision
    np.testing.assert_array_equal(c.volume, before)


def test_suggest_mask_does_not_depend_on_chunks_or_axis_order(corrupted_phantom):
    vol = corrupted_phantom.volume
    whole = suggest_mask(vol).compute()
    chunked = suggest_mask(da.from_array(vol, chunks=(3, 50, 70))).compute()
    np.testing.assert_array_equal(chunked, whole)
    across = suggest_mask(np.ascontiguousarray(np.moveaxis(vol, 0, 2)), axis=2).compute()
    np.testing.assert_array_equal(np.moveaxis(across, 2, 0), whole)


def test_suggest_mask_on_simple_cases():
    rng = np.random.default_rng(0)
    vol = rng.normal(1000, 10, (2, 64, 64)).astype(np.uint16)
    assert not suggest_mask(vol).compute().any()  # noise alone is not an artifact
    vol[0, 10:16, 20:26] = 3000  # a bright spot, smaller than the median window
    vol[1, 40:44, 40:45] = np.iinfo(np.uint16).max  # saturation
    vol[1, 2, 2] = 0  # one pixel: below min_pixels
    guess = suggest_mask(vol).compute()
    expected = np.zeros(vol.shape, bool)
    expected[0, 10:16, 20:26] = True
    expected[1, 40:44, 40:45] = True
    np.testing.assert_array_equal(guess, expected)
    assert suggest_mask(vol, min_pixels=1).compute()[1, 2, 2]

    flat = np.full((1, 40, 40), 0.5, np.float32)
    flat[0, 5:10, 5:10] = np.nan
    np.testing.assert_array_equal(suggest_mask(flat).compute()[0, 4:11, 4:11], np.pad(np.ones((5, 5), bool), 1))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"threshold": -1.0}, ValueError, "threshold"),
        ({"size": 2}, ValueError, "size"),
        ({"min_pixels": True}, TypeError, "min_pixels"),
        ({"axis": 3}, ValueError, "axis"),
    ],
)
def test_suggest_mask_errors_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        suggest_mask(np.zeros((2, 32, 32), np.uint8), **kwargs)
    with pytest.raises(TypeError, match="volume"):
        suggest_mask(np.zeros((2, 8, 8), np.int64))
