"""StarGAN across digit styles (thin, bold, slanted, inverted): train, then write each input in every style.

    python examples/gan_zoo_stargan.py --out runs/stargan --steps 2000

The paper's networks and losses (WGAN-GP, n_critic 5, λ_cls 1, λ_rec 10)
made small for 28×28 digits. For CelebA attributes use the defaults
(``gan_zoo.build("stargan")``, 128×128) with
``load_celeba(root, size=128, attributes=[...])``, or
``gan-zoo train stargan --data celeba:ROOT --size 128 --attributes Black_Hair Blond_Hair Brown_Hair Male Young``.
"""

from __future__ import annotations

import argparse
import json

import gan_zoo
from _digits import digits  # examples/_digits.py, beside this script


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/stargan")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--mnist", default="mnist", help="source of the digits: mnist or mnist:PATH")
    args = parser.parse_args()

    train = digits(args.mnist, kind="digit-domains", split="train", limit=10_000)
    test = digits(args.mnist, kind="digit-domains", split="test")
    model = gan_zoo.build(
        "stargan", seed=0, image_size=28, channels=1, labels="domain", c_dim=len(train.domain_names),
        domain_names=train.domain_names, width=16, n_blocks=3, d_width=32, d_layers=2,
    )  # fmt: skip
    gan_zoo.train(model, train, steps=args.steps, batch_size=16, out=args.out, preview_every=500)
    images, nrow = model.preview_images(test.images[:8])
    grid = gan_zoo.save_grid(images, f"{args.out}/samples.png", nrow=nrow, scale=2)
    print(f"input | {' | '.join(train.domain_names)}: {grid}")
    print(json.dumps(gan_zoo.evaluate(model, test, n=1000), indent=1))


if __name__ == "__main__":
    main()
