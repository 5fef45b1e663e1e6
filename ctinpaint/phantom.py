"""The embedded default data: a synthetic SiC/diamond-like micro-CT volume.

:func:`make_phantom` builds a volume that looks like a reconstructed slice stack
of a microwave-sintered SiC/diamond composite: a dark SiC matrix, mid-grey
faceted diamond grains, bright Si-rich regions with granular edges and internal
texture, a few saturated inclusions, dark pores, partial-volume blur,
signal-dependent noise and fine ring artifacts. The structure is built in 3D,
so neighbouring slices are correlated as in a real volume.

:func:`add_artifacts` injects artifacts (square holes, irregular blobs, thin
streaks, large defects) into a clean volume and returns the corrupted volume,
the artifact mask and the untouched truth, so inpainting can be scored against
known values.

Grey levels follow three real synchrotron slices of such a composite (8-bit,
1.625 um voxels): matrix about 86, grains about 106, Si-rich regions about 171,
inclusions saturated. Feature sizes are in voxels of that scan, so a 256 x 256
phantom slice compares directly with a 256 x 256 crop of a real one.
"""

from __future__ import annotations

import itertools
import numbers
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from ._checks import check_fits_in_memory, check_int, check_volume_dtype

__all__ = ["Corrupted", "add_artifacts", "make_phantom"]

# Grey levels on the 8-bit scale of the real slices (median of each phase).
_MATRIX = 86.0
_GRAIN = 106.0
_SILICON = 169.0
_PORE = 48.0
# Above 255 on purpose: after blurring, the core of an inclusion must still
# saturate, as it does on the detector.
_INCLUSION = 330.0

#: Scale from the 8-bit levels to each output dtype. int16 uses 128 rather than
#: 257 so that saturated voxels (255) stay below the int16 maximum.
_LEVEL_SCALE = {"uint8": 1.0, "uint16": 257.0, "int16": 128.0, "float32": 1.0 / 255.0}

ARTIFACT_KINDS = ("box", "blob", "streak", "large")
_CORRUPTIONS = ("zero", "saturate", "noise", "offset")

#: In-plane size limits of each artifact kind, in pixels.
_SMALL_MAX = 18
_BOX_MIN = 4
_LARGE_MIN, _LARGE_MAX = 20, 40
_STREAK_MAX = 40
#: Placement attempts per artifact before giving up.
_PLACEMENT_TRIES = 200


# --------------------------------------------------------------------------- phantom


def make_phantom(shape=(64, 256, 256), *, seed: int = 0, dtype="uint16", rings: bool = True) -> np.ndarray:
    """Synthetic micro-CT volume of a SiC/diamond-like composite.

    Parameters
    ----------
    shape : tuple of 3 int, default (64, 256, 256)
        ``(Z, Y, X)``; every entry positive, ``Y`` and ``X`` at least 16.
        A single slice is ``(1, Y, X)``.
    seed : int, default 0
        Non-negative seed; the same seed (and shape) gives the same volume,
        bit for bit.
    dtype : {"uint16", "uint8", "int16", "float32"}, default "uint16"
        Voxel type. The grey levels are those of the real 8-bit slices
        (matrix ~86, grains ~106, Si-rich ~171, inclusions 255); uint8 uses
        them directly, uint16 multiplies them by 257 (full 16-bit range),
        int16 by 128, and float32 divides them by 255 (values in [0, 1]).
    rings : bool, default True
        Add faint concentric ring artifacts, the same in every slice (a
        detector defect is at a fixed place for the whole scan).

    Returns
    -------
    numpy.ndarray
        Shape ``shape``, dtype ``dtype``; a new in-memory array.

    Notes
    -----
    The volume is built in memory with NumPy, not lazily: the result plus
    working arrays peak at about 31 bytes per voxel (130 MB for the default
    shape, 4.2 GB for 512**3), so build very large training volumes as
    several stacks with different seeds. The default shape takes under 1 s
    on two CPU cores.

    What is simulated, in the order it happens: Si-rich regions are a
    thresholded smooth 3D random field with rough, granular edges, internal
    texture and round voids; diamond grains are convex polyhedra (randomly
    rotated, stretched and truncated cubo-octahedra), so every slice shows
    faceted polygons with a thin dark rim; then small dark pores and tiny
    saturated inclusions; then partial-volume blur, ring artifacts and
    noise whose amplitude grows with the signal.

    Raises
    ------
    TypeError
        ``shape`` not a sequence of integers; ``seed`` not an integer;
        ``dtype`` not a supported voxel type.
    ValueError
        ``shape`` without 3 entries, a non-positive entry, ``Y`` or ``X``
        below 16, or too large to build in this machine's memory; a negative
        ``seed``.

    Examples
    --------
    >>> vol = make_phantom((4, 64, 64), seed=1, dtype="uint8")
    >>> vol.shape, vol.dtype
    ((4, 64, 64), dtype('uint8'))
    >>> bool((make_phantom((4, 64, 64), seed=1, dtype="uint8") == vol).all())
    True
    """
    shape = _check_shape(shape)
    # At least one float32 working array (the peak is about 31 bytes a voxel).
    check_fits_in_memory(4 * shape[0] * shape[1] * shape[2], name="shape", what=f"a phantom of shape {shape}")
    seed = check_int(seed, name="seed", minimum=0)
    out_dtype = check_volume_dtype(dtype, name="dtype")
    if not isinstance(rings, (bool, np.bool_)):
        raise TypeError(f"rings must be True or False, got {type(rings).__name__} {rings!r}")
    # Independent streams, so switching rings off changes nothing else.
    rng, ring_rng, noise_rng = np.random.default_rng(seed).spawn(3)

    silicon, crumb, speck = _silicon_field(rng, shape)
    levels = _matrix_and_silicon(rng, shape, silicon, crumb, speck)
    del crumb, speck
    _carve_voids(rng, levels, silicon)
    _draw_grains(rng, levels)
    _draw_spots(rng, levels, silicon)
    del silicon

    # Partial-volume effect of the finite source spot and detector pixels.
    levels = ndimage.gaussian_filter(levels, sigma=0.7, mode="nearest")
    if rings:
        levels *= 1.0 + _ring_pattern(ring_rng, shape[1:])[None]
    _add_noise(noise_rng, levels)
    return _to_dtype(levels, out_dtype)


def _check_shape(shape) -> tuple[int, int, int]:
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__"):
        raise TypeError(f"shape must be a sequence of 3 integers (Z, Y, X), got {shape!r}")
    if len(shape) != 3:
        raise ValueError(f"shape must have 3 entries (Z, Y, X), got {len(shape)}: {tuple(shape)!r}")
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"shape entries must be integers, got {tuple(shape)!r}")
    z, y, x = (int(s) for s in shape)
    if z < 1:
        raise ValueError(f"shape: Z must be >= 1, got {z}")
    if y < 16 or x < 16:
        raise ValueError(f"shape: Y and X must be >= 16, got {(y, x)}")
    return z, y, x


def _smooth_noise(rng, shape, sigma: float) -> np.ndarray:
    """Unit-variance smooth Gaussian random field, correlation scale ``sigma`` voxels.

    A sum of Gaussian kernels centred on a coarse lattice with random weights,
    evaluated separably as three matrix products. Unlike FFT filtering it is
    not periodic (the two ends of the volume are unrelated, as in a real
    sample) and its cost grows with the lattice, not the kernel.
    """
    spacing = 0.75 * sigma
    factors = []
    for n in shape:
        nodes = np.arange(-3.0 * sigma, n + 3.0 * sigma + spacing, spacing)
        w = np.exp(-0.5 * ((np.arange(n)[:, None] - nodes[None, :]) / sigma) ** 2)
        # Unit row norm makes the variance exactly 1 at every voxel.
        w /= np.sqrt((w**2).sum(axis=1, keepdims=True))
        factors.append(w.astype(np.float32))
    wz, wy, wx = factors
    coef = rng.standard_normal((wz.shape[1], wy.shape[1], wx.shape[1]), dtype=np.float32)
    field = coef @ wx.T  # (cz, cy, X)
    field = np.matmul(wy, field)  # (cz, Y, X)
    field = (wz @ field.reshape(wz.shape[1], -1)).reshape(shape)
    return field


def _silicon_field(rng, shape):
    """Approximate signed distance (voxels, > 0 inside) to the Si-rich boundary.

    The boundary is a level set of a smooth field, pushed in and out by up to
    a few voxels of finer noise. Dividing the field by its gradient turns it
    into a distance, so the roughness has the same width everywhere instead of
    smearing into a wide speckled zone where the field is flat.
    """
    field = _smooth_noise(rng, shape, 32.0)
    field += 0.08 * _smooth_noise(rng, shape, 5.0)
    # About 35 % of the volume is Si-rich before grains cover part of it,
    # about 28 % after, like the real slices.
    field -= 0.40
    slope = np.zeros(shape, np.float32)
    for axis in range(3):
        if shape[axis] > 1:
            step = np.gradient(field, axis=axis)
            step *= step
            slope += step
            del step
    np.sqrt(slope, out=slope)
    # Far from the boundary the distance only needs its sign: cap it, and
    # keep flat spots of the field from dividing by almost zero.
    np.maximum(slope, 0.005, out=slope)
    distance = field
    distance /= slope
    del slope
    np.clip(distance, -20.0, 20.0, out=distance)
    crumb = _smooth_noise(rng, shape, 2.5)
    speck = _smooth_noise(rng, shape, 1.5)
    # Scallops from the coarser noise, spikes from the finer one.
    distance += 2.0 * crumb + 0.8 * speck
    return distance, crumb, speck


def _matrix_and_silicon(rng, shape, silicon, crumb, speck):
    texture = _smooth_noise(rng, shape, 4.0)
    # Faint density variations of the matrix, below the noise.
    levels = _MATRIX + 1.5 * texture
    inside = silicon > 0
    depth = silicon[inside]
    # Brighter crust along the boundary (edge enhancement and small Si
    # crystals), fading over a few voxels; bright angular crystallites,
    # densest in a band along the boundary.
    crust = np.exp(-depth / 3.0) * (22.0 + 8.0 * crumb[inside])
    band = 0.4 + 0.6 * np.exp(-depth / 12.0)
    levels[inside] = _SILICON + 3.0 * texture[inside] + crust + 26.0 * band * (speck[inside] > 1.2)
    # Loose bright Si particles a little outside the boundary.
    loose = ~inside & (silicon > -5.0) & (crumb > 2.1)
    levels[loose] = _SILICON + 15.0
    return levels


def _carve_voids(rng, levels, silicon):
    """Round voids inside Si-rich regions, filled with matrix-like material."""
    # Most attempts land outside the Si-rich phase and are skipped.
    for _ in range(max(1, int(levels.size / 8e5))):
        r = rng.uniform(5.0, 16.0)
        c = rng.uniform(0, 1, 3) * np.array(levels.shape)
        ci = tuple(np.minimum(c.astype(int), np.array(levels.shape) - 1))
        if silicon[ci] < r + 3.0:
            continue
        box, dist2 = _sphere_box(c, r, levels.shape)
        levels[box][dist2 <= r * r] = _MATRIX - 4.0


def _sphere_box(centre, radius, shape):
    """Slices of the box around a sphere (clipped to ``shape``) and squared distances in it."""
    lo = np.maximum(np.floor(centre - radius).astype(int), 0)
    hi = np.minimum(np.ceil(centre + radius).astype(int) + 1, shape)
    grids = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
    return tuple(slice(a, b) for a, b in zip(lo, hi)), dist2


# Face normals of a cubo-octahedron, the common habit of synthetic diamond:
# six {100} faces and eight {111} faces.
_CUBE = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
_OCTA = np.array(list(itertools.product((-1, 1), repeat=3)), float) / np.sqrt(3.0)


def _random_grain(rng, size: float):
    """Half-spaces ``normals @ x <= offsets`` of one grain, centred at 0."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    rotation = q * np.sign(np.diag(r))
    stretch = rng.uniform(0.8, 1.25, 3)
    normals = np.concatenate([_CUBE, _OCTA])
    offsets = np.concatenate([rng.uniform(1.05, 1.7, 6), rng.uniform(0.85, 1.15, 8)]) * size
    # Broken grains: a few extra random cuts.
    n_cut = rng.integers(0, 4)
    cut = rng.standard_normal((n_cut, 3))
    cut /= np.linalg.norm(cut, axis=1, keepdims=True)
    normals = np.concatenate([normals, cut])
    offsets = np.concatenate([offsets, rng.uniform(0.6, 0.95, n_cut) * size])
    # Shape x' = rotation @ diag(stretch) @ x: the plane n.x <= d becomes
    # (A^-T n).x' <= d; normalise so the left side is a distance in voxels.
    transform = rotation @ np.diag(stretch)
    normals = normals @ np.linalg.inv(transform)
    norms = np.linalg.norm(normals, axis=1)
    return normals / norms[:, None], offsets / norms


def _polytope_box(normals, offsets):
    """Axis-aligned bounds of the polytope, from its vertices (plane triplets)."""
    triples = np.array(list(itertools.combinations(range(len(normals)), 3)))
    a = normals[triples]
    b = offsets[triples]
    ok = np.abs(np.linalg.det(a)) > 1e-9
    vertices = np.linalg.solve(a[ok], b[ok][..., None])[..., 0]
    feasible = (vertices @ normals.T <= offsets + 1e-6).all(axis=1)
    vertices = vertices[feasible]
    return vertices.min(axis=0), vertices.max(axis=0)


def _draw_grains(rng, levels):
    """Faceted diamond grains with a thin dark rim (a gap to the matrix)."""
    shape = np.array(levels.shape)
    size_lo, size_hi = 18.0, 34.0
    margin = 1.6 * size_hi
    extended = shape + 2 * margin
    # Grain volume to place in the extended box: 27 % of it, so that after
    # the Si-rich crumbs and pores about 22 % of any slice shows grain.
    budget = 0.27 * np.prod(extended)
    centres, radii, placed = [], [], 0.0
    # Bounded attempts: the spacing rule rejects some positions.
    for _ in range(int(budget / (4.0 * size_lo**3)) + 50):
        if placed >= budget:
            break
        size = rng.uniform(size_lo, size_hi)
        centre = rng.uniform(0, 1, 3) * extended - margin
        normals, offsets = _random_grain(rng, size)
        if centres:
            d = np.linalg.norm(np.array(centres) - centre, axis=1)
            # Crystals do not interpenetrate; allow facets to touch.
            if (d < 0.95 * (np.array(radii) + size)).any():
                continue
        centres.append(centre)
        radii.append(size)
        # The mean volume of these polyhedra, in units of size**3.
        placed += 6.2 * size**3
        lo, hi = _polytope_box(normals, offsets)
        lo = np.maximum(np.floor(centre + lo).astype(int) - 2, 0)
        hi = np.minimum(np.ceil(centre + hi).astype(int) + 3, shape)
        if (hi <= lo).any():
            continue
        _paint_grain(rng, levels, normals, offsets, centre, lo, hi)


def _paint_grain(rng, levels, normals, offsets, centre, lo, hi):
    axes = [np.arange(a, b, dtype=np.float32) - np.float32(c) for a, b, c in zip(lo, hi, centre)]
    dz, dy, dx = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    dist = np.full(tuple(hi - lo), -np.inf, np.float32)
    for n, d in zip(normals.astype(np.float32), offsets.astype(np.float32)):
        np.maximum(dist, n[0] * dz + n[1] * dy + n[2] * dx - d, out=dist)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    view = levels[box]
    # A gentle brightness gradient across the grain, as in the real data.
    gradient = rng.standard_normal(3).astype(np.float32) * 0.08
    level = _GRAIN + rng.normal(0.0, 3.0)
    inside = dist <= 0
    shade = level + gradient[0] * dz + gradient[1] * dy + gradient[2] * dx
    rim = (dist > 0) & (dist < 1.5)
    view[rim] -= 18.0
    view[inside] = np.broadcast_to(shade, dist.shape)[inside]


def _draw_spots(rng, levels, silicon):
    """Small dark pores and tiny saturated inclusions."""
    n_vox = levels.size
    # (voxels per attempt, radius range, level, where the field allows it):
    # pores sit at Si-rich boundaries, where sintering leaves gaps;
    # inclusions in or at the edge of the Si-rich phase.
    kinds = (
        (2.0e4, (0.8, 2.6), _PORE, lambda d: abs(d) < 4.0),
        (1.2e5, (1.5, 4.0), _INCLUSION, lambda d: d > -3.0),
    )
    for per, (r_lo, r_hi), level, allowed in kinds:
        for _ in range(max(1, int(n_vox / per))):
            c = rng.uniform(0, 1, 3) * np.array(levels.shape)
            r = rng.uniform(r_lo, r_hi)
            if not allowed(silicon[tuple(np.minimum(c.astype(int), np.array(levels.shape) - 1))]):
                continue
            box, dist2 = _sphere_box(c, r, levels.shape)
            levels[box][dist2 <= r * r] = level


def _ring_pattern(rng, plane):
    """Relative intensity change of concentric ring artifacts in one slice.

    Bands a few voxels wide, about 3 % of the signal near the rotation
    centre and a third of that far out, like the rings in the real slices.
    """
    y, x = plane
    cy = y / 2 + rng.uniform(-0.05, 0.05) * y
    cx = x / 2 + rng.uniform(-0.05, 0.05) * x
    radius = np.hypot(np.arange(y)[:, None] - cy, np.arange(x)[None, :] - cx)
    n = int(radius.max()) + 2
    # Band-pass noise: rings come and go with a spacing of about 8-10 voxels.
    white = rng.standard_normal(n)
    profile = ndimage.gaussian_filter1d(white, 1.5) - ndimage.gaussian_filter1d(white, 4.0)
    profile /= profile.std()
    profile *= 0.03 * (0.35 + 0.65 * np.exp(-np.arange(n) / 80.0))
    return np.interp(radius, np.arange(n), profile).astype(np.float32)


def _add_noise(rng, levels):
    """Noise correlated over ~2 voxels (like filtered back-projection), std ~4 grey levels at the matrix."""
    noise = rng.standard_normal(levels.shape, dtype=np.float32)
    taps = np.exp(-0.5 * (np.arange(-3, 4) / 0.85) ** 2)
    taps /= np.sqrt((taps**2).sum())
    for axis in range(3):
        if levels.shape[axis] > 1:
            ndimage.correlate1d(noise, taps.astype(np.float32), axis=axis, output=noise)
    # Photon noise: the variance grows with the signal.
    noise *= 3.6 * (np.maximum(levels, 1.0) / _MATRIX) ** 0.35
    levels += noise


def _to_dtype(levels, dtype):
    np.clip(levels, 0.0, 255.0, out=levels)
    levels *= _LEVEL_SCALE[dtype.name]
    if dtype.kind == "f":
        return levels.astype(dtype, copy=False)
    return np.rint(levels).astype(dtype)


# --------------------------------------------------------------------------- artifacts


class Corrupted(NamedTuple):
    """A volume with injected artifacts and what it looked like before.

    Attributes
    ----------
    volume : numpy.ndarray
        The corrupted volume, same shape and dtype as the input; equal to
        ``truth`` outside ``mask``, bit for bit.
    mask : numpy.ndarray of bool
        Same shape; True where an artifact was injected.
    truth : numpy.ndarray
        A copy of the clean input.
    """

    volume: np.ndarray
    mask: np.ndarray
    truth: np.ndarray


def add_artifacts(volume, *, n: int = 20, seed: int = 0, kinds=ARTIFACT_KINDS) -> Corrupted:
    """Inject ``n`` artifacts with known ground truth into a clean volume.

    Parameters
    ----------
    volume : numpy.ndarray, shape (Z, Y, X)
        Clean volume, dtype uint8, uint16, int16 or float32. Not modified.
    n : int, default 20
        Number of artifacts; 0 gives an empty mask.
    seed : int, default 0
        Non-negative seed; the same seed and input give the same result.
    kinds : sequence of str, default ("box", "blob", "streak", "large")
        Artifact shapes to draw from, each artifact picking one at random:

        ``"box"``
            rectangle of 4..18 x 4..18 pixels, like a square hole;
        ``"blob"``
            irregular connected shape within an 18 x 18 box;
        ``"streak"``
            line 1..3 pixels wide and about 8..40 pixels long at a random
            angle;
        ``"large"``
            rectangle or blob between 20 and 40 pixels across, larger than
            the network's hole.

        About a quarter of boxes and blobs run through 2..5 consecutive
        slices with a footprint that changes slightly from slice to slice.

    Returns
    -------
    Corrupted
        ``(volume, mask, truth)``: the corrupted copy, the bool artifact
        mask (True = artifact) and a copy of the input, all of the input's
        shape. Each artifact is filled with one kind of defect, chosen per
        artifact: zeros; saturation (the dtype's maximum for integers, 20 %
        of the value range above the volume's maximum for float32); strong
        noise around the local mean; or a constant offset up or down. The
        volume's own value range (finite values) sets the scale.

    Notes
    -----
    Artifacts keep at least one voxel (in 3D, diagonals included) away from
    each other, so each is its own connected component in any connectivity.
    Counting connected components slice by slice (as
    :func:`ctinpaint.artifacts.find_artifacts` does) gives more than ``n``
    when multi-slice artifacts are present: one per slice they cross.

    Raises
    ------
    TypeError
        ``volume`` not a NumPy array or of an unsupported dtype; ``n`` or
        ``seed`` not an integer; ``kinds`` not a sequence of str.
    ValueError
        ``volume`` not 3D; negative ``n`` or ``seed``; ``kinds`` empty or
        with an unknown name; ``n`` artifacts that do not fit in the volume.

    Examples
    --------
    >>> import numpy as np
    >>> clean = np.full((4, 64, 64), 100, np.uint8)
    >>> out = add_artifacts(clean, n=5, seed=0)
    >>> bool((out.volume[~out.mask] == out.truth[~out.mask]).all())
    True
    >>> out.mask.dtype, out.mask.shape
    (dtype('bool'), (4, 64, 64))
    """
    if not isinstance(volume, np.ndarray):
        raise TypeError(f"volume must be a numpy.ndarray, got {type(volume).__name__}")
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3D (Z, Y, X), got shape {volume.shape}")
    dtype = check_volume_dtype(volume.dtype, name="volume")
    n = check_int(n, name="n", minimum=0)
    seed = check_int(seed, name="seed", minimum=0)
    kinds = _check_kinds(kinds)
    rng = np.random.default_rng(seed)

    truth = volume.copy()
    mask = np.zeros(volume.shape, bool)
    placed = _place_artifacts(rng, volume.shape, n, kinds)

    corrupted = volume.copy()
    if placed:
        _, high, span = _value_range(volume, dtype)
        for box, footprint in placed:
            corrupted[box][footprint] = _defect_values(rng, volume[box][footprint], high, span, dtype)
            mask[box] |= footprint
    return Corrupted(volume=corrupted, mask=mask, truth=truth)


def _check_kinds(kinds) -> tuple[str, ...]:
    if isinstance(kinds, str):
        raise TypeError(f"kinds must be a sequence of str such as ('box', 'streak'), got the str {kinds!r}")
    try:
        kinds = tuple(kinds)
    except TypeError as exc:
        raise TypeError(f"kinds must be a sequence of str, got {type(kinds).__name__}") from exc
    if not kinds:
        raise ValueError(f"kinds must name at least one of {ARTIFACT_KINDS}")
    unknown = [k for k in kinds if k not in ARTIFACT_KINDS]
    if unknown:
        raise ValueError(f"kinds: unknown artifact kind(s) {unknown!r}; choose from {ARTIFACT_KINDS}")
    return tuple(dict.fromkeys(kinds))


def _place_artifacts(rng, shape, n, kinds):
    """Footprints and their boxes, each one voxel clear of all others."""
    # Voxels reserved so far, with a one-voxel margin all round so that a
    # footprint grown by one voxel always fits.
    taken = np.zeros(tuple(s + 2 for s in shape), bool)
    placed = []
    cube = np.ones((3, 3, 3), bool)
    for _ in range(n):
        for _ in range(_PLACEMENT_TRIES):
            footprint = _footprint(rng, rng.choice(kinds), shape[0])
            if any(f > s for f, s in zip(footprint.shape, shape)):
                continue
            start = [int(rng.integers(0, s - f + 1)) for s, f in zip(shape, footprint.shape)]
            box = tuple(slice(a, a + f) for a, f in zip(start, footprint.shape))
            inner = tuple(slice(a + 1, a + 1 + f) for a, f in zip(start, footprint.shape))
            if (taken[inner] & footprint).any():
                continue
            outer = tuple(slice(a, a + f + 2) for a, f in zip(start, footprint.shape))
            taken[outer] |= ndimage.binary_dilation(np.pad(footprint, 1), structure=cube)
            placed.append((box, footprint))
            break
        else:
            raise ValueError(
                f"n={n} artifacts do not fit in a volume of shape {tuple(shape)} "
                f"(placed {len(placed)} at least one voxel apart); use a smaller n"
            )
    return placed


def _footprint(rng, kind, depth_limit):
    """A (D, H, W) bool footprint of one artifact, tight around its pixels."""
    if kind == "streak":
        return _streak(rng)[None]
    if kind == "large":
        size = rng.integers(_LARGE_MIN, _LARGE_MAX + 1, 2)
        if rng.uniform() < 0.5:
            return np.ones((1, *size), bool)
        return _blob(rng, size, min_extent=_LARGE_MIN)[None]
    size = rng.integers(_BOX_MIN if kind == "box" else 5, _SMALL_MAX + 1, 2)
    base = np.ones(size, bool) if kind == "box" else _blob(rng, size, min_extent=3)
    depth = 1
    if rng.uniform() < 0.25:
        depth = min(int(rng.integers(2, 6)), depth_limit)
    return _through_slices(rng, base, depth, kind)


def _through_slices(rng, base, depth, kind):
    """Stack ``depth`` slightly different versions of ``base`` (overlapping)."""
    layers = [base]
    for _ in range(depth - 1):
        prev = layers[-1]
        if kind == "box":
            h, w = (np.clip(s + rng.integers(-1, 2), _BOX_MIN, _SMALL_MAX) for s in prev.shape)
            layer = np.ones((h, w), bool)
        else:
            grow = ndimage.binary_dilation if rng.uniform() < 0.5 else ndimage.binary_erosion
            layer = _largest_component(grow(np.pad(prev, 1)))
            if max(layer.shape) < 3 or max(layer.shape) > _SMALL_MAX:
                layer = prev
        layers.append(layer)
    height = max(layer.shape[0] for layer in layers)
    width = max(layer.shape[1] for layer in layers)
    out = np.zeros((depth, height, width), bool)
    for k, layer in enumerate(layers):
        # Centre every layer, so consecutive slices overlap like one object.
        r0 = (height - layer.shape[0]) // 2
        c0 = (width - layer.shape[1]) // 2
        out[k, r0 : r0 + layer.shape[0], c0 : c0 + layer.shape[1]] = layer
    return out


def _blob(rng, size, *, min_extent):
    """Irregular single-component shape filling part of a ``size`` box."""
    h, w = (int(s) for s in size)
    yy = (np.arange(h) - (h - 1) / 2) / (h / 2)
    xx = (np.arange(w) - (w - 1) / 2) / (w / 2)
    radial = yy[:, None] ** 2 + xx[None, :] ** 2
    while True:
        rough = ndimage.gaussian_filter(rng.standard_normal((h, w)), 1.0 + 0.06 * max(h, w))
        rough /= rough.std() + 1e-12
        shape = _largest_component(radial + 0.35 * rough < 0.75)
        if shape.any() and max(shape.shape) >= min_extent:
            return shape


def _largest_component(image):
    """The largest 4-connected component, cropped to its bounding box."""
    labels, count = ndimage.label(image)
    if count == 0:
        return np.zeros((0, 0), bool)
    sizes = np.bincount(labels.ravel())[1:]
    keep = labels == (np.argmax(sizes) + 1)
    rows = np.flatnonzero(keep.any(axis=1))
    cols = np.flatnonzero(keep.any(axis=0))
    return keep[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _streak(rng):
    """Thin line at a random angle, 4-connected even when one pixel wide."""
    # The rounded ends add up to 3 pixels to the extent.
    length = rng.uniform(8.0, _STREAK_MAX - 3.0)
    width = rng.uniform(1.0, 3.0)
    angle = rng.uniform(0.0, np.pi)
    dy, dx = np.sin(angle) * length, np.cos(angle) * length
    pad = 2
    h = int(np.ceil(abs(dy))) + 2 * pad + 1
    w = int(np.ceil(abs(dx))) + 2 * pad + 1
    y0, x0 = pad + max(-dy, 0.0), pad + max(-dx, 0.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    # Distance of each pixel centre to the segment.
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / length**2, 0.0, 1.0)
    dist = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))
    # 0.75 rather than 0.5 for the thinnest lines keeps them 4-connected.
    return _largest_component(dist <= max(width / 2.0, 0.75))


def _value_range(volume, dtype):
    """Lowest and highest finite value, and the span that scales the defects."""
    values = volume if dtype.kind in "ui" else volume[np.isfinite(volume)]
    if values.size == 0:
        return 0.0, 1.0, 1.0
    low, high = float(values.min()), float(values.max())
    span = high - low
    if span <= 0:
        # A constant volume: scale by what the dtype can hold instead.
        span = float(np.iinfo(dtype).max) - float(np.iinfo(dtype).min) if dtype.kind in "ui" else 1.0
    return low, high, span


def _defect_values(rng, clean, high, span, dtype):
    """Corrupted values for one artifact's voxels (``clean`` in footprint order)."""
    kind = _CORRUPTIONS[rng.integers(len(_CORRUPTIONS))]
    if kind == "zero":
        values = np.zeros(clean.shape)
    elif kind == "saturate":
        top = float(np.iinfo(dtype).max) if dtype.kind in "ui" else high + 0.2 * span
        values = np.full(clean.shape, top)
    elif kind == "noise":
        values = clean.mean(dtype=np.float64) + rng.normal(0.0, 0.3 * span, clean.shape)
    else:
        sign = rng.choice((-1.0, 1.0))
        values = clean.astype(np.float64) + sign * rng.uniform(0.2, 0.4) * span
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)
