"""Benchmark: training samples per second (one D step and one G step per batch).

Both sides train the default model on the same phantom volume with the same
losses (non-saturating adversarial loss plus the mode-seeking term), batch size
and device, in one process (a third row: ``train_model`` with the default
recipe, which adds the moment-reconstruction loss):

- the plain reference: an eager float32 loop written out by hand, patches cut
  on the host by ``PatchSampler`` and copied to the device every step;
- ``train_model`` as shipped (the shared ``gan_zoo`` loop: bf16 autocast on
  CUDA, pinned non-blocking copies, device-side loss accumulation).

``train_model`` also validates, checkpoints and exports once at the end; that
fixed cost is removed by timing a short and a long run and dividing the extra
steps by the extra time. The two sides alternate for ``--rounds`` rounds; the
best of each is kept (shared machines are noisy).

    python benchmarks/bench_train.py                        # 16 x 256 x 256 phantom, batch 64
    python benchmarks/bench_train.py --steps 10 --rounds 1  # quick
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from ctinpaint.intensity import fit_intensity
from ctinpaint.losses import AdversarialLoss, mode_seeking_loss
from ctinpaint.models import DEFAULT_PRESET, build_model, config_for
from ctinpaint.patches import PatchSampler
from ctinpaint.phantom import make_phantom
from ctinpaint.train import TrainConfig, train_model


def reference_rate(volume, intensity, *, batch: int, steps: int, device) -> float:
    """Samples/s of a plain eager float32 loop with host-side patch sampling."""
    cfg = config_for(DEFAULT_PRESET)
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    opt_g = torch.optim.Adam([*model.conditioner.parameters(), *model.generator.parameters()], lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=3e-4, betas=(0.5, 0.999))
    adversarial = AdversarialLoss("nonsaturating")
    sampler = iter(PatchSampler(volume, patch=cfg.patch, hole=cfg.hole, hole_shape="random", batch_size=batch, seed=0,
                                intensity=intensity))
    o, L = cfg.offset, cfg.hole

    def one_step():
        patches = next(sampler)
        x = torch.as_tensor(np.asarray(patches.x)).to(device)
        hole = torch.as_tensor(np.asarray(patches.hole)).to(device)
        y = x * (1 - hole)
        opt_d.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = model(y, hole)
        loss_d = adversarial.d_loss(model.discriminate(x, hole), model.discriminate(fake, hole))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        cond = model.condition(y, hole)
        z = model.sample_z(2 * batch, device=device)
        fills = model.generate(z, cond.repeat(2, 1, 1, 1)).reshape(2, batch, 1, L, L)
        loss_g = adversarial.g_loss(model.discriminate(model.composite(y, hole, fills[0]), hole))
        loss_g = loss_g + 0.05 * mode_seeking_loss(fills[0], fills[1], z[:batch], z[batch:], mask=hole[:, :, o : o + L, o : o + L])
        loss_g.backward()
        opt_g.step()
        float(loss_g.detach())  # a plain loop looks at its loss every step

    for _ in range(2):  # warm-up
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch / (time.perf_counter() - start)


def shipped_rate(volume, intensity, *, batch: int, steps: int, device, moments: float = 0.0) -> float:
    """Samples/s of ``train_model``: (long run - short run) steps over the extra time.

    ``moments=0`` trains with the reference's losses; the default recipe adds
    the moment-reconstruction term, which draws ``moment_samples`` fills per
    window for G's step and so costs more per sample (its own row).
    """
    times = {}
    for n in (max(2, steps // 4), steps + max(2, steps // 4)):
        config = TrainConfig(steps=n, batch_size=batch, n_val=8, val_samples=4, checkpoint_every=10**6,
                             validate_every=10**6, log_every=10**6, device=str(device), seed=0, moments=moments)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            train_model(volume, out, config=config, intensity=intensity, progress=False)
            times[n] = time.perf_counter() - start
    (short, t_short), (long, t_long) = sorted(times.items())
    return (long - short) * batch / max(t_long - t_short, 1e-9)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(16, 256, 256), help="phantom shape (default 16 256 256)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run (default 40)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    from gan_zoo.training import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    volume = make_phantom(tuple(args.shape), seed=0)
    intensity = fit_intensity(volume)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {cores} cores, {torch.get_num_threads()} torch threads"
    print(f"device: {name}; preset {DEFAULT_PRESET}; phantom {tuple(args.shape)}; batch {args.batch_size}; {args.steps} steps")

    best = {"reference": 0.0, "train_model": 0.0, "default": 0.0}
    for _ in range(args.rounds):
        best["reference"] = max(best["reference"], reference_rate(volume, intensity, batch=args.batch_size,
                                                                  steps=args.steps, device=device))
        best["train_model"] = max(best["train_model"], shipped_rate(volume, intensity, batch=args.batch_size,
                                                                    steps=args.steps, device=device))
        best["default"] = max(best["default"], shipped_rate(volume, intensity, batch=args.batch_size, steps=args.steps,
                                                            device=device, moments=TrainConfig().moments))
        print(f"  round: " + ", ".join(f"{k} {v:.1f}" for k, v in best.items()) + " samples/s", flush=True)
    labels = {
        "reference": "reference: eager fp32 loop, host patch sampling",
        "train_model": "train_model (shared loop), same losses",
        "default": "train_model, default recipe (+ moment loss)",
    }
    width = max(len(v) for v in labels.values())
    print(f"\n{'method':<{width}}  {'samples/s':>10}  {'vs reference':>12}")
    for key, label in labels.items():
        print(f"{label:<{width}}  {best[key]:>10.1f}  {best[key] / best['reference']:>11.2f}x")


if __name__ == "__main__":
    main()
