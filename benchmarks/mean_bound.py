"""How far can a learned *mean* fill get past biharmonic on the real slices?

The GAN's mean fill is judged against biharmonic inpainting (``quality.py``).
This script measures the ceiling that learning offers at a given budget, with
no sampling and no adversary: the ``harmonic`` preset's conditioning network C
plus a 1 x 1 convolution that adds a correction to the prior's logit, trained
by plain squared error on the hole pixels (Adam, cosine learning-rate decay),
on the same training slices and the same random hole shapes as ``quality.py``.
It prints held-out PSNR of the prior, of biharmonic and of the learned mean on
windows of ``slice431.png`` at several points of the run::

    python benchmarks/mean_bound.py --steps 3000
    python benchmarks/mean_bound.py --steps 20000 --device cuda

It measured that the limit was how the GAN trained its mean, not what the data
allows; the ``harmonic`` preset now carries such a regression as its mean
network (``ModelConfig.mean_net``), and this script still gives its ceiling
without a generator beside it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from quality import DEFAULT_DATA, load_data


def held_out_windows(test, intensity, config, shape: str, n: int, seed: int):
    """Windows of the test slice with ``shape`` holes, and the pixels that are scored (unknown, in the box)."""
    from ctinpaint.patches import PatchSampler

    sampler = PatchSampler(test, patch=config.patch, hole=config.hole, hole_shape=shape, batch_size=256,
                           seed=seed, intensity=intensity)  # fmt: skip
    batch = sampler.take(n)
    o, L = config.offset, config.hole
    scored = batch.hole[:, 0] >= 0.5
    box = np.zeros_like(scored)
    box[:, o : o + L, o : o + L] = True
    return batch, scored & box


def psnr(fill: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> float:
    err = fill[scored] - truth[scored]
    return float(10 * np.log10(1 / np.mean(err**2)))


def main(argv=None) -> int:
    import torch
    from torch import nn

    from ctinpaint.evaluate import biharmonic_fill
    from ctinpaint.intensity import fit_intensity
    from ctinpaint.models import UNetConditioner, config_for
    from ctinpaint.patches import PatchSampler

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder with the SiC slices, or 'phantom'")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--holes", type=int, default=512, help="held-out windows per hole shape")
    parser.add_argument("--reports", type=int, default=8, help="evaluations during the run")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    args = parser.parse_args(argv)

    train, test, description = load_data(args.data)
    print(description, flush=True)
    torch.manual_seed(0)
    intensity = fit_intensity(train)
    config = config_for("harmonic", width=args.width, mean_net=False)  # this C *is* the regression here
    o, L = config.offset, config.hole
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    conditioner, head = UNetConditioner(config), nn.Conv2d(config.width + 1, 1, 1)
    nn.init.zeros_(head.weight)  # starts as the prior exactly
    nn.init.zeros_(head.bias)
    conditioner, head = conditioner.to(device), head.to(device)
    params = [*conditioner.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)

    def predict(x, hole):
        cond = conditioner(x * (1 - hole), hole)  # (B, width + 1, L, L); the last channel is the prior's logit
        return torch.sigmoid(cond[:, -1:] + head(cond))

    tests = {shape: held_out_windows(test, intensity, config, shape, args.holes, seed=11) for shape in ("square", "random")}
    rows = {}
    for shape, (batch, scored) in tests.items():
        truth = batch.x[:, 0]
        rows[shape] = {"biharmonic": psnr(biharmonic_fill(truth * (1 - batch.hole[:, 0]), batch.hole[:, 0] >= 0.5),
                                          truth, scored)}  # fmt: skip

    def evaluate(label):
        for shape, (batch, scored) in tests.items():
            with torch.no_grad():
                fill = predict(torch.from_numpy(batch.x).to(device), torch.from_numpy(batch.hole).to(device))
            fill = fill[:, 0].cpu().numpy()
            full = batch.x[:, 0].copy()
            full[:, o : o + L, o : o + L] = fill
            rows[shape][label] = psnr(full, batch.x[:, 0], scored)

    evaluate("step 0 (the prior)")
    stream = iter(PatchSampler(train, patch=config.patch, hole=config.hole, hole_shape="random", batch_size=64,
                               seed=0, intensity=intensity))  # fmt: skip
    every = max(args.steps // args.reports, 1)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = next(stream)
        x, hole = torch.from_numpy(batch.x).to(device), torch.from_numpy(batch.hole).to(device)
        box = hole[:, :, o : o + L, o : o + L]
        loss = ((predict(x, hole) - x[:, :, o : o + L, o : o + L]) ** 2 * box).sum() / box.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        if step % every == 0 or step == args.steps:
            evaluate(f"step {step}")
            print(f"step {step} ({time.perf_counter() - t0:.0f} s): "
                  + ", ".join(f"{s} {rows[s][f'step {step}']:.2f} dB" for s in rows), flush=True)  # fmt: skip

    print("\n| fill | " + " | ".join(f"{s} PSNR dB" for s in rows) + " | " + " | ".join(f"{s} vs biharmonic" for s in rows) + " |")
    print("|---|" + "---|" * (2 * len(rows)))
    for label in rows["square"]:
        cells = [f"{rows[s][label]:.2f}" for s in rows] + [f"{rows[s][label] - rows[s]['biharmonic']:+.2f}" for s in rows]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
