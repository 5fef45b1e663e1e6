"""Benchmark: ``inpaint_volume`` end to end on a Zarr volume on disk.

Builds (once; reused when present) a uint16 Zarr phantom of ``--size``³ voxels,
written slab by slab from tiles of :func:`ctinpaint.phantom.make_phantom`
(flipped and shifted), so building it never holds the volume in memory, and a
bool mask Zarr with ``--artifacts`` box artifacts of 3-12 x 3-12 voxels in
random slices. The model is the default preset trained for a few steps
(its speed, not its quality, is measured).

Each row runs in a fresh subprocess, so its peak resident memory (``VmHWM`` of
``/proc/self/status``; Linux) is its own:

- the plain reference: the whole volume and mask read into NumPy arrays, then
  ``inpaint_volume`` on them in memory (no ``out``);
- ``inpaint_volume`` streaming from Zarr to Zarr (``out=...``), slab by slab;
- the same on a ``dask.distributed`` LocalCluster (``--scheduler local:N``),
  when ``--cluster-workers`` > 0 (workers' memory is not in the client's RSS;
  their peak is reported from the workers).

Reported: wall time, artifacts/s, peak RSS, and peak GPU memory on CUDA.

    python benchmarks/bench_volume.py                                      # 256³, 200 artifacts, 64 samples
    python benchmarks/bench_volume.py --size 1024 --artifacts 10000 --samples 5000 --no-reference   # the GPU case
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROW = """
import json, sys, time
import numpy as np
import torch
from ctinpaint.inpaint import inpaint_volume
from ctinpaint.io import open_mask, open_volume
mode, store, model, out, samples, workers = sys.argv[1:7]


def peak_rss_gib():
    # VmHWM: this process's own high-water mark (ru_maxrss would include the parent's, from before exec).
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kib / 2**20


samples, workers = int(samples), int(workers)
if torch.cuda.is_available():
    torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
if mode == "reference":
    volume = np.asarray(open_volume(store, key="volume"))
    mask = np.asarray(open_mask(store, key="mask"))
    result = inpaint_volume(volume, mask, model, n_samples=samples, seed=0)
    result.inpainted.compute(), result.std.compute()
    worker_peak = None
elif mode == "zarr":
    result = inpaint_volume(f"{store}/volume", f"{store}/mask", model, n_samples=samples, seed=0, out=out, workers=workers)
    worker_peak = None
else:
    import distributed
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0") as cluster, \\
            distributed.Client(cluster) as client:
        result = inpaint_volume(f"{store}/volume", f"{store}/mask", model, n_samples=samples, seed=0, out=out,
                                scheduler=client)
        worker_peak = max(client.run(peak_rss_gib).values())
wall = time.perf_counter() - start
print(json.dumps({
    "wall": wall, "artifacts": len(result.report),
    "rss_gib": peak_rss_gib(),
    "worker_rss_gib": worker_peak,
    "gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
}))
"""


def build_store(path: Path, size: int, artifacts: int, seed: int = 0) -> None:
    """``volume`` (uint16, size³, chunks 64³) and ``mask`` (bool) in one Zarr group, written slab by slab."""
    import zarr
    from zarr.codecs import BloscCodec

    from ctinpaint.phantom import make_phantom

    rng = np.random.default_rng(seed)
    tile = min(size, 256)
    depth = min(size, 64)
    base = make_phantom((depth, tile, tile), seed=seed)
    group = zarr.open_group(str(path), mode="w")
    chunks = (min(64, size),) * 3
    compressor = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
    vol = group.create_array("volume", shape=(size,) * 3, chunks=chunks, dtype="uint16", compressors=compressor, fill_value=0)
    msk = group.create_array("mask", shape=(size,) * 3, chunks=chunks, dtype="bool", compressors=compressor, fill_value=False)
    boxes = rng.integers(0, size, (artifacts, 3))
    sides = rng.integers(3, 13, (artifacts, 2))
    for z0 in range(0, size, depth):
        slab = np.empty((depth, size, size), np.uint16)
        for y0 in range(0, size, tile):
            for x0 in range(0, size, tile):
                block = np.flip(base, axis=tuple(np.flatnonzero(rng.random(3) < 0.5)))
                noise = rng.normal(0, 150, block.shape).astype(np.float32)
                slab[:, y0 : y0 + tile, x0 : x0 + tile] = np.clip(block + noise, 0, 65535)
        vol[z0 : z0 + depth] = slab
        mask = np.zeros(slab.shape, bool)
        for (z, y, x), (h, w) in zip(boxes, sides, strict=True):
            if z0 <= z < z0 + depth:
                mask[z - z0, y : y + h, x : x + w] = True
        msk[z0 : z0 + depth] = mask


def build_model(path: Path) -> None:
    """The default preset, trained for 2 steps (speed does not depend on the weights)."""
    from ctinpaint.phantom import make_phantom
    from ctinpaint.train import TrainConfig, train_model

    train_model(make_phantom((2, 96, 96), seed=0), path, config=TrainConfig(steps=2, batch_size=4, n_val=4, val_samples=2),
                progress=False)


def run_row(mode: str, store: Path, model: Path, out: Path, samples: int, workers: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", ROW, mode, str(store), str(model), str(out), str(samples), str(workers)],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="volume edge in voxels (default 256)")
    parser.add_argument("--artifacts", type=int, default=200, help="box artifacts in the mask (default 200)")
    parser.add_argument("--samples", type=int, default=64, help="samples per artifact window (default 64)")
    parser.add_argument("--workers", type=int, default=1, help="threads of the streamed row (default 1)")
    parser.add_argument("--cluster-workers", type=int, default=0, help="also run on a LocalCluster of N workers")
    parser.add_argument("--no-reference", action="store_true", help="skip the in-memory reference (large volumes)")
    parser.add_argument("--store", type=Path, help="Zarr group to use (built there if missing)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.gettempdir())
    store = args.store or tmp / f"ctinpaint_bench_volume_{args.size}_{args.artifacts}.zarr"
    if not (store / "zarr.json").exists():
        start = time.perf_counter()
        build_store(store, args.size, args.artifacts)
        print(f"built {store} in {time.perf_counter() - start:.0f} s")
    on_disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    raw = args.size**3 * 2
    model = tmp / "ctinpaint_bench_volume_model"
    if not (model / "model.json").exists():
        build_model(model)

    rows = []
    modes = ([] if args.no_reference else [("reference: whole volume in memory", "reference", 1)])
    modes.append((f"inpaint_volume Zarr -> Zarr, {args.workers} thread(s)", "zarr", args.workers))
    if args.cluster_workers:
        modes.append((f"inpaint_volume on LocalCluster, {args.cluster_workers} workers", "cluster", args.cluster_workers))
    with tempfile.TemporaryDirectory(dir=tmp) as work:
        for label, mode, workers in modes:
            out = Path(work) / f"{mode}.zarr"
            row = run_row(mode, store, model, out, args.samples, workers)
            rows.append((label, row))
            print(f"  {label}: {row}", flush=True)
    print(f"\nvolume {args.size}³ uint16: {raw / 2**30:.3f} GiB raw, {on_disk / 2**30:.3f} GiB on disk; "
          f"{rows[0][1]['artifacts']} artifacts (per slice), {args.samples} samples each")
    width = max(len(label) for label, _ in rows)
    ref = rows[0][1]["wall"]
    print(f"{'method':<{width}}  {'wall s':>8}  {'artifacts/s':>11}  {'vs first':>8}  {'peak RSS GiB':>12}  {'worker RSS GiB':>14}  {'GPU GiB':>7}")
    for label, r in rows:
        worker = f"{r['worker_rss_gib']:.2f}" if r["worker_rss_gib"] is not None else "-"
        gpu = f"{r['gpu_gib']:.2f}" if r["gpu_gib"] is not None else "-"
        print(f"{label:<{width}}  {r['wall']:>8.1f}  {r['artifacts'] / r['wall']:>11.2f}  {ref / r['wall']:>7.2f}x  "
              f"{r['rss_gib']:>12.2f}  {worker:>14}  {gpu:>7}")


if __name__ == "__main__":
    main()
