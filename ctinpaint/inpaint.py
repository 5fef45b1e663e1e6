"""Fill every artifact of a volume and write how uncertain each filled voxel is.

The volume is processed in slabs of whole slices along the chosen axis, one Dask
task per slab. In a slab, every artifact of every slice is cut into windows
(:func:`ctinpaint.artifacts.windows_for`); windows are filled in rounds — the
first window of every artifact together, then the second, ... — so the tiles of
a large artifact are each conditioned on the tiles filled before them. A large
artifact is filled along several paths, each conditioned on its own draws of
the earlier tiles, so a tile's spread includes what they leave uncertain; the
model's calibration then adds factors, by depth into the artifact, fitted on
large artifacts with known truth (:func:`calibrate_large_artifacts`). Only
voxels inside the mask are ever written; everything else is the input, bit for
bit.

With ``out``, results go to a Zarr group whose chunks along ``axis`` match the
slabs, so parallel slab writers never touch the same chunk. The group is built
under a hidden ``.NAME.partial`` folder; each finished slab leaves a small
marker there, a re-run skips finished slabs, and the folder is renamed to
``out`` when every slab is done.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io as _stdio
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ._checks import NAN_POLICIES, check_axis, check_choice, check_fits_in_memory, check_float, check_int
from .sampling import _window_seeds, sample_fills

#: Name of the temporary file Zarr's local store writes a chunk to before renaming it.
_STORE_TEMPORARY = re.compile(r".*\.[0-9a-f]{32}\.partial")
#: Report columns, in CSV order.
REPORT_FIELDS = ("id", "axis", "slice", "r0", "c0", "r1", "c1", "pixels", "windows", "mean_std", "max_std", "status")


@dataclass(frozen=True)
class InpaintResult:
    """What :func:`inpaint_volume` produced.

    Attributes
    ----------
    inpainted : dask.array.Array
        (Z, Y, X), the input dtype: the input with every artifact filled by the
        mean of the generated samples.
    std : dask.array.Array
        (Z, Y, X) float32, in the input's units: per-voxel standard deviation of
        the samples; 0 outside the filled voxels.
    quantiles : dict of float to dask.array.Array
        (Z, Y, X) float32 in the input's units for each requested quantile; the
        input value outside the filled voxels.
    report : list of dict
        One row per artifact: ``id, axis, slice, r0, c0, r1, c1, pixels,
        windows, mean_std, max_std, status`` (status "filled" or why not).
    out : pathlib.Path or None
        The Zarr group written, when ``out`` was given.
    """

    inpainted: da.Array
    std: da.Array
    quantiles: dict
    report: list
    out: Path | None


def inpaint_volume(
    volume,
    mask,
    model,
    *,
    n_samples: int = 5000,
    paths: int = 16,
    axis: int = 0,
    out=None,
    quantiles: Sequence[float] = (),
    batch: int | None = None,
    seed: int = 0,
    slab: int | None = None,
    nan_policy: str = "raise",
    overwrite: bool = False,
    workers: int = 1,
    progress: bool | Callable[[int, int], None] = False,
    scheduler=None,
) -> InpaintResult:
    """Fill every artifact of ``volume`` with the mean of ``n_samples`` generated fills.

    Parameters
    ----------
    volume : path or array
        Anything :func:`ctinpaint.io.open_volume` accepts, (Z, Y, X).
    mask : path or array
        Artifact mask (bool, or integer labels: nonzero = artifact), same shape.
    model : ctinpaint.train.LoadedModel or str or os.PathLike
        A loaded model, or the directory of one (loaded safely on "auto" device).
        Its calibration (:mod:`ctinpaint.calibration`), when it has one, is
        applied to the std and the quantiles, and its texture tilt to every
        fill (so to the draws large artifacts are tiled with); the mean is the
        raw sample mean.
    n_samples : int, default 5000
        Generated fills per window, >= 2.
    paths : int, default 16
        Artifacts larger than the model's hole are filled tile by tile, each
        tile conditioned on the tiles filled before it. They are filled along
        this many paths, each conditioned on its own draw of the earlier tiles
        (``n_samples`` split between them), so that a tile's std includes the
        uncertainty of the pixels it continues. 1: every tile conditions on
        the mean fill of the earlier ones, and the std of later tiles is too
        small (measured in docs/quality.md). Artifacts that fit one window
        are not affected.
    axis : int, default 0
        Slices (the 2D planes the network fills) are taken along this axis.
    out : str or os.PathLike, optional
        Zarr group to write (arrays ``inpainted``, ``std`` and ``q<quantile>``,
        plus ``report.json`` and ``report.csv``). Without it the results are
        computed in memory, which suits small volumes.
    quantiles : sequence of float in (0, 1), optional
        E.g. ``(0.025, 0.975)`` for a central 95 % interval.
    batch : int, optional
        Fills per device launch (see :func:`ctinpaint.sampling.sample_fills`).
    seed : int, default 0
        Noise seed. Each window's noise is seeded from ``seed`` and the
        window's place (slice, artifact box, tile), so results do not depend on
        ``slab`` or ``workers``.
    slab : int, optional
        Slices per task (and output chunk depth along ``axis``). Default: the
        input's chunk depth along ``axis``, at most 16.
    nan_policy : {"raise", "mask"}, default "raise"
        Non-finite voxels of a float volume: refuse, or treat them as artifacts.
    overwrite : bool, default False
        Replace an existing ``out``.
    workers : int, default 1
        Slabs processed at once (Dask threads).
    progress : bool or callable, default False
        True shows a progress bar; a callable gets ``(slabs_done, slabs_total)``.
        Without ``scheduler``, an exception raised by the callable cancels the
        job: no further slab starts, the slabs already running finish (and,
        with ``out``, are kept for resuming), and the exception propagates
        once nothing runs any more.
    scheduler : str or distributed.Client, optional
        Where slabs run. None: ``workers`` threads in this process.
        ``"local:N"``: a ``dask.distributed`` LocalCluster of N single-threaded
        worker processes, started and closed here. An address such as
        ``"tcp://host:8786"`` (or a ``Client``): an existing cluster. With a
        cluster ``model`` must be a model directory every worker can read;
        each worker process loads it once (cached by path and file digest). A
        worker that dies mid-slab has its slab redone elsewhere; with ``out``,
        finished slabs are recorded, so a re-run skips them, and the output
        equals that of an uninterrupted run. Workers started with a ``GPU``
        resource (``dask worker ADDRESS --nthreads 1 --resources GPU=1``) run
        one slab at a time each.

    Returns
    -------
    InpaintResult

    Raises
    ------
    TypeError
        ``model``, ``out``, ``quantiles`` or ``progress`` of the wrong kind.
    ValueError
        Mask shape differs from the volume; a volume with no voxels, of
        another dtype than the model was trained on, or slices smaller than
        the model's window; ``out`` exists (without ``overwrite``), is the
        input, lies in a folder that is missing or not writable, or is being
        written by another job (a lock file ``.NAME.lock`` beside it says
        so); without ``out``, a result larger than the machine's memory;
        NaN/Inf with ``nan_policy="raise"``; bad parameters.
    OSError
        A write that fails (disk full); the unfinished ``.NAME.partial``
        stays, and the same call resumes it once the cause is fixed.

    Examples
    --------
    >>> # result = inpaint_volume("scan.zarr", "mask.zarr", "model_dir", out="filled.zarr")
    >>> # result.report[0]["mean_std"]
    """
    from .io import _SOURCES, open_mask, open_volume
    from .train import LoadedModel, load_model

    vol = open_volume(volume, name="volume")
    msk = open_mask(mask, shape=vol.shape)
    if vol.size == 0:
        raise ValueError(f"volume: shape {vol.shape} has no voxels")
    model_ref = None
    if not isinstance(model, LoadedModel):
        if isinstance(model, (str, os.PathLike)):
            model_ref = _ModelRef.of(model)
            model = load_model(model)
        else:
            raise TypeError(f"model must be a LoadedModel or a model directory, got {type(model).__name__}")
    if vol.dtype != np.dtype(model.intensity.dtype):
        # Fills come back in the training volume's dtype and units; cast into another dtype they would wrap.
        raise ValueError(
            f"volume: dtype {vol.dtype} differs from the dtype {model.intensity.dtype} the model was trained on"
        )
    if scheduler is not None:
        _check_scheduler(scheduler)
    if scheduler is not None and model_ref is None:
        raise ValueError("model: with a distributed scheduler pass the model directory, which each worker loads once")
    n_samples = check_int(n_samples, name="n_samples", minimum=2)
    paths = check_int(paths, name="paths", minimum=1)
    axis = check_axis(axis)
    check_int(seed, name="seed")
    check_choice(nan_policy, NAN_POLICIES, name="nan_policy")
    workers = check_int(workers, name="workers", minimum=1)
    if isinstance(quantiles, (str, bytes)) or not isinstance(quantiles, Iterable):
        raise TypeError(f"quantiles must be a sequence of numbers, got {type(quantiles).__name__} {quantiles!r}")
    qs = tuple(check_float(q, name="quantiles") for q in quantiles)
    if any(not 0.0 < q < 1.0 for q in qs):
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {qs}")
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be True, False or a callable (done, total), got {type(progress).__name__}")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a path (str or os.PathLike), got {type(out).__name__}")
    if out is None:
        check_fits_in_memory(
            vol.size * (vol.dtype.itemsize + 4 * (1 + len(qs))), name="volume", what="the in-memory result",
            hint="pass out= to write the result to a Zarr store slab by slab",
        )
    P = model.model.config.patch
    plane = [s for i, s in enumerate(vol.shape) if i != axis]
    if min(plane) < P:
        raise ValueError(
            f"volume: slices along axis {axis} are {plane[0]}x{plane[1]}, smaller than the model's {P}x{P} window"
        )
    depth = vol.shape[axis]
    context = model.model.config.context
    if slab is None:
        slab = min(16, max(vol.chunks[axis]))
    slab = check_int(slab, name="slab", minimum=1)
    starts = list(range(0, depth, slab))

    settings = {
        "shape": list(vol.shape),
        "dtype": vol.dtype.name,
        "axis": axis,
        "n_samples": n_samples,
        "paths": paths,
        "quantiles": list(qs),
        "seed": seed,
        "slab": slab,
        "batch": batch,
        "model_step": model.meta.get("step"),
        # The spread factors applied to std and quantiles (None: raw sample spread).
        "calibration": None if model.calibration is None else model.calibration.to_dict(),
        "model": hashlib.sha256(json.dumps(model.meta, sort_keys=True, default=str).encode()).hexdigest()[:16],
    }
    store = None
    if out is not None:
        out = Path(out)
        if out.exists() and not overwrite:
            raise ValueError(f"out: {out} already exists; pass overwrite=True to replace it")
        target = out.resolve()
        for src in (_SOURCES.get(name) for name in set(vol.dask.layers) | set(msk.dask.layers)):
            if src is not None and (target == src or src in target.parents or target in src.parents):
                raise ValueError(f"out: {out} would overwrite the input {src}; write to a new path")
        store = _PartialStore(out, settings, vol.dtype, qs, slab, axis)

    chunk_shape = list(vol.shape)
    chunk_shape[axis] = slab
    vol_slabs = vol.rechunk(tuple(chunk_shape))
    msk_slabs = msk.rechunk(tuple(chunk_shape))

    cancel = _Cancel()
    # On a cluster the task must not carry the model: each worker loads it once by reference.
    local_model = model if scheduler is None else None
    # Inside a distributed task a plain compute() would send the reads back to the cluster.
    read_with = None if scheduler is None else "sync"
    # Dask keeps its threads between computes, and each keeps the torch thread count it first ran
    # with, which need not be the caller's now: a reduction would then add up in another order
    # and a fill could change in its last bit from one call to the next. Tasks use the caller's.
    threads = _torch_threads() if scheduler is None else None

    def run(index: int, start: int):
        if cancel.error is not None:
            return None
        if threads is not None:
            _torch_threads(threads)
        if store is not None and store.done(index):
            return store.rows(index)
        stop = min(depth, start + slab)
        # A model with 2.5D context also reads `context` slices on each side of the slab.
        lo, hi = max(0, start - context), min(depth, stop + context)
        sel = [slice(None)] * 3
        sel[axis] = slice(lo, hi)
        planes = np.moveaxis(np.asarray(vol_slabs[tuple(sel)].compute(scheduler=read_with)), axis, 0)
        masks = np.moveaxis(np.asarray(msk_slabs[tuple(sel)].compute(scheduler=read_with)), axis, 0)
        net = local_model if local_model is not None else _worker_model(model_ref)
        result = _inpaint_planes(planes, masks, net, start=start, halo=(start - lo, hi - stop), axis=axis,
                                 n_samples=n_samples, paths=paths, quantiles=qs, batch=batch, seed=seed,
                                 nan_policy=nan_policy)
        if store is not None:
            store.write(index, start, stop, result)
            return result.rows
        return result

    tasks = [dask.delayed(run, pure=False)(i, s) for i, s in enumerate(starts)]
    try:
        if scheduler is None:
            outputs = _compute_with_progress(tasks, workers=workers, progress=progress, cancel=cancel)
        else:
            outputs = _compute_distributed(tasks, scheduler, progress=progress)
    except BaseException:
        if store is not None:
            store.release()
        raise

    if store is None:
        results = outputs
        inpainted = np.concatenate([r.planes for r in results])
        std = np.concatenate([r.std for r in results])
        qarrays = {q: np.moveaxis(np.concatenate([r.quantiles[k] for r in results]), 0, axis) for k, q in enumerate(qs)}
        report = _number_report([row for r in results for row in r.rows])
        return InpaintResult(
            inpainted=da.from_array(np.moveaxis(inpainted, 0, axis)),
            std=da.from_array(np.moveaxis(std, 0, axis)),
            quantiles={q: da.from_array(a) for q, a in qarrays.items()},
            report=report,
            out=None,
        )
    report = _number_report([row for rows in outputs for row in rows])
    final = store.finish(report, overwrite=overwrite)
    return InpaintResult(
        inpainted=open_volume(final, key="inpainted"),
        std=da.from_zarr(str(final / "std")),
        quantiles={q: da.from_zarr(str(final / _quantile_name(q))) for q in qs},
        report=report,
        out=final,
    )


# --------------------------------------------------------------------------- one slab


def calibrate_large_artifacts(model, planes, *, mask=None, n_samples: int = 1024, paths: int = 16, seed: int = 0):
    """Fit the extra spread factors of artifacts larger than one window on ones with known truth.

    Rectangular artifacts two and three hole sizes wide (as tall as the planes
    allow, at least one hole size plus one pixel) are cut into artifact-free
    parts of ``planes`` and filled exactly as :func:`inpaint_volume` fills
    them (tile by tile, ``paths`` paths, the model's calibration applied);
    :func:`ctinpaint.calibration.fit_tiled_calibration` then fits factors by
    depth so that their std and interval cover the truth as they should.
    Training calls this on its held-out rows.

    Parameters
    ----------
    model : ctinpaint.train.LoadedModel
    planes : numpy.ndarray, (Z, H, W), the model's volume dtype
        Slices not trained on, in volume units; H and W at least the model's
        window. With 2.5D context, consecutive slices of one volume.
    mask : numpy.ndarray, bool (Z, H, W), optional
        Real artifacts (or pixels not to use); no simulated artifact's
        windows touch them.
    n_samples, paths, seed
        As for :func:`inpaint_volume`. Keep 64 or more samples per path: the
        quantiles of fewer are too narrow, and the interval factors fitted on
        them would then be too wide for fills of many samples.

    Returns
    -------
    ctinpaint.calibration.Calibration or None
        The model's calibration (an identity one if it has none) with
        ``tiled_*`` factors; None when ``planes`` have no room for an artifact
        larger than one hole.

    Raises
    ------
    ValueError
        ``planes`` not 3D or smaller than the model's window, ``mask`` of
        another shape.
    """
    from .calibration import Calibration, fit_tiled_calibration
    from .evaluate import INTERVAL_QUANTILES
    from .sampling import FillStats

    planes = np.asarray(planes)
    config = model.model.config
    P, L = config.patch, config.hole
    if planes.ndim != 3 or min(planes.shape[1:]) < P:
        raise ValueError(f"planes: expected (Z, H, W) with H, W >= {P}, got shape {planes.shape}")
    blocked = np.zeros(planes.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if blocked.shape != planes.shape:
        raise ValueError(f"mask shape {blocked.shape} does not match planes {planes.shape}")
    n_samples = check_int(n_samples, name="n_samples", minimum=2)
    paths = check_int(paths, name="paths", minimum=1)
    Z, H, W = planes.shape
    height = min(3 * L, H - 4)  # two known rows above and below
    if height <= L:
        return None
    gap = P  # windows of neighbouring artifacts never overlap
    sim = np.zeros(planes.shape, bool)
    for z in range(Z):
        c, k = gap // 2, 0
        while True:
            width = (2 + k % 2) * L
            r0 = (H - height) // 2
            if c + width + gap // 2 > W:
                break
            grown = blocked[z, max(0, r0 - P) : r0 + height + P, max(0, c - P) : c + width + P]
            if not grown.any():
                sim[z, r0 : r0 + height, c : c + width] = True
            c, k = c + width + gap, k + 1
    if not sim.any():
        return None
    base = model.calibration if model.calibration is not None else Calibration()
    untiled = model._replace(calibration=replace(base, tiled_depths=None, tiled_std_scale=None,
                                                 tiled_interval_scale=None, tiled_after={}))  # fmt: skip
    result = _inpaint_planes(planes, sim, untiled, start=0, halo=(0, 0), axis=0, n_samples=n_samples, paths=paths,
                             quantiles=INTERVAL_QUANTILES, batch=None, seed=seed, nan_policy="raise")  # fmt: skip
    from scipy import ndimage

    depth = np.stack([ndimage.distance_transform_cdt(m, metric="chessboard") for m in sim])
    stats = FillStats(mean=result.planes.astype(np.float32), std=result.std, quantiles=np.stack(result.quantiles),
                      filled=sim)  # fmt: skip
    return fit_tiled_calibration(base, planes.astype(np.float32), stats, depth)


@dataclass
class _SlabResult:
    planes: np.ndarray  # (k, H, W) input dtype
    std: np.ndarray  # (k, H, W) float32
    quantiles: list  # of (k, H, W) float32
    rows: list


def _inpaint_planes(planes, masks, model, *, start, halo, axis, n_samples, paths, quantiles, batch, seed, nan_policy) -> _SlabResult:
    """Fill every artifact in a stack of planes ``(k, H, W)``; planes along ``axis`` start at ``start``.

    ``planes`` and ``masks`` hold ``halo = (before, after)`` more planes on each
    side, read only as the neighbouring slices of a model with 2.5D context.
    Neighbours are given as read (their artifacts unknown, never their fills),
    so a slab's result does not depend on how the volume is cut into slabs.
    """
    from .artifacts import find_artifacts, windows_for
    from .calibration import guided_sides

    net, intensity = model.model, model.intensity
    P, L, context = net.config.patch, net.config.hole, net.config.context
    o = (P - L) // 2
    before, after = halo
    all_planes, all_masks = planes, masks
    planes, masks = planes[before : len(planes) - after], masks[before : len(masks) - after]
    unknown_all = masks != 0
    if planes.dtype.kind == "f":
        bad = ~np.isfinite(planes)
        if bad.any():
            if nan_policy == "raise":
                raise ValueError(
                    f"volume: {int(bad.sum())} NaN/Inf voxels in slices {start}..{start + len(planes) - 1} along axis {axis}; "
                    "pass nan_policy='mask' to fill them as artifacts"
                )
            unknown_all = unknown_all | bad
            # Non-finite voxels become one more label, so they never merge with a marked artifact's label.
            masks = masks | bad if masks.dtype == bool else np.where(bad & (masks == 0), int(masks.max()) + 1, masks.astype(np.int64))
    out = planes.copy()
    std = np.zeros(planes.shape, np.float32)
    qplanes = [out.astype(np.float32) for _ in quantiles]
    rows = []
    artifacts = find_artifacts(masks, axis=0)
    # Per plane: the working image in network units (fills written in as they come),
    # padded by o unknown pixels so every window can be centred on its hole box.
    work, known = {}, {}
    for k in {a.slice for a in artifacts}:
        work[k] = np.pad(intensity.to_network(np.where(unknown_all[k], 0, planes[k])), o)
        known[k] = np.pad(~unknown_all[k], o, constant_values=False)
    neighbours = _NeighbourPlanes(all_planes, all_masks, before, context, intensity, o)
    jobs = []  # (artifact, windows)
    for a in artifacts:
        windows = windows_for(a, masks[a.slice], patch=P, hole=L)
        row = {
            "axis": axis, "slice": start + a.slice, "r0": a.bbox[0], "c0": a.bbox[1], "r1": a.bbox[2], "c1": a.bbox[3],
            "pixels": a.pixels, "windows": len(windows), "mean_std": 0.0, "max_std": 0.0, "status": "filled",
        }
        known_pixels = sum(int((~w.unknown).sum()) for w in windows)
        if known_pixels == 0:
            row["status"] = "refused: no known pixel around the artifact (it covers every window)"
            row["windows"] = 0
            windows = []
        rows.append(row)
        jobs.append((a, windows, row))

    # A large artifact is filled tile after tile, each conditioned on the tiles before it. Conditioning
    # on their mean fill alone hides how uncertain those pixels are, so its windows follow ``paths``
    # chains instead: each path conditions on its own draw of the earlier tiles, and a tile's spread
    # is that within the paths plus that between their means (what the earlier tiles pass on). The
    # rest of the shortfall (tiles see contexts training never showed) is the calibration's depth
    # factors' job.
    chains = {id(a): _Paths(windows, paths) for a, windows, _ in jobs if len(windows) > 1 and paths > 1}
    # How deep each pixel of a tiled artifact lies (distance to the nearest known pixel): the
    # calibration's extra factors for tiled artifacts depend on it.
    tiled = model.calibration is not None and model.calibration.tiled_depths is not None
    depth = {}
    if tiled:
        from scipy import ndimage

        for k in {a.slice for a, windows, _ in jobs if len(windows) > 1}:
            depth[k] = ndimage.distance_transform_cdt(unknown_all[k], metric="chessboard")
    rounds = max((len(w) for _, w, _ in jobs), default=0)
    for r in range(rounds):
        # Tiled artifact? -> [(artifact, origin, row, values, hidden, fill, seed, chain)]. Artifacts that
        # fit one window share no launch with tiles: the size of a launch can change the convolutions'
        # summation order, and their fills would then depend on ``paths`` in the last bit.
        groups = {False: [], True: []}
        for a, windows, row in jobs:
            if r >= len(windows):
                continue
            w = windows[r]
            # Centre the window on its hole box (in padded coordinates the
            # centred window starts at origin + hole_origin).
            r0 = w.origin[0] + w.hole_origin[0]
            c0 = w.origin[1] + w.hole_origin[1]
            region = (slice(r0, r0 + P), slice(c0, c0 + P))
            fill_box = w.fill[w.hole_origin[0] : w.hole_origin[0] + L, w.hole_origin[1] : w.hole_origin[1] + L]
            fill = np.zeros((P, P), bool)
            fill[o : o + L, o : o + L] = fill_box
            # The neighbouring slices (none without context), then this slice as filled so far.
            values, hidden = neighbours.window(a.slice, region)
            values[context], hidden[context] = work[a.slice][region], ~known[a.slice][region]
            chain = chains.get(id(a))
            if chain is not None:
                values = chain.variants(values, context, (r0, c0))
                hidden = np.repeat(hidden[None], paths, axis=0)
            seed_ = _window_seed(seed, axis, start + a.slice, a.bbox, r)
            groups[len(windows) > 1].append((a, (r0 - o, c0 - o), row, values, hidden, fill, seed_, chain))
        for tiled, items in groups.items():
            if not items:
                continue
            variants = paths if tiled else 1  # tiles run one chain per path (paths > 1)
            if variants == 1:
                windows_, masks_ = np.stack([it[3] for it in items]), np.stack([it[4] for it in items])
                seeds_ = [it[6] for it in items]
            else:
                windows_, masks_ = np.concatenate([it[3] for it in items]), np.concatenate([it[4] for it in items])
                seeds_ = [s for it in items for s in _window_seeds(it[6], variants)]
            stats = sample_fills(
                net, windows_, masks_, n_samples=max(2, -(-n_samples // variants)), batch=batch,
                quantiles=quantiles, seed=seeds_, with_draw=variants > 1,
                **({} if model.calibration is None else model.calibration.texture_tilts()),
            )
            if model.calibration is not None:
                calibrated = model.calibration.apply(stats, guided_sides(masks_, context))
                stats = _calibrate_draw(stats, calibrated) if variants > 1 else calibrated
            if variants > 1:
                stats = _pool_paths(stats, variants)
            for i, (a, (pr, pc), row, _, _, fill, _, chain) in enumerate(items):
                ys, xs = np.nonzero(fill)
                # Plane coordinates of the fill pixels (window origin pr, pc is unpadded).
                py, px = ys + pr, xs + pc
                mean_values = stats.mean[i][fill]
                work[a.slice][ys + pr + o, xs + pc + o] = mean_values
                known[a.slice][ys + pr + o, xs + pc + o] = True
                if chain is not None:
                    chain.record(ys + pr + o, xs + pc + o, stats.draw[i][:, fill])
                out[a.slice, py, px] = intensity.from_network(mean_values)
                std_values = stats.std[i][fill]
                q_values = None if stats.quantiles is None else stats.quantiles[:, i][:, fill]
                if a.slice in depth:
                    std_values, q_values = model.calibration.apply_tiled(
                        mean_values, std_values, q_values, depth[a.slice][py, px]
                    )
                std_values = intensity.std_to_volume(std_values)
                std[a.slice, py, px] = std_values
                for k in range(len(quantiles)):
                    qplanes[k][a.slice, py, px] = intensity.low + np.clip(q_values[k], 0.0, 1.0) * intensity.scale
                row["_sum"] = row.get("_sum", 0.0) + float(std_values.sum())
                row["_n"] = row.get("_n", 0) + int(std_values.size)
                row["max_std"] = max(row["max_std"], float(std_values.max()))
    for row in rows:
        n = row.pop("_n", 0)
        total = row.pop("_sum", 0.0)
        row["mean_std"] = total / n if n else 0.0
    return _SlabResult(planes=out, std=std, quantiles=qplanes, rows=rows)


class _NeighbourPlanes:
    """The neighbouring slices a window carries (none without 2.5D context), in network units, padded like the work planes."""

    def __init__(self, planes, masks, before: int, context: int, intensity, pad: int):
        self._planes, self._masks = planes, masks
        self._before, self._context, self._intensity, self._pad = before, context, intensity, pad
        self._cache = {}

    def _plane(self, index: int):
        """(values, unknown) of plane ``index`` of the extended stack; None outside the volume."""
        if not 0 <= index < len(self._planes):
            return None
        if index not in self._cache:
            plane = self._planes[index]
            unknown = self._masks[index] != 0
            if plane.dtype.kind == "f":
                unknown = unknown | ~np.isfinite(plane)
            values = self._intensity.to_network(np.where(unknown, 0, plane))
            self._cache[index] = (np.pad(values, self._pad), np.pad(unknown, self._pad, constant_values=True))
        return self._cache[index]

    def window(self, k: int, region) -> tuple[np.ndarray, np.ndarray]:
        """Values float32 and unknown bool, both (2 context + 1, P, P), around plane ``k`` of the slab."""
        c = self._context
        P = region[0].stop - region[0].start
        values = np.zeros((2 * c + 1, P, P), np.float32)
        unknown = np.ones((2 * c + 1, P, P), bool)
        for j, offset in enumerate(range(-c, c + 1)):
            plane = self._plane(self._before + k + offset) if offset else None
            if plane is not None:
                values[j], unknown[j] = plane[0][region], plane[1][region]
        return values, unknown


def _torch_threads(n: int | None = None) -> int:
    """torch's intra-op thread count in this thread, first set to ``n`` where given and different."""
    import torch

    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def _window_seed(seed: int, axis: int, index: int, bbox, order: int) -> int:
    """Seed of one window from its place, so results do not depend on how slabs are cut."""
    words = [seed % 2**32, axis, index, *bbox, order]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] % 2**63)


class _Paths:
    """The draws one multi-window artifact's earlier windows made along each of ``n`` paths.

    Only the artifact's own pixels hold draws ((n, pixels) values); a map of
    the union of its windows (padded plane coordinates) says which column each
    pixel's draws are in, so memory grows with the artifact's pixels, not with
    n times its bounding box.
    """

    def __init__(self, windows, n: int):
        rows = [w.origin[0] + w.hole_origin[0] for w in windows]
        cols = [w.origin[1] + w.hole_origin[1] for w in windows]
        P = windows[0].patch
        self.origin = (min(rows), min(cols))
        shape = (max(rows) + P - self.origin[0], max(cols) + P - self.origin[1])
        self.column = np.full(shape, -1, np.int32)
        self.values = np.zeros((n, sum(int(w.fill.sum()) for w in windows)), np.float32)
        self.used, self.n, self.P = 0, n, P

    def variants(self, values: np.ndarray, context: int, corner) -> np.ndarray:
        """(n, K, P, P): ``values`` with this artifact's filled pixels replaced by each path's draw."""
        r, c = corner[0] - self.origin[0], corner[1] - self.origin[1]
        column = self.column[r : r + self.P, c : c + self.P]
        drawn = column >= 0
        out = np.repeat(values[None], self.n, axis=0)
        out[:, context][:, drawn] = self.values[:, column[drawn]]
        return out

    def record(self, rows, cols, draws: np.ndarray) -> None:
        """Store each path's draw (n, pixels) at padded plane pixels ``rows, cols``."""
        k = draws.shape[1]
        self.column[rows - self.origin[0], cols - self.origin[1]] = np.arange(self.used, self.used + k)
        self.values[:, self.used : self.used + k] = draws
        self.used += k


def _calibrate_draw(raw, calibrated):
    """``calibrated`` with each draw moved about its mean by the factor the calibration gave its std.

    A path's next tile then conditions on a draw as far from the mean as the calibrated spread says.
    """
    factor = np.divide(calibrated.std, raw.std, out=np.ones_like(raw.std), where=raw.std > 0)
    draw = np.clip(raw.mean + factor * (raw.draw - raw.mean), 0.0, 1.0).astype(np.float32)
    return calibrated._replace(draw=draw)


def _pool_paths(stats, n: int):
    """One set of statistics per window from its ``n`` consecutive path variants.

    The mean is the paths' mean; the variance is the mean variance within the
    paths plus the variance of their means (law of total variance, the latter
    with ddof=1 as an estimate of the spread the earlier tiles pass on); each
    quantile is the mean plus the paths' mean offset of that quantile, scaled
    by the total std over the within-path std. ``draw`` stays per path:
    (N, n, P, P).
    """
    P = stats.mean.shape[-1]
    mean_k = stats.mean.reshape(-1, n, P, P)
    within = (stats.std.reshape(-1, n, P, P).astype(np.float64) ** 2).mean(axis=1)
    between = mean_k.astype(np.float64).var(axis=1, ddof=1)
    mean = mean_k.mean(axis=1, dtype=np.float64)
    std = np.sqrt(within + between)
    quantiles = stats.quantiles
    if quantiles is not None:
        offset = (quantiles.reshape(len(quantiles), -1, n, P, P) - mean_k[None]).mean(axis=2, dtype=np.float64)
        widen = np.divide(std, np.sqrt(within), out=np.ones_like(std), where=within > 0)
        quantiles = np.clip(mean[None] + offset * widen[None], 0.0, 1.0).astype(np.float32)
    return stats._replace(
        mean=mean.astype(np.float32), std=std.astype(np.float32), quantiles=quantiles,
        filled=stats.filled.reshape(-1, n, P, P)[:, 0], draw=stats.draw.reshape(-1, n, P, P),
    )  # fmt: skip


def _number_report(rows: list) -> list:
    rows = sorted(rows, key=lambda r: (r["slice"], r["r0"], r["c0"], r["r1"], r["c1"]))
    return [{"id": i + 1, **row} for i, row in enumerate(rows)]


def _quantile_name(q: float) -> str:
    return f"q{q:g}".replace(".", "_")


class _Cancel:
    """The exception a progress callback raised; slabs check it before they start."""

    error: BaseException | None = None


def _compute_with_progress(tasks, *, workers, progress, cancel):
    if not tasks:
        return []
    if progress is False or progress is None:
        return list(dask.compute(*tasks, scheduler="threads", num_workers=workers))
    from dask.callbacks import Callback

    total = len(tasks)
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="inpainting", unit="slab")
        report = lambda done, total: bar.update(done - bar.n)  # noqa: E731
    else:
        bar, report = None, progress

    names = {t.key for t in tasks}
    state = {"done": 0}

    class _Progress(Callback):
        def _posttask(self, key, result, dsk, state_, worker_id):
            if key in names and cancel.error is None:
                state["done"] += 1
                try:
                    report(state["done"], total)
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after the running slabs end
                    # Raising here would leave Dask's threads running slabs behind our back;
                    # instead the remaining slabs return at once and compute() ends cleanly.
                    cancel.error = exc

    try:
        with _Progress():
            outputs = list(dask.compute(*tasks, scheduler="threads", num_workers=workers))
        if cancel.error is not None:
            raise cancel.error
        return outputs
    finally:
        if bar is not None:
            bar.close()


# --------------------------------------------------------------------------- dask.distributed


@dataclass(frozen=True)
class _ModelRef:
    """A model directory and the digest of its files: what a worker needs to load the same model."""

    path: str
    digest: str

    @classmethod
    def of(cls, directory) -> _ModelRef:
        path = Path(directory).resolve()
        return cls(str(path), _model_digest(path))


def _model_digest(path: Path) -> str:
    # model.json names the weights file and its sha256 (checked when loading), so it identifies both.
    file = path / "model.json"
    if not file.is_file():
        raise ValueError(f"model: {path} holds no model.json")
    return hashlib.sha256(file.read_bytes()).hexdigest()


_WORKER_MODELS: dict = {}
_WORKER_MODELS_LOCK = threading.Lock()


def _worker_model(ref: _ModelRef):
    """The model of ``ref``, loaded once per process (a worker runs many slabs)."""
    from .train import load_model

    with _WORKER_MODELS_LOCK:
        if ref not in _WORKER_MODELS:
            path = Path(ref.path)
            if _model_digest(path) != ref.digest:
                raise ValueError(f"model: the files in {path} differ on this worker from those the job was started with")
            _WORKER_MODELS[ref] = load_model(path, device=_worker_device())
        return _WORKER_MODELS[ref]


def _worker_device() -> str:
    """The GPU of this worker: one per worker of a local cluster, else the one the worker was given."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return "cuda"
    # LocalCluster numbers its workers 0..N-1; workers started by hand should each see one
    # GPU (CUDA_VISIBLE_DEVICES), and then "cuda" is that one.
    return f"cuda:{name % torch.cuda.device_count()}" if isinstance(name, int) else "cuda"


def _compute_distributed(tasks, scheduler, *, progress):
    """Run the slab tasks on a dask.distributed cluster; results in task order."""
    try:
        import distributed
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise ValueError('scheduler: dask.distributed is not installed (pip install "ctinpaint[distributed]")') from None
    if not tasks:
        return []
    with contextlib.ExitStack() as stack:
        if isinstance(scheduler, distributed.Client):
            client = scheduler
        else:
            client = stack.enter_context(_client_for(scheduler, distributed))
        workers = client.scheduler_info().get("workers", {})
        # Ask for a GPU only where workers offer one: a resource no worker has would stall the job.
        gpu = any(w.get("resources", {}).get("GPU") for w in workers.values())
        futures = client.compute(tasks, resources={"GPU": 1} if gpu else None)
        bar = None
        if progress is True:
            from tqdm.auto import tqdm

            bar = stack.enter_context(tqdm(total=len(tasks), desc="inpainting", unit="slab"))
        try:
            for done, _ in enumerate(distributed.as_completed(futures), start=1):
                if bar is not None:
                    bar.update(1)
                elif callable(progress):
                    progress(done, len(tasks))
            return client.gather(futures)
        except BaseException:
            client.cancel(futures)
            raise


def _check_scheduler(scheduler) -> None:
    if isinstance(scheduler, str):
        if scheduler.startswith("local:"):
            n = scheduler.split(":", 1)[1]
            if not n.isdigit() or int(n) < 1:
                raise ValueError(f"scheduler: 'local:N' needs a worker count N >= 1, got {scheduler!r}")
        elif "://" not in scheduler:
            raise ValueError(f"scheduler: expected 'local:N' or an address like 'tcp://host:8786', got {scheduler!r}")
        return
    try:
        from distributed import Client
    except ImportError:  # then no Client can have been passed either
        Client = ()  # noqa: N806
    if not isinstance(scheduler, Client):
        raise TypeError(f"scheduler must be None, 'local:N', an address or a distributed.Client, got {type(scheduler).__name__}")


def _client_for(scheduler, distributed):
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be None, 'local:N', an address or a distributed.Client, got {type(scheduler).__name__}")
    if scheduler.startswith("local:"):
        return _local_client(int(scheduler.split(":", 1)[1]), distributed)
    return distributed.Client(scheduler)


@contextlib.contextmanager
def _local_client(n_workers: int, distributed):
    # ":0": any free port for the dashboard (a fixed one clashes with other clusters on the machine).
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    with cluster, distributed.Client(cluster) as client:
        yield client


# --------------------------------------------------------------------------- resumable output


class _PartialStore:
    """The output group under construction: ``.NAME.partial`` beside ``out``."""

    def __init__(self, out: Path, settings: dict, dtype, quantiles, slab: int, axis: int):
        from .io import OutputLock

        self.out = out
        self.path = out.parent / f".{out.name}.partial"
        self.quantiles = quantiles
        if not out.parent.exists():
            raise ValueError(f"out: the folder {out.parent} does not exist")
        if not os.access(out.parent, os.W_OK):
            raise ValueError(f"out: the folder {out.parent} is not writable")
        # Held until finish() or release(): a second job writing the same output is refused.
        self._lock = OutputLock(out, name="out")
        try:
            self.group = self._open(settings, dtype, slab, axis)
        except BaseException:
            self.release()
            raise
        self.axis = axis

    def _open(self, settings: dict, dtype, slab: int, axis: int):
        import zarr
        from zarr.codecs import ZstdCodec

        out, quantiles = self.out, self.quantiles
        shape = settings["shape"]
        chunks = [min(256, s) for s in shape]
        chunks[axis] = slab
        if self.path.exists():
            group = zarr.open_group(str(self.path), mode="r+")
            previous = group.attrs.get("ctinpaint_settings")
            if previous != settings:
                raise ValueError(
                    f"out: an unfinished run with other settings is in {self.path}; "
                    "remove it or repeat the same command to resume it"
                )
            # A run killed inside finish() has removed the markers already: every slab is redone.
            (self.path / "slabs").mkdir(exist_ok=True)
            return group
        tmp = out.parent / f".{out.name}.creating"
        shutil.rmtree(tmp, ignore_errors=True)
        group = zarr.open_group(str(tmp), mode="w", attributes={"ctinpaint_settings": settings})
        kw = dict(shape=shape, chunks=chunks, compressors=ZstdCodec(level=3, checksum=True))
        group.create_array("inpainted", dtype=dtype, fill_value=0, **kw)
        group.create_array("std", dtype="float32", fill_value=0.0, **kw)
        for q in quantiles:
            group.create_array(_quantile_name(q), dtype="float32", fill_value=0.0, **kw)
        (tmp / "slabs").mkdir()
        os.rename(tmp, self.path)
        return zarr.open_group(str(self.path), mode="r+")

    def _marker(self, index: int) -> Path:
        return self.path / "slabs" / f"{index:06d}.json"

    def done(self, index: int) -> bool:
        return self._marker(index).exists()

    def rows(self, index: int) -> list:
        return json.loads(self._marker(index).read_text())

    def write(self, index: int, start: int, stop: int, result: _SlabResult) -> None:
        sel = [slice(None)] * 3
        sel[self.axis] = slice(start, stop)
        sel = tuple(sel)
        self.group["inpainted"][sel] = np.moveaxis(result.planes, 0, self.axis)
        self.group["std"][sel] = np.moveaxis(result.std, 0, self.axis)
        for q, values in zip(self.quantiles, result.quantiles, strict=True):
            self.group[_quantile_name(q)][sel] = np.moveaxis(values, 0, self.axis)
        # The marker is written last and atomically: a slab without one is redone.
        marker = self._marker(index)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(result.rows))
        os.replace(tmp, marker)

    def finish(self, report: list, *, overwrite: bool) -> Path:
        from .io import _replace

        try:
            _write_report(self.path, report)
            shutil.rmtree(self.path / "slabs")
            # A writer killed inside a chunk write leaves the store's temporary file beside the chunk.
            for stray in self.path.rglob("*.partial"):
                if _STORE_TEMPORARY.fullmatch(stray.name):
                    stray.unlink()
            if self.out.exists() and not overwrite:
                raise ValueError(f"out: {self.out} appeared while inpainting; the result stays in {self.path}")
            _replace(self.path, self.out)
        finally:
            self.release()
        return self.out

    def release(self) -> None:
        self._lock.release()


def _write_report(folder: Path, report: list) -> None:
    text = json.dumps(report, indent=1)
    (folder / "report.json").write_text(text)
    buffer = _stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REPORT_FIELDS)
    writer.writeheader()
    for row in report:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    (folder / "report.csv").write_text(buffer.getvalue())
