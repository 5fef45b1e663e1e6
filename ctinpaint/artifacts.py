"""Artifact masks -> per-slice artifacts -> inpainting windows.

The network inpaints 2D windows of ``P x P`` pixels whose central ``l x l`` box
holds the hole. A 3D artifact mask is therefore cut into slices along one axis,
each slice's connected components become :class:`Artifact` records, and each
artifact becomes one or more :class:`Window` records saying which pixels a
window must fill and which pixels in it are unknown.

Coordinates in a slice plane are ``(row, col)`` of the 2D array obtained by
removing ``axis`` from the volume, the remaining two axes kept in their
original order: ``np.take(volume, index, axis=axis)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np
from scipy import ndimage

from ._checks import check_axis, check_float, check_int, check_patch_hole
from .io import open_mask, open_volume

__all__ = ["Artifact", "Window", "find_artifacts", "mask_from_boxes", "suggest_mask", "windows_for"]

#: In-plane neighbourhoods for connectivity 1 (4-neighbour) and 2 (8-neighbour).
_PLANE_STRUCTURES = {
    1: ndimage.generate_binary_structure(2, 1),
    2: ndimage.generate_binary_structure(2, 2),
}
#: About this many voxels per labelling task. The label image is 4 or 8 bytes
#: a voxel, so a task holds a few tens of MiB however the input was chunked.
_SLAB_VOXELS = 2**22
#: Default chunks of ``mask_from_boxes``: 4 MiB blocks, so reading a few slices
#: computes little, and regular, so the Zarr writer stores them as they are.
_BOX_CHUNKS = (64, 256, 256)


# --------------------------------------------------------------------------- artifacts


@dataclass(frozen=True)
class Artifact:
    """One connected component of the mask in one slice.

    Attributes
    ----------
    id : int
        1-based; ``find_artifacts`` numbers artifacts in order of
        ``(slice, r0, c0, label)``.
    axis : int
        Axis of the volume the slices are taken along (0, 1 or 2).
    slice : int
        Index of the slice along ``axis``.
    bbox : tuple of int
        ``(r0, c0, r1, c1)``, half-open, in slice-plane coordinates.
    pixels : int
        Number of pixels in the component.
    label : int
        The label value for integer label volumes; 1 for boolean masks.
    seed : tuple of int
        ``(r, c)`` of the component's first pixel in raster order; with
        ``label`` and ``connectivity`` it identifies the exact pixel set.
    connectivity : int, default 2
        Neighbourhood the component was found with (1 = 4-neighbour,
        2 = 8-neighbour); recovering the pixels needs the same one.
    """

    id: int
    axis: int
    slice: int
    bbox: tuple[int, int, int, int]
    pixels: int
    label: int
    seed: tuple[int, int]
    connectivity: int = 2

    def __post_init__(self):
        # Plain ints (not NumPy scalars) so records hash, compare and serialise simply.
        for name in ("id", "axis", "slice", "pixels", "label", "connectivity"):
            object.__setattr__(self, name, check_int(getattr(self, name), name=name))
        bbox = tuple(check_int(v, name="bbox") for v in self.bbox)
        seed = tuple(check_int(v, name="seed") for v in self.seed)
        if len(bbox) != 4 or bbox[0] < 0 or bbox[1] < 0 or bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
            raise ValueError(f"bbox must be (r0, c0, r1, c1) with 0 <= r0 < r1 and 0 <= c0 < c1, got {bbox}")
        if len(seed) != 2 or not (bbox[0] <= seed[0] < bbox[2] and bbox[1] <= seed[1] < bbox[3]):
            raise ValueError(f"seed {seed} is not a pixel inside bbox {bbox}")
        if self.connectivity not in _PLANE_STRUCTURES:
            raise ValueError(f"connectivity must be 1 or 2, got {self.connectivity}")
        object.__setattr__(self, "bbox", bbox)
        object.__setattr__(self, "seed", seed)

    @property
    def shape(self) -> tuple[int, int]:
        """``(r1 - r0, c1 - c0)``: the bounding box's height and width."""
        r0, c0, r1, c1 = self.bbox
        return r1 - r0, c1 - c0

    def pixel_mask(self, mask_slice) -> np.ndarray:
        """This artifact's pixels, cropped to its bounding box.

        Parameters
        ----------
        mask_slice : array-like, shape (H, W), bool or integer
            The 2D mask slice at ``self.slice`` along ``self.axis``, with the
            same kind of values the artifact was found in (labels for a label
            volume).

        Returns
        -------
        numpy.ndarray, shape (r1 - r0, c1 - c0), bool
            True on the pixels of this component only; other components of
            the same label inside the box are excluded.

        Raises
        ------
        TypeError
            ``mask_slice`` is not bool or integer.
        ValueError
            ``mask_slice`` is not 2D, does not contain the bounding box, or its
            value at ``seed`` is not this artifact's label (the wrong slice).

        Examples
        --------
        >>> import numpy as np
        >>> s = np.zeros((4, 5), bool); s[1, 1:3] = True; s[3, 4] = True
        >>> a = Artifact(id=1, axis=0, slice=0, bbox=(1, 1, 2, 3), pixels=2, label=1, seed=(1, 1))
        >>> a.pixel_mask(s)
        array([[ True,  True]])
        """
        arr = _as_plane(mask_slice)
        r0, c0, r1, c1 = self.bbox
        if r1 > arr.shape[0] or c1 > arr.shape[1]:
            raise ValueError(
                f"mask_slice of shape {arr.shape} does not contain the bbox {self.bbox} of artifact {self.id}"
            )
        if arr.dtype == bool and self.label != 1:
            raise ValueError(
                f"mask_slice is boolean but artifact {self.id} has label {self.label}; pass the label slice it was found in"
            )
        crop = arr[r0:r1, c0:c1] == self.label
        sr, sc = self.seed[0] - r0, self.seed[1] - c0
        if not crop[sr, sc]:
            raise ValueError(
                f"mask_slice does not hold label {self.label} at the seed {self.seed} of artifact {self.id}; "
                f"pass the slice {self.slice} along axis {self.axis} of the mask it was found in"
            )
        # The component lies inside its bbox, so labelling the crop cannot split it.
        components, _ = ndimage.label(crop, structure=_PLANE_STRUCTURES[self.connectivity])
        return components == components[sr, sc]

    def to_dict(self) -> dict:
        """JSON-serialisable fields (plain ints and lists).

        Examples
        --------
        >>> Artifact(id=1, axis=0, slice=3, bbox=(0, 0, 2, 2), pixels=4, label=1, seed=(0, 0)).to_dict()["bbox"]
        [0, 0, 2, 2]
        """
        return {
            "id": self.id,
            "axis": self.axis,
            "slice": self.slice,
            "bbox": list(self.bbox),
            "pixels": self.pixels,
            "label": self.label,
            "seed": list(self.seed),
            "connectivity": self.connectivity,
        }

    @classmethod
    def from_dict(cls, data) -> Artifact:
        """Rebuild an artifact from :meth:`to_dict` output (e.g. a JSON report)."""
        data = dict(data)
        data["bbox"] = tuple(data["bbox"])
        data["seed"] = tuple(data["seed"])
        return cls(**data)


def find_artifacts(mask, *, axis: int = 0, connectivity: int = 2) -> list[Artifact]:
    """Connected components of a mask, slice by slice along ``axis``.

    The mask is cut into slabs of whole slices along ``axis`` (about 4 M voxels
    each, aligned with the input's chunks); each slab is labelled in its own
    Dask task and only the per-component records come back, so the whole mask
    is never in memory.

    Parameters
    ----------
    mask : path, numpy.ndarray or dask.array.Array
        Anything :func:`ctinpaint.io.open_mask` accepts: shape ``(Z, Y, X)``
        (a 2D mask is one slice), dtype bool (True = artifact) or integer
        labels (nonzero = artifact). Components of different labels are
        distinct even where they touch.
    axis : int, default 0
        Axis the slices are taken along.
    connectivity : {1, 2}, default 2
        In-plane neighbourhood: 1 = 4-neighbour, 2 = 8-neighbour. Pixels in
        different slices are never connected.

    Returns
    -------
    list of Artifact
        Sorted by ``(slice, r0, c0, label)`` (then by seed, which only matters
        for interleaved components of one label sharing a top-left corner);
        ids are ``1 .. n`` in that order. Empty for an empty mask.

    Raises
    ------
    TypeError
        ``mask`` is a float mask or not an array or path; ``axis`` or
        ``connectivity`` is not an integer.
    ValueError
        ``axis`` outside ``-3 .. 2``; ``connectivity`` not 1 or 2; an
        unreadable ``mask`` path.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((2, 8, 8), bool)
    >>> m[1, 2:4, 3:6] = True
    >>> m[1, 6, 0] = True
    >>> [(a.id, a.slice, a.bbox, a.pixels) for a in find_artifacts(m)]
    [(1, 1, (2, 3, 4, 6), 6), (2, 1, (6, 0, 7, 1), 1)]
    """
    arr = open_mask(mask)
    axis = check_axis(axis, ndim=3)
    connectivity = check_int(connectivity, name="connectivity", minimum=1, maximum=2)
    if arr.size == 0:
        return []

    plane_voxels = math.prod(s for i, s in enumerate(arr.shape) if i != axis)
    depth_cap = max(1, _SLAB_VOXELS // plane_voxels)
    slab_chunks = {i: -1 for i in range(3)}
    slab_chunks[axis] = _slab_chunks(arr.chunks[axis], depth_cap)
    slabs = arr.rechunk(slab_chunks)

    blocks = slabs.to_delayed().ravel()
    offsets = np.cumsum((0, *slabs.chunks[axis][:-1]))
    label_slab = dask.delayed(_label_slab, pure=True)
    tasks = [
        label_slab(block, axis=axis, offset=int(off), connectivity=connectivity)
        for block, off in zip(blocks, offsets, strict=True)
    ]
    parts = dask.compute(*tasks)

    records = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if records.shape[0] == 0:
        return []
    # Columns: slice, r0, c0, r1, c1, pixels, seed_r, seed_c (see _label_slab).
    order = np.lexsort((records[:, 7], records[:, 6], labels, records[:, 2], records[:, 1], records[:, 0]))
    return [
        Artifact(
            id=i + 1,
            axis=axis,
            slice=int(rec[0]),
            bbox=(int(rec[1]), int(rec[2]), int(rec[3]), int(rec[4])),
            pixels=int(rec[5]),
            label=int(lab),
            seed=(int(rec[6]), int(rec[7])),
            connectivity=connectivity,
        )
        for i, (rec, lab) in enumerate(zip(records[order].tolist(), labels[order].tolist(), strict=True))
    ]


def _slab_chunks(chunks: Sequence[int], cap: int) -> tuple[int, ...]:
    """Chunk sizes along the slicing axis: at most ``cap`` deep, aligned with ``chunks``.

    Small input chunks are merged and large ones split at whole-chunk
    boundaries, so each slab reads each stored chunk at most once.
    """
    out: list[int] = []
    pending = 0
    for size in chunks:
        if size > cap:
            if pending:
                out.append(pending)
                pending = 0
            parts = -(-size // cap)
            base, extra = divmod(size, parts)
            out.extend(base + (1 if k < extra else 0) for k in range(parts))
        elif pending + size > cap:
            out.append(pending)
            pending = size
        else:
            pending += size
    if pending:
        out.append(pending)
    return tuple(out)


def _label_slab(block: np.ndarray, *, axis: int, offset: int, connectivity: int):
    """Per-slice components of one slab of whole slices.

    Returns ``(records, labels)``: an int64 array ``(n, 8)`` with columns
    ``slice, r0, c0, r1, c1, pixels, seed_r, seed_c`` and the ``n`` label values.
    """
    slab = np.moveaxis(np.asarray(block), axis, 0)
    if slab.dtype == bool:
        # Zero planes above and below the centre: one call labels every slice
        # independently.
        structure = np.zeros((3, 3, 3), bool)
        structure[1] = _PLANE_STRUCTURES[connectivity]
        components, _ = ndimage.label(slab, structure=structure)
    else:
        components = _label_values(slab, connectivity)

    flat = components.ravel()
    where = np.flatnonzero(flat)
    if where.size == 0:
        return np.zeros((0, 8), np.int64), np.zeros(0, np.int64 if slab.dtype == bool else slab.dtype)
    # Group pixels by component; the stable sort keeps raster order within each
    # group, so a group's first pixel is the component's seed and its top row.
    ids = flat[where]
    order = np.argsort(ids, kind="stable")
    where = where[order]
    ids = ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    counts = np.diff(np.r_[starts, ids.size])
    k, r, c = np.unravel_index(where, components.shape)
    sk, sr, sc = k[starts], r[starts], c[starts]
    records = np.column_stack(
        (
            sk + offset,
            sr,
            np.minimum.reduceat(c, starts),
            np.maximum.reduceat(r, starts) + 1,
            np.maximum.reduceat(c, starts) + 1,
            counts,
            sr,
            sc,
        )
    ).astype(np.int64)
    labels = np.ones(len(starts), np.int64) if slab.dtype == bool else slab[sk, sr, sc]
    return records, labels


def _label_values(slab: np.ndarray, connectivity: int) -> np.ndarray:
    """Components of equal nonzero values, slice by slice, numbered across the slab."""
    from skimage.measure import label

    out = np.zeros(slab.shape, np.int64)
    count = 0
    for k in range(slab.shape[0]):
        # skimage joins only neighbours of equal value: touching labels stay apart.
        plane = label(slab[k], background=0, connectivity=connectivity)
        n = int(plane.max())
        if n:
            np.add(plane, count, out=out[k], where=plane > 0)
            count += n
    return out


# --------------------------------------------------------------------------- boxes


def mask_from_boxes(boxes, shape, *, axis: int = 0, chunks=None) -> da.Array:
    """A lazy boolean mask that is True inside 2D boxes drawn on slices.

    Each block is filled from the boxes that intersect it when it is computed,
    so building the mask of a 2048^3 volume costs nothing until it is read.

    Parameters
    ----------
    boxes : sequence of (slice, r0, c0, r1, c1)
        Integer boxes, half-open in slice-plane coordinates (rows and columns
        of the volume with ``axis`` removed, remaining axes in order), each on
        the slice ``slice`` along ``axis``. May be empty; an ``(n, 5)`` integer
        array works too.
    shape : tuple of 3 int
        Shape of the volume ``(Z, Y, X)``.
    axis : int, default 0
        Axis the boxes' slices are taken along.
    chunks : tuple or "auto", optional
        Dask chunks of the result; default blocks of up to ``(64, 256, 256)``.

    Returns
    -------
    dask.array.Array
        Shape ``shape``, dtype bool. Nothing is computed yet.

    Raises
    ------
    TypeError
        A box is not 5 integers; ``shape`` or ``axis`` is not integer.
    ValueError
        A box is empty or outside the volume (the message names
        ``boxes[i]``); ``shape`` is not 3 positive sizes; bad ``chunks``.

    Examples
    --------
    >>> m = mask_from_boxes([(1, 2, 3, 4, 6)], (3, 8, 8))
    >>> m.dtype, int(m.sum().compute()), bool(m[1, 3, 5].compute())
    (dtype('bool'), 6, True)
    """
    shape = _check_shape(shape)
    axis = check_axis(axis, ndim=3)
    plane = [i for i in range(3) if i != axis]
    box_array = _check_boxes(boxes, shape, axis)
    if chunks is None:
        chunks = tuple(min(c, s) for c, s in zip(_BOX_CHUNKS, shape, strict=True))
    try:
        norm_chunks = da.core.normalize_chunks(chunks, shape, dtype=bool)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"chunks: {chunks!r} is not a chunking of shape {shape}: {exc}") from exc

    lo = np.empty((len(box_array), 3), np.int64)
    hi = np.empty((len(box_array), 3), np.int64)
    lo[:, axis] = box_array[:, 0]
    hi[:, axis] = box_array[:, 0] + 1
    lo[:, plane] = box_array[:, 1:3]
    hi[:, plane] = box_array[:, 3:5]
    return da.map_blocks(
        _fill_boxes,
        dtype=bool,
        chunks=norm_chunks,
        meta=np.empty((0, 0, 0), bool),
        lo=lo,
        hi=hi,
    )


def _check_shape(shape) -> tuple[int, int, int]:
    try:
        values = tuple(shape)
    except TypeError as exc:
        raise TypeError(f"shape must be a tuple of 3 integers, got {shape!r}") from exc
    if len(values) != 3:
        raise ValueError(f"shape must have 3 sizes (Z, Y, X), got {values}")
    return tuple(check_int(v, name="shape", minimum=1) for v in values)


def _check_boxes(boxes, shape, axis) -> np.ndarray:
    try:
        items = list(boxes)
    except TypeError as exc:
        raise TypeError(f"boxes must be a sequence of (slice, r0, c0, r1, c1), got {type(boxes).__name__}") from exc
    n_slices = shape[axis]
    rows, cols = (s for i, s in enumerate(shape) if i != axis)
    out = np.empty((len(items), 5), np.int64)
    for i, box in enumerate(items):
        name = f"boxes[{i}]"
        try:
            values = tuple(box)
        except TypeError as exc:
            raise TypeError(f"{name} must be (slice, r0, c0, r1, c1), got {box!r}") from exc
        if len(values) != 5:
            raise ValueError(f"{name} must have 5 values (slice, r0, c0, r1, c1), got {len(values)}: {values}")
        s, r0, c0, r1, c1 = (
            check_int(v, name=f"{name} {part}") for v, part in zip(values, ("slice", "r0", "c0", "r1", "c1"), strict=True)
        )
        if not 0 <= s < n_slices:
            raise ValueError(f"{name}: slice {s} is outside 0..{n_slices - 1} along axis {axis}")
        if r1 <= r0 or c1 <= c0:
            raise ValueError(f"{name} is empty: (r0, c0, r1, c1) = {(r0, c0, r1, c1)} needs r1 > r0 and c1 > c0")
        if r0 < 0 or c0 < 0 or r1 > rows or c1 > cols:
            raise ValueError(f"{name}: (r0, c0, r1, c1) = {(r0, c0, r1, c1)} is outside the slice plane {(rows, cols)}")
        out[i] = (s, r0, c0, r1, c1)
    return out


def _fill_boxes(*, lo: np.ndarray, hi: np.ndarray, block_info=None) -> np.ndarray:
    info = block_info[None]
    start = np.array([a for a, _ in info["array-location"]], np.int64)
    stop = np.array([b for _, b in info["array-location"]], np.int64)
    out = np.zeros(info["chunk-shape"], bool)
    a = np.maximum(lo, start) - start
    b = np.minimum(hi, stop) - start
    hit = np.all(a < b, axis=1)
    for box_lo, box_hi in zip(a[hit], b[hit], strict=True):
        out[tuple(slice(x, y) for x, y in zip(box_lo, box_hi, strict=True))] = True
    return out


# --------------------------------------------------------------------------- suggestions


def suggest_mask(volume, *, axis: int = 0, threshold: float = 10.0, size: int = 7, min_pixels: int = 16) -> da.Array:
    """A first guess at the artifact mask, to be checked and edited by a person.

    Slice by slice, a voxel is suspect when it differs from the median of its
    ``size x size`` neighbourhood by more than ``threshold`` robust standard
    deviations of that difference over the slice (1.4826 x its median
    absolute deviation), when it sits at the maximum of an integer dtype
    (detector saturation), or when it is NaN/Inf. The median keeps straight
    edges of the material, so what stands out are spots, noise bursts and the
    rims of regions with a wrong level; small gaps between suspects are closed,
    enclosed regions filled, and components under ``min_pixels`` dropped.

    On the synthetic phantom (``add_artifacts`` with the default kinds) it
    finds half to three quarters of the artifact voxels, and about 97 % of
    what it marks is an artifact. It cannot see defects that look like
    material, and an artifact larger than ``size`` whose rim does not stand
    out all around is only partly marked.

    Parameters
    ----------
    volume : path or array
        Anything :func:`ctinpaint.io.open_volume` accepts, (Z, Y, X).
    axis : int, default 0
        Slices are taken along this axis.
    threshold : float, default 10.0
        In robust standard deviations; lower finds more and marks more material.
    size : int, default 7
        Side of the median neighbourhood (>= 3); artifacts much wider than it
        are found by their rims and filled in when the rim closes.
    min_pixels : int, default 16
        Smaller connected components (per slice, 8-connected) are dropped.

    Returns
    -------
    dask.array.Array
        bool, the volume's shape, in blocks of whole slices; nothing computed yet.
        The result does not depend on the input's chunks.

    Raises
    ------
    TypeError, ValueError
        Bad ``volume`` (see ``open_volume``) or parameters (named in the message).

    Examples
    --------
    >>> from ctinpaint.phantom import add_artifacts, make_phantom
    >>> c = add_artifacts(make_phantom((2, 96, 96), seed=0), n=4, seed=0)
    >>> guess = suggest_mask(c.volume).compute()
    >>> guess.shape, guess.dtype
    ((2, 96, 96), dtype('bool'))
    """
    vol = open_volume(volume, name="volume")
    axis = check_axis(axis)
    threshold = check_float(threshold, name="threshold", minimum=0.0)
    size = check_int(size, name="size", minimum=3)
    min_pixels = check_int(min_pixels, name="min_pixels", minimum=1)
    saturated = np.iinfo(vol.dtype).max if vol.dtype.kind in "iu" else None
    # Each slice is judged on its own (its own noise scale), so blocks hold whole slices.
    chunks = tuple(c if i == axis else (s,) for i, (c, s) in enumerate(zip(vol.chunks, vol.shape, strict=True)))
    return vol.rechunk(chunks).map_blocks(
        _suggest_block, axis=axis, threshold=threshold, size=size, min_pixels=min_pixels, saturated=saturated,
        dtype=bool, meta=np.empty((0, 0, 0), bool),
    )  # fmt: skip


def _suggest_block(block, *, axis, threshold, size, min_pixels, saturated):
    planes = np.moveaxis(block, axis, 0)
    out = np.zeros(planes.shape, bool)
    for k, plane in enumerate(planes):
        out[k] = _suggest_plane(plane, threshold, size, min_pixels, saturated)
    return np.moveaxis(out, 0, axis)


def _suggest_plane(plane, threshold, size, min_pixels, saturated):
    values = plane.astype(np.float32)
    bad = ~np.isfinite(values)
    values[bad] = np.median(values[~bad]) if (~bad).any() else 0.0
    residual = values - ndimage.median_filter(values, size=size, mode="reflect")
    scale = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    # A perfectly flat slice has scale 0: only real departures from it count, not rounding.
    suspect = (np.abs(residual) > threshold * max(scale, 1e-6 * (1.0 + np.abs(values).max()))) | bad
    if saturated is not None:
        suspect |= plane >= saturated
    suspect = ndimage.binary_closing(suspect, np.ones((3, 3), bool), border_value=0)
    suspect = ndimage.binary_fill_holes(suspect)
    labels, n = ndimage.label(suspect, _PLANE_STRUCTURES[2])
    if n == 0:
        return suspect
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels]


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True, eq=False)
class Window:
    """One P x P inpainting window of one artifact.

    Attributes
    ----------
    artifact : int
        Id of the artifact this window fills.
    axis, slice : int
        The slice the window lies in (as in :class:`Artifact`).
    origin : tuple of int
        ``(r, c)`` of the window's top-left pixel in slice-plane coordinates.
    patch : int
        Window size P.
    hole : int
        Hole box size l.
    hole_origin : tuple of int
        ``(r, c)`` of the l x l hole box's top-left pixel, relative to the
        window (``(P - l) // 2`` in each dim unless the window was shifted
        inward at a slice border).
    fill : numpy.ndarray, shape (P, P), bool, read-only
        The pixels of this artifact this window fills; all inside the hole box.
    unknown : numpy.ndarray, shape (P, P), bool, read-only
        Every masked pixel in the window (this artifact's, other artifacts',
        and ``fill``): the pixels the network must not trust.
    order : int
        Position in this artifact's filling order (0 first).
    """

    artifact: int
    axis: int
    slice: int
    origin: tuple[int, int]
    patch: int
    hole: int
    hole_origin: tuple[int, int]
    fill: np.ndarray = field(repr=False)
    unknown: np.ndarray = field(repr=False)
    order: int

    @property
    def window(self) -> tuple[slice, slice]:
        """Index of the window in the slice plane: ``plane[w.window]`` is P x P."""
        r, c = self.origin
        return slice(r, r + self.patch), slice(c, c + self.patch)


def windows_for(artifact: Artifact, mask_slice, *, patch: int = 32, hole: int = 18) -> list[Window]:
    """Cut one artifact into P x P inpainting windows.

    *Small artifacts* (bbox at most l x l) get one window centred on the
    bounding box, the artifact inside the window's central l x l hole box.
    Near a slice border the window is shifted inward to stay inside the slice,
    and the hole box stays over the artifact, so it is then off-centre in the
    window (``hole_origin`` says where).

    *Larger artifacts* are tiled with l x l hole boxes at stride l from the
    bbox's top-left corner; the last row (column) of boxes is shifted back to
    end at the bbox's edge so no box sticks out past it (a dimension of the
    bbox shorter than l gets one box centred on it, as for small artifacts).
    Each pixel is filled by the box of the stride-l grid cell it lies in, so
    every pixel of the artifact is in exactly one window's ``fill``; boxes
    whose cell holds no pixel of the artifact are dropped. Each box gets the
    P x P window centred on it, shifted inward at slice borders.

    Filling order is greedy, because the inpainting job fills windows one
    after another and conditions each on the fills already made: next comes
    the remaining window with the most known pixels, where known means not in
    ``unknown`` or filled by a window earlier in the order; ties go to the
    window whose hole box comes first in raster order.

    Parameters
    ----------
    artifact : Artifact
        From :func:`find_artifacts`.
    mask_slice : array-like, shape (H, W), bool or integer
        The mask slice at ``artifact.slice`` along ``artifact.axis``, the same
        mask (labels or bool) the artifact was found in.
    patch : int, default 32
        Window size P.
    hole : int, default 18
        Hole box size l, ``1 <= l < P``.

    Returns
    -------
    list of Window
        In filling order (``windows[i].order == i``).

    Raises
    ------
    TypeError
        ``artifact`` is not an Artifact; ``mask_slice`` not bool/integer;
        ``patch`` or ``hole`` not integers.
    ValueError
        The slice plane is smaller than P in either dim; ``mask_slice`` is not
        2D or is not the slice the artifact was found in; ``hole >= patch``.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 64, 64), bool)
    >>> m[0, 30:34, 20:23] = True
    >>> (art,) = find_artifacts(m)
    >>> (w,) = windows_for(art, m[0], patch=32, hole=18)
    >>> w.origin, w.hole_origin, int(w.fill.sum())
    ((16, 6), (7, 7), 12)
    """
    if not isinstance(artifact, Artifact):
        raise TypeError(f"artifact must be an Artifact, got {type(artifact).__name__}")
    patch, hole = check_patch_hole(patch, hole)
    arr = _as_plane(mask_slice)
    height, width = arr.shape
    if height < patch or width < patch:
        raise ValueError(
            f"patch {patch} is larger than the volume slice {arr.shape} (slices along axis {artifact.axis}); "
            "use a smaller patch or another axis"
        )
    pixels = artifact.pixel_mask(arr)
    _check_recovered(artifact, pixels)

    r0, c0, r1, c1 = artifact.bbox
    row_boxes = _hole_boxes(r0, r1, hole, height)
    col_boxes = _hole_boxes(c0, c1, hole, width)
    margin = (patch - hole) // 2
    unknown_plane = arr != 0

    tiles = []  # (origin, hole_origin, fill, unknown), in raster order of hole boxes
    for box_r, (cell_r0, cell_r1) in row_boxes:
        win_r = min(max(box_r - margin, 0), height - patch)
        for box_c, (cell_c0, cell_c1) in col_boxes:
            cell = pixels[cell_r0 - r0 : cell_r1 - r0, cell_c0 - c0 : cell_c1 - c0]
            if not cell.any():
                continue
            win_c = min(max(box_c - margin, 0), width - patch)
            fill = np.zeros((patch, patch), bool)
            fill[cell_r0 - win_r : cell_r1 - win_r, cell_c0 - win_c : cell_c1 - win_c] = cell
            unknown = unknown_plane[win_r : win_r + patch, win_c : win_c + patch].copy()
            fill.setflags(write=False)
            unknown.setflags(write=False)
            tiles.append(((win_r, win_c), (box_r - win_r, box_c - win_c), fill, unknown))

    return [
        Window(
            artifact=artifact.id,
            axis=artifact.axis,
            slice=artifact.slice,
            origin=tiles[t][0],
            patch=patch,
            hole=hole,
            hole_origin=tiles[t][1],
            fill=tiles[t][2],
            unknown=tiles[t][3],
            order=position,
        )
        for position, t in enumerate(_greedy_order(tiles, patch))
    ]


def _as_plane(mask_slice) -> np.ndarray:
    arr = np.asarray(mask_slice)
    if arr.dtype != bool and arr.dtype.kind not in "iu":
        raise TypeError(f"mask_slice: dtype {arr.dtype} is not a mask; expected bool or integer labels")
    if arr.ndim != 2:
        raise ValueError(f"mask_slice must be a 2D slice of the mask, got shape {arr.shape}")
    return arr


def _check_recovered(artifact: Artifact, pixels: np.ndarray) -> None:
    # The seed can match by accident in the wrong slice; the count and the
    # bbox cannot both match unless the component is the same.
    touches_bbox = pixels[0].any() and pixels[-1].any() and pixels[:, 0].any() and pixels[:, -1].any()
    if int(pixels.sum()) != artifact.pixels or not touches_bbox:
        raise ValueError(
            f"mask_slice does not hold artifact {artifact.id} as found (expected {artifact.pixels} pixels in bbox "
            f"{artifact.bbox}, got {int(pixels.sum())}); pass the slice {artifact.slice} along axis {artifact.axis} "
            "of the mask it was found in"
        )


def _hole_boxes(lo: int, hi: int, hole: int, size: int) -> list[tuple[int, tuple[int, int]]]:
    """Hole-box starts along one dim, each with the cell ``[a, b)`` of the bbox it fills."""
    extent = hi - lo
    if extent <= hole:
        start = lo - (hole - extent) // 2
        return [(min(max(start, 0), size - hole), (lo, hi))]
    n = -(-extent // hole)
    boxes = [(lo + i * hole, (lo + i * hole, lo + (i + 1) * hole)) for i in range(n - 1)]
    # The last box ends at the bbox's edge; its cell is what the grid left over.
    boxes.append((hi - hole, (lo + (n - 1) * hole, hi)))
    return boxes


def _greedy_order(tiles, patch: int) -> list[int]:
    """Indices of ``tiles`` in greedy most-known-context-first order."""
    n = len(tiles)
    origins = np.array([t[0] for t in tiles], np.int64).reshape(n, 2)
    known = np.array([patch * patch - int(t[3].sum()) for t in tiles], np.int64)
    done = np.zeros(n, bool)
    order = []
    for _ in range(n):
        pick = int(np.argmax(np.where(done, -1, known)))  # argmax: first of ties = raster order
        done[pick] = True
        order.append(pick)
        # The picked fill becomes known context for every window overlapping it.
        delta = origins - origins[pick]
        near = np.flatnonzero(~done & np.all(np.abs(delta) < patch, axis=1))
        fill = tiles[pick][2]
        for u in near:
            dr, dc = delta[u]
            known[u] += int(fill[max(dr, 0) : patch + min(dr, 0), max(dc, 0) : patch + min(dc, 0)].sum())
    return order
