"""Shapes drawn on slices -> artifact mask (rectangles, polygons, ellipses)."""

from __future__ import annotations

import numpy as np

#: napari shape types this conversion understands.
SHAPE_TYPES = ("rectangle", "polygon", "ellipse")


def shapes_to_mask(shapes, shape_types, volume_shape, *, axis: int = 0, extend: int = 0) -> np.ndarray:
    """Rasterise 2D shapes drawn on slices of a volume into a boolean mask.

    A pixel is marked when its centre lies inside the shape or on its border
    (napari draws pixel ``(r, c)`` centred on the integer coordinates).

    Parameters
    ----------
    shapes : sequence of array (n_vertices, 3)
        Vertices in volume coordinates (a napari Shapes layer's ``data``); all
        vertices of a shape share one coordinate along ``axis``: its slice.
    shape_types : sequence of str
        ``"rectangle"``, ``"polygon"`` or ``"ellipse"`` for each shape.
    volume_shape : tuple of 3 int
    axis : int, default 0
        The axis the shapes were drawn across (the slider axis).
    extend : int, default 0
        Also mark this many slices before and after each shape's slice
        (clipped to the volume): one rectangle covers a through-slice artifact.

    Returns
    -------
    numpy.ndarray of bool, shape ``volume_shape``

    Raises
    ------
    ValueError
        A shape of another type, not 3D, with no or non-finite vertices, not
        on one slice along ``axis``, or on a slice outside the volume (the
        message names ``shapes[i]``); an ``extend``, ``axis`` or
        ``volume_shape`` that is not as described.

    Examples
    --------
    >>> box = np.array([[2, 1, 1], [2, 1, 3], [2, 2, 3], [2, 2, 1]])
    >>> shapes_to_mask([box], ["rectangle"], (4, 5, 5)).sum()
    6
    """
    from skimage.draw import ellipse, polygon

    if len(shapes) != len(shape_types):
        raise ValueError(f"shape_types: {len(shape_types)} types for {len(shapes)} shapes")
    if isinstance(extend, bool) or not isinstance(extend, (int, np.integer)) or extend < 0:
        raise ValueError(f"extend must be a non-negative integer, got {extend!r}")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -3 <= axis <= 2:
        raise ValueError(f"axis must be 0, 1 or 2 (or -3..-1), got {axis!r}")
    axis = int(axis) % 3
    if len(volume_shape) != 3 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                                     for s in volume_shape):
        raise ValueError(f"volume_shape must be 3 non-negative integers, got {tuple(volume_shape)!r}")
    volume_shape = tuple(int(s) for s in volume_shape)
    plane_axes = [i for i in range(3) if i != axis]
    plane_shape = tuple(volume_shape[i] for i in plane_axes)
    mask = np.zeros(volume_shape, bool)
    for i, (vertices, kind) in enumerate(zip(shapes, shape_types, strict=True)):
        try:
            vertices = np.asarray(vertices, dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"shapes[{i}]: vertices are not numbers ({exc})") from None
        if kind not in SHAPE_TYPES:
            raise ValueError(f"shapes[{i}]: {kind!r} shapes cannot be converted; use one of {SHAPE_TYPES}")
        if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
            raise ValueError(f"shapes[{i}]: expected vertices of shape (n, 3), n >= 1, in volume coordinates, got {vertices.shape}")
        if not np.isfinite(vertices).all():
            raise ValueError(f"shapes[{i}]: vertices must be finite numbers")
        along = vertices[:, axis]
        if not np.allclose(along, along[0]):
            raise ValueError(f"shapes[{i}]: not drawn on one slice along axis {axis} (coordinates {sorted(set(along))})")
        index = int(round(along[0]))
        if not 0 <= index < volume_shape[axis]:
            raise ValueError(f"shapes[{i}]: slice {index} is outside the volume (0..{volume_shape[axis] - 1} along axis {axis})")
        rows, cols = vertices[:, plane_axes[0]], vertices[:, plane_axes[1]]
        plane = np.zeros(plane_shape, bool)
        if kind == "ellipse":
            # napari stores an ellipse as the four corners of its bounding box.
            r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
            rr, cc = ellipse((r0 + r1) / 2, (c0 + c1) / 2, (r1 - r0) / 2 + 0.5, (c1 - c0) / 2 + 0.5, shape=plane_shape)
            plane[rr, cc] = True
        elif kind == "rectangle" and _axis_aligned(rows, cols):
            r0, r1 = max(0, int(np.ceil(rows.min()))), min(plane_shape[0] - 1, int(np.floor(rows.max())))
            c0, c1 = max(0, int(np.ceil(cols.min()))), min(plane_shape[1] - 1, int(np.floor(cols.max())))
            plane[r0 : r1 + 1, c0 : c1 + 1] = True
        else:
            rr, cc = polygon(rows, cols, shape=plane_shape)
            plane[rr, cc] = True
        lo, hi = max(0, index - extend), min(volume_shape[axis], index + extend + 1)
        sel = [slice(None)] * 3
        sel[axis] = slice(lo, hi)
        mask[tuple(sel)] |= np.expand_dims(plane, axis)
    return mask


def _axis_aligned(rows: np.ndarray, cols: np.ndarray) -> bool:
    return len(rows) == 4 and len(set(np.round(rows, 6))) <= 2 and len(set(np.round(cols, 6))) <= 2
