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

A single factor cannot fix the *shape* of the error distribution: when errors
are heavy-tailed, the fitted factor balances the 1σ and 2σ coverages (it
minimises the sum of their squared misses), and the stored ``after``
coverages say how close both came. It also cannot create spread where there
is none: pixels whose samples all agree keep a zero std.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ._checks import check_float

__all__ = ["Calibration", "fit_calibration", "NORMAL_COVERAGE"]

#: Share of a normal distribution within 1 and 2 standard deviations of its mean.
NORMAL_COVERAGE = (math.erf(1 / math.sqrt(2)), math.erf(2 / math.sqrt(2)))
#: Target coverage of the central 2.5–97.5 % quantile interval.
INTERVAL_TARGET = 0.95
# Candidate factors: log-spaced, 1 % apart, from 1/50 to 50.
_GRID = np.exp(np.linspace(math.log(0.02), math.log(50.0), 787))


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
    before, after : dict of str to float
        Coverages (``coverage_1sigma``, ``coverage_2sigma`` and, when quantiles
        were sampled, ``interval_coverage``) on those pixels with the raw and
        the calibrated spread.

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

    def __post_init__(self):
        for name in ("std_scale", "interval_scale"):
            value = check_float(getattr(self, name), name=name, minimum=0.0)
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
            object.__setattr__(self, name, value)
        if isinstance(self.n_pixels, bool) or not isinstance(self.n_pixels, int) or self.n_pixels < 0:
            raise ValueError(f"n_pixels must be an integer >= 0, got {self.n_pixels!r}")
        for name in ("before", "after"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in value.items()
            ):
                raise ValueError(f"{name} must be a dict of metric name to number, got {value!r}")

    def apply(self, stats):
        """The same statistics with the spread calibrated.

        Parameters
        ----------
        stats : ctinpaint.sampling.FillStats
            From :func:`ctinpaint.sampling.sample_fills`, in network units.

        Returns
        -------
        ctinpaint.sampling.FillStats
            New arrays: ``std * std_scale``, and each quantile moved to
            ``mean + interval_scale * (quantile - mean)`` on filled pixels;
            ``mean`` and ``filled`` unchanged (the same arrays).
        """
        std = (stats.std * np.float32(self.std_scale)).astype(np.float32)
        quantiles = stats.quantiles
        if quantiles is not None:
            k = np.float32(self.interval_scale)
            moved = stats.mean[None] + k * (quantiles - stats.mean[None])
            quantiles = np.where(stats.filled[None], moved, quantiles).astype(np.float32)
        return stats._replace(std=std, quantiles=quantiles)

    def to_dict(self) -> dict:
        """JSON-serialisable form; inverse of :meth:`from_dict`."""
        return asdict(self)

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
        if set(data) != names:
            raise ValueError(
                f"calibration: expected keys {sorted(names)}, got unknown {sorted(set(data) - names)} "
                f"and missing {sorted(names - set(data))}"
            )
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"calibration: {exc}") from exc


def fit_calibration(truth, stats) -> Calibration:
    """Fit the spread factors on windows whose truth is known.

    Parameters
    ----------
    truth : numpy.ndarray, float (N, P, P)
        The true windows, in network units.
    stats : ctinpaint.sampling.FillStats
        Raw statistics of the fills of those windows (with the 2.5 % and
        97.5 % quantiles, ``quantiles=(0.025, 0.975)``, to fit
        ``interval_scale``; otherwise it stays 1).

    Returns
    -------
    Calibration

    Raises
    ------
    ValueError
        ``truth`` does not match the statistics, or no pixel was filled.

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
    before = {"coverage_1sigma": float(coverage(1.0)), "coverage_2sigma": float(coverage(2.0))}
    after = {"coverage_1sigma": float(coverage(std_scale)), "coverage_2sigma": float(coverage(2 * std_scale))}

    interval_scale = 1.0
    if stats.quantiles is not None and len(stats.quantiles) == 2:
        mean = stats.mean[sel].astype(np.float64)
        below = mean - stats.quantiles[0][sel]
        above = stats.quantiles[1][sel] - mean
        t = truth[sel].astype(np.float64)

        def interval_coverage(k):
            return float(np.mean((t >= mean - k * below) & (t <= mean + k * above)))

        hits = np.array([interval_coverage(k) for k in _GRID[::4]])
        interval_scale = float(_GRID[::4][int(np.argmin(np.abs(hits - INTERVAL_TARGET)))])
        before["interval_coverage"] = interval_coverage(1.0)
        after["interval_coverage"] = interval_coverage(interval_scale)
    return Calibration(
        std_scale=std_scale, interval_scale=interval_scale, n_pixels=int(sel.sum()), before=before, after=after
    )
