"""Tests for napari_ctinpaint._marking: shapes drawn on slices -> boolean mask (no viewer needed)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari", reason="the napari plugin needs the napari extra: pip install -e '.[napari]'")

from napari_ctinpaint._marking import shapes_to_mask  # noqa: E402


def rectangle(z, r0, c0, r1, c1):
    return np.array([[z, r0, c0], [z, r0, c1], [z, r1, c1], [z, r1, c0]], float)


def test_rectangle_marks_the_pixels_whose_centres_it_covers():
    mask = shapes_to_mask([rectangle(2, 5, 10, 15, 20)], ["rectangle"], (4, 30, 40))
    expected = np.zeros((4, 30, 40), bool)
    expected[2, 5:16, 10:21] = True
    np.testing.assert_array_equal(mask, expected)
    # Fractional corners (drawn with the mouse) round inwards.
    mask = shapes_to_mask([rectangle(1, 4.6, 9.5, 8.2, 12.0)], ["rectangle"], (4, 30, 40))
    expected = np.zeros((4, 30, 40), bool)
    expected[1, 5:9, 10:13] = True
    np.testing.assert_array_equal(mask, expected)


def test_slice_range_and_clipping():
    mask = shapes_to_mask([rectangle(0, -3, -3, 2, 2)], ["rectangle"], (5, 10, 10), extend=2)
    expected = np.zeros((5, 10, 10), bool)
    expected[0:3, 0:3, 0:3] = True
    np.testing.assert_array_equal(mask, expected)


def test_polygon_and_ellipse():
    triangle = np.array([[1, 0, 0], [1, 0, 4], [1, 4, 0]], float)
    mask = shapes_to_mask([triangle], ["polygon"], (3, 6, 6))
    rows, cols = np.nonzero(mask[1])
    assert set(zip(rows.tolist(), cols.tolist())) == {(r, c) for r in range(5) for c in range(5) if r + c <= 4}
    assert not mask[[0, 2]].any()
    ellipse = shapes_to_mask([rectangle(0, 0, 0, 4, 4)], ["ellipse"], (1, 6, 6))[0]
    assert ellipse[2, :5].all() and ellipse[:5, 2].all() and not ellipse[0, 0] and not ellipse[4, 4]


def test_other_axis():
    shape = np.array([[3, 2, 7], [3, 2, 9], [5, 2, 9], [5, 2, 7]], float)  # drawn across axis 1, slice 2
    mask = shapes_to_mask([shape], ["rectangle"], (8, 4, 12), axis=1)
    expected = np.zeros((8, 4, 12), bool)
    expected[3:6, 2, 7:10] = True
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize(
    "shapes, types, kwargs, match",
    [
        ([rectangle(0, 0, 0, 2, 2)], ["line"], {}, r"shapes\[0\]: 'line'"),
        ([np.array([[0, 0, 0], [1, 0, 3], [1, 3, 3]])], ["polygon"], {}, r"shapes\[0\]: not drawn on one slice"),
        ([rectangle(9, 0, 0, 2, 2)], ["rectangle"], {}, r"shapes\[0\]: slice 9 is outside"),
        ([np.zeros((4, 2))], ["rectangle"], {}, r"shapes\[0\]: expected vertices"),
        ([rectangle(0, 0, 0, 2, 2)], [], {}, "shape_types"),
        ([rectangle(0, 0, 0, 2, 2)], ["rectangle"], {"extend": -1}, "extend"),
    ],
)
def test_errors_name_the_shape(shapes, types, kwargs, match):
    with pytest.raises(ValueError, match=match):
        shapes_to_mask(shapes, types, (4, 8, 8), **kwargs)
