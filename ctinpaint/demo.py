"""The end-to-end demonstration behind ``ctinpaint demo``.

Phantom (or real slices) -> training -> inpainting with uncertainty -> figures
and a metrics table, all written into one folder. Every step calls the same
public functions a user would.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

#: Phantom used by the demo: small enough to train on 2 CPU cores in minutes.
DEMO_SHAPE = (24, 160, 160)
DEMO_ARTIFACTS = 30
#: Artifacts injected into the held-out real slice with ``data``.
REAL_ARTIFACTS = 16
_MARKER = "demo.json"


def run_demo(out, *, minutes: float = 1.5, n_samples: int = 1000, data=None, preset=None, device: str = "auto",
             seed: int = 0, overwrite: bool = False, log=print) -> dict:
    """Run the whole pipeline and write model, inpainted volume, figures and metrics into ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Output folder; created. An earlier demo there is replaced only with
        ``overwrite``; any other non-empty folder is refused.
    minutes : float, default 1.5
        Training budget.
    n_samples : int, default 1000
        Generated fills per artifact window.
    data : str or os.PathLike, optional
        Folder of real slices (or any volume with >= 2 slices): training on all
        slices but the last; artifacts injected into the last are filled and
        scored against the original. Default: the synthetic phantom.
    preset : str, optional
        Network preset; default :data:`ctinpaint.models.DEFAULT_PRESET`.
    device : str, default "auto"
    seed : int, default 0
    overwrite : bool, default False
    log : callable, default print
        Receives one line of progress text at a time.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    from .evaluate import biharmonic_fill, evaluate_model, hole_metrics
    from .figures import loss_curves, uncertainty_panels
    from .inpaint import inpaint_volume
    from .io import open_volume
    from .models import DEFAULT_PRESET, config_for
    from .phantom import add_artifacts, make_phantom
    from .sampling import FillStats, draw_fills
    from .train import TrainConfig, heldout_rows, load_model, train_model

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"out: {out} is not empty; pass --overwrite to replace an earlier demo")
        if not (out / _MARKER).exists():
            raise ValueError(f"out: {out} holds files that are not an earlier demo; refusing to delete them")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model_config = config_for(preset or DEFAULT_PRESET)
    P = model_config.patch

    if data is None:
        clean = make_phantom(DEMO_SHAPE, seed=seed)
        test = add_artifacts(clean, n=DEMO_ARTIFACTS, seed=seed)
        train_volume, train_mask = test.volume, test.mask
        source = f"synthetic phantom {DEMO_SHAPE} uint16 with {DEMO_ARTIFACTS} artifacts"
    else:
        volume = np.asarray(open_volume(data).compute())
        if volume.shape[0] < 2:
            raise ValueError(f"data: {data} has {volume.shape[0]} slice; at least 2 are needed (train, test)")
        train_volume, train_mask = volume[:-1], None
        test = add_artifacts(volume[-1:], n=REAL_ARTIFACTS, seed=seed)
        source = f"{data}: trained on slices 0..{volume.shape[0] - 2}, artifacts injected into slice {volume.shape[0] - 1}"
    log(f"[1/5] data: {source}")

    # Constant rates: the run with the cosine decay over the demo's ~200 steps had a weaker std
    # (held-out corr(std, |error|) +0.10 against +0.36), but a constant-rate run that exported its
    # step-100 checkpoint (then chosen on PSNR) was as weak (+0.07): which checkpoint wins decided it
    # more than the schedule. Chosen on the validation NLL, the same run exports its last checkpoint
    # (+0.43); the cosine decay has not been re-measured with that choice (docs/quality.md).
    config = TrainConfig(steps=None, minutes=minutes, device=device, seed=seed, validate_every=100,
                         checkpoint_every=200, log_every=10, n_val=64, val_samples=32, lr_schedule="constant")
    log(f"[2/5] training the {model_config.preset} preset for {minutes:g} min ...")
    result = train_model(train_volume, out / "model", mask=train_mask, model_config=model_config, config=config)
    log(f"      {result.step} steps in {result.elapsed:.0f} s")
    loaded = load_model(out / "model", device=device)
    mapping = loaded.intensity

    log(f"[3/5] inpainting every artifact with {n_samples} samples per window ...")
    filled = inpaint_volume(test.volume, test.mask, loaded, n_samples=n_samples, out=out / "inpainted.zarr",
                            quantiles=(0.025, 0.975), seed=seed, progress=True)
    inpainted = np.asarray(filled.inpainted.compute())
    std = np.asarray(filled.std.compute())
    low, high = (np.asarray(filled.quantiles[q].compute()) for q in (0.025, 0.975))

    log("[4/5] scoring the fills against the truth ...")
    slices = sorted({row["slice"] for row in filled.report})
    planes = _square(slices, test.truth.shape)
    truth_n = mapping.to_network(test.truth[planes])
    mask_n = test.mask[planes]
    corrupted_n = mapping.to_network(np.where(mask_n, 0, test.volume[planes]))
    gan = hole_metrics(
        truth_n, mapping.to_network(inpainted[planes]), std[planes] / mapping.scale, mask_n,
        low=(low[planes] - mapping.low) / mapping.scale, high=(high[planes] - mapping.low) / mapping.scale,
    )
    classic = biharmonic_fill(corrupted_n, mask_n)
    biharmonic = hole_metrics(truth_n, classic, np.zeros_like(classic), mask_n, low=classic, high=classic)
    # Held-out holes: in the phantom, from the rows training held out; in real
    # data, from the test slice, which training never saw.
    exclude = None
    if data is None:
        import dask.array as da

        exclude = ~heldout_rows(da.from_array(test.truth), patch=P, fraction=config.holdout)
    held = evaluate_model(loaded.model, test.truth, intensity=mapping, n_holes=128,
                          n_samples=min(n_samples, 500), seed=seed + 7, exclude=exclude,
                          calibration=loaded.calibration)

    log("[5/5] figures ...")
    figures = [loss_curves(out / "model" / "log.jsonl", out / "loss_curves.png")]
    rows = _panel_rows(filled.report, test.mask.shape[1:], P, model_config.hole, k=6)
    if rows:
        windows, masks, truths, means, stds = [], [], [], [], []
        for z, r0, c0 in rows:
            win = (z, slice(r0, r0 + P), slice(c0, c0 + P))
            masks.append(test.mask[win])
            windows.append(mapping.to_network(np.where(test.mask[win], 0, test.volume[win])))
            truths.append(mapping.to_network(test.truth[win]))
            means.append(mapping.to_network(inpainted[win]))
            stds.append(std[win] / mapping.scale)
        masks = np.stack(masks)
        windows = np.stack(windows)
        tilts = {} if loaded.calibration is None else loaded.calibration.texture_tilts()
        sample = draw_fills(loaded.model, windows, masks, seed=seed, **tilts)
        stats = FillStats(mean=np.stack(means), std=np.stack(stds).astype(np.float32), quantiles=None, filled=masks)
        figures.append(uncertainty_panels(
            windows, masks, np.stack(truths), stats, sample, out / "artifacts.png",
            titles=[f"slice {z}, at ({r0}, {c0})" for z, r0, c0 in rows],
            units="fraction of intensity range", title=f"{source}: fills from {n_samples} samples",
        ))

    metrics = {
        "source": source,
        "preset": model_config.preset,
        "training_steps": result.step,
        "n_samples": n_samples,
        "artifacts": {"gan": gan, "biharmonic": biharmonic, "n_artifacts": len(filled.report)},
        "heldout_holes": held.to_dict(),
        "seconds": round(time.perf_counter() - start, 1),
    }
    table = _artifact_table(gan, biharmonic, len(filled.report), n_samples) + "\n\n" + "held-out holes:\n" + held.table()
    (out / "metrics.txt").write_text(table + "\n")
    (out / "metrics.json").write_text(json.dumps(_finite(metrics), indent=1))
    (out / _MARKER).write_text(json.dumps({"seconds": metrics["seconds"], "figures": [str(f) for f in figures]}))
    log(table)
    log(f"done in {metrics['seconds']:.0f} s; see {out}/artifacts.png, {out}/loss_curves.png, {out}/metrics.txt")
    return metrics


def _square(slices, shape):
    """Index of the artifact slices as an (N, S, S) stack (metrics work on square windows)."""
    side = min(shape[1], shape[2])
    return np.asarray(slices, dtype=int), slice(0, side), slice(0, side)


def _panel_rows(report, plane_shape, patch, hole, k):
    """Windows (slice, r0, c0) of up to ``k`` filled artifacts, most uncertain first.

    Only artifacts that sit inside the central hole box of a window lying
    wholly inside the slice: the "one sample" panel is drawn by the model on
    exactly that window, so its fill covers the whole artifact (an artifact
    at the border or larger than the hole would show unfilled pixels there).
    """
    o = (patch - hole) // 2
    picked = []
    for r in sorted(report, key=lambda r: -r["max_std"]):
        h, w = r["r1"] - r["r0"], r["c1"] - r["c0"]
        if r["status"] != "filled" or h > hole or w > hole:
            continue
        r0, c0 = r["r0"] - (hole - h) // 2 - o, r["c0"] - (hole - w) // 2 - o
        if 0 <= r0 <= plane_shape[0] - patch and 0 <= c0 <= plane_shape[1] - patch:
            picked.append((r["slice"], r0, c0))
        if len(picked) == k:
            break
    return picked


def _artifact_table(gan: dict, biharmonic: dict, n: int, n_samples: int) -> str:
    from .evaluate import is_spread_metric

    lines = [f"{n} artifact regions (connected per slice), scored against the truth (network units, intensity range = 1):",
             f"{'metric':<22}{'GAN (mean of ' + str(n_samples) + ')':>22}{'biharmonic':>14}"]
    for key, fmt in (("mae", "{:.4f}"), ("psnr", "{:.2f} dB"), ("ssim", "{:.3f}"), ("coverage_1sigma", "pct"),
                     ("coverage_2sigma", "pct"), ("interval_coverage", "pct"), ("std_error_corr", "{:.2f}"),
                     ("mean_std", "{:.4f}")):
        cells = []
        for values in (gan, biharmonic):
            v = values.get(key, float("nan"))
            if values is biharmonic and is_spread_metric(key):
                v = None  # a point estimate has no spread to check
            cells.append("—" if v is None or not np.isfinite(v) else (f"{100 * v:.1f}%" if fmt == "pct" else fmt.format(v)))
        lines.append(f"{key:<22}{cells[0]:>22}{cells[1]:>14}")
    return "\n".join(lines)


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
