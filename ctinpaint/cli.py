"""The ``ctinpaint`` command line.

Each subcommand is a thin layer over the library: it parses arguments, calls the
same public functions a Python user would, and turns their ``ValueError`` /
``TypeError`` into a one-line message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__

_DESCRIPTION = """\
Remove artifacts from 3D micro-CT volumes with a conditional GAN and report,
for every filled voxel, how uncertain the fill is.

Volumes can be TIFF (multi-page, BigTIFF), Zarr v2/v3, OME-Zarr, .npy, or a
folder of 2D TIFF/PNG slices; they are read lazily, chunk by chunk."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 bad input, 1 a failed read or write)."""
    from gan_zoo.cli import run_command

    return run_command(_parser().parse_args(argv), "ctinpaint")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctinpaint", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"ctinpaint {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "phantom",
        help="write a synthetic SiC/diamond-like CT volume with artifacts and their ground truth",
        description=(
            "Write a synthetic micro-CT volume (faceted grains in a dark matrix, bright Si-rich regions, "
            "inclusions, blur, noise, rings) with injected artifacts into one Zarr group holding three "
            "arrays: 'volume' (with artifacts), 'mask' (True = artifact) and 'truth' (the clean volume)."
        ),
    )
    p.add_argument("out", type=Path, help="output Zarr path, e.g. phantom.zarr")
    p.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256), metavar=("Z", "Y", "X"), help="volume shape (default: 64 256 256)")
    p.add_argument("--artifacts", type=int, default=40, metavar="N", help="number of injected artifacts (default: 40)")
    p.add_argument("--dtype", default="uint16", choices=("uint8", "uint16", "int16", "float32"), help="voxel type (default: uint16)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same volume (default: 0)")
    p.add_argument("--no-rings", action="store_true", help="leave out the ring artifacts of the synthetic scanner")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(run=_run_phantom)

    p = sub.add_parser(
        "info",
        help="describe a volume and, when there is a mask, its artifacts",
        description=(
            "Describe a volume: format, shape, dtype, chunks, and intensity percentiles from a sample of "
            "chunks. With --mask (or a Zarr group holding 'volume' and 'mask', as 'ctinpaint phantom' "
            "writes), also count the artifacts slice by slice."
        ),
    )
    p.add_argument("path", type=Path, help="volume: TIFF, Zarr, OME-Zarr, .npy or a folder of slices")
    p.add_argument("--key", help="array inside a Zarr group (default: 'volume' when the group has one)")
    p.add_argument("--level", type=int, default=0, help="OME-Zarr / pyramidal TIFF resolution level (default: 0)")
    p.add_argument("--mask", help="artifact mask (any volume format; nonzero = artifact)")
    p.add_argument("--axis", type=int, default=0, help="slices are taken along this axis (default: 0)")
    p.add_argument("--hole", type=int, default=18, help="hole size of the model, to count artifacts that need tiling (default: 18)")
    p.set_defaults(run=_run_info)

    p = sub.add_parser(
        "demo",
        help="the whole job on the embedded phantom (or real slices): train, inpaint with uncertainty, figures, metrics",
        description=(
            "Run the whole pipeline: a synthetic CT volume with artifacts (or, with --data, a folder of real "
            "slices: training on all but the last slice, artifacts injected into the last), a model trained "
            "for --minutes, every artifact filled with the mean of --samples generated fills, and the "
            "uncertainty (std) of each voxel. Writes into --out: the model, the inpainted Zarr with its "
            "report, PNG figures (input | truth | mean | one sample | std per artifact; loss curves) and a "
            "metrics table comparing the GAN with biharmonic inpainting."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("ctinpaint-demo"), help="output folder (default: ctinpaint-demo)")
    p.add_argument("--minutes", type=float, default=1.5, help="training time budget in minutes (default: 1.5)")
    p.add_argument("--samples", type=int, default=1000, help="generated fills per artifact window (default: 1000; the product default is 5000)")
    p.add_argument("--data", type=Path, help="folder of real slices (e.g. ../shared/data/sic_diamonds) instead of the phantom")
    p.add_argument("--preset", default=None, help="network preset: harmonic (default), unet, or seed (the reference design)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto = CUDA when present)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    p.set_defaults(run=_run_demo)

    p = sub.add_parser(
        "train",
        help="train a model on the artifact-free regions of a volume",
        description=(
            "Train the conditioning network, generator and discriminator on patches cut from the "
            "artifact-free regions of VOLUME. A band of rows at the bottom of every slice is held out for "
            "validation. Checkpoints go to --out as training runs; running the same command again resumes. "
            "The final model (model.safetensors + model.json) is the checkpoint whose fills and std map fit the "
            "validation holes best (lowest Gaussian NLL with the std map's scale fitted; with a flat map, "
            "the best PSNR)."
        ),
    )
    p.add_argument("volume", type=Path, help="volume: TIFF, Zarr, OME-Zarr, .npy or a folder of slices")
    p.add_argument("--out", type=Path, required=True, help="model folder")
    p.add_argument("--key", help="array inside a Zarr group")
    p.add_argument("--mask", type=Path, help="known artifacts (nonzero = artifact); patches never touch them")
    p.add_argument("--mask-key", help="array inside the mask's Zarr group")
    p.add_argument("--preset", default=None, help="network preset: harmonic (default), unet, or seed (the reference design)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: 7000 unless --minutes is given: ~55 min on 2 CPU cores)")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget in minutes")
    p.add_argument("--batch-size", type=int, default=64, help="patches per step (default: 64)")
    p.add_argument("--lr-schedule", default="cosine", choices=("cosine", "constant"),
                   help="learning rates fall to 0 along a half cosine over the --steps or --minutes budget, or stay "
                   "constant (default: cosine)")
    p.add_argument("--loss", default="nonsaturating", choices=("nonsaturating", "lsgan", "hinge"))
    p.add_argument("--moments", type=float, default=1.0,
                   help="weight of the moment-reconstruction loss that trains the mean fill and its spread (default: 1.0; 0 = pure GAN)")
    p.add_argument("--tile-holes", type=float, default=0.0,
                   help="share of training patches shown as tiles of larger artifacts see them: a more honest std and "
                   "fill on artifacts larger than one window, at some cost on small ones (default: 0; see docs/quality.md)")
    p.add_argument("--texture", type=float, default=0.05,
                   help="weight of the likelihood on the fills' Laplacian that gives single samples CT texture (default: 0.05; 0 = off)")
    p.add_argument("--ema", type=float, default=0.999,
                   help="decay of the moving average of the weights that is validated and exported (default: 0.999; 0 = last weights)")
    p.add_argument("--holes", default="random", choices=("square", "random"), help="training hole shapes (default: random)")
    p.add_argument("--context", type=int, default=0, metavar="K",
                   help="also show the networks K neighbouring slices on each side (2.5D; use for real 3D volumes, "
                        "not for stacks of unrelated slices; default: 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_run_train)

    p = sub.add_parser(
        "inpaint",
        help="fill every artifact of a volume and write the uncertainty",
        description=(
            "Fill every artifact in --mask with the mean of --samples generated fills and write a Zarr group "
            "with 'inpainted' (input dtype; identical to the input outside the mask), 'std' (float32, input "
            "units, 0 outside the mask), optional quantile arrays, and report.csv / report.json (one row per "
            "artifact). An interrupted run resumes where it stopped when the same command is repeated."
        ),
    )
    p.add_argument("volume", type=Path, help="volume: TIFF, Zarr, OME-Zarr, .npy or a folder of slices")
    p.add_argument("--mask", type=Path, required=True, help="artifact mask (nonzero = artifact)")
    p.add_argument("--model", type=Path, required=True, help="model folder written by 'ctinpaint train'")
    p.add_argument("--out", type=Path, required=True, help="output Zarr path")
    p.add_argument("--key", help="array inside the volume's Zarr group")
    p.add_argument("--mask-key", help="array inside the mask's Zarr group")
    p.add_argument("--samples", type=int, default=5000, help="generated fills per window (default: 5000)")
    p.add_argument(
        "--paths", type=int, default=16,
        help="artifacts larger than one window are filled tile by tile along this many paths, so later tiles carry "
        "the uncertainty of earlier ones (default: 16; 1 conditions every tile on the mean fill before it)",
    )  # fmt: skip
    p.add_argument("--axis", type=int, default=0, help="fill 2D slices taken along this axis (default: 0)")
    p.add_argument("--quantiles", type=float, nargs="*", default=(), help="also write these quantiles, e.g. 0.025 0.975")
    p.add_argument("--nan-policy", default="raise", choices=("raise", "mask"), help="NaN/Inf voxels: refuse, or fill them as artifacts")
    p.add_argument("--workers", type=int, default=1, help="slabs processed at once (default: 1)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument(
        "--scheduler", default=None, metavar="local:N|ADDRESS",
        help="run slabs on a dask.distributed cluster: local:N starts N worker processes here, an address such as "
        "tcp://host:8786 uses a running cluster (each worker loads --model itself and picks its own device)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(run=_run_inpaint)

    p = sub.add_parser(
        "evaluate",
        help="measure fill quality and calibration on held-out holes, next to biharmonic inpainting",
        description=(
            "Cut --holes windows with known content from artifact-free regions of VOLUME, hide their centre, "
            "and compare the model's fills with the truth: MAE, PSNR, SSIM of the mean, coverage of the "
            "±1σ/±2σ bands and of the 95%% interval, corr(std, |error|) and a texture ratio; the same for "
            "biharmonic inpainting. Use a volume (or slices) the model was not trained on."
        ),
    )
    p.add_argument("volume", type=Path, help="volume: TIFF, Zarr, OME-Zarr, .npy or a folder of slices")
    p.add_argument("--model", type=Path, required=True, help="model folder")
    p.add_argument("--key", help="array inside a Zarr group")
    p.add_argument("--mask", type=Path, help="artifacts to stay away from")
    p.add_argument("--holes", type=int, default=256, help="number of held-out holes (default: 256)")
    p.add_argument("--hole-shape", default="square", choices=("square", "random"))
    p.add_argument("--samples", type=int, default=500, help="generated fills per hole (default: 500)")
    p.add_argument("--slices", type=int, nargs="*", help="use only these slice indices (e.g. the held-out ones)")
    p.add_argument("--json", type=Path, help="also save the numbers as JSON here")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_run_evaluate)
    return parser


def _run_phantom(args) -> int:
    from .io import save_volume
    from .phantom import add_artifacts, make_phantom

    start = time.perf_counter()
    clean = make_phantom(tuple(args.shape), seed=args.seed, dtype=args.dtype, rings=not args.no_rings)
    corrupted = add_artifacts(clean, n=args.artifacts, seed=args.seed)
    attrs = {
        "ctinpaint": {
            "kind": "phantom",
            "version": __version__,
            "seed": args.seed,
            "shape": list(args.shape),
            "artifacts": args.artifacts,
            "rings": not args.no_rings,
        }
    }
    out = save_volume(
        {"volume": corrupted.volume, "mask": corrupted.mask, "truth": corrupted.truth},
        args.out,
        overwrite=args.overwrite,
        attrs=attrs,
    )
    seconds = time.perf_counter() - start
    print(
        f"wrote {out}: volume, mask, truth {tuple(args.shape)} {args.dtype}; "
        f"{int(corrupted.mask.sum())} artifact voxels from {args.artifacts} artifacts ({seconds:.1f} s)"
    )
    return 0


def _run_info(args) -> int:
    import numpy as np

    from .artifacts import find_artifacts
    from .intensity import fit_intensity
    from .io import open_mask, open_volume

    key, mask_source = args.key, args.mask
    members = _zarr_members(args.path)
    if members is not None:
        print(f"{args.path}: Zarr group with arrays {', '.join(members) or 'none'}")
        if key is None and "volume" in members:
            key = "volume"
            if mask_source is None and "mask" in members:
                mask_source = (args.path, "mask")
    volume = open_volume(args.path, key=key, level=args.level, name="path")
    print(f"volume{'' if key is None else f' {key!r}'}: shape {volume.shape} (Z, Y, X), dtype {volume.dtype}")
    print(f"  chunks {volume.chunksize}, {volume.npartitions} chunks, {volume.nbytes / 2**20:.1f} MiB uncompressed")
    mapping = fit_intensity(volume, percentiles=(0.5, 99.5), nan_policy="mask")
    print(f"  intensity (0.5th, 99.5th percentile of sampled chunks): {mapping.low:g} .. {mapping.high:g}")

    if mask_source is None:
        return 0
    if isinstance(mask_source, tuple):
        mask = open_mask(mask_source[0], key=mask_source[1], shape=volume.shape)
        label = f"{mask_source[0]}/{mask_source[1]}"
    else:
        mask = open_mask(mask_source, shape=volume.shape)
        label = mask_source
    artifacts = find_artifacts(mask, axis=args.axis)
    print(f"mask {label}: {len(artifacts)} artifacts in slices along axis {args.axis}")
    if artifacts:
        pixels = np.array([a.pixels for a in artifacts])
        sizes = np.array([(a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1]) for a in artifacts])
        tiled = int(np.count_nonzero(sizes.max(axis=1) > args.hole))
        n_slices = len({a.slice for a in artifacts})
        print(
            f"  in {n_slices} slices; pixels per artifact min {pixels.min()}, median {int(np.median(pixels))}, "
            f"max {pixels.max()}; {tiled} larger than the {args.hole}x{args.hole} hole (filled in tiles)"
        )
    return 0


def _model_config(preset, context=0):
    from .models import DEFAULT_PRESET, config_for

    return config_for(preset or DEFAULT_PRESET, context=context)


def _run_train(args) -> int:
    from .train import TrainConfig, train_model

    steps = args.steps if args.steps is not None else (None if args.minutes is not None else TrainConfig.steps)
    config = TrainConfig(
        steps=steps, minutes=args.minutes, batch_size=args.batch_size, lr_schedule=args.lr_schedule, loss=args.loss,
        hole_shape=args.holes,
        moments=args.moments, texture=args.texture, ema=args.ema, tile_holes=args.tile_holes, device=args.device,
        seed=args.seed,
    )
    from .io import open_mask, open_volume

    volume = open_volume(args.volume, key=args.key, name="volume")
    mask = None if args.mask is None else open_mask(args.mask, key=args.mask_key, shape=volume.shape)
    model_config = _model_config(args.preset, args.context)
    result = train_model(volume, args.out, mask=mask, model_config=model_config, config=config)
    import torch.distributed as dist

    # Under torchrun every process trains; rank 0 wrote the model and reports.
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        dist.destroy_process_group()
        if rank > 0:
            return 0
    print(f"trained {result.step} steps in {result.elapsed / 60:.1f} min; model written to {args.out}")
    return 0


def _run_inpaint(args) -> int:
    from .inpaint import inpaint_volume
    from .io import open_mask, open_volume
    from .train import load_model

    volume = open_volume(args.volume, key=args.key, name="volume")
    mask = open_mask(args.mask, key=args.mask_key, shape=volume.shape)
    # On a cluster every worker loads the model from its directory.
    model = args.model if args.scheduler else load_model(args.model, device=args.device)
    result = inpaint_volume(
        volume, mask, model, n_samples=args.samples, paths=args.paths, axis=args.axis, out=args.out,
        quantiles=tuple(args.quantiles),
        seed=args.seed, nan_policy=args.nan_policy, overwrite=args.overwrite, workers=args.workers, progress=True,
        scheduler=args.scheduler,
    )
    refused = [r for r in result.report if r["status"] != "filled"]
    print(f"filled {len(result.report) - len(refused)} artifacts; wrote {result.out} (report.csv, report.json inside)")
    for row in refused:
        print(f"  artifact {row['id']} (slice {row['slice']}): {row['status']}")
    return 0


def _run_evaluate(args) -> int:
    import json

    from .evaluate import evaluate_model
    from .io import open_mask, open_volume
    from .train import load_model

    volume = open_volume(args.volume, key=args.key, name="volume")
    mask = None if args.mask is None else open_mask(args.mask, shape=volume.shape)
    if args.slices:
        for i in args.slices:
            if not 0 <= i < volume.shape[0]:
                raise ValueError(f"--slices: {i} is not a slice index of a volume with {volume.shape[0]} slices")
        volume = volume[list(args.slices)]
        mask = None if mask is None else mask[list(args.slices)]
    loaded = load_model(args.model, device=args.device)
    evaluation = evaluate_model(
        loaded.model, volume, intensity=loaded.intensity, n_holes=args.holes, hole_shape=args.hole_shape,
        n_samples=args.samples, seed=args.seed, mask=mask, calibration=loaded.calibration,
    )
    print(evaluation.table())
    if args.json is not None:
        args.json.write_text(json.dumps(evaluation.to_dict(), indent=1))
    return 0


def _run_demo(args) -> int:
    from .demo import run_demo

    run_demo(
        args.out, minutes=args.minutes, n_samples=args.samples, data=args.data, preset=args.preset,
        device=args.device, seed=args.seed, overwrite=args.overwrite,
    )
    return 0


def _zarr_members(path: Path) -> list[str] | None:
    """Array names of a Zarr group at ``path``, or None when it is not a Zarr group."""
    if not (path.is_dir() and any((path / m).exists() for m in ("zarr.json", ".zgroup"))):
        return None
    import zarr

    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception:  # corrupt metadata: open_volume reports it, naming the path
        return None
    if not isinstance(node, zarr.Group):
        return None
    return sorted(name for name, _ in node.arrays())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
