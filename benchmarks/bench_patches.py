"""Benchmark: training patches per second from a compressed Zarr volume on disk.

Builds (once; reused when present) a uint16 Zarr v3 store of realistic CT-like
content — smooth grains and inclusions plus fresh noise in every chunk, so it
compresses like real data — and measures, in one process:

(a) raw read throughput of the whole store, chunk-aligned slabs (MB/s decompressed);
(b) the plain reference: random patches read one by one as ``arr[z, y:y+P, x:x+P]``;
(c) ``PatchSampler`` (square holes), after a short warm-up;
(d) ``PatchSampler`` with ``hole_shape="random"``;
(e) ``PatchSampler`` with an artifact mask store (5 % of the volume in boxes),
    which exercises the search for clean windows;
(f) ``PatchSampler`` cutting along all three axes.

Goal: (c) at least 10x the reference and at least 50,000 patches/s on 2 cores.

    python benchmarks/bench_patches.py                 # 512³, 64³ chunks
    python benchmarks/bench_patches.py --size 128 --seconds 2 --ref-seconds 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr
from scipy import ndimage

from ctinpaint.io import open_mask, open_volume
from ctinpaint.patches import PatchSampler


def build_store(path: Path, size: int, chunk: int, seed: int = 0) -> zarr.Array:
    """A (size,)*3 uint16 store; each chunk is one of a few smooth base blocks, flipped and
    transposed at random, plus fresh Gaussian noise (noise is what limits compression)."""
    from zarr.codecs import BloscCodec

    rng = np.random.default_rng(seed)
    arr = zarr.create_array(
        store=str(path), shape=(size,) * 3, chunks=(chunk,) * 3, dtype="uint16",
        compressors=BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"), fill_value=0,
    )
    bases = []
    for _ in range(8):
        grains = ndimage.gaussian_filter(rng.standard_normal((chunk,) * 3, dtype=np.float32), 4)
        spots = ndimage.gaussian_filter(rng.standard_normal((chunk,) * 3, dtype=np.float32), 1.5)
        grains /= grains.std()
        spots /= spots.std()
        # Matrix ~20k, grains ~32k with soft (blurred) borders, rare bright inclusions ~50k.
        level = 20000 + 12000 / (1 + np.exp(-4 * grains)) + 18000 * (spots > 2.8)
        bases.append(ndimage.gaussian_filter(level.astype(np.float32), 0.8))
    n = size // chunk
    for zi in range(n):
        slab = np.empty((chunk, size, size), np.uint16)
        for yi in range(n):
            for xi in range(n):
                block = bases[rng.integers(len(bases))]
                block = np.flip(block, axis=tuple(np.flatnonzero(rng.random(3) < 0.5)))
                block = np.transpose(block, rng.permutation(3))
                noisy = block + rng.standard_normal(block.shape, dtype=np.float32) * 150
                slab[:, yi * chunk:(yi + 1) * chunk, xi * chunk:(xi + 1) * chunk] = np.clip(noisy, 0, 65535)
        arr[zi * chunk:(zi + 1) * chunk] = slab
    return arr


def read_throughput(arr: zarr.Array) -> float:
    """MB/s (decompressed) reading every chunk once, slab by slab."""
    depth = arr.chunks[0]
    start = time.perf_counter()
    for z in range(0, arr.shape[0], depth):
        arr[z:z + depth]
    return arr.nbytes / 1e6 / (time.perf_counter() - start)


def reference_rate(arr: zarr.Array, patch: int, seconds: float, seed: int = 1) -> float:
    """Patches/s reading random patches one at a time straight from the Zarr array."""
    rng = np.random.default_rng(seed)
    z_max, y_max, x_max = arr.shape[0], arr.shape[1] - patch + 1, arr.shape[2] - patch + 1
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        z, y, x = int(rng.integers(z_max)), int(rng.integers(y_max)), int(rng.integers(x_max))
        np.asarray(arr[z, y:y + patch, x:x + patch], dtype=np.float32)
        count += 1
    return count / (time.perf_counter() - start)


def sampler_rate(sampler: PatchSampler, seconds: float, warmup: float) -> float:
    """Patches/s drawn from ``sampler`` over ``seconds``, after ``warmup`` seconds of the same."""
    batches = iter(sampler)
    start = time.perf_counter()
    while time.perf_counter() - start < warmup:
        next(batches)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += len(next(batches).x)
    rate = count / (time.perf_counter() - start)
    batches.close()
    return rate


def build_mask(path: Path, shape, chunk: int, fraction: float = 0.05, seed: int = 2) -> None:
    """A bool Zarr store beside the volume: random 8×24×24 boxes covering about ``fraction``."""
    from zarr.codecs import BloscCodec

    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    box = np.array([8, 24, 24])
    n = int(fraction * np.prod(shape) / np.prod(box))
    for z, y, x in rng.integers(0, np.array(shape) - box, (n, 3)):
        mask[z:z + box[0], y:y + box[1], x:x + box[2]] = True
    arr = zarr.create_array(
        store=str(path), shape=shape, chunks=(chunk,) * 3, dtype="bool",
        compressors=BloscCodec(cname="zstd", clevel=3), fill_value=False,
    )
    arr[...] = mask


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, help="Zarr store to use (built there if missing)")
    parser.add_argument("--size", type=int, default=512, help="volume edge in voxels (default 512)")
    parser.add_argument("--chunk", type=int, default=64, help="chunk edge in voxels (default 64)")
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--hole", type=int, default=18)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="time budget per sampler row")
    parser.add_argument("--ref-seconds", type=float, default=5.0, help="time budget for the reference")
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args(argv)

    store = args.store or Path(tempfile.gettempdir()) / f"ctinpaint_bench_{args.size}_{args.chunk}.zarr"
    if (store / "zarr.json").exists():
        arr = zarr.open_array(store=str(store), mode="r")
        built = "reused"
    else:
        start = time.perf_counter()
        build_store(store, args.size, args.chunk)
        arr = zarr.open_array(store=str(store), mode="r")
        built = f"built in {time.perf_counter() - start:.1f} s"
    mask_store = store.with_name(store.name + ".mask.zarr")
    if not (mask_store / "zarr.json").exists():
        build_mask(mask_store, arr.shape, args.chunk)
    on_disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"store {store} ({built}): shape {arr.shape}, chunks {arr.chunks}, {arr.dtype}, "
          f"{arr.nbytes / 1e6:.0f} MB raw, {on_disk / 1e6:.0f} MB on disk (ratio {arr.nbytes / on_disk:.2f})")
    print(f"cores available: {cores}; "
          f"patch {args.patch}, hole {args.hole}, batch {args.batch_size}")

    mbps = read_throughput(arr)
    print(f"(a) raw read throughput: {mbps:.0f} MB/s decompressed "
          f"({mbps * 1e6 / arr.dtype.itemsize / args.patch**2:,.0f} patch-equivalents/s)")

    ref = reference_rate(arr, args.patch, args.ref_seconds)
    volume = open_volume(store)
    common = dict(patch=args.patch, hole=args.hole, batch_size=args.batch_size, seed=0)
    rows = [("(b) reference: arr[z, y:y+P, x:x+P] one by one", ref)]
    cases = [
        ("(c) PatchSampler, square holes", {}),
        ("(d) PatchSampler, random holes", {"hole_shape": "random"}),
        ("(e) PatchSampler, 5% artifact mask", {"mask": open_mask(mask_store, shape=volume.shape)}),
        ("(f) PatchSampler, axes (0, 1, 2)", {"axes": (0, 1, 2)}),
    ]
    for label, extra in cases:
        sampler = PatchSampler(volume, **common, **extra)
        rows.append((label, sampler_rate(sampler, args.seconds, args.warmup)))
    print(f"region shape: {PatchSampler(volume, **common).region_shape}")

    width = max(len(label) for label, _ in rows)
    print(f"\n{'method':<{width}}  {'patches/s':>10}  {'vs reference':>12}")
    for label, rate in rows:
        print(f"{label:<{width}}  {rate:>10,.0f}  {rate / ref:>11.1f}x")
    fast = rows[1][1]
    met = fast >= 10 * ref and fast >= 50_000
    print(f"\ngoal (c): >= 10x reference and >= 50,000 patches/s on 2 cores: "
          f"{'MET' if met else 'NOT MET'} ({fast / ref:.1f}x, {fast:,.0f} patches/s on {cores} cores)")


if __name__ == "__main__":
    main()
