"""Robust intensity normalisation between a volume's units and the network's range.

The networks work on float32 values in [0, 1]. A CT volume arrives as uint8,
uint16, int16 or float32 in arbitrary units, often with a few extreme voxels
(metal, zingers) that would squash everything else if the plain minimum and
maximum were used. :func:`fit_intensity` therefore maps two percentiles of a
random sample of blocks to 0 and 1; the resulting :class:`IntensityMapping` is a
small JSON-serialisable object saved with every model, so a model always
converts data the way it was trained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ._checks import NAN_POLICIES, check_choice, check_float, check_int, check_volume_dtype

#: Voxel values drawn from each sampled block at most; keeps fitting memory bounded.
_VALUES_PER_BLOCK = 1 << 20


@dataclass(frozen=True)
class IntensityMapping:
    """Affine map from volume units to the network range and back.

    ``low`` maps to 0 and ``high`` to 1. Values outside ``[low, high]`` are
    clipped on the way in (the network's output range is [0, 1]); on the way out
    values are rounded and clipped to the range of ``dtype``.

    Attributes
    ----------
    low, high : float
        Volume values mapped to 0 and 1; ``high > low``.
    dtype : str
        The volume's dtype ("uint8", "uint16", "int16" or "float32"); results of
        :meth:`from_network` come back in it.

    Examples
    --------
    >>> import numpy as np
    >>> m = IntensityMapping(low=100.0, high=200.0, dtype="uint8")
    >>> m.to_network(np.array([50, 100, 150, 250], np.uint8))
    array([0. , 0. , 0.5, 1. ], dtype=float32)
    >>> m.from_network(np.array([0.0, 0.5, 1.0], np.float32))
    array([100, 150, 200], dtype=uint8)
    """

    low: float
    high: float
    dtype: str

    def __post_init__(self):
        low = check_float(self.low, name="low")
        high = check_float(self.high, name="high")
        if not high > low:
            raise ValueError(f"high ({high}) must be greater than low ({low})")
        dtype = check_volume_dtype(self.dtype, name="dtype")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "dtype", dtype.name)

    @property
    def scale(self) -> float:
        """Volume units per network unit (``high - low``)."""
        return self.high - self.low

    def to_network(self, values) -> np.ndarray:
        """Map volume values to float32 in [0, 1] (clipped).

        Parameters
        ----------
        values : array-like, any shape, any real dtype

        Returns
        -------
        numpy.ndarray
            float32, same shape; a new array.
        """
        out = np.asarray(values, dtype=np.float64)
        out = (out - self.low) / self.scale
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def from_network(self, values) -> np.ndarray:
        """Map network values back to the volume's dtype and units.

        Parameters
        ----------
        values : array-like, any shape, float

        Returns
        -------
        numpy.ndarray
            Same shape, dtype ``self.dtype``. Integer types are rounded to the
            nearest integer and clipped to the type's range; float32 is neither.
        """
        out = np.asarray(values, dtype=np.float64) * self.scale + self.low
        dtype = np.dtype(self.dtype)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        return out.astype(dtype)

    def std_to_volume(self, std) -> np.ndarray:
        """Convert a standard deviation in network units to volume units (float32).

        Parameters
        ----------
        std : array-like, any shape

        Returns
        -------
        numpy.ndarray
            float32, same shape.
        """
        return (np.asarray(std, dtype=np.float64) * self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-serialisable form; inverse of :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> IntensityMapping:
        """Rebuild a mapping from :meth:`to_dict` output, checking keys and types.

        Raises
        ------
        ValueError
            Missing or unexpected keys, or invalid values.
        """
        if not isinstance(data, dict):
            raise ValueError(f"intensity mapping: expected a JSON object, got {type(data).__name__}")
        expected = {"low", "high", "dtype"}
        if set(data) != expected:
            raise ValueError(
                f"intensity mapping: expected keys {sorted(expected)}, got {sorted(map(str, data))}"
            )
        try:
            return cls(low=data["low"], high=data["high"], dtype=data["dtype"])
        except TypeError as exc:
            raise ValueError(f"intensity mapping: {exc}") from exc


def fit_intensity(
    volume,
    *,
    mask=None,
    percentiles: tuple[float, float] = (0.5, 99.5),
    n_blocks: int = 32,
    seed: int = 0,
    nan_policy: str = "raise",
) -> IntensityMapping:
    """Fit a robust :class:`IntensityMapping` from a random sample of blocks.

    Only ``n_blocks`` chunks of the volume are read (all of them when it has
    fewer), so fitting a terabyte volume costs a few chunk reads.

    Parameters
    ----------
    volume : path or array
        Anything :func:`ctinpaint.io.open_volume` accepts, shape (Z, Y, X).
    mask : path or array, optional
        Artifact mask of the same shape; masked voxels are left out, so
        artifacts (saturated streaks, zeroed regions) do not bend the mapping.
    percentiles : (float, float), default (0.5, 99.5)
        Percentiles mapped to 0 and 1, ``0 <= lo < hi <= 100``.
    n_blocks : int, default 32
        Number of chunks sampled.
    seed : int, default 0
        Which chunks are sampled.
    nan_policy : {"raise", "mask"}, default "raise"
        "raise": a sampled chunk with NaN/Inf raises ValueError with the count;
        "mask": non-finite voxels are left out like masked ones.

    Returns
    -------
    IntensityMapping
        With ``dtype`` the volume's dtype. A constant volume gets
        ``high = low + 1``, so the mapping stays invertible.

    Raises
    ------
    ValueError
        Bad percentiles, NaN/Inf with ``nan_policy="raise"``, or no usable voxel
        in the sampled blocks.

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.arange(1000, dtype=np.uint16).reshape(10, 10, 10)
    >>> m = fit_intensity(vol, percentiles=(0, 100))
    >>> m.low, m.high, m.dtype
    (0.0, 999.0, 'uint16')
    """
    from .io import open_mask, open_volume

    vol = open_volume(volume, name="volume")
    msk = None if mask is None else open_mask(mask, shape=vol.shape)
    if not (isinstance(percentiles, (tuple, list)) and len(percentiles) == 2):
        raise TypeError(f"percentiles must be a pair (low, high), got {percentiles!r}")
    lo = check_float(percentiles[0], name="percentiles[0]", minimum=0.0, maximum=100.0)
    hi = check_float(percentiles[1], name="percentiles[1]", minimum=0.0, maximum=100.0)
    if not lo < hi:
        raise ValueError(f"percentiles: low ({lo}) must be below high ({hi})")
    n_blocks = check_int(n_blocks, name="n_blocks", minimum=1)
    seed = check_int(seed, name="seed")
    check_choice(nan_policy, NAN_POLICIES, name="nan_policy")
    if msk is not None:
        msk = msk.rechunk(vol.chunks)

    rng = np.random.default_rng(seed)
    grid = vol.numblocks
    total = math.prod(grid)
    picks = np.sort(rng.choice(total, size=min(n_blocks, total), replace=False))
    parts = []
    for flat in picks:
        index = np.unravel_index(flat, grid)
        block = np.asarray(vol.blocks[index].compute())
        keep = np.ones(block.shape, bool) if msk is None else ~np.asarray(msk.blocks[index].compute()).astype(bool)
        if block.dtype.kind == "f":
            finite = np.isfinite(block)
            bad = int(block.size - np.count_nonzero(finite))
            if bad and nan_policy == "raise":
                raise ValueError(
                    f"volume: {bad} NaN/Inf voxels in block {tuple(int(i) for i in index)}; "
                    "clean them or pass nan_policy='mask' to leave them out"
                )
            keep &= finite
        values = block[keep]
        if values.size > _VALUES_PER_BLOCK:
            values = rng.choice(values, size=_VALUES_PER_BLOCK, replace=False)
        parts.append(values)
    values = np.concatenate(parts) if parts else np.empty(0)
    if values.size == 0:
        raise ValueError("volume: no unmasked, finite voxel in the sampled blocks; cannot fit an intensity mapping")
    low, high = (float(v) for v in np.percentile(values.astype(np.float64), [lo, hi]))
    if not high > low:
        high = low + 1.0
    return IntensityMapping(low=low, high=high, dtype=vol.dtype.name)
