"""Training patches with holes, cut block-wise from the artifact-free parts of a volume.

A training example is a P×P patch of one slice together with a hole mask (1 =
unknown) inside its central l×l box. :class:`PatchSampler` never touches a voxel
marked as an artifact, excluded or (optionally) non-finite, and never loads the
whole volume: it reads one chunk-aligned region of a few million voxels, finds
every usable patch origin in it at once (a sliding-window "any" over the mask),
cuts many patches from it with one vectorised gather, and moves on, while worker
threads read and cut the next regions. :func:`hole_masks` makes the hole masks: the fixed centred square of
the reference model, or random shapes (rectangles, blobs, streaks, unions) inside
the same box, so a model learns to fill artifacts of any shape.

With ``context`` (2.5D conditioning), each patch also carries the same P×P
window of the neighbouring slices. They may hold artifacts, lie outside the
volume or continue the hole (as real artifacts often do for a few slices); such
pixels are marked unknown in their own mask channel, so a model learns to use a
neighbour where it is known and to do without where it is not.
"""

from __future__ import annotations

import collections
import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import dask
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._checks import NAN_POLICIES, check_axis, check_choice, check_fits_in_memory, check_float, check_int, check_patch_hole

HOLE_SHAPES = ("square", "random")

#: A region aims at this many voxels (4 MiB of uint16): large enough that the fixed
#: cost of one read (a call into Zarr or Dask) is small next to decoding it and
#: cutting its ~1000 patches.
_TARGET_REGION_VOXELS = 1 << 21
#: Regions are split inside chunks only when a single chunk (or the few needed to
#: reach P voxels) exceeds this; otherwise a region is a union of whole chunks.
_MAX_REGION_VOXELS = 1 << 23
#: Patches cut per usable origin and epoch, times P² (see PatchSampler "Notes").
_COVERAGE = 1.0
#: Batches are drawn from the shuffled patches of this many consecutive regions,
#: so one batch is not 64 neighbours from a single region.
_REGIONS_PER_POOL = 4
#: Regions in preparation while batches are drawn, and threads preparing them:
#: decoding, indexing and converting release the GIL, so two workers keep two
#: cores busy.
_READ_AHEAD = 3
_WORKERS = 2
#: Random hole masks are made this many at a time.
_HOLE_BLOCK = 2048
#: With context: chance that the hole continues into the next slice outwards, on
#: each side and for each further slice (1/2 of patches have it in the adjacent
#: slice on one side, 1/4 on both, so 2D-like and 2.5D windows are both common).
_CONTINUE = 0.5


class PatchBatch(NamedTuple):
    """One batch of training patches.

    Attributes
    ----------
    x : numpy.ndarray
        float32, shape (B, K, P, P): the full patches (the truth), in network
        units when the sampler has an intensity mapping, raw values otherwise.
        K = 2 context + 1 slices, the one with the hole at channel ``context``
        (K = 1 without context); unknown pixels of the neighbouring slices are 0.
    hole : numpy.ndarray
        float32, shape (B, K, P, P): 1 where the network must fill in (centre
        slice) or the value is unknown (neighbouring slices), 0 where known.
    origin : numpy.ndarray
        int64, shape (B, 4): ``(axis, slice, r, c)`` per patch. The patch is
        ``np.moveaxis(volume, axis, 0)[slice, r:r+P, c:c+P]``.
    """

    x: np.ndarray
    hole: np.ndarray
    origin: np.ndarray


def hole_masks(n, *, patch=32, hole=18, shape="square", seed=None) -> np.ndarray:
    """Hole masks for ``n`` patches: True marks the pixels to be filled in.

    Parameters
    ----------
    n : int
        Number of masks, ``n >= 0``.
    patch : int, default 32
        Patch size P.
    hole : int, default 18
        Size l of the central box holes live in, ``1 <= l < P``; the box starts
        at ``(P - l) // 2`` in both axes.
    shape : {"square", "random"}, default "square"
        "square": every mask is the whole central l×l box, like the reference
        model. "random": each mask is, with equal chance, a rectangle, a smooth
        blob (thresholded smoothed noise plus a bump), a thin streak at any
        angle, or a union of two or three of these, drawn independently per
        mask; each has at least one pixel and none outside the central box.
    seed : int, numpy.random.Generator or None
        Seed for "random" (a Generator is used and advanced in place).

    Returns
    -------
    numpy.ndarray
        bool, shape (n, P, P).

    Raises
    ------
    TypeError
        Non-integer ``n``, ``patch``, ``hole`` or ``seed``.
    ValueError
        Negative ``n``, ``hole >= patch``, unknown ``shape``.

    Examples
    --------
    >>> m = hole_masks(3, patch=8, hole=4)
    >>> m.shape, m.dtype, int(m[0].sum())
    ((3, 8, 8), dtype('bool'), 16)
    >>> bool(m[0, 2:6, 2:6].all())
    True
    >>> r = hole_masks(1000, patch=32, hole=18, shape="random", seed=0)
    >>> bool(r[:, 7:25, 7:25].sum(axis=(1, 2)).min() >= 1), int(r.sum() - r[:, 7:25, 7:25].sum())
    (True, 0)
    """
    n = check_int(n, name="n", minimum=0)
    patch, hole = check_patch_hole(patch, hole)
    check_choice(shape, HOLE_SHAPES, name="shape")
    rng = _generator(seed)
    off = (patch - hole) // 2
    out = np.zeros((n, patch, patch), dtype=bool)
    if shape == "square":
        out[:, off:off + hole, off:off + hole] = True
    else:
        # Blocks of a few thousand masks keep the temporaries in cache: about
        # 1.5x faster than one pass over all n.
        for start in range(0, n, _HOLE_BLOCK):
            stop = min(n, start + _HOLE_BLOCK)
            out[start:stop, off:off + hole, off:off + hole] = _random_box_masks(stop - start, hole, rng)
    return out


def _generator(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(check_int(seed, name="seed", minimum=0))


def _random_box_masks(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random non-empty masks of shape (size, size).

    Kind 0-2: a rectangle, a blob or a streak alone; kind 3: a union, of all
    three (u == 3) or of the two other than primitive u. Each primitive is
    computed only for the masks that use it (7 in 16 of them).
    """
    kind = rng.integers(0, 4, n)
    u = rng.integers(0, 4, n)
    use = np.zeros((n, 3), dtype=bool)
    single = kind < 3
    use[np.flatnonzero(single), kind[single]] = True
    union = ~single
    use[union] = np.arange(3)[None, :] != u[union, None]
    out = np.zeros((n, size, size), dtype=bool)
    for column, make in enumerate((_rectangles, _blobs, _streaks)):
        which = np.flatnonzero(use[:, column])
        out[which] |= make(which.size, size, rng)
    return out


def _rectangles(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Axis-aligned rectangles of any size from one pixel to the whole box, anywhere in it."""
    pix = np.arange(size)
    h = rng.integers(1, size + 1, n)
    w = rng.integers(1, size + 1, n)
    r0 = (rng.random(n) * (size - h + 1)).astype(np.int64)
    c0 = (rng.random(n) * (size - w + 1)).astype(np.int64)
    rows = (pix >= r0[:, None]) & (pix < (r0 + h)[:, None])
    cols = (pix >= c0[:, None]) & (pix < (c0 + w)[:, None])
    return rows[:, :, None] & cols[:, None, :]


def _blobs(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth blobs: coarse noise upsampled bilinearly plus a Gaussian bump, cut at a random level.

    The level lies between the field's minimum and maximum, so the maximum is
    always inside and the blob never empty. Whatever can be is computed per
    row and per column and broadcast: full (n, size, size) passes are what
    this costs.
    """
    grid = 4
    pix = np.arange(size, dtype=np.float32)
    up = _bilinear_matrix(size, grid)
    coarse = rng.standard_normal((n, grid, grid)).astype(np.float32)
    field = np.matmul(up, np.matmul(coarse, up.T))
    centre = (rng.random((2, n, 1)) * (size - 1)).astype(np.float32)
    radius = (size * (0.15 + 0.35 * rng.random((n, 1)))).astype(np.float32)
    bump_y, bump_x = np.exp(-((pix - centre) ** 2) / (2 * radius**2))
    field += 2.0 * bump_y[:, :, None] * bump_x[:, None, :]
    low, high = field.min(axis=(1, 2)), field.max(axis=(1, 2))
    level = low + (high - low) * (0.3 + 0.6 * rng.random(n)).astype(np.float32)
    return field >= level[:, None, None]


def _streaks(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Bands 1-4 px wide at any angle through a pixel centre, of random length.

    The centre pixel is always inside, so a streak is never empty.
    """
    pix = np.arange(size, dtype=np.float32)
    theta = rng.random((n, 1)) * np.pi
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    dy = pix - rng.integers(0, size, (n, 1)).astype(np.float32)
    dx = pix - rng.integers(0, size, (n, 1)).astype(np.float32)
    half_width = (0.5 + 1.5 * rng.random((n, 1, 1))).astype(np.float32)
    half_length = (2.0 + (size - 2.0) * rng.random((n, 1, 1))).astype(np.float32)
    across = np.abs((dy * cos)[:, :, None] - (dx * sin)[:, None, :])
    along = np.abs((dy * sin)[:, :, None] + (dx * cos)[:, None, :])
    return (across <= half_width) & (along <= half_length)


def _bilinear_matrix(size: int, grid: int) -> np.ndarray:
    """(size, grid) matrix interpolating ``grid`` samples spread over ``size`` pixels."""
    pos = np.linspace(0, grid - 1, size)
    lo = np.minimum(np.floor(pos).astype(np.int64), grid - 2)
    frac = pos - lo
    m = np.zeros((size, grid), dtype=np.float32)
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m


def _tile_holes(holes: np.ndarray, hole: int, chance: float, rng) -> np.ndarray:
    """``holes`` (n, P, P) with each replaced, with probability ``chance``, by a tile's view of a larger artifact.

    The box is unknown and so is the patch from the box to its edge on 1-3
    random sides: a rectangle, as the windows of a large artifact see it.
    """
    n, p, _ = holes.shape
    o = (p - hole) // 2
    sides = rng.random((n, 4)).argsort(axis=1) < rng.integers(1, 4, size=(n, 1))  # top, bottom, left, right
    r0, r1 = np.where(sides[:, 0], 0, o), np.where(sides[:, 1], p, o + hole)
    c0, c1 = np.where(sides[:, 2], 0, o), np.where(sides[:, 3], p, o + hole)
    at = np.arange(p)
    rows = (at >= r0[:, None]) & (at < r1[:, None])
    cols = (at >= c0[:, None]) & (at < c1[:, None])
    tile = rows[:, :, None] & cols[:, None, :]
    return np.where((rng.random(n) < chance)[:, None, None], tile, holes)


class PatchSampler:
    """Endless, seeded stream of training patches from the artifact-free parts of a volume.

    Parameters
    ----------
    volume : path or array
        Anything :func:`ctinpaint.io.open_volume` accepts; shape (Z, Y, X),
        dtype uint8, uint16, int16 or float32. Read lazily, region by region.
    mask : path or array, optional
        Artifact mask or labels of the same shape (nonzero = artifact). No patch
        ever contains a masked voxel.
    patch : int, default 32
        Patch size P.
    hole : int, default 18
        Hole box size l, ``l < P``.
    hole_shape : {"square", "random"}, default "square"
        See :func:`hole_masks`.
    batch_size : int, default 64
        Patches per batch, ``>= 1``.
    axes : int or tuple of int, default (0,)
        Axes the slices are cut along: ``(0,)`` takes patches from Z slices
        (rows Y, columns X); ``(0, 1, 2)`` from all three planes. For axis 1 the
        rows are Z and the columns X; for axis 2 the rows are Z and the columns Y.
    seed : int, default 0
        Everything random (region order, origins, holes, shuffling) follows from it.
    intensity : IntensityMapping, optional
        Object with ``to_network(array) -> float32 array``; patches are mapped
        through it. None: patches are the raw voxel values as float32.
    nan_policy : {"raise", "mask"}, default "raise"
        "raise": a region holding NaN or Inf raises ValueError with their count;
        "mask": non-finite voxels are treated as artifacts.
    exclude : path or array, optional
        Bool mask of the same shape of voxels never to use, e.g. held-out
        validation regions; treated exactly like artifacts.
    context : int, default 0
        Neighbouring slices on each side each patch also carries (2.5D
        conditioning; see the module notes). Only the centre slice must be
        artifact-free; masked, excluded, non-finite or out-of-volume voxels of
        the neighbours are marked unknown (and set to 0), and the hole
        continues into the next slice outwards with probability 1/2 per slice.
    hole_depth : int, optional
        With context: the hole continues into exactly this many slices on each
        side instead (0: the hole is in the centre slice only), e.g. to
        evaluate a model on artifacts of a known depth.
    tile_holes : float, default 0
        Chance that a patch's unknown region is instead what a tile of a larger
        artifact sees: the whole hole box, extended to the patch's edge on one,
        two or three random sides (the rest of the artifact).

    Attributes
    ----------
    region_shape : tuple of int
        Nominal (Z, Y, X) extent of the regions read at once.

    Raises
    ------
    TypeError
        Non-integer sizes or seed; unsupported volume or mask dtype; an
        ``intensity`` without ``to_network``.
    ValueError
        ``hole >= patch``; ``patch`` larger than the volume in a slice dimension;
        ``mask`` or ``exclude`` of another shape; unknown ``hole_shape`` or
        ``nan_policy``; ``batch_size < 1`` or a batch larger than the
        machine's memory; a volume with a zero-size dimension; bad ``axes``.
        While iterating: NaN/Inf with ``nan_policy="raise"`` (names
        ``volume``); no usable P×P patch anywhere after one pass over the
        volume (names ``mask``).

    Notes
    -----
    *Regions.* The volume is tiled by regions made of whole chunks (several
    merged, so that a region spans at least P voxels in every slice dimension
    and about 2 M voxels; chunks too large for that are split instead). Each
    epoch visits every region once in a seeded random order and shifts the
    tiling by a random number of chunks, so patches that straddle one epoch's
    region borders are drawn in another. Two worker threads read and cut the
    next regions while batches are drawn from the current ones. Each region's
    draws come from its own random stream, keyed by the seed and the region's
    place in the sequence, so the batches do not depend on thread timing: they
    are a function of the arguments and of the volume's chunking. The same
    volume chunked differently is tiled differently and gives another, equally
    valid, sequence. Zarr and TIFF volumes opened from a path are read straight
    from their store, one call per region; other Dask arrays through Dask.

    *Fair share.* A region with V usable origins (summed over ``axes``)
    contributes ``ceil(V / P²)`` patches per epoch, origins drawn uniformly with
    replacement. The count is proportional to V, so every usable origin of the
    volume is equally likely to be drawn, whatever the region's size or how
    much of it is masked; the factor 1/P² makes an epoch hold about as many
    patch pixels as the volume has usable voxels per axis (about 1200 patches
    from a clean 128³ region), which amortises reading a region over many
    patches while staying far from exhausting it. Patches of
    four consecutive regions are shuffled together before they are batched.

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.random.default_rng(0).integers(0, 1000, (8, 64, 64)).astype(np.uint16)
    >>> mask = np.zeros(vol.shape, bool)
    >>> mask[:, 20:30, 20:30] = True
    >>> sampler = PatchSampler(vol, mask=mask, batch_size=16, seed=1)
    >>> batch = next(iter(sampler))
    >>> batch.x.shape, batch.x.dtype, batch.hole.shape, batch.origin.shape
    ((16, 1, 32, 32), dtype('float32'), (16, 1, 32, 32), (16, 4))
    >>> axis, z, r, c = batch.origin[0]
    >>> bool(mask[z, r:r + 32, c:c + 32].any())
    False
    >>> sampler.take(100).x.shape
    (100, 1, 32, 32)
    """

    def __init__(
        self,
        volume,
        *,
        mask=None,
        patch=32,
        hole=18,
        hole_shape="square",
        batch_size=64,
        axes=(0,),
        seed=0,
        intensity=None,
        nan_policy="raise",
        exclude=None,
        context=0,
        hole_depth=None,
        tile_holes=0.0,
    ):
        from .io import open_mask, open_volume

        self._patch, self._hole = check_patch_hole(patch, hole)
        self._hole_shape = check_choice(hole_shape, HOLE_SHAPES, name="hole_shape")
        self._batch_size = check_int(batch_size, name="batch_size", minimum=1)
        self._context = check_int(context, name="context", minimum=0)
        self._hole_depth = None if hole_depth is None else check_int(hole_depth, name="hole_depth", minimum=0)
        self._tile_holes = check_float(tile_holes, name="tile_holes", minimum=0.0, maximum=1.0)
        # x and hole (float32) plus the bool hole masks of one batch.
        check_fits_in_memory(
            9 * self._batch_size * (2 * self._context + 1) * self._patch**2, name="batch_size",
            what="one batch of patches",
        )  # fmt: skip
        self._axes = _check_axes(axes)
        self._seed = check_int(seed, name="seed", minimum=0)
        if intensity is not None and not callable(getattr(intensity, "to_network", None)):
            raise TypeError(
                f"intensity must have a to_network method (an IntensityMapping), got {type(intensity).__name__}"
            )
        self._intensity = intensity
        self._nan_policy = check_choice(nan_policy, NAN_POLICIES, name="nan_policy")

        self._volume = open_volume(volume, name="volume")
        shape = tuple(int(s) for s in self._volume.shape)
        if 0 in shape:
            # Nothing to cut: iterating would look for a usable region for ever.
            raise ValueError(f"volume: shape {shape} has no voxels")
        for axis in self._axes:
            for dim in range(3):
                if dim != axis and shape[dim] < self._patch:
                    raise ValueError(
                        f"patch ({self._patch}) is larger than the volume along axis {dim} "
                        f"(shape {shape}), which slices along axis {axis} need"
                    )
        self._masks = []
        if mask is not None:
            self._masks.append(open_mask(mask, shape=shape))
        if exclude is not None:
            self._masks.append(open_mask(exclude, shape=shape, name="exclude"))

        # A slice dimension of any sampled axis needs P voxels per region.
        self._minimum = tuple(
            self._patch if any(axis != dim for axis in self._axes) else 1 for dim in range(3)
        )
        self._chunks = tuple(tuple(int(c) for c in cs) for cs in self._volume.chunks)
        self._per_region, self._split = _region_layout(self._chunks, shape, self._minimum)
        self._sources = [_backing_array(arr) for arr in (self._volume, *self._masks)]
        square = hole_masks(self._batch_size, patch=self._patch, hole=self._hole)
        self._square_batch = square[:, None].astype(np.float32)

    @property
    def region_shape(self) -> tuple[int, int, int]:
        """Nominal (Z, Y, X) extent of one region (edge regions may differ)."""
        sizes = (max(cs) for cs in self._chunks)
        return tuple(
            min(n, k * s // split)
            for n, k, s, split in zip(self._volume.shape, self._per_region, sizes, self._split, strict=True)
        )

    def __iter__(self):
        """A new generator of :class:`PatchBatch`, starting from ``seed`` every time."""
        return self._batches()

    def take(self, n) -> PatchBatch:
        """The first ``n`` patches of the sequence, as one :class:`PatchBatch`.

        Parameters
        ----------
        n : int
            Number of patches, ``>= 0``.

        Returns
        -------
        PatchBatch
            ``x`` and ``hole`` float32 (n, K, P, P), ``origin`` int64 (n, 4);
            equal to the first ``n`` patches of ``iter(self)``.

        Examples
        --------
        >>> import numpy as np
        >>> sampler = PatchSampler(np.zeros((2, 40, 40), np.uint8), batch_size=4)
        >>> sampler.take(10).origin.shape
        (10, 4)
        """
        n = check_int(n, name="n", minimum=0)
        parts, got = [], 0
        batches = self._batches()
        try:
            while got < n:
                batch = next(batches)
                parts.append(batch)
                got += len(batch.x)
        finally:
            batches.close()
        if not parts:
            shape = (0, 2 * self._context + 1, self._patch, self._patch)
            return PatchBatch(np.empty(shape, np.float32), np.empty(shape, np.float32), np.empty((0, 4), np.int64))
        return PatchBatch(*(np.concatenate(field)[:n] for field in zip(*parts, strict=True)))

    # ------------------------------------------------------------------ iteration

    def _batches(self):
        # Three independent streams: the tiling and order of regions, the draws
        # inside each region (one stream per region, keyed by its place in the
        # sequence, so worker threads may run in any order), and the shuffle.
        plan_rng = np.random.default_rng([self._seed, 0])
        shuffle_rng = np.random.default_rng([self._seed, 1])
        regions = self._region_stream(plan_rng)
        workers = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="ctinpaint-patches")
        pending = collections.deque()

        def submit():
            epoch, index, box = next(regions)
            rng = np.random.default_rng([self._seed, 2, epoch, index])
            pending.append((epoch, workers.submit(self._region_patches, box, rng)))

        try:
            for _ in range(_READ_AHEAD):
                submit()
            found = False
            carry = None
            pool = []
            while True:
                epoch, future = pending.popleft()
                if epoch == 1 and not found:
                    raise ValueError(
                        f"mask: no artifact-free region of {self._patch}×{self._patch} found in the volume "
                        f"(every window along axes {self._axes} touches a masked, excluded or non-finite voxel)"
                    )
                part = future.result()
                submit()
                found = found or part.usable > 0
                pool.append(part)
                if len(pool) == _REGIONS_PER_POOL:
                    carry = yield from self._emit(pool, carry, shuffle_rng)
                    pool = []
        finally:
            for _, future in pending:
                future.cancel()
            workers.shutdown(wait=True)

    def _emit(self, pool, carry, rng):
        """Shuffle the pooled patches, yield full batches; return what is left (< one batch)."""
        parts = ([carry] if carry is not None else []) + pool
        x = np.concatenate([part.x for part in parts])
        holes = None if parts[0].holes is None else np.concatenate([part.holes for part in parts])
        origin = np.concatenate([part.origin for part in parts])
        order = rng.permutation(len(x))
        b = self._batch_size
        full = len(order) - len(order) % b
        for start in range(0, full, b):
            idx = order[start:start + b]
            hole = self._square_batch.copy() if holes is None else holes[idx].astype(np.float32)
            yield PatchBatch(x[idx], hole, origin[idx])
        rest = order[full:]
        return _Patches(x[rest], None if holes is None else holes[rest], origin[rest], 0)

    def _region_stream(self, rng):
        """(epoch, index in epoch, box) for ever: each epoch a freshly shifted tiling in a random order."""
        for epoch in itertools.count():
            per_dim = [
                _intervals(self._chunks[d], self._per_region[d], self._split[d], self._minimum[d], rng)
                for d in range(3)
            ]
            boxes = list(itertools.product(*per_dim))
            for index, i in enumerate(rng.permutation(len(boxes))):
                yield epoch, index, tuple(slice(a, b) for a, b in boxes[i])

    def _region_patches(self, box, rng) -> _Patches:
        """Read one region, find its usable origins, cut its share of patches (runs in a worker)."""
        k = self._context
        # With context the read reaches k slices past the region along each sampled axis
        # (origins stay inside the region, so no window is drawn from two regions).
        ext = tuple(
            slice(max(0, b.start - k), min(n, b.stop + k)) if d in self._axes else b
            for d, (b, n) in enumerate(zip(box, self._volume.shape, strict=True))
        )
        data, bad = self._read(ext)
        core = tuple(slice(b.start - e.start, b.stop - e.start) for b, e in zip(box, ext, strict=True))
        p = self._patch
        views = []
        for axis in self._axes:
            # Inside the region in the slice plane; along the axis the neighbours' slices too.
            plane = tuple(slice(None) if d == axis else core[d] for d in range(3))
            view = np.moveaxis(data[plane], axis, 0)
            nb_bad = None if bad is None else np.moveaxis(bad[plane], axis, 0)
            lo = core[axis].start
            grid = (core[axis].stop - lo, view.shape[1] - p + 1, view.shape[2] - p + 1)
            if bad is None:
                views.append((axis, view, nb_bad, lo, grid, None, math.prod(grid)))
            else:
                usable = np.flatnonzero(_clean_windows(nb_bad[lo : lo + grid[0]], p))
                views.append((axis, view, nb_bad, lo, grid, usable, usable.size))
        total = sum(v[-1] for v in views)

        n = math.ceil(total * _COVERAGE / p**2)
        # Sorted draws keep the gather walking forward through the region (cache
        # friendly) and make each axis's draws one contiguous run.
        picks = np.sort(rng.integers(0, total, n)) if n else np.empty(0, np.int64)
        K = 2 * k + 1
        raw = np.empty((n, K, p, p), dtype=data.dtype)
        unknown = np.zeros((n, K, p, p), bool) if k else None
        origin = np.empty((n, 4), dtype=np.int64)
        first = 0
        for axis, view, nb_bad, lo_slice, grid, usable, count in views:
            lo, hi = np.searchsorted(picks, [first, first + count])
            local = picks[lo:hi] - first
            first += count
            if usable is not None:
                local = usable[local]
            s, r, c = np.unravel_index(local, grid)
            windows = sliding_window_view(view, (p, p), axis=(1, 2))
            for j, offset in enumerate(range(-k, k + 1)):
                # Slices past the volume's ends are read as the nearest one and marked unknown.
                at = lo_slice + s + offset
                inside = (at >= 0) & (at < view.shape[0])
                at = np.clip(at, 0, view.shape[0] - 1)
                raw[lo:hi, j] = windows[at, r, c]
                if offset:
                    unknown[lo:hi, j] = ~inside[:, None, None]
                    if nb_bad is not None:
                        unknown[lo:hi, j] |= sliding_window_view(nb_bad, (p, p), axis=(1, 2))[at, r, c]
            rows, cols = (d for d in range(3) if d != axis)
            origin[lo:hi, 0] = axis
            origin[lo:hi, 1] = box[axis].start + s
            origin[lo:hi, 2] = box[rows].start + r
            origin[lo:hi, 3] = box[cols].start + c
        if self._intensity is None:
            x = raw.astype(np.float32, copy=False)
        else:
            x = np.asarray(self._intensity.to_network(raw), dtype=np.float32)
        holes = None
        if self._hole_shape == "random":
            holes = hole_masks(n, patch=p, hole=self._hole, shape="random", seed=rng)
        if holes is None and (k or self._tile_holes > 0):
            holes = np.broadcast_to(self._square_batch[:1, 0] > 0.5, (n, p, p))
        if self._tile_holes > 0:
            holes = _tile_holes(holes, self._hole, self._tile_holes, rng)
        if k:
            unknown[:, k] = holes
            # How far the hole continues outwards on each side: 0, 1, 2, ... slices with chance 1/2 each.
            if self._hole_depth is None:
                reach = rng.geometric(1 - _CONTINUE, size=(n, 2)) - 1
            else:
                reach = np.full((n, 2), self._hole_depth)
            for j in range(1, k + 1):
                for side, index in ((0, k - j), (1, k + j)):
                    unknown[reach[:, side] >= j, index] |= holes[reach[:, side] >= j]
            # Unknown neighbour pixels carry no value (they may be NaN or an artifact); the
            # centre slice keeps its truth in the hole, which is what the network learns to fill.
            hidden = unknown.copy()
            hidden[:, k] = False
            x = np.where(hidden, np.float32(0), x)
            return _Patches(x, unknown, origin, total)
        return _Patches(x, None if holes is None else holes[:, None], origin, total)

    def _read(self, box):
        """The region's voxels and its bool map of unusable voxels (None when all are usable)."""
        arrays = [self._volume, *self._masks]
        values = [None] * len(arrays)
        lazy = []
        for i, source in enumerate(self._sources):
            if source is None:
                lazy.append(i)
            else:
                values[i] = source[box]
        # Each worker reads one region; Dask's thread pool on top of that only adds
        # hand-offs (small regions read 2-3x slower), hence the sync scheduler.
        for i, value in zip(lazy, dask.compute(*(arrays[i][box] for i in lazy), scheduler="sync"), strict=True):
            values[i] = value
        data, *masks = (np.asarray(v) for v in values)
        bad = None
        for m in masks:
            hit = m if m.dtype == bool else m != 0
            bad = hit if bad is None else bad | hit
        if data.dtype.kind == "f":
            finite = np.isfinite(data)
            nonfinite = data.size - int(np.count_nonzero(finite))
            if nonfinite:
                if self._nan_policy == "raise":
                    where = ", ".join(f"{'zyx'[d]} {s.start}:{s.stop}" for d, s in enumerate(box))
                    raise ValueError(
                        f"volume: {nonfinite} NaN/Inf voxels in the block {where}; clean them or pass "
                        "nan_policy='mask' to treat them as artifacts"
                    )
                bad = ~finite if bad is None else bad | ~finite
        if bad is not None and not bad.any():
            bad = None
        return data, bad


class _Patches(NamedTuple):
    """Patches cut from one region (or carried over): x float32 (n, K, P, P), holes bool
    (n, K, P, P) or None for square holes without context, origin int64 (n, 4), and
    the number of usable origins the region had (0 for patches carried over)."""

    x: np.ndarray
    holes: np.ndarray | None
    origin: np.ndarray
    usable: int


def _backing_array(arr):
    """The array a Dask array reads one-to-one (``from_array``/``from_zarr``), or None.

    Reading a region straight from the backing Zarr array decodes its chunks
    concurrently in one call; through Dask every chunk is a separate task and a
    separate round trip into Zarr's event loop, about twice the time per region.
    Anything else (sliced, rechunked or computed arrays) is read through Dask.
    """
    layers = getattr(arr.dask, "layers", {})
    if len(layers) != 2 or arr.name not in layers:
        return None
    ((name, layer),) = ((k, v) for k, v in layers.items() if k != arr.name)
    if not name.startswith("original-") or len(layer) != 1:
        return None
    (source,) = layer.values()
    same = getattr(source, "shape", None) == arr.shape and getattr(source, "dtype", None) == arr.dtype
    return source if same and hasattr(source, "__getitem__") else None


def _check_axes(axes) -> tuple[int, ...]:
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        axes = (axes,)
    if not isinstance(axes, (tuple, list)) or not axes:
        raise TypeError(f"axes must be a non-empty tuple of axis numbers (0, 1, 2), got {axes!r}")
    out = tuple(check_axis(a, ndim=3, name="axes") for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"axes must not repeat an axis, got {tuple(axes)!r}")
    return out


def _clean_windows(bad: np.ndarray, p: int) -> np.ndarray:
    """For (S, H, W) ``bad``, True at (s, r, c) where ``bad[s, r:r+p, c:c+p]`` holds no True.

    A p×p window is clean when no p-row window of any of its columns holds a
    hit: a window "any" along the rows, then along the columns.
    """
    return ~_window_any(_window_any(bad, p, axis=1), p, axis=2)


def _window_any(a: np.ndarray, p: int, axis: int) -> np.ndarray:
    """``out[i] = a[i:i+p].any()`` along ``axis`` (length ``n - p + 1``), for a bool array.

    Window lengths double by OR-ing each window with the one ``length`` further
    on (log2(p) passes over bools, several times faster here than running sums,
    and exact); two overlapping windows of the largest power of two <= p then
    cover any p.
    """
    n = a.shape[axis]

    def part(start, stop):
        index = [slice(None)] * a.ndim
        index[axis] = slice(start, stop)
        return tuple(index)

    acc = a.copy()
    length = 1
    while 2 * length <= p:
        # NumPy buffers overlapping operands, so this reads the old values.
        acc[part(0, n - length)] |= acc[part(length, n)]
        length *= 2
    keep = n - p + 1
    return acc[part(0, keep)] | acc[part(p - length, p - length + keep)]


def _region_layout(chunks, shape, minimum):
    """Chunks merged per region and pieces each chunk is cut into, per dimension.

    A window of m voxels spans up to ceil(m / c) + 1 chunks of size c; regions
    of at least that many chunks, shifted by a random number of chunks from
    epoch to epoch, hold every window in some epoch, so that is where slice
    dimensions start. The smallest dimension is then doubled until the region
    reaches the target size. Only when whole chunks make a region too large are
    merges undone, then chunks cut, the largest dimension first, never below
    the minimum.
    """
    size = [max(cs) for cs in chunks]
    merge = [
        min(len(cs), -(-m // c) + 1) if m > 1 else 1 for cs, m, c in zip(chunks, minimum, size, strict=True)
    ]
    split = [1, 1, 1]

    def extent(d):
        return min(shape[d], merge[d] * size[d] // split[d])

    def voxels():
        return math.prod(extent(d) for d in range(3))

    while voxels() < _TARGET_REGION_VOXELS:
        growable = [d for d in range(3) if merge[d] * size[d] < shape[d]]
        if not growable:
            break
        merge[min(growable, key=extent)] *= 2
    while voxels() > _MAX_REGION_VOXELS:
        unmergeable = [d for d in range(3) if merge[d] > 1 and merge[d] // 2 * size[d] >= minimum[d]]
        splittable = [d for d in range(3) if merge[d] == 1 and extent(d) // 2 >= minimum[d]]
        if unmergeable:
            merge[max(unmergeable, key=extent)] //= 2
        elif splittable:
            split[max(splittable, key=extent)] *= 2
        else:
            break
    return tuple(merge), tuple(split)


def _intervals(chunks, merge, split, minimum, rng):
    """One epoch's region boundaries along one dimension, as (start, stop) pairs.

    Several chunks per region: groups of ``merge`` chunks, the first group
    shortened by a random number of chunks. One chunk or less per region, in a
    dimension patches lie in: pieces of ``chunk / split`` voxels starting at a
    random offset, so windows across the piece (and chunk) borders of one epoch
    fall inside a piece in another, at the price of reading two chunks for a
    piece that straddles them. Other dimensions: each chunk cut in ``split``
    pieces.
    """
    edges = np.concatenate([[0], np.cumsum(chunks)]).astype(np.int64)
    total = int(edges[-1])
    nominal = merge * max(chunks) // split
    if merge > 1:
        shift = int(rng.integers(0, merge))
        cuts = [int(edges[i]) for i in sorted({0, len(chunks), *range(shift, len(chunks), merge)})]
    elif minimum > 1 and (split > 1 or len(chunks) > 1):
        cuts = sorted({0, total, *range(int(rng.integers(0, nominal)), total, nominal)})
    else:
        pieces = (int(a + (b - a) * i // split) for a, b in zip(edges[:-1], edges[1:], strict=True) for i in range(split))
        cuts = sorted({*pieces, total})
    # Short groups (at the ends, after a shift) hold few windows for the cost of
    # a read, so anything under half the nominal extent joins a neighbour.
    shortest = max(minimum, nominal // 2)
    groups = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        if groups and groups[-1][1] - groups[-1][0] < shortest:
            groups[-1] = (groups[-1][0], b)
        else:
            groups.append((a, b))
    if len(groups) > 1 and groups[-1][1] - groups[-1][0] < shortest:
        last = groups.pop()
        groups[-1] = (groups[-1][0], last[1])
    return groups
