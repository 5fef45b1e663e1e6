"""Posterior sampling: many generated fills per window, reduced to mean, std and quantiles.

For every window the conditioning network runs once; the generator then runs
``n_samples`` times on fresh noise. Samples are never all held at once: each
device launch produces a block of ``windows x samples`` fills, which is folded
into running statistics (mean and variance merged in float32 with Chan's
parallel update, and, when quantiles are asked for, per-pixel histograms).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from gan_zoo.training import autocast

from ._checks import check_filled_model, check_fits_in_memory, check_float, check_int, check_window_stack
from .calibration import MAX_TEXTURE_TILT, TEXTURE_DEPTHS, bin_centres, check_texture_tilt

#: Histogram bins over the network range [0, 1] used for quantiles. The
#: quantile of a pixel is interpolated linearly inside its bin, so its error is
#: at most one bin width, 1/1024 of the network range (about 0.06 grey levels of
#: a uint8 volume mapped to [0, 255]).
QUANTILE_BINS = 1024

#: Fills per device launch (windows x samples) when ``batch`` is not given. A
#: fill costs ~0.1 MB of activations in the larger preset. On the CPU the time
#: per fill grows once a launch's activations outgrow the caches (measured on 2
#: cores: 4096 fills per launch cost ~1.5-2x more per fill than 1024); a GPU
#: wants large launches to be busy.
DEFAULT_BATCH = {"cpu": 1 << 10, "cuda": 1 << 16}
#: Draws per window that estimate G's mean (and std) when :func:`draw_fills`
#: centres one sample of a model with a regressed mean (the mean's error, ~std
#: / 16, is well under the spread it shifts; the std's, ~4 %, under its size).
CENTRE_SAMPLES = 256
# G's spread below this is float rounding of equal samples (float32 steps near 1 are 6e-8),
# not a shape that a regressed std could scale.
_MIN_SPREAD = 1e-6


class FillStats(NamedTuple):
    """Per-pixel statistics of the generated fills of N windows.

    Attributes
    ----------
    mean : numpy.ndarray, float32 (N, P, P)
        The window with every filled pixel replaced by the sample mean; known
        pixels are the input values.
    std : numpy.ndarray, float32 (N, P, P)
        Sample standard deviation (ddof=1) of the fills; 0 where nothing was filled.
    quantiles : numpy.ndarray or None, float32 (Q, N, P, P)
        Requested quantiles of the fills (input values where nothing was filled).
    filled : numpy.ndarray, bool (N, P, P)
        Pixels that were filled: unknown pixels inside the central hole box.
    draw : numpy.ndarray or None, float32 (N, P, P)
        One of the fills of each window (moved and scaled as every sample is;
        input values where nothing was filled), when :func:`sample_fills` was
        asked for it (``with_draw=True``); otherwise None.
    """

    mean: np.ndarray
    std: np.ndarray
    quantiles: np.ndarray | None
    filled: np.ndarray
    draw: np.ndarray | None = None


class RunningMoments:
    """Mean and variance accumulated over blocks of samples along axis 1.

    Blocks are merged with Chan et al.'s parallel update, which stays accurate in
    float32 where a naive sum of squares loses the variance of values far from 0.

    Parameters
    ----------
    shape : tuple of int
        Shape of one statistic, e.g. ``(windows, pixels)``.
    device : torch.device
    """

    def __init__(self, shape, device):
        self.count = 0
        self.mean = torch.zeros(shape, dtype=torch.float32, device=device)
        self.m2 = torch.zeros(shape, dtype=torch.float32, device=device)

    def update(self, block: torch.Tensor) -> None:
        """Fold in ``block`` of shape ``(shape[0], n, *shape[1:])``."""
        n = block.shape[1]
        block = block.float()
        block_mean = block.mean(dim=1)
        block_m2 = ((block - block_mean.unsqueeze(1)) ** 2).sum(dim=1)
        total = self.count + n
        delta = block_mean - self.mean
        self.mean += delta * (n / total)
        self.m2 += block_m2 + delta**2 * (self.count * n / total)
        self.count = total

    def std(self) -> torch.Tensor:
        """Sample standard deviation (ddof=1)."""
        if self.count < 2:
            raise ValueError("std needs at least two samples")
        return torch.sqrt(self.m2 / (self.count - 1))


def sample_fills(
    model,
    windows,
    masks,
    *,
    n_samples: int = 5000,
    batch: int | None = None,
    quantiles: Sequence[float] = (),
    seed: int | Sequence[int] | None = None,
    progress: Callable[[int], None] | None = None,
    with_draw: bool = False,
    texture_tilt=None,
    guided_texture_tilt=None,
    flanked_texture_tilt=None,
) -> FillStats:
    """Draw ``n_samples`` fills per window and reduce them to per-pixel statistics.

    Parameters
    ----------
    model : ctinpaint.models.InpaintingGAN
        Trained model, on the device where sampling should run (it is not
        moved). It is used in eval mode and left in the mode it was in.
    windows : array-like, float32 (N, P, P) or (N, K, P, P)
        Windows in the network's range [0, 1] (see
        :meth:`ctinpaint.intensity.IntensityMapping.to_network`). Values at
        unknown pixels are ignored. K = ``model.config.channels``: with 2.5D
        context, the slices ``s - context ... s + context`` of each window
        (the one filled is channel ``context``); (N, P, P) when K = 1.
    masks : array-like, bool, the shape of ``windows``
        True where the value is unknown (the artifact and any other masked
        pixel, in any slice). Unknown pixels of the filled slice inside the
        central ``hole x hole`` box are filled.
    n_samples : int, default 5000
        Generated fills per window, >= 2.
    batch : int, optional
        Fills per device launch (windows x samples); bounds device memory.
        Default: 1024 on the CPU, 65536 on a GPU.
    quantiles : sequence of float in (0, 1), optional
        E.g. ``(0.025, 0.975)``. Computed from per-pixel histograms of
        :data:`QUANTILE_BINS` bins over [0, 1]; accurate to one bin width.
    seed : int or sequence of int, optional
        Seeds the noise. Every window draws its noise from its own generator,
        seeded from ``(seed, window index)`` or, with a sequence, from that
        window's entry, so a window's result does not depend on which other
        windows share its device launches. Same seed, window, ``n_samples`` and
        ``batch``: same result. None draws a fresh seed.
    progress : callable, optional
        Called with the number of windows finished after each group of windows.
    with_draw : bool, default False
        Also return the first of each window's fills (``FillStats.draw``), at
        no extra cost: a sample of the posterior, as one path of a chain of
        fills that condition on each other
        (:func:`ctinpaint.inpaint.inpaint_volume` tiles large artifacts so).
    texture_tilt : float or sequence of float, optional
        Reshapes the texture of every fill before the statistics are taken:
        :func:`tilt_texture` with this tilt (one number) or with one per bin
        of :data:`ctinpaint.calibration.TEXTURE_DEPTHS` (depth of the filled
        pixel into the hole; interpolated linearly between bin centres). A
        model's calibration fits it (``Calibration.texture_tilt``). None or 0
        keeps G's own fills. Needs a model with a regressed mean, whose mean
        it then leaves unchanged (and, with a std head, its std too).
    guided_texture_tilt : float or sequence of float, optional
        For a model with 2.5D context: the tilt of the guided pixels
        (:func:`ctinpaint.calibration.guided_pixels`), ``texture_tilt``
        then that of the others (``Calibration.guided_texture_tilt``).
    flanked_texture_tilt : float or sequence of float, optional
        With ``guided_texture_tilt``: the tilt of the pixels where both
        adjacent slices are known (:func:`ctinpaint.calibration.guided_sides`),
        ``guided_texture_tilt`` then that of the one-sided ones
        (``Calibration.flanked_texture_tilt``).

    Returns
    -------
    FillStats
        Of the filled slice: arrays (N, P, P). For a model with a regressed
        mean (``ModelConfig.mean_net``), each window's samples are shifted so
        that their mean is that regression: ``mean`` is the regressed mean,
        ``std`` the samples' spread, and the quantiles move with the samples.
        With a std head too (``ModelConfig.std_head``), each pixel's samples
        are also scaled about their mean so that ``std`` is the regressed
        std, and the quantiles scale with them.

    Raises
    ------
    TypeError
        ``model`` is not an InpaintingGAN; arrays of a non-numeric dtype.
    ValueError
        Shapes that do not match each other or the model, ``n_samples < 2``,
        quantiles outside (0, 1), non-finite window values at known pixels,
        a ``batch`` whose launch could not fit in the device's memory.

    Examples
    --------
    >>> from ctinpaint.models import build_model, config_for
    >>> import numpy as np
    >>> model = build_model(config_for("seed"))
    >>> w = np.full((2, 32, 32), 0.5, np.float32)
    >>> m = np.zeros((2, 32, 32), bool); m[:, 7:25, 7:25] = True
    >>> stats = sample_fills(model, w, m, n_samples=16, seed=0)
    >>> stats.mean.shape, stats.std.dtype
    ((2, 32, 32), dtype('float32'))
    """
    config = check_filled_model(model).config
    P, L = config.patch, config.hole
    win, unknown = _as_windows(windows, masks, config)
    n_samples = check_int(n_samples, name="n_samples", minimum=2)
    device = next(model.parameters()).device
    if batch is None:
        batch = DEFAULT_BATCH["cuda" if device.type == "cuda" else "cpu"]
    batch = check_int(batch, name="batch", minimum=1)
    if isinstance(quantiles, (str, bytes)) or not isinstance(quantiles, Iterable):
        raise TypeError(f"quantiles must be a sequence of numbers, got {type(quantiles).__name__} {quantiles!r}")
    qs = [check_float(q, name="quantiles", minimum=0.0, maximum=1.0) for q in quantiles]
    if any(q in (0.0, 1.0) for q in qs):
        raise ValueError("quantiles must lie strictly between 0 and 1")
    known_values = np.where(unknown, 0.0, win)
    if not np.isfinite(known_values).all():
        raise ValueError("windows: non-finite values at known pixels")
    if not isinstance(with_draw, bool):
        raise TypeError(f"with_draw must be True or False, got {type(with_draw).__name__}")
    tilt = _tilt_plan(model, device, texture_tilt=texture_tilt, guided_texture_tilt=guided_texture_tilt,
                      flanked_texture_tilt=flanked_texture_tilt)  # fmt: skip
    window_seeds = _window_seeds(seed, win.shape[0])

    n = win.shape[0]
    o = (P - L) // 2
    c = getattr(config, "context", 0)
    box = (slice(None), slice(o, o + L), slice(o, o + L))
    filled = np.zeros_like(unknown[:, c])
    filled[box] = unknown[:, c][box]
    mean_out = known_values[:, c].astype(np.float32)
    std_out = np.zeros((n, P, P), np.float32)
    q_out = np.repeat(mean_out[None], len(qs), axis=0) if qs else None
    draw_out = mean_out.copy() if with_draw else None

    windows_per_launch = max(1, min(n, batch // n_samples))
    samples_per_launch = max(1, min(n_samples, batch // windows_per_launch))
    # A lower bound of one launch: z, the repeated conditioning and the fills, plus the quantile histograms.
    # (Stand-in models may lack a width: count one conditioning channel then.)
    fill_bytes = 4 * (getattr(config, "z_dim", 1) + L * L * (1 + getattr(config, "width", 1)))
    hist_bytes = 4 * L * L * QUANTILE_BINS if qs else 0
    check_fits_in_memory(
        windows_per_launch * (samples_per_launch * fill_bytes + hist_bytes), name="batch",
        what=f"{windows_per_launch} windows x {samples_per_launch} samples per launch", device=device,
    )

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, windows_per_launch):
                stop = min(n, start + windows_per_launch)
                fills = _sample_group(
                    model, win[start:stop], unknown[start:stop], n_samples, samples_per_launch, qs, window_seeds[start:stop],
                    device, tilt,
                )  # fmt: skip
                mean, std, qvals, draw = fills
                inner = (slice(start, stop), slice(o, o + L), slice(o, o + L))
                sel = filled[inner]
                # Basic slices are views, so boolean assignment writes through.
                mean_out[inner][sel] = mean[sel]
                std_out[inner][sel] = std[sel]
                if draw_out is not None:
                    draw_out[inner][sel] = draw[sel]
                for k, values in enumerate(qvals):
                    q_out[k][inner][sel] = values[sel]
                if progress is not None:
                    progress(stop)
    finally:
        model.train(was_training)
    return FillStats(mean=mean_out, std=std_out, quantiles=q_out, filled=filled, draw=draw_out)


def draw_fills(
    model,
    windows,
    masks,
    *,
    seed: int | Sequence[int] | None = None,
    texture_tilt=None,
    guided_texture_tilt=None,
    flanked_texture_tilt=None,
) -> np.ndarray:
    """One generated fill per window (a single sample, not a mean).

    For figures and texture checks: a single sample shows the texture the
    generator produces, which the mean of many samples smooths away.

    Parameters
    ----------
    model, windows, masks
        As for :func:`sample_fills`.
    seed : int or sequence of int, optional
        As for :func:`sample_fills`.
    texture_tilt, guided_texture_tilt, flanked_texture_tilt : float or sequence of float, optional
        As for :func:`sample_fills`.

    Returns
    -------
    numpy.ndarray, float32 (N, P, P)
        The filled slice of each window with the filled pixels (unknown,
        inside the hole box) replaced by the sample; known pixels are the
        input values. With a regressed mean (and std), the sample is shifted
        (and scaled) as :func:`sample_fills` moves them, G's own mean and
        std estimated from :data:`CENTRE_SAMPLES` more draws of the window.
    """
    config = check_filled_model(model).config
    win, unknown = _as_windows(windows, masks, config)
    device = next(model.parameters()).device
    tilts = dict(texture_tilt=texture_tilt, guided_texture_tilt=guided_texture_tilt, flanked_texture_tilt=flanked_texture_tilt)
    _tilt_plan(model, device, **tilts)  # checks the arguments before any work
    seeds = _window_seeds(seed, win.shape[0])
    return _draws_for_tilts(model, win, unknown, seeds, [tilts])[0]


def _draws_for_tilts(model, win, unknown, seeds, tilts) -> list[np.ndarray]:
    """:func:`draw_fills` of the same noise for each of several sets of texture tilts.

    G runs once per window: the tilt is a linear filter of its output, so
    trying many (as :func:`ctinpaint.calibration.fit_texture_tilt` does)
    costs little more than one.

    Parameters
    ----------
    model
        As for :func:`sample_fills`.
    win, unknown : numpy.ndarray, float32 and bool (N, K, P, P)
        Checked windows and masks (as :func:`draw_fills` prepares them).
    seeds : list of int
        One noise seed per window.
    tilts : sequence of dict
        Keyword arguments ``texture_tilt``, ``guided_texture_tilt`` and
        ``flanked_texture_tilt`` (any may be left out) as for :func:`sample_fills`.

    Returns
    -------
    list of numpy.ndarray, float32 (N, P, P)
        One stack of draws per tilt, in order.
    """
    config = model.config
    P, L = config.patch, config.hole
    o = (P - L) // 2
    device = next(model.parameters()).device
    plans = [_tilt_plan(model, device, **t) for t in tilts]
    known = np.where(unknown, 0.0, win).astype(np.float32)
    c = getattr(config, "context", 0)
    outs = [known[:, c].copy() for _ in tilts]
    # With a regressed mean each window also draws CENTRE_SAMPLES fills: a launch then holds as many
    # fills as sample_fills' default, not 1024 windows' worth (26 GB of activations on the CPU).
    launch = DEFAULT_BATCH["cuda" if device.type == "cuda" else "cpu"]
    step = max(1, launch // CENTRE_SAMPLES) if getattr(config, "mean_net", False) else launch
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(known), step):
                stop = min(len(known), start + step)
                y = torch.from_numpy(known[start:stop]).to(device)
                hole = torch.from_numpy(unknown[start:stop].astype(np.float32)).to(device)
                z = torch.cat([
                    model.sample_z(1, generator=torch.Generator(device=device).manual_seed(s), device=device)
                    for s in seeds[start:stop]
                ])
                cond = model.condition(y, hole)
                fill = model.generate(z, cond).reshape(stop - start, L * L).float()
                regressed = _regressed_mean(model, cond)
                # CENTRE_SAMPLES more draws of each window estimate G's own mean (and std), to centre
                # the draw as sample_fills centres all of them.
                more = None if regressed is None else _more_draws(model, cond, seeds[start:stop], device)
                sel = unknown[start:stop, c, o : o + L, o : o + L]
                weights = None
                if any(plan is not None for plan in plans):
                    weights = _depth_weights(unknown[start:stop], config, device)
                for out, plan in zip(outs, plans):
                    drawn = _tilted(fill[:, None], plan, weights)[:, 0]
                    others = None if more is None else _tilted(more, plan, weights)
                    if regressed is not None:
                        drawn = _centred_draw(model, cond, drawn, others, regressed)
                    drawn = drawn.reshape(stop - start, L, L).cpu().numpy()
                    box = out[start:stop, o : o + L, o : o + L]  # a view: writes go to ``out``
                    box[sel] = drawn[sel]
    finally:
        model.train(was_training)
    return outs


def _more_draws(model, cond, seeds, device) -> torch.Tensor:
    """CENTRE_SAMPLES fills (W, CENTRE_SAMPLES, L * L) per window, from the windows' own seeds."""
    z = torch.stack([
        model.sample_z(CENTRE_SAMPLES, generator=torch.Generator(device=device).manual_seed(s), device=device)
        for s in seeds
    ])
    return model.generate_grouped(z, cond).float().reshape(len(seeds), CENTRE_SAMPLES, -1)


def _centred_draw(model, cond, fill, more, regressed) -> torch.Tensor:
    """``fill`` (W, L * L) moved (and scaled) about G's mean, from ``more`` draws, as :func:`sample_fills` moves every sample."""
    w = fill.shape[0]
    L = regressed.shape[-1]
    _, scale = _regressed_scale(model, cond, more.std(dim=1).reshape(w, L, L))
    deviation = (fill - more.mean(dim=1)).reshape(w, L, L)
    return (regressed.reshape(w, L, L).float() + deviation * scale).clamp_(0.0, 1.0).reshape(w, L * L)


def tilt_texture(fills: torch.Tensor, texture_tilt: float) -> torch.Tensor:
    """Fills with their texture made rougher (``texture_tilt`` > 0) or smoother (< 0).

    Each fill's 2D cosine transform (that of the hole box, with mirrored
    edges) is multiplied by ``(1 + λ) ** texture_tilt``, λ in [0, 8] the
    eigenvalue of the 5-point Laplacian at that frequency: the constant part
    is kept, the finest checkerboard scaled by ``9 ** texture_tilt``. A linear
    filter, so a model with a regressed mean, whose samples are re-centred on
    that mean (and, with a std head, re-scaled to its std), keeps its mean
    and std; only how neighbouring pixels vary together changes, which is
    what a single sample's texture is.

    Parameters
    ----------
    fills : torch.Tensor, float (..., L, L)
    texture_tilt : float
        In [-MAX_TEXTURE_TILT, MAX_TEXTURE_TILT].

    Returns
    -------
    torch.Tensor, float32 (..., L, L)

    Examples
    --------
    >>> fills = torch.randn(100, 18, 18)
    >>> bool(torch.allclose(tilt_texture(fills, 0.0), fills))
    True
    >>> smooth = tilt_texture(fills, -1.0)
    >>> bool(smooth.diff(dim=-1).abs().mean() < fills.diff(dim=-1).abs().mean())
    True
    """
    if not isinstance(fills, torch.Tensor) or fills.ndim < 2 or fills.shape[-1] != fills.shape[-2]:
        raise ValueError(f"fills: expected a tensor (..., L, L), got {getattr(fills, 'shape', type(fills).__name__)}")
    texture_tilt = check_float(texture_tilt, name="texture_tilt", minimum=-MAX_TEXTURE_TILT, maximum=MAX_TEXTURE_TILT)
    L = fills.shape[-1]
    matrix = _tilt_operator(L, texture_tilt, fills.device)
    return (fills.float().reshape(*fills.shape[:-2], L * L) @ matrix).reshape(fills.shape)


def _tilt_plan(model, device, *, texture_tilt=None, guided_texture_tilt=None, flanked_texture_tilt=None):
    """Filters (F, L * L, L * L), or None for no tilt.

    One per depth bin, then (with ``guided_texture_tilt``) one per depth bin of guided pixels, then
    (with ``flanked_texture_tilt``) one per depth bin of flanked pixels; F = 1 when all are the same.
    :func:`_depth_weights` gives each pixel's weights on them.
    """
    if texture_tilt is None and guided_texture_tilt is None and flanked_texture_tilt is None:
        return None
    tilts = check_texture_tilt(0.0 if texture_tilt is None else texture_tilt)
    for name, extra in (("guided_texture_tilt", guided_texture_tilt), ("flanked_texture_tilt", flanked_texture_tilt)):
        if extra is None:
            continue
        if not getattr(model.config, "context", 0):
            raise ValueError(f"{name}: only a model with 2.5D context has guided pixels; pass None")
        tilts += check_texture_tilt(extra, name=name)
    if flanked_texture_tilt is not None and guided_texture_tilt is None:
        raise ValueError("flanked_texture_tilt needs guided_texture_tilt (the tilt of the one-sided guided pixels)")
    if not any(tilts):
        return None
    if not getattr(model.config, "mean_net", False):
        raise ValueError(
            "texture_tilt: only a model with a regressed mean (ModelConfig.mean_net) can reshape its texture "
            "without changing its mean fill; pass None"
        )
    L = model.config.hole
    if len(set(tilts)) == 1:
        return _tilt_operator(L, tilts[0], device)[None]
    return torch.stack([_tilt_operator(L, t, device) for t in tilts])


def _tilted(fills: torch.Tensor, plan: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
    """``fills`` (W, S, L * L) filtered by ``plan``, each pixel's filters mixed by ``weights`` (W, L * L, 3 B)."""
    if plan is None:
        return fills
    fills = fills.float()
    if plan.shape[0] == 1:
        return fills @ plan[0]
    # A plan of B filters serves all three kinds of pixel; one of 2 B the unguided and all guided ones.
    B = weights.shape[-1] // 3
    unguided, one, both = weights[..., :B], weights[..., B : 2 * B], weights[..., 2 * B :]
    if plan.shape[0] == B:
        weights = unguided + one + both
    elif plan.shape[0] == 2 * B:
        weights = torch.cat([unguided, one + both], dim=-1)
    return sum((fills @ plan[b]) * weights[:, None, :, b] for b in range(plan.shape[0]))


def filled_depth(filled) -> np.ndarray:
    """Depth of each filled pixel into its hole: chessboard distance to the nearest pixel not filled.

    Parameters
    ----------
    filled : numpy.ndarray, bool (N, H, W)
        The pixels filled (e.g. the unknown pixels inside a window's hole box).
        Everything outside the array counts as not filled.

    Returns
    -------
    numpy.ndarray, int64 (N, H, W)
        1 next to a pixel not filled, 0 where not filled.

    Examples
    --------
    >>> filled_depth(np.ones((1, 5, 5), bool))[0, 2].tolist()
    [1, 2, 3, 2, 1]
    """
    from scipy import ndimage

    filled = np.asarray(filled, dtype=bool)
    if filled.ndim != 3:
        raise ValueError(f"filled: expected a bool array (N, H, W), got shape {filled.shape}")
    padded = np.pad(filled, ((0, 0), (1, 1), (1, 1)))
    depth = np.stack([ndimage.distance_transform_cdt(m, metric="chessboard") for m in padded])
    return depth[:, 1:-1, 1:-1].astype(np.int64)


def _depth_weights(unknown: np.ndarray, config, device) -> torch.Tensor:
    """Weights (W, L * L, 3 B) of the texture filters at each hole-box pixel of ``unknown`` (W, K, P, P) windows.

    Each depth bin's weight is 1 at its centre and falls linearly to 0 at the neighbouring bins'
    centres, so a pixel's tilt moves smoothly with its depth (no seams at bin edges); the first B
    weights are an unguided pixel's, the next B a one-sided guided one's, the last B a flanked
    one's (see :func:`_tilt_plan`).
    """
    from .calibration import guided_sides

    P, L, c = config.patch, config.hole, getattr(config, "context", 0)
    o = (P - L) // 2
    box = (slice(None), slice(o, o + L), slice(o, o + L))
    depth = filled_depth(unknown[:, c][box]).reshape(len(unknown), L * L)
    sides = guided_sides(unknown, c)[box].reshape(len(unknown), L * L, 1)
    centres = bin_centres(TEXTURE_DEPTHS)
    eye = np.eye(len(centres))
    weights = np.stack([np.interp(depth, centres, eye[b]) for b in range(len(centres))], axis=-1)
    weights = np.concatenate([weights * (sides == k) for k in (0, 1, 2)], axis=-1)
    return torch.from_numpy(weights.astype(np.float32)).to(device)


def _tilt_operator(L: int, texture_tilt: float, device) -> torch.Tensor:
    k = np.arange(L)
    # Orthonormal DCT-II: its basis diagonalises the 5-point Laplacian with mirrored edges.
    dct = np.sqrt(2.0 / L) * np.cos(np.pi * (k[None, :] + 0.5) * k[:, None] / L)
    dct[0] /= np.sqrt(2.0)
    lam = 2.0 - 2.0 * np.cos(np.pi * k / L)
    gain = (1.0 + lam[:, None] + lam[None, :]) ** texture_tilt
    basis = np.kron(dct, dct)  # rows: 2D basis images, flattened
    # Symmetric, so it applies from either side to flattened fills.
    matrix = basis.T @ (gain.reshape(-1, 1) * basis)
    return torch.from_numpy(matrix.astype(np.float32)).to(device)


def fill_diversity(model, windows, masks, *, n_samples: int = 64, seed: int = 0) -> float:
    """Mean per-pixel standard deviation of fills over the filled pixels.

    A generator that ignores its noise gives ~0 here, and then its uncertainty
    maps are meaningless; training logs this number so the failure is visible.

    Parameters
    ----------
    model, windows, masks
        As for :func:`sample_fills`.
    n_samples : int, default 64
    seed : int, default 0

    Returns
    -------
    float
        In network units (fraction of the intensity range).
    """
    stats = sample_fills(model, windows, masks, n_samples=n_samples, seed=seed)
    if not stats.filled.any():
        raise ValueError("masks: no unknown pixel inside the hole box of any window")
    return float(stats.std[stats.filled].mean())


def _as_windows(windows, masks, config) -> tuple[np.ndarray, np.ndarray]:
    """``windows`` float32 and ``masks`` bool, both (N, K, P, P), checked against the model's config."""
    P, K = config.patch, getattr(config, "channels", 1)
    out = []
    for value, name, mask in ((windows, "windows", False), (masks, "masks", True)):
        arr = check_window_stack(value, name=name, mask=mask, channels=K)
        if arr.shape[-2:] != (P, P):
            expected = f"(N, {P}, {P}) or (N, 1, {P}, {P})" if K == 1 else f"(N, {K}, {P}, {P})"
            raise ValueError(f"{name}: expected shape {expected} for this model, got {np.shape(value)}")
        out.append(arr if mask else arr.astype(np.float32, copy=False))
    win, unknown = (a[:, None] if K == 1 else a for a in out)
    if unknown.shape[0] != win.shape[0]:
        raise ValueError(f"masks: {unknown.shape[0]} masks for {win.shape[0]} windows")
    return win, unknown


def _window_seeds(seed, n: int) -> list[int]:
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**63)
    if isinstance(seed, (list, tuple, np.ndarray)):
        seeds = [check_int(s, name="seed") for s in seed]
        if len(seeds) != n:
            raise ValueError(f"seed: {len(seeds)} seeds for {n} windows")
        return seeds
    seed = check_int(seed, name="seed")
    return [int(np.random.SeedSequence([seed % 2**63, i]).generate_state(1, np.uint64)[0] % 2**63) for i in range(n)]


def _sample_group(model, win, unknown, n_samples, per_launch, qs, seeds, device, tilt):
    """(mean, std, quantiles, the first fill) over ``n_samples`` fills for a group of windows; arrays (w, L, L)."""
    config = model.config
    L = config.hole
    w = win.shape[0]
    y = torch.from_numpy(np.where(unknown, 0.0, win).astype(np.float32)).to(device)
    hole = torch.from_numpy(unknown.astype(np.float32)).to(device)
    with autocast(device):
        cond = model.condition(y, hole)  # once per window
    weights = None if tilt is None else _depth_weights(unknown, config, device)
    moments = RunningMoments((w, L * L), device)
    hist = torch.zeros((w, L * L, QUANTILE_BINS), dtype=torch.int32, device=device) if qs else None
    generators = []
    for window_seed in seeds:
        gen = torch.Generator(device=device)
        gen.manual_seed(window_seed)
        generators.append(gen)
    done = 0
    first = None
    while done < n_samples:
        s = min(per_launch, n_samples - done)
        z = torch.stack([model.sample_z(s, generator=gen, device=device) for gen in generators])
        with autocast(device):
            fills = model.generate_grouped(z, cond).reshape(w, s, L * L)
        fills = _tilted(fills, tilt, weights)  # in float32, outside autocast
        if first is None:
            first = fills[:, 0].float().reshape(w, L, L)
        moments.update(fills)
        if hist is not None:
            _histogram_update(hist, fills)
        done += s
    mean = moments.mean.reshape(w, L, L)
    qvals = [_histogram_quantile(hist, q, n_samples).reshape(w, L, L) for q in qs]
    std = moments.std().reshape(w, L, L)
    regressed = _regressed_mean(model, cond)
    if regressed is not None:
        # Each pixel's samples move (and, with a std head, scale) about their mean as one, so
        # that their mean is the regressed one (and their std the regressed one): the quantiles
        # move with the samples.
        new_mean = regressed.reshape(w, L, L).float()
        new_std, scale = _regressed_scale(model, cond, std)
        qvals = [(new_mean + (q - mean) * scale).clamp_(0.0, 1.0) for q in qvals]
        first = (new_mean + (first - mean) * scale).clamp_(0.0, 1.0)
        mean, std = new_mean, new_std
    return mean.cpu().numpy(), std.cpu().numpy(), [q.cpu().numpy() for q in qvals], first.cpu().numpy()


def _regressed_scale(model, cond, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
    """(the samples' new std, the factor that scales them about their mean) given G's own ``std`` (W, L, L).

    Without a std head: G's std, factor 1. Pixels where G's samples all agree (to within
    float rounding, :data:`_MIN_SPREAD`) cannot be scaled; they keep a zero std.
    """
    regressed_std = getattr(model, "regressed_std", None)
    target = None if regressed_std is None else regressed_std(cond)
    if target is None:
        return std, 1.0
    target = target.reshape(std.shape).float()
    spread = std > _MIN_SPREAD
    scale = torch.where(spread, target / torch.where(spread, std, 1.0), 0.0)
    return torch.where(spread, target, 0.0), scale


def _regressed_mean(model, cond: torch.Tensor) -> torch.Tensor | None:
    """The model's regressed mean fill (W, 1, L, L), or None when its samples' mean is the fill."""
    regressed_mean = getattr(model, "regressed_mean", None)
    return None if regressed_mean is None else regressed_mean(cond)


def _histogram_update(hist: torch.Tensor, fills: torch.Tensor) -> None:
    w, s, p = fills.shape
    bins = hist.shape[-1]
    idx = (fills.float().clamp(0.0, 1.0) * bins).long().clamp_(max=bins - 1)
    base = (torch.arange(w * p, device=fills.device).reshape(w, 1, p)) * bins
    flat = (base + idx).reshape(-1)
    hist.view(-1).index_add_(0, flat, torch.ones_like(flat, dtype=torch.int32))


def _histogram_quantile(hist: torch.Tensor, q: float, n: int) -> torch.Tensor:
    """Quantile ``q`` per pixel from counts, interpolating linearly inside the bin."""
    bins = hist.shape[-1]
    cdf = hist.cumsum(dim=-1).float()
    target = q * n
    k = torch.searchsorted(cdf, torch.full(cdf.shape[:-1] + (1,), target, device=cdf.device)).clamp_(max=bins - 1)
    below = torch.where(k > 0, cdf.gather(-1, (k - 1).clamp(min=0)), torch.zeros_like(k, dtype=cdf.dtype))
    count = hist.gather(-1, k).float().clamp(min=1.0)
    frac = ((target - below) / count).clamp(0.0, 1.0)
    return ((k.float() + frac) / bins).squeeze(-1)
