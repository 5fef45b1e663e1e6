"""Fill quality and honesty of the uncertainty: model variants against biharmonic inpainting.

Trains each variant for the same budget on two real SiC/diamond slices
(``slice24.png`` and ``slice202.png``), then cuts held-out windows with known
truth from a third slice the models never saw (``slice431.png``) and prints,
for centred 18 x 18 square holes and for random hole shapes:

* MAE and PSNR of the mean fill (intensities scaled to [0, 1]);
* coverage of mean ± 1σ, mean ± 2σ and of the central 95 % quantile interval,
  with the raw sample spread and with the calibration stored in the model;
* corr(std, |error|) per pixel, and the texture ratio of single samples
  (high-pass energy of one sample over that of the truth), with the texture
  tilt stored in the model and, as "texture G", of G's own samples;

with ``skimage.restoration.inpaint_biharmonic`` as the baseline row. Usage::

    python benchmarks/quality.py --steps 400                 # real slices from ../shared/data
    python benchmarks/quality.py --data phantom --steps 400  # the synthetic phantom (its own truth)
    python benchmarks/quality.py --data phantom3d --variants harmonic+moments harmonic+moments+context1
    python benchmarks/quality.py --variants harmonic seed --steps 2000 --device cuda

``phantom3d`` is the 3D case: a 16-slice phantom trains, a phantom of another
seed is tested, and every hole is scored twice, once in a single slice (the
neighbouring slices are known there) and once through three slices (an artifact
that also hides the neighbours). Its baselines include the classical
inter-slice fill (:func:`ctinpaint.models.slice_guided_fill`).

The table is printed and written (``quality.md``, ``quality.json``) under
``--out``. Budgets are steps, not minutes, so runs on machines of different
speed (or a busy one) are comparable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sic_diamonds"

#: name -> (preset, TrainConfig overrides). Every variant trains with the same budget and seed.
#: "+moments" adds the moment-reconstruction loss (weight 1.0, the default of TrainConfig);
#: the others are pure GAN training (moments=0), as the reference trained.
#: The harmonic variants name their mean network and std head explicitly (the preset's default has both).
VARIANTS = {
    "seed": ("seed", {"moments": 0.0}),
    "unet": ("unet", {"moments": 0.0}),
    "harmonic": ("harmonic", {"mean_net": False, "moments": 0.0}),
    "harmonic+moments": ("harmonic", {"mean_net": False, "moments": 1.0}),
    "harmonic+moments+lsgan": ("harmonic", {"mean_net": False, "moments": 1.0, "loss": "lsgan"}),
    # beta-NLL: the moments loss weighted by the variance (mean learns like squared error).
    "harmonic+moments+beta0.5": ("harmonic", {"mean_net": False, "moments": 1.0, "moments_beta": 0.5}),
    "harmonic+moments+beta1": ("harmonic", {"mean_net": False, "moments": 1.0, "moments_beta": 1.0}),
    "harmonic+moments+cosine": ("harmonic", {"mean_net": False, "moments": 1.0, "lr_schedule": "cosine"}),
    "harmonic+moments+beta1+cosine": ("harmonic", {"mean_net": False, "moments": 1.0, "moments_beta": 1.0, "lr_schedule": "cosine"}),
    # A second U-Net regresses the mean (squared error only); G samples residuals around it.
    "harmonic+moments+meannet": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": False}),
    "harmonic+moments+meannet+cosine": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": False, "lr_schedule": "cosine"}),
    # ... and a head regresses the size of that mean's error; the samples are scaled to it.
    "harmonic+moments+stdhead": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True}),
    "harmonic+moments+stdhead+texture1": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 1.0}),
    "harmonic+moments+stdhead+texture0.2": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 0.2}),
    "harmonic+moments+stdhead+texture0.2+ema": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 0.2, "ema": 0.999}),
    "harmonic+moments+stdhead+texture0.1+ema": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 0.1, "ema": 0.999}),
    "harmonic+moments+stdhead+texture0.05+ema": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 0.05, "ema": 0.999}),
    "harmonic+moments+stdhead+texture0.05+ema+cosine": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 0.05, "ema": 0.999, "lr_schedule": "cosine"}),
    "harmonic+moments+stdhead+texture0.05drawn+ema+cosine": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 0.05, "texture_fills": "drawn", "ema": 0.999, "lr_schedule": "cosine"}),
    "harmonic+moments+stdhead+texture0.05+ema+tiles0.25": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 0.05, "ema": 0.999, "tile_holes": 0.25}),
    "harmonic+moments+stdhead+texture0.05+ema+context1": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 0.05, "ema": 0.999, "context": 1}),
    "harmonic+moments+stdhead+texture0.05+ema+cosine+context1": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "texture": 0.05, "ema": 0.999, "lr_schedule": "cosine", "context": 1}),
    # 2.5D: the adjacent slice on each side as context (ModelConfig.context), for 3D data.
    "harmonic+moments+context1": ("harmonic", {"mean_net": False, "moments": 1.0, "context": 1}),
    "harmonic+moments+context1+slow": ("harmonic", {"mean_net": False, "moments": 1.0, "context": 1, "lr_g": 2e-4}),
    "harmonic+moments+meannet+context1": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": False, "context": 1}),
    "harmonic+moments+stdhead+context1": ("harmonic", {"moments": 1.0, "mean_net": True, "std_head": True, "context": 1}),
    "harmonic+moments+context1-ms": ("harmonic", {"mean_net": False, "moments": 1.0, "context": 1, "mode_seeking": 0.0}),
}
#: TrainConfig overrides that belong to the ModelConfig instead.
MODEL_FIELDS = ("context", "mean_net", "std_head")
#: Classical baselines: rows without a spread.
BASELINES = ("biharmonic", "harmonic interpolation", "slice-guided interpolation")

COLUMNS = [
    ("mae", "MAE", "{:.4f}"),
    ("psnr", "PSNR dB", "{:.2f}"),
    ("coverage_1sigma", "±1σ", "{:.1%}"),
    ("coverage_2sigma", "±2σ", "{:.1%}"),
    ("interval_coverage", "95% int", "{:.1%}"),
    ("cal_coverage_1sigma", "cal ±1σ", "{:.1%}"),
    ("cal_coverage_2sigma", "cal ±2σ", "{:.1%}"),
    ("cal_interval_coverage", "cal 95%", "{:.1%}"),
    ("std_error_corr", "corr", "{:+.2f}"),
    ("raw_texture_ratio", "texture G", "{:.2f}"),
    ("texture_ratio", "texture", "{:.2f}"),
]


def load_data(data: str):
    """(train volume, test volume), both (Z, Y, X) arrays, and a description."""
    from ctinpaint.io import open_volume

    if data in ("phantom", "phantom3d"):
        from ctinpaint.phantom import make_phantom

        if data == "phantom3d":
            train, test = make_phantom((16, 256, 256), seed=0), make_phantom((8, 256, 256), seed=1)
            return train, test, "synthetic phantom: (16, 256, 256) seed 0 trains, (8, 256, 256) seed 1 tests"
        vol = make_phantom((3, 256, 256), seed=0)
        return vol[:2], vol[2:], "synthetic phantom (3, 256, 256): slices 0-1 train, slice 2 test"
    folder = Path(data)
    names = ("slice24.png", "slice202.png", "slice431.png")
    if not all((folder / n).exists() for n in names):
        sys.exit(f"--data: {folder} does not hold {', '.join(names)}")
    train = np.concatenate([np.asarray(open_volume(folder / n).compute()) for n in names[:2]])
    test = np.asarray(open_volume(folder / names[2]).compute())
    return train, test, f"{folder}: {names[0]} + {names[1]} train, {names[2]} test"


def run(args) -> list[dict]:
    import torch

    from ctinpaint.evaluate import evaluate_model
    from ctinpaint.models import config_for
    from ctinpaint.train import TrainConfig, load_model, train_model

    train, test, description = load_data(args.data)
    print(description, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # The 3D case scores each hole in one slice (depth 0) and through three slices (depth 1).
    depths = (0, 1) if args.data == "phantom3d" else (None,)
    rows = []
    baseline_done = set()
    for name in args.variants:
        preset, overrides = VARIANTS[name]
        # The texture term, weight averaging and the cosine decay are on only where a variant names them,
        # so every variant measures what it measured when it was added.
        overrides = {"texture": 0.0, "texture_fills": "generator", "ema": 0.0, "lr_schedule": "constant", **overrides}
        model_overrides = {k: v for k, v in overrides.items() if k in MODEL_FIELDS}
        config = TrainConfig(
            steps=args.steps, device=args.device, seed=args.seed, n_val=128, val_samples=32,
            validate_every=max(args.steps // 4, 1), checkpoint_every=max(args.steps // 2, 1), log_every=25,
            **{k: v for k, v in overrides.items() if k not in MODEL_FIELDS},
        )  # fmt: skip
        run_dir = out / name.replace("+", "_")
        t0 = time.perf_counter()
        model_config = config_for(preset, **model_overrides)
        result = train_model(train, run_dir, model_config=model_config, config=config, progress=False)
        seconds = time.perf_counter() - t0
        loaded = load_model(run_dir, device=args.device)
        torch.manual_seed(0)
        for hole_shape, depth in ((shape, depth) for shape in ("square", "random") for depth in depths):
            holes = hole_shape if depth is None else f"{hole_shape}, {2 * depth + 1} slice{'s' if depth else ''}"
            common = dict(
                intensity=loaded.intensity, n_holes=args.holes, n_samples=args.samples, seed=args.seed + 11,
                hole_shape=hole_shape, hole_depth=depth,
            )  # fmt: skip
            evaluation = evaluate_model(loaded.model, test, calibration=loaded.calibration, **common)
            if holes not in baseline_done:
                rows.append({"variant": "biharmonic", "holes": holes, **evaluation.biharmonic})
                for variant, metrics in classical_baselines(test, loaded, hole_shape, depth, args).items():
                    rows.append({"variant": variant, "holes": holes, **metrics})
                baseline_done.add(holes)
            row = {"variant": name, "holes": holes, "steps": result.step, "train_s": round(seconds, 1)}
            gan = evaluation.gan
            row.update(gan)
            for key in ("coverage_1sigma", "coverage_2sigma", "interval_coverage"):
                # Raw spread first, calibrated beside it (the model's stored calibration).
                row[f"cal_{key}"] = gan[key]
                row[key] = gan.get(f"raw_{key}", gan[key])
            row["std_scale"] = loaded.calibration.std_scale if loaded.calibration else None
            rows.append(row)
        print(f"{name}: {result.step} steps in {seconds:.0f} s", flush=True)
        print(table(rows), flush=True)
    return rows


def classical_baselines(test, loaded, hole_shape: str, depth, args) -> dict[str, dict]:
    """MAE and PSNR of the harmonic prior and, in 3D, of the slice-guided fill, on evaluate_model's windows.

    The windows are cut with one slice of context whatever the model's: the
    sampler draws the same centre patches and holes with any context.
    """
    import torch

    from ctinpaint.models import harmonic_fill, slice_guided_fill
    from ctinpaint.patches import PatchSampler

    config = loaded.model.config
    sampler = PatchSampler(
        test, patch=config.patch, hole=config.hole, hole_shape=hole_shape, batch_size=min(args.holes, 256),
        seed=args.seed + 11, intensity=loaded.intensity, context=1, hole_depth=depth,
    )  # fmt: skip
    batch = sampler.take(args.holes)
    unknown = batch.hole[:, 1] >= 0.5
    o, L = config.offset, config.hole
    box = np.zeros_like(unknown)
    box[:, o : o + L, o : o + L] = True
    filled = unknown & box  # the pixels evaluate_model scores
    x, hole = torch.from_numpy(batch.x * (1 - batch.hole)), torch.from_numpy(batch.hole)
    fills = {"harmonic interpolation": harmonic_fill(x[:, 1:2], hole[:, 1:2])}
    if depth is not None:
        fills["slice-guided interpolation"] = slice_guided_fill(x, hole)
    out = {}
    for name, fill in fills.items():
        err = fill[:, 0].numpy()[filled] - batch.x[:, 1][filled]
        out[name] = {"mae": float(np.mean(np.abs(err))), "psnr": float(10 * np.log10(1 / np.mean(err**2)))}
    return out


def table(rows: list[dict]) -> str:
    """Markdown table of the rows, grouped by hole kind in the order they were evaluated."""
    from ctinpaint.evaluate import is_spread_metric

    header = ["variant", "holes", *[label for _, label, _ in COLUMNS], "std ×"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for holes in dict.fromkeys(row["holes"] for row in rows):
        for row in rows:
            if row["holes"] != holes:
                continue
            cells = [row["variant"], holes]
            for key, _, fmt in COLUMNS:
                value = row.get(key)
                is_baseline = row["variant"] in BASELINES and is_spread_metric(key)
                cells.append("—" if value is None or is_baseline or not np.isfinite(value) else fmt.format(value))
            scale = row.get("std_scale")
            cells.append("—" if scale is None else f"{scale:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder with the SiC slices, 'phantom' or 'phantom3d'")
    parser.add_argument("--variants", nargs="+", default=["seed", "unet", "harmonic+moments", "harmonic+moments+meannet", "harmonic+moments+stdhead", "harmonic+moments+stdhead+texture0.05+ema"],
                        choices=sorted(VARIANTS))
    parser.add_argument("--steps", type=int, default=400, help="training steps per variant (batch 64)")
    parser.add_argument("--holes", type=int, default=256, help="held-out windows per hole shape")
    parser.add_argument("--samples", type=int, default=200, help="samples per window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="quality_runs")
    args = parser.parse_args(argv)
    rows = run(args)
    text = table(rows)
    out = Path(args.out)
    (out / "quality.md").write_text(text + "\n")
    (out / "quality.json").write_text(json.dumps(rows, indent=1, default=float))
    print(f"\nwritten: {out / 'quality.md'}, {out / 'quality.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
