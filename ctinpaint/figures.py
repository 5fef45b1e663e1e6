"""Figures for talks and papers: uncertainty panels, training curves, image rows.

Every function draws on its own :class:`matplotlib.figure.Figure` (no pyplot
state, no backend switch, so it is safe inside napari or a worker thread) and
writes a PNG atomically: under a hidden temporary name beside the target, then
renamed into place. Matplotlib is imported inside the functions, so
``import ctinpaint`` does not pay for it.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

import numpy as np

from ._checks import check_window_stack

#: Colour of unknown pixels in input panels. Not black or white (both are legal
#: CT values) and outside both the grey scale and the std colormap.
HOLE_COLOR = "#e7298a"
#: Perceptually uniform colormap for standard-deviation maps.
STD_CMAP = "viridis"
#: Resolution of written PNGs.
DPI = 150

_FONT = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9}

# Reference lines for validation metrics whose ideal value is known.
_VALIDATION_IDEAL = {
    "coverage_1sigma": (100.0 * math.erf(1 / math.sqrt(2)), "Gaussian ideal 68.3%"),
    "coverage_2sigma": (100.0 * math.erf(2 / math.sqrt(2)), "Gaussian ideal 95.4%"),
    "interval_coverage": (95.0, "ideal 95%"),
    "texture_ratio": (1.0, "ideal 1"),
}
_VALIDATION_TITLES = {
    "psnr": "PSNR of mean fill [dB]",
    "mae": "MAE of mean fill",
    "nll": "NLL, std scale fitted (picks best)",
    "ssim": "SSIM of mean fill",
    "coverage_1sigma": "truth within ±1σ [%]",
    "coverage_2sigma": "truth within ±2σ [%]",
    "interval_coverage": "truth in 95% interval [%]",
    "diversity": "sample diversity (mean std)",
    "texture_ratio": "texture ratio",
}


# --------------------------------------------------------------------------- uncertainty panels


def uncertainty_panels(
    windows,
    masks,
    truth,
    stats,
    sample,
    path,
    *,
    titles=None,
    max_rows: int = 6,
    units: str = "network units",
    title: str | None = None,
) -> Path:
    """Draw input | truth | mean fill | one sample | std for each window and save a PNG.

    Each row shares one grey scale (the range of the known input, the truth, the
    mean and the sample of that row), so fill and context are directly
    comparable. Unknown pixels of the input are drawn in :data:`HOLE_COLOR`
    (black is a legal CT value), and the filled region is outlined in the
    other panels. The std column uses one colour scale, from 0 to the largest
    std shown, for all rows, with a colour bar labelled in ``units``; when every
    std is 0 (a deterministic fill such as the biharmonic baseline) the panels
    say so and the colour bar is left out.

    Parameters
    ----------
    windows : array-like, float (N, P, P) or (N, 1, P, P)
        Input windows; values at unknown pixels are not shown.
    masks : array-like, bool, same shape
        True where the value is unknown.
    truth : array-like, float, same shape, or None
        The true windows (held-out holes). None for real artifacts: the truth
        column is left out and the row label gives the mean std, not the MAE.
    stats : ctinpaint.sampling.FillStats
        Or any object with ``mean`` and ``std`` arrays of the same shape (and
        optionally ``filled``; default: ``masks``).
    sample : array-like, float, same shape, or None
        One single generated fill per window, pasted into the window. None
        leaves the column out.
    path : str or os.PathLike
        Output ``.png``; its folder must exist. Replaced if it exists.
    titles : sequence of str, optional
        One name per window (e.g. "slice 12, artifact 3"); default "window i".
    max_rows : int, default 6
        At most this many windows (the first ones) are drawn.
    units : str, default "network units"
        Units of the values, shown on the std colour bar.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        Shapes that do not match (the argument is named), no window, a bad
        ``titles`` length, a ``path`` that is not a .png or whose folder does not
        exist, non-finite or negative std.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from ctinpaint.sampling import FillStats
    >>> w = np.random.default_rng(0).random((2, 32, 32), dtype=np.float32)
    >>> m = np.zeros((2, 32, 32), bool); m[:, 7:25, 7:25] = True
    >>> stats = FillStats(mean=w, std=np.where(m, 0.05, 0.0).astype(np.float32), quantiles=None, filled=m)
    >>> out = uncertainty_panels(w, m, w, stats, w, os.path.join(tempfile.mkdtemp(), "panels.png"))
    >>> out.suffix
    '.png'
    """
    path = _check_png_path(path)
    win = check_window_stack(windows, name="windows", square=False)
    shape = win.shape
    unknown = check_window_stack(masks, name="masks", square=False, shape=shape, mask=True)
    true = None if truth is None else check_window_stack(truth, name="truth", square=False, shape=shape)
    for attr in ("mean", "std"):
        if not hasattr(stats, attr) or callable(getattr(stats, attr)):
            raise TypeError(f"stats: expected a FillStats (with .mean and .std), got {type(stats).__name__}")
    mean = check_window_stack(stats.mean, name="stats.mean", square=False, shape=shape)
    std = check_window_stack(stats.std, name="stats.std", square=False, shape=shape)
    filled_attr = getattr(stats, "filled", None)
    filled = unknown if filled_attr is None else check_window_stack(filled_attr, name="stats.filled", square=False, shape=shape, mask=True)
    one = None if sample is None else check_window_stack(sample, name="sample", square=False, shape=shape)
    if len(win) == 0:
        raise ValueError("windows: no window to draw")
    if not isinstance(max_rows, (int, np.integer)) or isinstance(max_rows, bool) or max_rows < 1:
        raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
    n = min(len(win), int(max_rows))
    if titles is None:
        names = [f"window {i}" for i in range(n)]
    else:
        if isinstance(titles, str) or len(titles) != len(win):
            raise ValueError(f"titles: expected {len(win)} names (one per window), got {titles!r:.80}")
        names = [str(t) for t in titles[:n]]
    std_shown = np.asarray(std[:n], dtype=np.float64)
    if not np.isfinite(std_shown).all() or (std_shown < 0).any():
        raise ValueError("stats.std: non-finite or negative values")

    _require_matplotlib()
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    columns = ["input\n(unknown pixels in magenta)"]
    if true is not None:
        columns.append("truth")
    columns.append("mean fill")
    if one is not None:
        columns.append("one sample")
    columns.append("std (uncertainty)")
    ncols = len(columns)
    std_max = float(std_shown.max())
    no_spread = std_max == 0.0  # a deterministic fill: say so instead of a meaningless colour bar
    std_max = std_max if not no_spread else 1.0
    hole_cmap = ListedColormap([HOLE_COLOR])

    with _style():
        fig = Figure(figsize=(1.75 * ncols + 1.6, 1.75 * n + (0.9 if title else 0.6)), layout="constrained")
        axes = fig.subplots(n, ncols, squeeze=False)
        std_image = None
        for r in range(n):
            known = ~unknown[r]
            parts = [win[r][known], mean[r][filled[r]]]
            if true is not None:
                parts.append(true[r].ravel())
            if one is not None:
                parts.append(one[r][filled[r]])
            lo, hi = _range(np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts]))
            gray = {"cmap": "gray", "vmin": lo, "vmax": hi, "interpolation": "nearest"}

            c = 0
            ax = axes[r, c]
            ax.imshow(np.where(known, win[r], np.nan), **gray)
            ax.imshow(np.ma.masked_where(known, np.ones(known.shape)), cmap=hole_cmap, interpolation="nearest")
            if true is not None:
                err = np.abs(np.asarray(mean[r], np.float64) - true[r])[filled[r]]
                score = f"MAE of mean {err.mean():.3g}" if err.size else "no filled pixel"
            else:
                s = np.asarray(std[r], np.float64)[filled[r]]
                score = f"mean std {s.mean():.3g}" if s.size else "no filled pixel"
            ax.set_ylabel(f"{names[r]}\n{score}\ngrey {lo:.3g}–{hi:.3g}", fontsize=9)
            panels = ([true[r]] if true is not None else []) + [mean[r]] + ([one[r]] if one is not None else [])
            for image in panels:
                c += 1
                axes[r, c].imshow(image, **gray)
                _outline(axes[r, c], filled[r])
            c += 1
            std_image = axes[r, c].imshow(std[r], cmap=STD_CMAP, vmin=0.0, vmax=std_max, interpolation="nearest")
            _outline(axes[r, c], filled[r], color="white")
            if no_spread:
                axes[r, c].text(
                    0.5, 0.97, "std = 0\n(no uncertainty)", color="white", ha="center", va="top",
                    fontsize=8, linespacing=1.1, transform=axes[r, c].transAxes,
                )
            for ax in axes[r]:
                ax.set_xticks([])
                ax.set_yticks([])
        for c, label in enumerate(columns):
            axes[0, c].set_title(label)
        if not no_spread:
            bar = fig.colorbar(std_image, ax=list(axes[:, -1]), shrink=min(1.0, 0.5 + 0.1 * n), aspect=12 + 3 * n)
            bar.set_label(f"std [{units}]")
        if title:
            fig.suptitle(title)
        if len(win) > n:
            fig.supxlabel(f"first {n} of {len(win)} windows", fontsize=9)
        _save(fig, path)
    return path


# --------------------------------------------------------------------------- training curves


def loss_curves(log_path, path) -> Path:
    """Plot training losses and held-out validation metrics against the step.

    The top row shows each phase's ``loss`` (e.g. D and G) and, beside it, the
    other numeric loss terms (mode-seeking, penalties...). Raw values are drawn
    thin and light, an exponential moving average bold. The bottom row has one
    small panel per validation metric, with the ideal value dashed where it is
    known (e.g. 95.4% for ``coverage_2sigma``; coverages are shown in percent).

    Parameters
    ----------
    log_path : str or os.PathLike
        Training log, one JSON object per line, e.g.
        ``{"step": 100, "elapsed": 3.2, "D": {"loss": 1.2}, "G": {"loss": 0.8, "mode_seeking": 0.1}}``
        and ``{"step": 500, "validation": {"psnr": 23.1, "mae": 0.04, "coverage_2sigma": 0.9}}``.
        Any top-level key whose value is an object of numbers is a phase (a bare
        number counts as that phase's loss). Missing keys are tolerated; blank
        lines, lines that are not JSON objects (e.g. a half-written last line)
        and lines without a numeric ``step`` are skipped.
    path : str or os.PathLike
        Output ``.png``; its folder must exist.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        ``log_path`` missing, or without a single usable line (the file is named);
        a bad ``path``.

    Examples
    --------
    >>> import json, os, tempfile
    >>> d = tempfile.mkdtemp(); log = os.path.join(d, "log.jsonl")
    >>> with open(log, "w") as f:
    ...     for s in range(1, 4):
    ...         print(json.dumps({"step": s, "D": {"loss": 1.0 / s}, "G": {"loss": 0.5 * s}}), file=f)
    >>> loss_curves(log, os.path.join(d, "curves.png")).name
    'curves.png'
    """
    path = _check_png_path(path)
    log_path = Path(log_path)
    if not log_path.is_file():
        raise ValueError(f"log_path: {log_path} does not exist or is not a file")
    train, val = _read_log(log_path)
    if not train and not val:
        raise ValueError(f"log_path: {log_path} has no usable log line (JSON objects with a numeric 'step')")

    _require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # "lr" is the logged learning rate, not a loss term.
    main = {k: v for k, v in train.items() if k[1] == "loss"}
    extra = {k: v for k, v in train.items() if k[1] not in ("loss", "lr")}
    top = [(title, p) for title, p in (("total loss per network", main), ("loss terms", extra)) if p]
    nval = len(val)
    # Validation panels: at most 4 per row, rows filled evenly (5 -> 3 + 2, not 4 + 1).
    val_rows = math.ceil(nval / 4)
    val_cols = math.ceil(nval / val_rows) if nval else 0
    width = max(4.6 * len(top), 3.0 * val_cols, 4.6)
    heights = ([3.2] if top else []) + ([2.9 * val_rows] if nval else [])

    with _style():
        fig = Figure(figsize=(width, sum(heights) + (0.4 if nval else 0.0)), layout="constrained")
        parts = list(fig.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0])
        if top:
            axes = parts.pop(0).subplots(1, len(top), squeeze=False)[0]
            for ax, (panel_title, series) in zip(axes, top):
                for n, ((phase, key), (x, y)) in enumerate(series.items()):
                    _plot_smoothed(ax, x, y, phase if key == "loss" else f"{phase}: {key}", f"C{n % 10}")
                ax.set_title(panel_title)
                ax.set_ylabel("loss")
                values = np.concatenate([np.asarray(y, float) for _, y in series.values()])
                values = values[np.isfinite(values)]
                # Reconstruction terms start orders of magnitude above where they settle;
                # a log axis keeps the later, informative part of every curve visible.
                if values.size and values.min() > 0 and values.max() / values.min() > 100:
                    ax.set_yscale("log")
                elif values.size and np.abs(values).max() > 100 * max(np.median(np.abs(values)), 1e-6):
                    ax.set_yscale("symlog", linthresh=1.0)  # terms that can be negative (likelihoods)
                # Seven terms rarely find an empty corner: a light box keeps the labels legible over curves.
                ax.legend(loc="best", framealpha=0.8, edgecolor="none")
        if nval:
            axes = parts.pop(0).subplots(val_rows, val_cols, squeeze=False).ravel()
            for ax, (key, (x, y)) in zip(axes, val.items()):
                pct = key.startswith("coverage") or key == "interval_coverage"
                y = np.asarray(y) * (100.0 if pct else 1.0)
                ax.plot(x, y, "o-", color="C3", markersize=3.5, linewidth=1.5)
                if key in _VALIDATION_IDEAL:
                    ideal, label = _VALIDATION_IDEAL[key]
                    ax.axhline(ideal, color="0.35", linestyle="--", linewidth=1.0, label=label)
                    ax.legend(loc="best", frameon=False)
                ax.set_title(_VALIDATION_TITLES.get(key, key))
            for ax in axes[nval:]:
                ax.set_visible(False)
        for ax in fig.get_axes():
            ax.set_xlabel("step")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
            ax.grid(alpha=0.3)
        if val:
            fig.suptitle("training losses and held-out validation" if top else "held-out validation")
        _save(fig, path)
    return path


# --------------------------------------------------------------------------- image rows


def side_by_side(images, labels, path, *, shared_scale: bool = False, title: str | None = None) -> Path:
    """Save a labelled row of grayscale images (e.g. a phantom slice beside a real one).

    Parameters
    ----------
    images : sequence of array-like, each 2D (H, W) (a leading axis of length 1 is dropped)
        Any real dtype; sizes may differ.
    labels : sequence of str
        One label per image, shown above it.
    path : str or os.PathLike
        Output ``.png``; its folder must exist.
    shared_scale : bool, default False
        False: each image is shown between its own 0.5th and 99.5th percentiles
        (images in different units stay readable). True: one scale for all.
        The grey range shown is printed under each image.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        No image, a label count that differs from the image count, an image that
        is not 2D or has no finite value, a bad ``path``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> a = np.random.default_rng(0).random((64, 64)); b = np.zeros((32, 48), np.uint8)
    >>> side_by_side([a, b], ["phantom", "real"], os.path.join(tempfile.mkdtemp(), "row.png")).name
    'row.png'
    """
    path = _check_png_path(path)
    if isinstance(images, np.ndarray) and images.ndim == 2:
        raise ValueError("images: expected a sequence of 2D images, got one 2D array; wrap it in a list")
    images = list(images)
    if not images:
        raise ValueError("images: no image to draw")
    if isinstance(labels, str):
        raise ValueError("labels: expected a sequence of str, one per image, got a single str")
    labels = [str(label) for label in labels]
    if len(labels) != len(images):
        raise ValueError(f"labels: {len(labels)} labels for {len(images)} images")
    arrays = []
    for i, image in enumerate(images):
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2 or arr.dtype.kind not in "biuf":
            raise ValueError(f"images[{i}]: expected a 2D numeric image, got shape {arr.shape} dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).any():
            raise ValueError(f"images[{i}]: no finite value")
        arrays.append(arr)
    if shared_scale:
        scale = _range(np.concatenate([a[np.isfinite(a)] for a in arrays]), robust=True)
        ranges = [scale] * len(arrays)
    else:
        ranges = [_range(a[np.isfinite(a)], robust=True) for a in arrays]

    _require_matplotlib()
    from matplotlib.figure import Figure

    ratios = [a.shape[1] / a.shape[0] for a in arrays]
    height = 3.2
    with _style():
        fig = Figure(
            figsize=(max(height * sum(ratios) + 0.4 * len(arrays), 3.0), height + (0.9 if title else 0.6)),
            layout="constrained",
        )
        axes = fig.subplots(1, len(arrays), squeeze=False, width_ratios=ratios)[0]
        for ax, arr, label, (lo, hi) in zip(axes, arrays, labels, ranges):
            ax.imshow(arr, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(label)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"{arr.shape[0]}×{arr.shape[1]} px, grey {lo:.4g}–{hi:.4g}", fontsize=8)
        if title:
            fig.suptitle(title)
        _save(fig, path)
    return path


# --------------------------------------------------------------------------- helpers


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("ctinpaint.figures needs matplotlib: pip install matplotlib") from exc


def _style():
    from matplotlib import rc_context

    return rc_context(_FONT)


def _check_png_path(path) -> Path:
    try:
        path = Path(path)
    except TypeError as exc:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from exc
    if path.suffix.lower() != ".png":
        raise ValueError(f"path: {path} must end in .png")
    if not path.parent.is_dir():
        raise ValueError(f"path: the folder {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"path: {path} is a folder")
    return path


def _save(fig, path: Path) -> None:
    """Write ``fig`` as PNG under a temporary name beside ``path``, then rename it into place."""
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def _range(values: np.ndarray, *, robust: bool = False) -> tuple[float, float]:
    """Display range of ``values`` (finite ones); never empty."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    if robust:
        lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    else:
        lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        pad = max(abs(lo), 1.0) * 1e-3
        lo, hi = lo - pad, hi + pad
    return lo, hi


def _outline(ax, region: np.ndarray, *, color: str = HOLE_COLOR) -> None:
    """Trace the pixel-edge boundary of a boolean region (exact, no smoothing)."""
    from matplotlib.collections import LineCollection

    if not region.any():
        return
    r = np.pad(np.asarray(region, bool), 1)
    segments = []
    # Horizontal edges: between rows i-1 and i where the region changes.
    ys, xs = np.nonzero(r[1:, 1:-1] != r[:-1, 1:-1])
    segments += [((x - 0.5, y - 0.5), (x + 0.5, y - 0.5)) for y, x in zip(ys, xs)]
    ys, xs = np.nonzero(r[1:-1, 1:] != r[1:-1, :-1])
    segments += [((x - 0.5, y - 0.5), (x - 0.5, y + 0.5)) for y, x in zip(ys, xs)]
    ax.add_collection(LineCollection(segments, colors=color, linewidths=1.0, linestyles=(0, (3, 2)), alpha=0.9))


def _read_log(log_path: Path):
    """Training series {(phase, key): (steps, values)} and validation series {key: (steps, values)}."""
    train: dict[tuple[str, str], tuple[list, list]] = {}
    val: dict[str, tuple[list, list]] = {}
    with open(log_path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(record, dict) or not _is_number(record.get("step")):
                continue
            step = float(record["step"])
            for name, value in record.items():
                if name in ("step", "elapsed"):
                    continue
                if name == "validation":
                    if isinstance(value, dict):
                        for key, v in value.items():
                            if _is_number(v):
                                xs, ys = val.setdefault(str(key), ([], []))
                                xs.append(step)
                                ys.append(float(v))
                    continue
                terms = {"loss": value} if _is_number(value) else value if isinstance(value, dict) else {}
                for key, v in terms.items():
                    if _is_number(v):
                        xs, ys = train.setdefault((str(name), str(key)), ([], []))
                        xs.append(step)
                        ys.append(float(v))
    return train, val


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plot_smoothed(ax, x, y, label: str, color: str) -> None:
    x = np.asarray(x)
    y = np.asarray(y)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if len(y) < 8:
        ax.plot(x, y, "o-", color=color, markersize=3, linewidth=1.5, label=label)
        return
    ax.plot(x, y, color=color, linewidth=0.6, alpha=0.3)
    # EMA over about 2% of the points: follows the trend, hides step-to-step noise.
    alpha = min(1.0, 1.0 / max(1.0, 0.02 * len(y)))
    smooth = np.empty_like(y)
    acc = y[0]
    for i, v in enumerate(y):
        acc = alpha * v + (1.0 - alpha) * acc
        smooth[i] = acc
    ax.plot(x, smooth, color=color, linewidth=1.8, label=label)
