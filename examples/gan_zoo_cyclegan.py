"""CycleGAN between thin and bold digits: train, then write (thin, bold, back to thin) triples and print identity kept.

    python examples/gan_zoo_cyclegan.py --out runs/cyclegan --steps 600

The networks are the paper's (ResNet generator, PatchGAN, LSGAN loss, cycle
and identity losses, image pool, linear lr decay), made small for 28×28
digits: width 16, 3 residual blocks, a 2-layer PatchGAN. For photographs use
the defaults (``gan_zoo.build("cyclegan")``, 256×256, 9 blocks) with
``load_unpaired(root)`` or ``gan-zoo train cyclegan --data folders:ROOT``.
"""

from __future__ import annotations

import argparse
import json

import torch

import gan_zoo
from _digits import digits  # examples/_digits.py, beside this script


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/cyclegan")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--mnist", default="mnist", help="source of the digits: mnist or mnist:PATH")
    args = parser.parse_args()

    train = digits(args.mnist, kind="thin-bold", split="train", limit=10_000)
    test = digits(args.mnist, kind="thin-bold", split="test")
    model = gan_zoo.build("cyclegan", seed=0, image_size=28, channels=1, width=16, n_blocks=3, d_width=16, d_layers=2)
    gan_zoo.train(model, train, steps=args.steps, batch_size=8, out=args.out, preview_every=200)
    a = test[0].images[:16]
    bold = model.translate(a, target="B")
    back = model.translate(bold, target="A")
    triples = torch.stack([a, bold.cpu(), back.cpu()], 1).flatten(0, 1)
    grid = gan_zoo.save_grid(triples, f"{args.out}/samples.png", nrow=6, scale=2)
    print(f"thin | bold | thin again: {grid}")
    print(json.dumps(gan_zoo.evaluate(model, test, n=1000, domains=("thin", "bold")), indent=1))


if __name__ == "__main__":
    main()
