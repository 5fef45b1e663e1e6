"""Is the std honest on artifacts larger than one window?

An artifact larger than the model's hole is filled tile by tile
(:func:`ctinpaint.inpaint.inpaint_volume`). This script cuts square artifacts
of several sizes into the held-out slice (``slice431.png``), fills them with a
trained model exactly as a user would, and prints, per size, PSNR of the mean
and the coverages of mean ± 1σ, ± 2σ and the 2.5–97.5 % interval, overall
and by depth into the artifact (chessboard distance to the nearest known
pixel). Rows compare the ``--paths`` path counts (1 and 16), each with the model's
window calibration alone and with spread factors by depth fitted here on the
held-out rows of the training slices
(:func:`ctinpaint.inpaint.calibrate_large_artifacts`, as training does)::

    python benchmarks/quality.py --steps 2000 --variants harmonic+moments+stdhead+texture0.05+ema --out q
    python benchmarks/large_artifacts.py q/harmonic_moments_stdhead_texture0.05_ema
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from quality import DEFAULT_DATA, load_data

DEPTH_BANDS = ((1, 6), (7, 12), (13, 20), (21, 1000))


def square_artifacts(shape, size: int, gap: int = 30) -> np.ndarray:
    """A bool mask (Z, Y, X) with a grid of ``size`` x ``size`` squares ``gap`` pixels apart in every slice."""
    mask = np.zeros(shape, bool)
    for r in range(20, shape[1] - size - 20, size + gap):
        for c in range(20, shape[2] - size - 20, size + gap):
            mask[:, r : r + size, c : c + size] = True
    return mask


def score(truth, result, mask, scale: float) -> dict:
    """PSNR (network units) and coverages of the result on the masked pixels, overall and by depth."""
    from scipy import ndimage

    fill = np.asarray(result.inpainted, np.float64)[mask]
    std = np.asarray(result.std, np.float64)[mask]
    low, high = (np.asarray(result.quantiles[q], np.float64)[mask] for q in (0.025, 0.975))
    t = truth.astype(np.float64)[mask]
    err = np.abs(fill - t)
    depth = np.stack([ndimage.distance_transform_cdt(m, metric="chessboard") for m in mask])[mask]
    row = {
        "psnr": 10 * np.log10(1 / np.mean((err / scale) ** 2)),
        "c1": np.mean(err <= std), "c2": np.mean(err <= 2 * std), "int": np.mean((t >= low) & (t <= high)),
        "corr": np.corrcoef(err, std)[0, 1],
    }  # fmt: skip
    for lo, hi in DEPTH_BANDS:
        k = (depth >= lo) & (depth <= hi)
        row[f"d{lo}"] = (np.mean(err[k] <= std[k]), np.mean(err[k] <= 2 * std[k])) if k.any() else None
    return row


def main(argv=None) -> int:
    from ctinpaint.calibration import Calibration
    from ctinpaint.inpaint import calibrate_large_artifacts, inpaint_volume
    import dask.array as da

    from ctinpaint.train import TrainConfig, heldout_rows, load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a trained model directory (e.g. one of quality.py's runs)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder with the SiC slices, or 'phantom'")
    parser.add_argument("--sizes", type=int, nargs="+", default=[36, 54], help="artifact sides in pixels")
    parser.add_argument("--samples", type=int, default=1600, help="fills per window")
    parser.add_argument("--paths", type=int, nargs="+", default=[1, 16], help="path counts to compare")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    train, test, description = load_data(args.data)
    print(description, flush=True)
    loaded = load_model(args.model, device=args.device)
    window_only = replace(loaded.calibration or Calibration(), tiled_depths=None, tiled_std_scale=None,
                          tiled_interval_scale=None, tiled_after={})  # fmt: skip
    # The rows training held out (and calibrates on), found as training finds them.
    heldout = heldout_rows(da.from_array(train), patch=loaded.model.config.patch, fraction=TrainConfig().holdout)
    rows = int(np.asarray(heldout[0, :, 0]).sum())
    header = "| size | paths | calibration | PSNR dB | ±1σ | ±2σ | 95% int | corr | " + " | ".join(
        f"±1σ / ±2σ, depth {lo}–{hi if hi < 1000 else ''}" for lo, hi in DEPTH_BANDS
    ) + " | s |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for paths in sorted(set(args.paths)):
        base = loaded._replace(calibration=window_only)
        t0 = time.perf_counter()
        tiled = calibrate_large_artifacts(base, train[:, -rows:, :], n_samples=64 * paths, paths=paths, seed=5)
        print(f"paths {paths}: depth factors fitted in {time.perf_counter() - t0:.0f} s: std × "
              f"{np.round(tiled.tiled_std_scale, 2).tolist()}, interval × {np.round(tiled.tiled_interval_scale, 2).tolist()}",
              flush=True)  # fmt: skip
        for size in args.sizes:
            mask = square_artifacts(test.shape, size)
            for label, calibration in (("window", window_only), ("+ depth", tiled)):
                t0 = time.perf_counter()
                result = inpaint_volume(test, mask, loaded._replace(calibration=calibration), n_samples=args.samples,
                                        paths=paths, seed=0, quantiles=(0.025, 0.975))  # fmt: skip
                r = score(test, result, mask, loaded.intensity.scale)
                seconds = time.perf_counter() - t0
                depths = [("—" if r[f"d{lo}"] is None else "{:.0%} / {:.0%}".format(*r[f"d{lo}"])) for lo, _ in DEPTH_BANDS]
                line = (f"| {size} | {paths} | {label} | {r['psnr']:.2f} | {r['c1']:.1%} | {r['c2']:.1%} | {r['int']:.1%} | "
                        f"{r['corr']:+.2f} | " + " | ".join(depths) + f" | {seconds:.0f} |")  # fmt: skip
                lines.append(line)
                print(line, flush=True)
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
