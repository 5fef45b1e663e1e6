"""Held-out evaluation: how good is the fill, and can its uncertainty be trusted?

Windows are cut from artifact-free regions, so the truth under every hole is
known. The model fills them (the mean of many generated samples) and reports a
per-pixel standard deviation; the classical biharmonic fill of the same holes is
the baseline. Three kinds of numbers come out:

* accuracy of the fill: MAE, PSNR and SSIM of the mean against the truth;
* calibration of the uncertainty: how often the truth lies within mean ± 1σ and
  ± 2σ (ideally 68.3% and 95.4% if the errors were Gaussian), how often it lies
  inside the 2.5%–97.5% sample quantiles (ideally 95%), and whether the std is
  larger where the error is larger;
* realism of single samples: high-pass energy of one generated fill relative to
  that of the truth (1 = CT-like texture, much below 1 = over-smoothed). The
  mean fill is smooth by construction, so this is measured on single samples.

All numbers are in network units (the intensity range mapped to [0, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._checks import check_choice, check_int, check_window_stack

#: Quantiles drawn by :func:`evaluate_model`; their interval should hold 95% of the truth.
INTERVAL_QUANTILES = (0.025, 0.975)

#: Fraction of a Gaussian within ±1σ and ±2σ of its mean.
GAUSSIAN_1SIGMA = math.erf(1 / math.sqrt(2))
GAUSSIAN_2SIGMA = math.erf(2 / math.sqrt(2))

#: Metric keys of :func:`hole_metrics`, in the order :meth:`Evaluation.table` shows them.
METRICS = (
    "mae",
    "psnr",
    "ssim",
    "coverage_1sigma",
    "coverage_2sigma",
    "interval_coverage",
    "std_error_corr",
    "mean_std",
    "texture_ratio",
)

# Row label, formatter and ideal value (None: no fixed ideal) for the table.
_ROWS = {
    "mae": ("MAE of fill (fraction of range)", "{:.4f}", 0.0),
    "psnr": ("PSNR of fill [dB]", "{:.2f}", None),
    "ssim": ("SSIM of fill (hole box)", "{:.3f}", 1.0),
    "coverage_1sigma": ("truth within mean ± 1σ", "pct", GAUSSIAN_1SIGMA),
    "coverage_2sigma": ("truth within mean ± 2σ", "pct", GAUSSIAN_2SIGMA),
    "interval_coverage": ("truth within 2.5–97.5% quantiles", "pct", 0.95),
    "std_error_corr": ("corr(std, |error|)", "{:+.3f}", None),
    "mean_std": ("mean std (fraction of range)", "{:.4f}", None),
    "texture_ratio": ("texture ratio (single sample / truth)", "{:.2f}", 1.0),
    "raw_coverage_1sigma": ("  uncalibrated: within mean ± 1σ", "pct", GAUSSIAN_1SIGMA),
    "raw_coverage_2sigma": ("  uncalibrated: within mean ± 2σ", "pct", GAUSSIAN_2SIGMA),
    "raw_interval_coverage": ("  uncalibrated: within quantiles", "pct", 0.95),
    "raw_texture_ratio": ("  uncalibrated: texture ratio", "{:.2f}", 1.0),
}


# --------------------------------------------------------------------------- metrics


def hole_metrics(
    truth,
    mean,
    std,
    filled,
    *,
    low=None,
    high=None,
    sample=None,
    hole: int | None = None,
) -> dict[str, float]:
    """Accuracy, calibration and texture metrics over the filled pixels of N windows.

    Parameters
    ----------
    truth : array-like, float (N, P, P) or (N, 1, P, P)
        The true windows, in network units.
    mean : array-like, float, same shape
        The fill (for the GAN, the mean of the samples) pasted into the window;
        known pixels should equal ``truth`` (they do for
        :func:`ctinpaint.sampling.sample_fills` on held-out windows).
    std : array-like, float, same shape
        Per-pixel standard deviation of the fill, >= 0. Use zeros for a method
        without uncertainty; the coverages then count exact hits only, which is
        what a point estimate deserves.
    filled : array-like, bool, same shape
        The pixels that were filled (unknown pixels inside the central
        ``hole x hole`` box). Every metric is computed over these pixels only.
    low, high : array-like, float, same shape, optional
        Lower and upper bounds of an interval per pixel, e.g. the 2.5% and
        97.5% sample quantiles. Both or neither.
    sample : array-like, float, same shape, optional
        One single generated fill per window (not a mean), pasted into the
        window; used for ``texture_ratio``.
    hole : int, optional
        Side l of the central hole box, offset ``(P - l) // 2``; used for SSIM.
        Default: the smallest centred box holding every filled pixel.

    Returns
    -------
    dict of str to float
        Keys, in this order (:data:`METRICS`):

        ``mae``
            Mean absolute error of ``mean`` over the filled pixels.
        ``psnr``
            ``10 log10(1 / MSE)`` in dB (data range 1), MSE over the filled
            pixels pooled over all windows; ``inf`` for a perfect fill.
        ``ssim``
            :func:`skimage.metrics.structural_similarity` (data range 1,
            7x7 window, or the largest odd window the box allows) of ``mean``
            and ``truth`` on each window's ``hole x hole`` box, averaged over
            the windows with a filled pixel. Known pixels inside the box (the
            box border the hole does not cover, or everything outside a random
            hole shape) are identical in both images by construction and pull
            SSIM towards 1: compare SSIM only between methods evaluated on the
            same holes. NaN when the box is smaller than 3 pixels.
        ``coverage_1sigma``, ``coverage_2sigma``
            Fraction of filled pixels with ``|truth - mean| <= k * std``, k = 1, 2.
            Well-calibrated Gaussian errors give 0.683 and 0.954.
        ``interval_coverage``
            Fraction with ``low <= truth <= high``; NaN when no interval is given.
        ``std_error_corr``
            Pearson correlation of ``std`` and ``|mean - truth|`` per filled
            pixel: positive when the uncertainty points at the errors. The
            correlation is undefined when either does not vary (a method with
            ``std = 0`` everywhere, a generator that ignores its noise, or a
            perfect fill); 0.0 is returned then, read as "the std says nothing
            about where the errors are".
        ``mean_std``
            Mean of ``std`` over the filled pixels.
        ``texture_ratio``
            Mean squared 5-point Laplacian of ``sample`` divided by that of
            ``truth``, over the filled pixels whose four neighbours are filled
            too (so the seam between fill and context does not count). 1 means
            CT-like texture, much below 1 an over-smoothed fill. NaN when no
            ``sample`` is given, when no filled pixel has four filled
            neighbours, or when the truth has no high-pass energy at all.

    Raises
    ------
    ValueError
        Arrays that are not (N, P, P) or do not match ``truth`` (the argument is
        named), no filled pixel, negative or non-finite ``std``, non-finite
        values at filled pixels, only one of ``low``/``high``, a bad ``hole``.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.full((1, 32, 32), 0.5, np.float32)
    >>> filled = np.zeros((1, 32, 32), bool); filled[:, 7:25, 7:25] = True
    >>> mean = truth + np.where(filled, 0.1, 0.0).astype(np.float32)
    >>> m = hole_metrics(truth, mean, np.full_like(truth, 0.2), filled)
    >>> round(m["mae"], 4), round(m["psnr"], 2), m["coverage_1sigma"], m["coverage_2sigma"]
    (0.1, 20.0, 1.0, 1.0)
    """
    truth_a = check_window_stack(truth, name="truth")
    shape = truth_a.shape
    mean_a = check_window_stack(mean, name="mean", shape=shape)
    std_a = check_window_stack(std, name="std", shape=shape)
    filled_a = check_window_stack(filled, name="filled", shape=shape, mask=True)
    if (low is None) != (high is None):
        raise ValueError("low and high: give both bounds of the interval or neither")
    low_a = None if low is None else check_window_stack(low, name="low", shape=shape)
    high_a = None if high is None else check_window_stack(high, name="high", shape=shape)
    sample_a = None if sample is None else check_window_stack(sample, name="sample", shape=shape)
    if not filled_a.any():
        raise ValueError("filled: no filled pixel in any window; nothing to evaluate")
    box = _hole_box(filled_a, hole)

    t = truth_a[filled_a]
    m = mean_a[filled_a]
    s = std_a[filled_a]
    for name, values in (("truth", t), ("mean", m), ("std", s)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name}: non-finite values at filled pixels")
    if (s < 0).any():
        raise ValueError("std: negative values at filled pixels")
    err = m - t
    abs_err = np.abs(err)
    mse = float(np.mean(err * err))

    out: dict[str, float] = {}
    out["mae"] = float(abs_err.mean())
    out["psnr"] = math.inf if mse == 0.0 else float(10.0 * math.log10(1.0 / mse))
    out["ssim"] = _box_ssim(truth_a, mean_a, filled_a, box)
    out["coverage_1sigma"] = float(np.mean(abs_err <= s))
    out["coverage_2sigma"] = float(np.mean(abs_err <= 2.0 * s))
    if low_a is not None:
        lo, hi = low_a[filled_a], high_a[filled_a]
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError("low/high: non-finite values at filled pixels")
        out["interval_coverage"] = float(np.mean((lo <= t) & (t <= hi)))
    else:
        out["interval_coverage"] = math.nan
    out["std_error_corr"] = _pearson(s, abs_err)
    out["mean_std"] = float(s.mean())
    if sample_a is not None:
        if not np.isfinite(sample_a[filled_a]).all():
            raise ValueError("sample: non-finite values at filled pixels")
        out["texture_ratio"] = _texture_ratio(sample_a, truth_a, filled_a)
    else:
        out["texture_ratio"] = math.nan
    return out


def biharmonic_fill(windows, masks) -> np.ndarray:
    """Fill the unknown pixels of each window by biharmonic inpainting.

    The classical baseline: :func:`skimage.restoration.inpaint_biharmonic`
    solves for the smoothest surface that continues the known pixels into the
    hole. It gives one deterministic fill and no uncertainty; in
    :func:`hole_metrics` use ``std = 0`` for it, so its coverages count exact
    hits only.

    Parameters
    ----------
    windows : array-like, float (N, P, P) or (N, 1, P, P)
        Windows; values at unknown pixels are ignored.
    masks : array-like, bool, same shape
        True where the value is unknown. Every unknown pixel is filled, inside
        the hole box or not.

    Returns
    -------
    numpy.ndarray, float32 (N, P, P)
        A new array. Known pixels are the input values converted to float32,
        bit for bit identical for float32 input.

    Raises
    ------
    ValueError
        Shapes that do not match (the argument is named), a window with no
        known pixel, non-finite values at known pixels.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:32, :32] / 31.0
    >>> w = (0.2 + 0.5 * xx).astype(np.float32)[None]
    >>> m = np.zeros((1, 32, 32), bool); m[:, 7:25, 7:25] = True
    >>> out = biharmonic_fill(w, m)
    >>> out.dtype, bool(np.abs(out - w).max() < 1e-4)
    (dtype('float32'), True)
    """
    from skimage.restoration import inpaint_biharmonic

    win = check_window_stack(windows, name="windows")
    unknown = check_window_stack(masks, name="masks", shape=win.shape, mask=True)
    known_any = (~unknown).reshape(len(unknown), -1).any(axis=1)
    if not known_any.all():
        raise ValueError(f"masks: window {int(np.argmin(known_any))} has no known pixel; biharmonic needs context")
    base = np.where(unknown, 0.0, win).astype(np.float32)
    if not np.isfinite(base).all():
        raise ValueError("windows: non-finite values at known pixels")
    out = np.array(win, dtype=np.float32, copy=True)
    for i in range(len(out)):
        if unknown[i].any():
            solved = inpaint_biharmonic(base[i], unknown[i])
            out[i][unknown[i]] = solved[unknown[i]]
    return out


# --------------------------------------------------------------------------- model evaluation


@dataclass(frozen=True)
class Evaluation:
    """Held-out metrics of a model and of the biharmonic baseline on the same holes.

    Attributes
    ----------
    gan : dict of str to float
        :func:`hole_metrics` of the model: the mean of ``n_samples`` fills, their
        std, the 2.5%–97.5% quantile interval, texture from one single sample.
    biharmonic : dict of str to float
        :func:`hole_metrics` of :func:`biharmonic_fill` with ``std = 0`` and a
        zero-width interval (its coverages count exact hits, so they are ~0:
        a point estimate claims no uncertainty).
    n_holes : int
        Number of held-out windows.
    hole_shape : str
        "square" or "random".
    n_samples : int
        Generated fills per window.

    Examples
    --------
    >>> e = Evaluation(gan={"mae": 0.03}, biharmonic={"mae": 0.05}, n_holes=8, hole_shape="square", n_samples=100)
    >>> e.to_dict()["gan"]["mae"]
    0.03
    >>> print(e.table().splitlines()[0].split())
    ['metric', 'GAN', '(mean', 'of', '100)', 'biharmonic', 'ideal']
    """

    gan: dict = field(default_factory=dict)
    biharmonic: dict = field(default_factory=dict)
    n_holes: int = 0
    hole_shape: str = "square"
    n_samples: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; NaN and infinite values become ``None``."""
        return {
            "n_holes": int(self.n_holes),
            "hole_shape": str(self.hole_shape),
            "n_samples": int(self.n_samples),
            "gan": {k: _json_number(v) for k, v in self.gan.items()},
            "biharmonic": {k: _json_number(v) for k, v in self.biharmonic.items()},
        }

    def table(self) -> str:
        """Plain-text table: one row per metric, one column per method (+ the ideal value).

        Coverages are shown in percent, PSNR in dB with two decimals; "—" marks a
        value that was not computed or is undefined.
        """
        columns = {f"GAN (mean of {self.n_samples})": self.gan, "biharmonic": self.biharmonic}
        keys = [k for k in METRICS if any(k in d for d in columns.values())]
        keys += [k for d in columns.values() for k in d if k not in keys]
        rows = [["metric", *columns, "ideal"]]
        for key in dict.fromkeys(keys):
            label, fmt, ideal = _ROWS.get(key, (key, "{:.4g}", None))
            # Biharmonic is a point estimate: its coverages (exact hits) and zero std say
            # nothing to a reader of the table, so its uncertainty rows are left blank.
            cells = [None if name == "biharmonic" and is_spread_metric(key) else d.get(key) for name, d in columns.items()]
            rows.append([label, *(_format(v, fmt) for v in cells), _format(ideal, fmt)])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for n, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append(
            f"{self.n_holes} held-out {self.hole_shape} holes; values in network units (fraction of the intensity range)"
        )
        return "\n".join(lines)


def is_spread_metric(key: str) -> bool:
    """Whether a metric describes the spread of a fill rather than the fill itself.

    Such metrics say nothing for a point estimate (biharmonic), whose rows in
    tables are left blank.

    Examples
    --------
    >>> is_spread_metric("coverage_2sigma"), is_spread_metric("psnr")
    (True, False)
    """
    return key.startswith(("coverage_", "raw_")) or key in ("interval_coverage", "std_error_corr", "mean_std")


def evaluate_model(
    model,
    volume,
    *,
    intensity,
    n_holes: int = 256,
    hole_shape: str = "square",
    n_samples: int = 500,
    seed: int = 0,
    mask=None,
    exclude=None,
    axes=(0,),
    calibration=None,
    hole_depth=None,
) -> Evaluation:
    """Evaluate a model on held-out holes with known truth, next to the biharmonic baseline.

    ``n_holes`` windows are cut from artifact-free regions of ``volume`` with
    :class:`ctinpaint.patches.PatchSampler` (holes of ``hole_shape``), the model
    fills them with :func:`ctinpaint.sampling.sample_fills` (``n_samples`` per
    window, 2.5% and 97.5% quantiles) plus one extra single draw for the
    texture ratio, and :func:`biharmonic_fill` fills the same holes.

    Parameters
    ----------
    model : ctinpaint.models.InpaintingGAN
        On the device where sampling should run; its ``config.patch`` and
        ``config.hole`` set the window and hole size.
    volume : path or array (Z, Y, X)
        Anything :class:`~ctinpaint.patches.PatchSampler` accepts. Use a region
        the model was not trained on (see ``exclude``).
    intensity : ctinpaint.intensity.IntensityMapping
        The model's mapping to the network range.
    n_holes : int, default 256
    hole_shape : {"square", "random"}, default "square"
    n_samples : int, default 500
        Fills per window, >= 2.
    seed : int, default 0
        Seeds the choice of windows, the hole shapes and the noise.
    mask : path or array, optional
        Artifact mask of ``volume``; windows touching it are never used.
    exclude : path or array, optional
        Bool mask of the same shape: voxels never to use (e.g. the region the
        model was trained on), treated like artifacts.
    axes : int or tuple of int, default (0,)
        Axes the 2D windows are sliced along (see
        :class:`~ctinpaint.patches.PatchSampler`).
    calibration : ctinpaint.calibration.Calibration, optional
        Spread factors to apply to the std and the interval (as
        :func:`~ctinpaint.inpaint.inpaint_volume` does with a model's
        calibration), and its texture tilt to the fills; default: the raw
        sample spread and G's own texture. With it, the coverages of the raw
        spread and the texture ratio of an untilted draw are reported too
        (``raw_coverage_1sigma``, ..., ``raw_texture_ratio``).
    hole_depth : int, optional
        For a model with 2.5D context: neighbouring slices on each side that
        the hole also covers (0: the hole is in one slice and the neighbours
        are known there; >= the model's context: the neighbours are hidden
        too, as for an artifact through several slices). None: the random mix
        training uses. Ignored without context.

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError, TypeError
        Bad arguments (named), or no artifact-free window in ``volume``.

    Examples
    --------
    >>> import numpy as np
    >>> from ctinpaint.intensity import IntensityMapping
    >>> from ctinpaint.models import build_model, config_for
    >>> vol = np.random.default_rng(0).integers(0, 255, (4, 64, 64), dtype=np.uint8)
    >>> ev = evaluate_model(build_model(config_for("seed")), vol, n_holes=4, n_samples=8,
    ...                     intensity=IntensityMapping(low=0, high=255, dtype="uint8"))
    >>> sorted(ev.gan) == sorted(ev.biharmonic)
    True
    """
    from .patches import PatchSampler

    n_holes = check_int(n_holes, name="n_holes", minimum=1)
    n_samples = check_int(n_samples, name="n_samples", minimum=2)
    seed = check_int(seed, name="seed", minimum=0)
    check_choice(hole_shape, ("square", "random"), name="hole_shape")
    if calibration is not None and not callable(getattr(calibration, "apply", None)):
        raise TypeError(f"calibration must be a Calibration, got {type(calibration).__name__}")
    if not callable(getattr(intensity, "to_network", None)):
        # PSNR and SSIM use a data range of 1: the windows must be in network units.
        raise TypeError(f"intensity must be an IntensityMapping, got {type(intensity).__name__}")
    patch, hole = int(model.config.patch), int(model.config.hole)
    context = int(getattr(model.config, "context", 0))

    sampler = PatchSampler(
        volume,
        mask=mask,
        patch=patch,
        hole=hole,
        hole_shape=hole_shape,
        batch_size=min(n_holes, 256),
        axes=axes,
        seed=seed,
        intensity=intensity,
        exclude=exclude,
        context=context,
        hole_depth=hole_depth,
    )
    batch = sampler.take(n_holes)
    windows = np.asarray(batch.x, dtype=np.float32)
    masks = np.asarray(batch.hole) >= 0.5
    truth, unknown = windows[:, context], masks[:, context]

    from .sampling import draw_fills, sample_fills

    tilts = {} if calibration is None else calibration.texture_tilts()
    stats = sample_fills(
        model, windows, masks, n_samples=n_samples, quantiles=INTERVAL_QUANTILES, seed=seed, **tilts
    )
    raw = None
    if calibration is not None:
        raw = hole_metrics(
            truth, stats.mean, stats.std, stats.filled, low=stats.quantiles[0], high=stats.quantiles[1], hole=hole
        )
        from .calibration import guided_sides

        stats = calibration.apply(stats, guided_sides(masks, context))
    single = draw_fills(model, windows, masks, seed=seed + 1, **tilts)
    gan = hole_metrics(
        truth,
        stats.mean,
        stats.std,
        stats.filled,
        low=stats.quantiles[0],
        high=stats.quantiles[1],
        sample=single,
        hole=hole,
    )
    if raw is not None:  # the coverages before calibration, for comparison
        gan.update({f"raw_{k}": raw[k] for k in ("coverage_1sigma", "coverage_2sigma", "interval_coverage")})
        tilted = any(v is not None for v in tilts.values())
        raw_single = draw_fills(model, windows, masks, seed=seed + 1) if tilted else single
        gan["raw_texture_ratio"] = _texture_ratio(raw_single, truth, stats.filled)
    fill = biharmonic_fill(truth, unknown)
    base = hole_metrics(
        truth, fill, np.zeros_like(fill), stats.filled, low=fill, high=fill, sample=fill, hole=hole
    )
    return Evaluation(gan=gan, biharmonic=base, n_holes=len(truth), hole_shape=hole_shape, n_samples=n_samples)


# --------------------------------------------------------------------------- helpers


def _hole_box(filled: np.ndarray, hole: int | None) -> slice:
    """The centred box, as one slice for both axes, that holds every filled pixel."""
    P = filled.shape[-1]
    if hole is not None:
        hole = check_int(hole, name="hole", minimum=1, maximum=P - 1)
        o = (P - hole) // 2
        outside = filled.copy()
        outside[:, o : o + hole, o : o + hole] = False
        if outside.any():
            raise ValueError(f"filled: pixels outside the central {hole}x{hole} box (hole={hole})")
        return slice(o, o + hole)
    rows = np.flatnonzero(filled.any(axis=(0, 2)))
    cols = np.flatnonzero(filled.any(axis=(0, 1)))
    for size in range(1, P + 1):
        o = (P - size) // 2
        if o <= min(rows[0], cols[0]) and max(rows[-1], cols[-1]) < o + size:
            return slice(o, o + size)
    return slice(0, P)  # pragma: no cover - size P always fits


def _box_ssim(truth: np.ndarray, mean: np.ndarray, filled: np.ndarray, box: slice) -> float:
    from skimage.metrics import structural_similarity

    size = box.stop - box.start
    win = min(7, size if size % 2 else size - 1)
    if win < 3:
        return math.nan
    values = [
        structural_similarity(
            truth[i, box, box].astype(np.float64),
            mean[i, box, box].astype(np.float64),
            data_range=1.0,
            win_size=win,
        )
        for i in range(len(truth))
        if filled[i].any()
    ]
    return float(np.mean(values))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation in float64; 0.0 when either input does not vary."""
    a = a.astype(np.float64) - a.mean(dtype=np.float64)
    b = b.astype(np.float64) - b.mean(dtype=np.float64)
    denom = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    if denom == 0.0 or not math.isfinite(denom):
        return 0.0
    return float(np.clip(np.dot(a, b) / denom, -1.0, 1.0))


def _laplacian_energy(images: np.ndarray, filled: np.ndarray) -> tuple[float, int]:
    """Mean squared 5-point Laplacian over filled pixels whose four neighbours are filled."""
    # The same stencil and pixels as the training's texture term.
    from .losses import laplacian

    lap, inner = laplacian(images.astype(np.float64), filled)
    count = int(inner.sum())
    if count == 0:
        return math.nan, 0
    return float(np.mean(lap[inner] ** 2)), count


def _texture_ratio(sample: np.ndarray, truth: np.ndarray, filled: np.ndarray) -> float:
    num, count = _laplacian_energy(sample, filled)
    den, _ = _laplacian_energy(truth, filled)
    if count == 0 or den == 0.0:
        return math.nan
    return num / den


def _json_number(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _format(value, fmt: str) -> str:
    if value is None:
        return "—"
    value = float(value)
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if fmt == "pct":
        return f"{100.0 * value:.1f}%"
    return fmt.format(value)
