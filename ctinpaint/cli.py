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
    """Run the command line; returns the exit status (0 success, 2 bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError) as exc:
        print(f"ctinpaint {args.command}: error: {exc}", file=sys.stderr)
        return 2


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
    volume = open_volume(args.path, key=key, level=args.level)
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
