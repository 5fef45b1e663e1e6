"""Calibrate the spread of the generated fills on held-out holes with known truth.

A GAN's sample spread is not, by construction, the size of its error: trained
briefly it is often too wide, trained long it tends to be too narrow. Since
training holds out windows whose truth is known, the spread can be corrected
after training the way a forecaster's ensemble is: one factor ``std_scale``
multiplies every standard deviation so that the truth falls within mean ± 1σ
and mean ± 2σ as often as a normal distribution says (68.3 % and 95.4 %), and
one factor ``interval_scale`` widens or narrows every quantile's distance from
the mean so that the central 2.5–97.5 % interval holds the truth 95 % of the
time. Both factors are fitted on held-out windows the best checkpoint was not
chosen on, stored in the model file, and applied by
:func:`ctinpaint.inpaint.inpaint_volume` and :func:`ctinpaint.evaluate.evaluate_model`.

A model with 2.5D context makes two kinds of error: small where an adjacent
slice is known at the pixel (the fill follows it), large where none is (the
fill comes from the slice alone), and its raw spread does not differ by the
same factor. Such models get a second pair of factors, ``guided_std_scale``
and ``guided_interval_scale``, fitted on and applied to the "guided" pixels
(see :func:`guided_pixels`); the first pair serves every other pixel. Where
both adjacent slices are known (a pixel "flanked" by them, as under an
artifact in one slice only) the error shrinks further than the spread does:
on the 3D phantom the guided factor left such pixels within mean ± 1σ 83 %
of the time against 74 % for pixels guided from one side. A third pair,
``flanked_std_scale`` and ``flanked_interval_scale``, serves them (see
:func:`guided_sides`), and the guided pair then serves the one-sided ones.

A single factor cannot fix the *shape* of the error distribution: when errors
are heavy-tailed, the fitted factor balances the 1σ and 2σ coverages (it
minimises the sum of their squared misses), and the stored ``after``
coverages say how close both came. It also cannot create spread where there
is none: pixels whose samples all agree keep a zero std.

The factors fix the spread of each pixel, not how neighbouring pixels vary
together, which is what a single sample's texture is. Depending on how long it
trained, G's samples come out too smooth or too rough next to real CT (in our
measurements 0.7-1.9 times the truth's high-pass energy, and the texture term
of training does not settle it), and rougher the deeper a pixel lies in the
hole, where the spread is large. A model with a regressed mean therefore gets
``texture_tilt``, one number per depth bin (:data:`TEXTURE_DEPTHS`): every fill
is filtered so that its fine frequencies are boosted or damped
(:func:`ctinpaint.sampling.tilt_texture`) by the amount that brings single
samples of held-out windows closest to the truth's high-pass energy at that
depth (:func:`fit_texture_tilt`). Being linear and applied before the samples
are re-centred on the regressed mean and re-scaled to the regressed std, the
filter changes neither. A model with 2.5D context also gets
``guided_texture_tilt`` for its guided pixels: there the neighbouring slice
lends the fill its grain, elsewhere G invents it, and one tilt for both
smoothed the unguided fills to half the truth's texture (measured on the 3D
phantom: 0.92 to 0.41 for holes through three slices, while the guided ones
went 0.85 to 0.79). Like the spread factors, the flanked pixels get a tilt of
their own too (``flanked_texture_tilt``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from ._checks import check_float

__all__ = [
    "Calibration", "fit_calibration", "fit_texture_tilt", "fit_tiled_calibration", "guided_pixels", "guided_sides",
    "NORMAL_COVERAGE",
    "TILED_DEPTHS", "TEXTURE_DEPTHS", "MAX_TEXTURE_TILT",
]  # fmt: skip

#: Share of a normal distribution within 1 and 2 standard deviations of its mean.
NORMAL_COVERAGE = (math.erf(1 / math.sqrt(2)), math.erf(2 / math.sqrt(2)))
#: Target coverage of the central 2.5–97.5 % quantile interval.
INTERVAL_TARGET = 0.95
# Candidate factors: log-spaced, 1 % apart, from 1/50 to 50.
_GRID = np.exp(np.linspace(math.log(0.02), math.log(50.0), 787))
# Fewest held-out pixels of each kind (guided or not) to fit separate factors on.
_MIN_GROUP_PIXELS = 200
#: Largest ``texture_tilt`` magnitude: the finest frequency scaled by at most 9 ** 4 ≈ 6561.
MAX_TEXTURE_TILT = 4.0
#: Upper edges of the depth bins of ``texture_tilt`` (chessboard distance to the nearest
#: pixel not filled, inside the hole box); the last bin also holds everything deeper.
TEXTURE_DEPTHS = (2, 4, 6, 9)
# Uniform tilts tried by fit_texture_tilt; each bin's is interpolated where its log ratio crosses 0
# (it is close to linear in the tilt: measured steps of 0.49 and 0.47 per 0.15).
_TILT_GRID = np.linspace(-1.5, 1.5, 13)


@dataclass(frozen=True)
class Calibration:
    """Factors that turn the raw spread of the fills into honest error bars.

    Attributes
    ----------
    std_scale : float
        Multiplies every per-pixel standard deviation (> 0; 1 = unchanged).
    interval_scale : float
        Multiplies every quantile's distance from the mean (> 0; 1 = unchanged).
    n_pixels : int
        Held-out hole pixels the factors were fitted on (0: not fitted).
    guided_std_scale, guided_interval_scale : float or None
        The factors for guided pixels (an adjacent slice known there) of a
        model with 2.5D context; None: ``std_scale`` and ``interval_scale``
        serve every pixel.
    flanked_std_scale, flanked_interval_scale : float or None
        The factors for pixels with both adjacent slices known (then the
        guided factors serve the pixels with one); None: the guided factors
        serve both.
    before, after : dict of str to float
        Coverages (``coverage_1sigma``, ``coverage_2sigma`` and, when quantiles
        were sampled, ``interval_coverage``) on those pixels with the raw and
        the calibrated spread.
    tiled_depths, tiled_std_scale, tiled_interval_scale : tuple or None
        Extra factors for the pixels of artifacts larger than one window
        (filled tile by tile), by depth: ``tiled_depths`` are the upper
        edges of depth bins (chessboard distance to the nearest known pixel;
        the last bin also holds everything deeper) and the factors were
        fitted per bin; a pixel takes them interpolated linearly between the
        bins' centres (see :meth:`tiled_factors`). They multiply the factors
        above. None: no extra factor (see :func:`fit_tiled_calibration`).
    tiled_after : dict of str to float
        Coverages on the tiled pixels they were fitted on, with them.
    texture_tilt : tuple of float or None
        One tilt per bin of :data:`TEXTURE_DEPTHS`, applied to every fill by
        sampling (``texture_tilt`` of :func:`ctinpaint.sampling.sample_fills`);
        None = G's own texture.
    guided_texture_tilt : tuple of float or None
        The same for the guided pixels of a model with 2.5D context (then
        ``texture_tilt`` serves the others); None: ``texture_tilt`` serves
        every pixel.
    flanked_texture_tilt : tuple of float or None
        The same for the pixels with both adjacent slices known (then
        ``guided_texture_tilt`` serves the one-sided ones); None:
        ``guided_texture_tilt`` serves both.
    texture : dict of str to float
        Texture ratios (a single sample's high-pass energy over the truth's)
        on the held-out windows :func:`fit_texture_tilt` used, with the
        windows' own holes and with the whole hole box unknown, before and
        after the tilt: ``holes_before``, ``holes_after``, ``box_before``,
        ``box_after``.

    Examples
    --------
    >>> Calibration().std_scale
    1.0
    >>> c = Calibration(std_scale=0.5, interval_scale=0.6, n_pixels=100)
    >>> Calibration.from_dict(c.to_dict()) == c
    True
    """

    std_scale: float = 1.0
    interval_scale: float = 1.0
    n_pixels: int = 0
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    guided_std_scale: float | None = None
    guided_interval_scale: float | None = None
    tiled_depths: tuple | None = None
    tiled_std_scale: tuple | None = None
    tiled_interval_scale: tuple | None = None
    tiled_after: dict = field(default_factory=dict)
    texture_tilt: tuple | None = None
    texture: dict = field(default_factory=dict)
    guided_texture_tilt: tuple | None = None
    flanked_std_scale: float | None = None
    flanked_interval_scale: float | None = None
    flanked_texture_tilt: tuple | None = None

    def __post_init__(self):
        if (self.guided_std_scale is None) != (self.guided_interval_scale is None):
            raise ValueError("guided_std_scale and guided_interval_scale must be given together")
        if (self.flanked_std_scale is None) != (self.flanked_interval_scale is None):
            raise ValueError("flanked_std_scale and flanked_interval_scale must be given together")
        if self.flanked_std_scale is not None and self.guided_std_scale is None:
            raise ValueError("flanked_std_scale needs guided_std_scale (the factors of the one-sided guided pixels)")
        tiled = (self.tiled_depths, self.tiled_std_scale, self.tiled_interval_scale)
        if any(t is not None for t in tiled):
            if any(t is None or isinstance(t, (str, bytes)) or not hasattr(t, "__len__") for t in tiled):
                raise ValueError("tiled_depths, tiled_std_scale and tiled_interval_scale must be given together, as sequences")
            if not len(self.tiled_depths) == len(self.tiled_std_scale) == len(self.tiled_interval_scale) >= 1:
                raise ValueError("tiled_depths, tiled_std_scale and tiled_interval_scale must have the same length >= 1")
            depths = tuple(int(d) for d in self.tiled_depths)
            if any(d < 1 for d in depths) or list(depths) != sorted(set(depths)):
                raise ValueError(f"tiled_depths must be increasing integers >= 1, got {self.tiled_depths!r}")
            object.__setattr__(self, "tiled_depths", depths)
            for name in ("tiled_std_scale", "tiled_interval_scale"):
                values = tuple(check_float(v, name=name, minimum=0.0) for v in getattr(self, name))
                if min(values) <= 0:
                    raise ValueError(f"{name} must be > 0, got {values}")
                object.__setattr__(self, name, values)
        for name in ("std_scale", "interval_scale", "guided_std_scale", "guided_interval_scale", "flanked_std_scale",
                     "flanked_interval_scale"):
            if getattr(self, name) is None and name.startswith(("guided", "flanked")):
                continue
            value = check_float(getattr(self, name), name=name, minimum=0.0)
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
            object.__setattr__(self, name, value)
        for name in ("texture_tilt", "guided_texture_tilt", "flanked_texture_tilt"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_texture_tilt(getattr(self, name), name=name))
        if self.guided_texture_tilt is not None and self.texture_tilt is None:
            raise ValueError("guided_texture_tilt needs texture_tilt (the tilt of the other pixels)")
        if self.flanked_texture_tilt is not None and self.guided_texture_tilt is None:
            raise ValueError("flanked_texture_tilt needs guided_texture_tilt (the tilt of the one-sided guided pixels)")
        if isinstance(self.n_pixels, bool) or not isinstance(self.n_pixels, int) or self.n_pixels < 0:
            raise ValueError(f"n_pixels must be an integer >= 0, got {self.n_pixels!r}")
        for name in ("before", "after", "tiled_after", "texture"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in value.items()
            ):
                raise ValueError(f"{name} must be a dict of metric name to number, got {value!r}")

    def texture_tilts(self) -> dict:
        """``texture_tilt``, ``guided_texture_tilt`` and ``flanked_texture_tilt`` as keyword arguments
        of :func:`ctinpaint.sampling.sample_fills` and :func:`ctinpaint.sampling.draw_fills`.

        Examples
        --------
        >>> Calibration(texture_tilt=0.5).texture_tilts()["texture_tilt"]
        (0.5, 0.5, 0.5, 0.5)
        """
        return {"texture_tilt": self.texture_tilt, "guided_texture_tilt": self.guided_texture_tilt,
                "flanked_texture_tilt": self.flanked_texture_tilt}  # fmt: skip

    def apply(self, stats, sides=None):
        """The same statistics with the spread calibrated.

        Parameters
        ----------
        stats : ctinpaint.sampling.FillStats
            From :func:`ctinpaint.sampling.sample_fills`, in network units.
        sides : numpy.ndarray, int (N, P, P), optional
            :func:`guided_sides` of the windows (how many adjacent slices are
            known at each pixel); used when the calibration has guided
            factors (then required). A bool map (:func:`guided_pixels`) will
            do for a calibration without flanked factors.

        Returns
        -------
        ctinpaint.sampling.FillStats
            New arrays: ``std`` times its factor, and each quantile moved to
            ``mean + factor * (quantile - mean)`` on filled pixels (the
            guided factors on guided pixels, the flanked ones on pixels with
            both sides known); ``mean`` and ``filled`` unchanged (the same arrays).

        Raises
        ------
        ValueError
            A calibration with guided factors and no (or a mismatched)
            ``sides``, or a bool ``sides`` for one with flanked factors.
        """
        std_scale, interval_scale = np.float32(self.std_scale), np.float32(self.interval_scale)
        if self.guided_std_scale is not None:
            if sides is None or np.shape(sides) != stats.std.shape:
                raise ValueError(
                    f"sides: this calibration has factors for guided pixels; pass the number of known adjacent "
                    f"slices, shape {stats.std.shape} (ctinpaint.calibration.guided_sides), got "
                    f"{np.shape(sides) if sides is not None else None}"
                )
            sides = np.asarray(sides)
            if self.flanked_std_scale is not None and sides.dtype == bool:
                raise ValueError(
                    "sides: this calibration has factors for pixels with both adjacent slices known; pass "
                    "ctinpaint.calibration.guided_sides (counts), not a bool map"
                )
            std_scale = np.where(sides > 0, np.float32(self.guided_std_scale), std_scale)
            interval_scale = np.where(sides > 0, np.float32(self.guided_interval_scale), interval_scale)
            if self.flanked_std_scale is not None:
                std_scale = np.where(sides >= 2, np.float32(self.flanked_std_scale), std_scale)
                interval_scale = np.where(sides >= 2, np.float32(self.flanked_interval_scale), interval_scale)
        std = (stats.std * std_scale).astype(np.float32)
        quantiles = stats.quantiles
        if quantiles is not None:
            moved = stats.mean[None] + interval_scale * (quantiles - stats.mean[None])
            quantiles = np.where(stats.filled[None], moved, quantiles).astype(np.float32)
        return stats._replace(std=std, quantiles=quantiles)

    def tiled_factors(self, depth):
        """The extra (std factor, interval factor) of tiled-artifact pixels at ``depth``.

        Parameters
        ----------
        depth : numpy.ndarray, int
            Chessboard distance of each pixel to the nearest known pixel (>= 1).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray), float32, the shape of ``depth``
            Each bin's factors hold at its centre (the mean of the integer
            depths in it; the last bin's is that of its edges) and are
            interpolated linearly between centres, constant before the first
            and after the last. Ones when the calibration has no tiled factors.
        """
        depth = np.asarray(depth)
        if self.tiled_depths is None:
            ones = np.ones(depth.shape, np.float32)
            return ones, ones
        # Interpolated rather than piecewise constant: the spread grows smoothly with depth, and
        # steps at the bin edges drew concentric squares into the std map of a large artifact.
        centres = bin_centres(self.tiled_depths)
        return tuple(np.interp(depth, centres, factors).astype(np.float32)
                     for factors in (self.tiled_std_scale, self.tiled_interval_scale))  # fmt: skip

    def apply_tiled(self, mean, std, quantiles, depth):
        """``std`` and ``quantiles`` of tiled-artifact pixels with the extra factors at their ``depth``.

        Parameters
        ----------
        mean, std, depth : numpy.ndarray, the same shape
            Mean and std (any units, the same for both) after :meth:`apply`,
            and each pixel's depth (see :meth:`tiled_factors`).
        quantiles : numpy.ndarray or None, (Q, *shape)
            Moved to ``mean + factor * (quantile - mean)``.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray or None)
            New arrays; unchanged values without tiled factors.
        """
        std_factor, interval_factor = self.tiled_factors(depth)
        if quantiles is not None:
            quantiles = mean[None] + interval_factor[None] * (quantiles - mean[None])
        return std * std_factor, quantiles

    def to_dict(self) -> dict:
        """JSON-serialisable form; inverse of :meth:`from_dict`."""
        data = asdict(self)
        for name in ("tiled_depths", "tiled_std_scale", "tiled_interval_scale", "texture_tilt", "guided_texture_tilt",
                     "flanked_texture_tilt"):
            if data[name] is not None:
                data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data) -> Calibration:
        """Rebuild from :meth:`to_dict` output; unknown or missing keys are refused.

        Raises
        ------
        ValueError
            Not a dict, unknown/missing keys, or invalid values (named).
        """
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict):
            raise ValueError(f"calibration: expected a JSON object, got {type(data).__name__}")
        # Calibrations written before guided, flanked or tiled factors, or the texture tilt, existed lack their keys.
        data = {"guided_std_scale": None, "guided_interval_scale": None, "tiled_depths": None,
                "tiled_std_scale": None, "tiled_interval_scale": None, "tiled_after": {}, "texture_tilt": None,
                "texture": {}, "guided_texture_tilt": None, "flanked_std_scale": None, "flanked_interval_scale": None,
                "flanked_texture_tilt": None, **data}  # fmt: skip
        if set(data) != names:
            raise ValueError(
                f"calibration: expected keys {sorted(names)}, got unknown {sorted(set(data) - names)} "
                f"and missing {sorted(names - set(data))}"
            )
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"calibration: {exc}") from exc


def guided_pixels(masks, context: int) -> np.ndarray:
    """Pixels of the filled slice where an adjacent slice is known: bool (N, P, P).

    ``masks`` and ``context`` as for :func:`guided_sides` (this is its ``> 0``).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 3, 4, 4), bool); m[:, 1] = True; m[:, 0, :2] = True; m[:, 2, :2] = True
    >>> guided_pixels(m, 1)[0].sum(axis=1)          # rows 0-1 hidden above and below
    array([0, 0, 4, 4])
    """
    return guided_sides(masks, context) > 0


def guided_sides(masks, context: int) -> np.ndarray:
    """How many of the two adjacent slices are known at each pixel of the filled slice: int8 (N, P, P).

    Parameters
    ----------
    masks : numpy.ndarray, bool (N, 2 context + 1, P, P)
        Unknown pixels of the windows (as given to
        :func:`ctinpaint.sampling.sample_fills`).
    context : int
        The model's ``config.context``; 0 gives 0 everywhere.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 3, 4, 4), bool); m[:, 1] = True; m[:, 0, :2] = True; m[:, 2, :1] = True
    >>> guided_sides(m, 1)[0, :, 0]                 # row 0 hidden above and below, row 1 above only
    array([0, 1, 2, 2], dtype=int8)
    """
    masks = np.asarray(masks, dtype=bool)
    if context == 0:
        return np.zeros((masks.shape[0], *masks.shape[-2:]), np.int8)
    return (~masks[:, context - 1]).astype(np.int8) + (~masks[:, context + 1]).astype(np.int8)


def fit_calibration(truth, stats, sides=None) -> Calibration:
    """Fit the spread factors on windows whose truth is known.

    Parameters
    ----------
    truth : numpy.ndarray, float (N, P, P)
        The true windows, in network units.
    stats : ctinpaint.sampling.FillStats
        Raw statistics of the fills of those windows (with the 2.5 % and
        97.5 % quantiles, ``quantiles=(0.025, 0.975)``, to fit
        ``interval_scale``; otherwise it stays 1).
    sides : numpy.ndarray, int (N, P, P), optional
        :func:`guided_sides` of a model with 2.5D context (a bool
        :func:`guided_pixels` map counts as one side). When both guided
        (a side known) and other filled pixels number at least 200, each kind
        gets its own factors; when the guided ones also split into at least
        200 with one side and 200 with both sides known, those two get
        factors of their own (guided and flanked).

    Returns
    -------
    Calibration

    Raises
    ------
    ValueError
        ``truth`` or ``sides`` does not match the statistics, or no pixel was filled.

    Examples
    --------
    >>> import numpy as np
    >>> from ctinpaint.sampling import FillStats
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.normal(size=(1, 100, 100)).astype(np.float32)
    >>> stats = FillStats(mean=np.zeros_like(truth), std=np.full_like(truth, 2.0), quantiles=None,
    ...                   filled=np.ones(truth.shape, bool))
    >>> round(fit_calibration(truth, stats).std_scale, 1)   # a spread twice too wide is halved
    0.5
    """
    truth = np.asarray(truth, dtype=np.float32)
    if truth.shape != stats.mean.shape:
        raise ValueError(f"truth shape {truth.shape} does not match the statistics' shape {stats.mean.shape}")
    sel = np.asarray(stats.filled, dtype=bool)
    if not sel.any():
        raise ValueError("stats: no filled pixel to calibrate on")
    if sides is not None and np.shape(sides) != sel.shape:
        raise ValueError(f"sides shape {np.shape(sides)} does not match the statistics' shape {sel.shape}")
    sides = np.zeros(sel.shape, np.int8) if sides is None else np.asarray(sides).astype(np.int8)

    def enough(*groups):
        return min(int(g.sum()) for g in groups) >= _MIN_GROUP_PIXELS

    guided, one, both = sel & (sides > 0), sel & (sides == 1), sel & (sides >= 2)
    factors = {}
    if enough(guided, sel & ~guided):
        std_scale, interval_scale = _fit_factors(truth, stats, sel & ~guided)
        if enough(one, both):
            factors["guided_std_scale"], factors["guided_interval_scale"] = _fit_factors(truth, stats, one)
            factors["flanked_std_scale"], factors["flanked_interval_scale"] = _fit_factors(truth, stats, both)
        else:
            factors["guided_std_scale"], factors["guided_interval_scale"] = _fit_factors(truth, stats, guided)
    else:
        std_scale, interval_scale = _fit_factors(truth, stats, sel)
    calibration = Calibration(std_scale=std_scale, interval_scale=interval_scale, n_pixels=int(sel.sum()), **factors)
    after = calibration.apply(stats, sides if factors else None)
    return replace(calibration, before=_coverages(truth, stats, sel), after=_coverages(truth, after, sel))


def check_texture_tilt(texture_tilt, *, name: str = "texture_tilt") -> tuple[float, ...]:
    """``texture_tilt`` as one float per bin of :data:`TEXTURE_DEPTHS`.

    Parameters
    ----------
    texture_tilt : float or sequence of float
        One number (the same tilt at every depth) or one per bin, each in
        [-MAX_TEXTURE_TILT, MAX_TEXTURE_TILT].
    name : str, default "texture_tilt"
        The argument's name in error messages.

    Returns
    -------
    tuple of float, length ``len(TEXTURE_DEPTHS)``

    Raises
    ------
    TypeError, ValueError
        Not numbers, the wrong count, or out of range (named ``name``).

    Examples
    --------
    >>> check_texture_tilt(-0.25)
    (-0.25, -0.25, -0.25, -0.25)
    """
    if isinstance(texture_tilt, (str, bytes)):
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {texture_tilt!r}")
    values = list(texture_tilt) if hasattr(texture_tilt, "__len__") else [texture_tilt] * len(TEXTURE_DEPTHS)
    if len(values) != len(TEXTURE_DEPTHS):
        raise ValueError(f"{name}: expected one number or {len(TEXTURE_DEPTHS)} (one per depth bin), got {len(values)}")
    return tuple(check_float(v, name=name, minimum=-MAX_TEXTURE_TILT, maximum=MAX_TEXTURE_TILT) for v in values)


def bin_centres(edges) -> np.ndarray:
    """Centres of depth bins given their upper ``edges`` (the first starts at depth 1).

    The centre of a bin is the mean of the integer depths in it; the last bin,
    which also holds everything deeper, is centred between its edges too.

    Examples
    --------
    >>> bin_centres((2, 4, 6, 9)).tolist()
    [1.5, 3.5, 5.5, 8.0]
    """
    upper = np.asarray(edges, np.float64)
    lower = np.concatenate([[0.0], upper[:-1]])
    return (lower + 1 + upper) / 2


def fit_texture_tilt(model, windows, masks, *, seed: int = 0) -> dict:
    """The ``texture_tilt`` whose single samples come closest to the truth's texture on held-out windows.

    The texture ratio (a single sample's mean squared Laplacian over the
    truth's, on the same filled pixels; 1 = CT-like) is measured per bin of
    :data:`TEXTURE_DEPTHS`, pooled over two sets of holes in the same windows
    (their own, ``masks``, and the whole hole box, which holds every depth),
    for uniform tilts 0.25 apart in [-1.5, 1.5]; each bin's tilt is
    interpolated where the logarithm of its ratio crosses 0. For a model with
    2.5D context, guided and unguided pixels (:func:`guided_pixels`) are
    measured apart and get a tilt each, when both kinds have pixels; so do
    the guided pixels with one and with both adjacent slices known
    (:func:`guided_sides`), when both of those have pixels.

    Parameters
    ----------
    model : ctinpaint.models.InpaintingGAN
        A model with a regressed mean (``ModelConfig.mean_net``).
    windows : array-like, float32 (N, P, P) or (N, K, P, P)
        Held-out windows in the network range, the truth at every pixel.
    masks : array-like, bool, the shape of ``windows``
        Their holes (True = unknown), as for
        :func:`ctinpaint.sampling.sample_fills`.
    seed : int, default 0
        Seeds the noise of the draws.

    Returns
    -------
    dict
        :class:`Calibration` fields: ``texture_tilt`` (tuple of float, one
        per depth bin), ``guided_texture_tilt`` (of guided pixels; None
        without context, or without enough of either kind: the first then
        serves all), ``flanked_texture_tilt`` (of flanked pixels; None
        without enough of them and of one-sided ones: the guided tilt then
        serves both) and ``texture``, the ratios before and after them.

    Raises
    ------
    TypeError
        ``seed`` not an integer.
    ValueError
        A model without a regressed mean; a hole box with no pixel whose four
        neighbours are filled, or truth without texture (flat windows).
    """
    from ._checks import check_filled_model, check_int
    from .evaluate import _texture_ratio
    from .losses import laplacian
    from .sampling import _as_windows, _draws_for_tilts, _window_seeds, filled_depth

    config = check_filled_model(model).config
    if not getattr(config, "mean_net", False):
        raise ValueError("model: only a model with a regressed mean (ModelConfig.mean_net) has a texture tilt")
    win, unknown = _as_windows(windows, masks, config)
    seeds = _window_seeds(check_int(seed, name="seed"), win.shape[0])
    P, L, c = config.patch, config.hole, getattr(config, "context", 0)
    inner_box = (slice(None), slice((P - L) // 2, (P + L) // 2), slice((P - L) // 2, (P + L) // 2))
    box = unknown.copy()
    box[:, c][inner_box] = True
    truth = win[:, c]

    def filled_of(hidden):
        filled = np.zeros(truth.shape, bool)
        filled[inner_box] = hidden[:, c][inner_box]
        return filled

    # Per group of pixels (all; then unguided, guided, one-sided and flanked) and depth bin, summed over both sets of holes:
    # the Laplacian's energy at pixels whose four neighbours are filled, of the truth and of a draw for
    # each uniform tilt of the grid.
    kinds = {"holes": unknown, "box": box}
    n_bins = len(TEXTURE_DEPTHS)
    n_groups = 5 if c else 1
    grid = [{"texture_tilt": t} for t in _TILT_GRID]
    logs, counts, before = [], [], {}
    for kind, hidden in kinds.items():
        energy = np.zeros((len(_TILT_GRID), n_groups * n_bins))
        filled = filled_of(hidden)
        lap_truth, inner = laplacian(truth.astype(np.float64), filled)
        depth = np.zeros(truth.shape, np.int64)
        depth[inner_box] = filled_depth(filled[inner_box])
        bins = np.digitize(depth[:, 1:-1, 1:-1], TEXTURE_DEPTHS, right=True).clip(max=n_bins - 1)
        sides = guided_sides(hidden, c)[:, 1:-1, 1:-1]
        groups = [np.ones(sides.shape, bool), sides == 0, sides > 0, sides == 1, sides == 2][:n_groups]
        masks_ = [inner & group & (bins == b) for group in groups for b in range(n_bins)]
        truth_energy = np.array([np.sum(lap_truth[m] ** 2) for m in masks_])
        for t, drawn in enumerate(_draws_for_tilts(model, win, hidden, seeds, grid)):
            lap, _ = laplacian(drawn.astype(np.float64), filled)
            energy[t] += [np.sum(lap[m] ** 2) for m in masks_]
            if _TILT_GRID[t] == 0.0:
                before[kind] = _texture_ratio(drawn, truth, filled)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(energy / truth_energy)  # (tilts, groups * bins)
        log_ratio[~np.isfinite(log_ratio)] = np.nan  # a bin without pixels, or without texture
        logs.append(log_ratio)
        counts.append([m.sum() for m in masks_])
    logs, counts = np.asarray(logs), np.asarray(counts)  # (kinds, tilts, groups * bins), (kinds, groups * bins)
    if np.isnan(logs).all():
        raise ValueError("windows: no filled pixel whose four neighbours are filled, or truth without texture")
    # Each set of holes counts the same, however many pixels it has, unless it has too few in a bin (deep
    # pixels of thin holes: too noisy to count) and the other has enough.
    enough = counts >= _MIN_GROUP_PIXELS
    logs[(~enough & enough.any(axis=0))[:, None, :].repeat(len(_TILT_GRID), axis=1)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bin that neither set has: NaN, handled below
        logs = np.nanmean(logs, axis=0)
    crossings = [_crossing(_TILT_GRID, logs[:, j]) for j in range(n_groups * n_bins)]
    per_group = [crossings[g * n_bins : (g + 1) * n_bins] for g in range(n_groups)]
    pixels = counts.sum(axis=0).reshape(n_groups, n_bins).sum(axis=1)

    def fits(*groups):
        return n_groups > 1 and all(
            pixels[g] >= _MIN_GROUP_PIXELS and any(t is not None for t in per_group[g]) for g in groups
        )

    tilts = {"texture_tilt": _every_bin(per_group[0]), "guided_texture_tilt": None, "flanked_texture_tilt": None}
    if fits(1, 2):
        tilts["texture_tilt"] = _every_bin(per_group[1])
        guided_group = 3 if fits(3, 4) else 2
        tilts["guided_texture_tilt"] = _every_bin(per_group[guided_group])
        if guided_group == 3:
            tilts["flanked_texture_tilt"] = _every_bin(per_group[4])
    texture = {}
    for kind, hidden in kinds.items():
        (after,) = _draws_for_tilts(model, win, hidden, seeds, [tilts])
        ratio = _texture_ratio(after, truth, filled_of(hidden))
        if np.isfinite(before[kind]) and np.isfinite(ratio):
            texture[f"{kind}_before"], texture[f"{kind}_after"] = float(before[kind]), float(ratio)
    return {**tilts, "texture": texture}


def _every_bin(tilts: list) -> tuple[float, ...]:
    """Fitted tilts per bin, rounded; a bin without measurable pixels (no deep ones in a small hole) takes the nearest one's."""
    n = len(tilts)
    return tuple(
        round(t if t is not None else next(tilts[j] for j in sorted(range(n), key=lambda j: abs(j - b))
                                           if tilts[j] is not None), 2)
        for b, t in enumerate(tilts)
    )  # fmt: skip


def _crossing(grid: np.ndarray, values: np.ndarray) -> float | None:
    """Where ``values`` (increasing in ``grid``) cross 0, interpolated linearly; the nearest end when they do not."""
    ok = np.isfinite(values)
    if not ok.any():
        return None
    grid, values = grid[ok], values[ok]
    above = np.nonzero(values >= 0)[0]
    if above.size == 0:
        return float(grid[-1])
    k = int(above[0])
    if k == 0:
        return float(grid[0])
    g0, g1, v0, v1 = grid[k - 1], grid[k], values[k - 1], values[k]
    return float(g0 + (g1 - g0) * (-v0) / (v1 - v0))


#: Upper edges of the depth bins of :func:`fit_tiled_calibration`, in pixels.
TILED_DEPTHS = (3, 6, 9, 12, 15, 20, 27)


def fit_tiled_calibration(calibration, truth, stats, depth, *, depths=TILED_DEPTHS):
    """Add extra spread factors, by depth, for artifacts filled tile by tile.

    A tile of an artifact larger than one window is conditioned on the fills
    of the tiles before it as if they were known, and on windows whose
    context is partly unknown, which the training never shows; measured on
    real slices, its spread was 2-4x too small, the more so the deeper the
    pixel lies in the artifact. These factors are fitted on such artifacts
    with known truth (see :func:`ctinpaint.inpaint.calibrate_large_artifacts`),
    after ``calibration``'s own factors were applied.

    Parameters
    ----------
    calibration : Calibration
        The calibration the statistics were made with.
    truth, stats
        As for :func:`fit_calibration` (any units, the same for both); only
        the pixels of tiled artifacts should be ``stats.filled``.
    depth : numpy.ndarray, int, the shape of ``truth``
        Chessboard distance of each pixel to the nearest known pixel.
    depths : sequence of int, default :data:`TILED_DEPTHS`
        Upper edges of the depth bins. Bins with fewer than 200 pixels take
        the factors of the bin before them (1 for the first).

    Returns
    -------
    Calibration
        ``calibration`` with ``tiled_*`` set.

    Raises
    ------
    ValueError
        Shapes that do not match, or no filled pixel.
    """
    truth = np.asarray(truth, dtype=np.float32)
    depth = np.asarray(depth)
    if truth.shape != stats.mean.shape or depth.shape != truth.shape:
        raise ValueError(f"truth {truth.shape} and depth {depth.shape} must match the statistics' shape {stats.mean.shape}")
    sel = np.asarray(stats.filled, dtype=bool)
    if not sel.any():
        raise ValueError("stats: no filled pixel to calibrate on")
    depths = tuple(int(d) for d in depths)
    scales, lower = [], 0
    for upper in depths:
        # The last bin also takes everything deeper.
        in_bin = sel & (depth > lower) & ((depth <= upper) | (upper == depths[-1]))
        enough = int(in_bin.sum()) >= _MIN_GROUP_PIXELS
        scales.append(_fit_factors(truth, stats, in_bin) if enough else (scales[-1] if scales else (1.0, 1.0)))
        lower = upper
    fitted = replace(calibration, tiled_depths=depths, tiled_std_scale=tuple(s for s, _ in scales),
                     tiled_interval_scale=tuple(i for _, i in scales))  # fmt: skip
    std, quantiles = fitted.apply_tiled(stats.mean, stats.std, stats.quantiles, depth)
    return replace(fitted, tiled_after=_coverages(truth, stats._replace(std=std, quantiles=quantiles), sel))


def _fit_factors(truth: np.ndarray, stats, sel: np.ndarray) -> tuple[float, float]:
    """(std factor, interval factor) that best calibrate the pixels ``sel``."""
    err = np.abs(stats.mean[sel].astype(np.float64) - truth[sel])
    std = stats.std[sel].astype(np.float64)
    # err / std, with exact hits counting as covered at any scale and misses with std 0 never.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, np.where(std > 0, err / std, np.inf))
    ratio = np.sort(ratio)

    def coverage(limit):
        return np.searchsorted(ratio, limit, side="right") / ratio.size

    t1, t2 = NORMAL_COVERAGE
    misses = (coverage(_GRID) - t1) ** 2 + (coverage(2 * _GRID) - t2) ** 2
    std_scale = float(_GRID[int(np.argmin(misses))])
    interval_scale = 1.0
    if stats.quantiles is not None and len(stats.quantiles) == 2:
        mean = stats.mean[sel].astype(np.float64)
        below = mean - stats.quantiles[0][sel]
        above = stats.quantiles[1][sel] - mean
        t = truth[sel].astype(np.float64)
        # Every grid factor (1 % apart): near 95 % a 4 % coarser step moves the coverage by ~0.9 points.
        hits = np.array([np.count_nonzero((t >= mean - k * below) & (t <= mean + k * above)) for k in _GRID]) / t.size
        interval_scale = float(_GRID[int(np.argmin(np.abs(hits - INTERVAL_TARGET)))])
    return std_scale, interval_scale


def _coverages(truth: np.ndarray, stats, sel: np.ndarray) -> dict:
    """Coverage of mean ± 1σ, ± 2σ and (with two quantiles) of the interval on the pixels ``sel``."""
    err = np.abs(stats.mean[sel].astype(np.float64) - truth[sel])
    std = stats.std[sel].astype(np.float64)
    out = {"coverage_1sigma": float(np.mean(err <= std)), "coverage_2sigma": float(np.mean(err <= 2 * std))}
    if stats.quantiles is not None and len(stats.quantiles) == 2:
        t = truth[sel]
        out["interval_coverage"] = float(np.mean((t >= stats.quantiles[0][sel]) & (t <= stats.quantiles[1][sel])))
    return out
