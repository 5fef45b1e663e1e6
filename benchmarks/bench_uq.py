"""Benchmark: uncertainty sampling, artifacts per second at 5000 samples each.

One artifact = one 32 x 32 window with an irregular hole in its central box.
The plain reference, measured in the same process, is straightforward eager
float32 PyTorch, one artifact at a time: C once, then G on all ``--samples``
noise vectors in one batch, then mean and std over the samples. Because it
works one artifact at a time its rate does not depend on how many artifacts
there are, so it is timed on at most ``--ref-artifacts`` of them.

Rows (each timed ``--rounds`` times, interleaved with the reference; best kept,
as these machines are shared and noisy):

- ``sample_fills`` as shipped (default batch for the device);
- ``sample_fills`` with the previous default batch of 4096 fills per launch;
- ``sample_fills`` with G run on the repeated conditioning (``generate`` on
  ``cond.repeat_interleave``), i.e. without the per-window split of G's first
  layers (``InpaintingGAN.generate_grouped``).

On CUDA, ``sample_fills`` runs under bf16 autocast; the reference stays float32.
Peak GPU memory is printed when on CUDA.

    python benchmarks/bench_uq.py                                   # sizes 1 64 1024, 5000 samples
    python benchmarks/bench_uq.py --sizes 1 64 --samples 500 --rounds 1   # quick CPU check
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ctinpaint.models import DEFAULT_PRESET, build_model, config_for
from ctinpaint.sampling import DEFAULT_BATCH, sample_fills


def artifact_windows(n: int, patch: int = 32, seed: int = 0):
    """``n`` smooth random windows with irregular holes inside the central 18 x 18 box."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    windows = ndimage.gaussian_filter(rng.random((n, patch, patch)), (0, 2, 2)).astype(np.float32)
    windows = (windows - windows.min()) / (windows.max() - windows.min())
    masks = np.zeros((n, patch, patch), bool)
    o = (patch - 18) // 2
    for i in range(n):
        h, w = rng.integers(6, 19, 2)
        r, c = rng.integers(0, 19 - h + 1), rng.integers(0, 19 - w + 1)
        masks[i, o + r : o + r + h, o + c : o + c + w] = True
    return windows, masks


def reference(model, windows, masks, n_samples: int) -> None:
    """Eager float32, one artifact at a time: C once, G on all samples in one batch, mean/std."""
    device = next(model.parameters()).device
    with torch.no_grad():
        for window, mask in zip(windows, masks, strict=True):
            y = torch.from_numpy(np.where(mask, 0, window)).to(device)[None, None]
            hole = torch.from_numpy(mask.astype(np.float32)).to(device)[None, None]
            cond = model.condition(y, hole)
            z = torch.randn(n_samples, model.config.z_dim, device=device)
            fills = model.generate(z, cond.expand(n_samples, *cond.shape[1:]))
            fills.mean(dim=0).cpu()
            fills.std(dim=0).cpu()


class _RepeatedCondition(torch.nn.Module):
    """The model with ``generate_grouped`` done the plain way (conditioning repeated per sample)."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        self.config = model.config

    def condition(self, y, hole):
        return self.inner.condition(y, hole)

    def sample_z(self, n, generator=None, device=None):
        return self.inner.sample_z(n, generator=generator, device=device)

    def generate(self, z, cond):
        return self.inner.generate(z, cond)

    def generate_grouped(self, z, cond):
        w, s = z.shape[:2]
        fills = self.inner.generate(z.reshape(w * s, -1), cond.repeat_interleave(s, dim=0))
        return fills.view(w, s, *fills.shape[1:])


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024], help="artifact counts (default 1 64 1024)")
    parser.add_argument("--samples", type=int, default=5000, help="samples per artifact (default 5000)")
    parser.add_argument("--large-samples", type=int, default=None,
                        help="samples per artifact for sizes >= 1024 (default: --samples; a smaller value keeps CPU runs short)")
    parser.add_argument("--ref-artifacts", type=int, default=8, help="the reference is timed on at most this many artifacts")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per row, best kept (default 2)")
    parser.add_argument("--lever-sizes", type=int, nargs="*", default=[1, 64],
                        help="sizes at which the lever rows (batch 4096, repeated conditioning) are also timed")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"model preset (default: {DEFAULT_PRESET}, the default model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)

    from gan_zoo.training import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = build_model(config_for(args.preset)).to(device).eval()
    plain = _RepeatedCondition(model).eval()
    default_batch = DEFAULT_BATCH["cuda" if device.type == "cuda" else "cpu"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {cores} cores, {torch.get_num_threads()} torch threads"
    print(f"device: {name}; preset {args.preset}; torch {torch.__version__}; default batch {default_batch}")

    rows = []
    for n in args.sizes:
        samples = args.large_samples if (args.large_samples and n >= 1024) else args.samples
        windows, masks = artifact_windows(n)
        n_ref = min(n, args.ref_artifacts)
        cases = [
            ("reference: eager fp32, one artifact at a time", n_ref, lambda: reference(model, windows[:n_ref], masks[:n_ref], samples)),
            ("sample_fills (shipped)", n, lambda: sample_fills(model, windows, masks, n_samples=samples, seed=0)),
            ("sample_fills, batch 4096 (previous default)", n,
             lambda: sample_fills(model, windows, masks, n_samples=samples, seed=0, batch=4096)),
            ("sample_fills, G on repeated conditioning", n,
             lambda: sample_fills(plain, windows, masks, n_samples=samples, seed=0)),
        ]
        if n not in args.lever_sizes:
            del cases[2:]
        elif default_batch == 4096:
            del cases[2]
        best = {label: float("inf") for label, _, _ in cases}
        peak = {}
        for _ in range(args.rounds):
            for label, count, run in cases:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                _sync(device)
                start = time.perf_counter()
                run()
                _sync(device)
                best[label] = min(best[label], (time.perf_counter() - start) / count)
                if device.type == "cuda":
                    peak[label] = torch.cuda.max_memory_allocated(device) / 2**30
        ref_rate = 1.0 / best[cases[0][0]]
        for label, count, _ in cases:
            rows.append((n, samples, label, count, 1.0 / best[label], (1.0 / best[label]) / ref_rate, peak.get(label)))
            print(f"  {n:5d} artifacts x {samples}: {label}: {1.0 / best[label]:.3f} artifacts/s", flush=True)

    width = max(len(r[2]) for r in rows)
    gpu = device.type == "cuda"
    print(f"\n{'artifacts':>9}  {'samples':>7}  {'method':<{width}}  {'timed on':>8}  {'artifacts/s':>11}  {'vs reference':>12}"
          + ("  peak GPU GiB" if gpu else ""))
    for n, samples, label, count, rate, ratio, mem in rows:
        line = f"{n:>9}  {samples:>7}  {label:<{width}}  {count:>8}  {rate:>11.3f}  {ratio:>11.2f}x"
        print(line + (f"  {mem:12.2f}" if gpu and mem is not None else ""))
    shipped = [r for r in rows if r[2] == "sample_fills (shipped)"]
    worst = min(r[5] for r in shipped)
    target = 3.0 if gpu else 1.5
    print(f"\ngoal: shipped >= {target}x the reference at every size: {'MET' if worst >= target else 'NOT MET'} "
          f"(lowest {worst:.2f}x)")


if __name__ == "__main__":
    main()
