"""The ``gan-zoo`` command line: train, sample and evaluate the zoo's models.

A thin layer over :func:`gan_zoo.build`, :func:`gan_zoo.train`,
:func:`gan_zoo.load` and :func:`gan_zoo.evaluate`: it parses arguments,
calls the same functions a Python user would, and turns their ``ValueError``
/ ``TypeError`` into a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__

_DESCRIPTION = """\
Train, sample and evaluate classic GANs (gan, dcgan, cgan, cyclegan, stargan)
on data already on this machine; nothing is downloaded.

  gan-zoo train dcgan --data mnist --out runs/dcgan --steps 2000 --set width=32
  gan-zoo sample runs/dcgan --n 64 --out grid.png
  gan-zoo evaluate runs/dcgan"""

_DATA_HELP = (
    "data set: mnist, mnist:PATH, fashion-mnist[:PATH], digits, celeba:PATH, images:PATH, "
    "folders:PATH (trainA/trainB), thin-bold[:SOURCE], digit-domains[:SOURCE]"
)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 bad input, 1 a failed read or write)."""
    return run_command(_parser().parse_args(argv), "gan-zoo")


def run_command(args, program: str) -> int:
    """Run a parsed subcommand (``args.run(args)``); an expected error becomes one line on stderr.

    Exit status: what the command returns; 2 for bad input (ValueError,
    TypeError); 1 for a failed read or write (OSError: disk full, no
    permission, a vanished file), whose own words say it best. The
    ``ctinpaint`` command line uses it too.
    """
    try:
        return args.run(args)
    except (ValueError, TypeError) as exc:
        print(f"{program} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{program} {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan-zoo", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gan-zoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model; resumes when OUT holds an interrupted run")
    p.add_argument("name", choices=("gan", "dcgan", "cgan", "cyclegan", "stargan"), help="model")
    p.add_argument("--data", required=True, metavar="SPEC", help=_DATA_HELP)
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, log, previews, the trained model)")
    p.add_argument("--steps", type=int, help="total training steps")
    p.add_argument("--minutes", type=float, help="total training time (with or instead of --steps)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order and noise (default: 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--limit", type=int, help="use only the first N training images")
    p.add_argument("--size", type=int, help="resize images to SIZE x SIZE (celeba, images, folders)")
    p.add_argument("--attributes", nargs="+", metavar="NAME", help="celeba: attribute names to use as labels (stargan domains)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --set width=32 --set hidden=[128,256]; repeatable")  # fmt: skip
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="N", help="steps between checkpoints (default: 1000)")
    p.add_argument("--preview-every", type=int, default=0, metavar="N", help="steps between preview grids (default: only at the end)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train)

    p = sub.add_parser("sample", help="write a grid of generated (or translated) images as PNG")
    p.add_argument("model", type=Path, help="run folder of a trained model")
    p.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p.add_argument("--labels", type=int, nargs="+", metavar="K", help="cgan: class of each image (or one for all)")
    p.add_argument("--target", help="cyclegan: A or B (default B); stargan: domain name or index")
    p.add_argument("--data", metavar="SPEC", help="translation models: images to translate (default: the training spec, test split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nrow", type=int, default=8, help="images per row (default: 8)")
    p.set_defaults(run=_run_sample)

    p = sub.add_parser("evaluate", help="Fréchet distance, mode coverage, accuracy or identity, from the shipped classifiers")
    p.add_argument("model", type=Path, help="run folder of a trained model")
    p.add_argument("--data", metavar="SPEC", help="held-out data (default: the training spec, test split)")
    p.add_argument("--n", type=int, default=1000, help="samples to generate or images to translate (default: 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_run_evaluate)
    return parser


# --------------------------------------------------------------------------- train


def _run_train(args) -> int:
    import gan_zoo
    from gan_zoo.data import load_dataset

    options = _parse_options(args.options)
    data = load_dataset(args.data, **_loader_options(args))
    config = {**_config_from_data(args.name, data), **options}
    model = gan_zoo.build(args.name, seed=args.seed, **config)
    result = gan_zoo.train(
        model, data, out=args.out, steps=args.steps, minutes=args.minutes, batch_size=args.batch_size, seed=args.seed,
        device=args.device, checkpoint_every=args.checkpoint_every, preview_every=args.preview_every,
        progress=not args.quiet, meta={"data_spec": args.data, "data_options": _loader_options(args, for_test=True)},
    )  # fmt: skip
    print(f"trained {args.name} for {result.step} steps ({result.elapsed:.0f} s); model in {args.out}")
    return 0


def _loader_options(args, *, for_test: bool = False) -> dict:
    options = {}
    for key in ("limit", "size", "attributes"):
        value = getattr(args, key, None)
        if value is not None and not (for_test and key == "limit"):
            options[key] = value
    return options


def _parse_options(items: list[str]) -> dict:
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set: expected KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text  # a bare word: a string option such as loss=lsgan
    return options


def _config_from_data(name: str, data) -> dict:
    """Image size, channels and classes/domains of the model, read from the data."""
    from gan_zoo.data import DomainData

    first = data[0] if isinstance(data, tuple) else data
    size = first.images.shape[-1]
    config = {"image_size": size, "channels": int(first.images.shape[1])}
    if name == "cgan":
        config["n_classes"] = len(first.class_names) or 10
        if size != 28:
            config["arch"] = "conv"
    elif name == "stargan":
        if isinstance(data, DomainData):
            config.update(labels="domain", c_dim=len(data.domain_names), domain_names=data.domain_names)
        elif first.labels is not None and first.labels.ndim == 2:
            config.update(labels="attributes", c_dim=int(first.labels.shape[1]), domain_names=first.class_names)
        elif first.labels is not None:
            config.update(labels="domain", c_dim=len(first.class_names), domain_names=first.class_names)
        if size < 128:
            # The paper's six discriminator layers need 128 px; keep a 2x2 (or larger) source map.
            config["d_layers"] = max(1, min(6, (size // 4).bit_length() - 1))
    elif name == "cyclegan" and size < 256:
        config["d_layers"] = max(1, min(3, (size // 4).bit_length() - 1))
    return config


# --------------------------------------------------------------------------- sample, evaluate


def _run_sample(args) -> int:
    import torch

    import gan_zoo

    model = gan_zoo.load(args.model)
    if model.kind == "generative":
        labels = args.labels
        if labels is not None and len(labels) == 1:
            labels = labels[0]
        images = model.sample(args.n, labels=labels, seed=args.seed)
        nrow = args.nrow
    else:
        data = _held_out(model, args.data)
        if model.name == "cyclegan":
            target = args.target or "B"
            source = data[0] if target == "B" else data[1]
            inputs = source.images[: args.n]
        else:
            if args.target is None:
                raise ValueError("--target: stargan needs the target domain (a name or an index)")
            target = int(args.target) if args.target.lstrip("-").isdigit() else args.target
            inputs = data.images[: args.n]
        outputs = model.translate(inputs, target=target).cpu()
        # Pairs side by side: input, translation.
        images = torch.stack([inputs, outputs], 1).flatten(0, 1)
        nrow = 2 * max(1, args.nrow // 2)
    path = gan_zoo.save_grid(images, args.out, nrow=nrow, scale=2 if model.config.image_size <= 32 else 1)
    print(f"wrote {path}")
    return 0


def _run_evaluate(args) -> int:
    import gan_zoo

    model = gan_zoo.load(args.model)
    data = _held_out(model, args.data)
    domains = None
    spec = args.data or model.meta.get("extra", {}).get("data_spec", "")
    if model.name == "cyclegan" and spec.partition(":")[0] == "thin-bold":
        domains = ("thin", "bold")
    result = gan_zoo.evaluate(model, data, n=args.n, seed=args.seed, domains=domains)
    print(json.dumps(result, indent=1))
    return 0


def _held_out(model, spec: str | None):
    """Data for sampling/evaluating: ``spec`` or the training spec, test split where the loader has one."""
    from gan_zoo.data import load_dataset

    extra = model.meta.get("extra", {}) if isinstance(getattr(model, "meta", None), dict) else {}
    options = {}
    if spec is None:
        spec = extra.get("data_spec")
        options = dict(extra.get("data_options", {}))
        if spec is None:
            raise ValueError("--data: the model does not record its training data; give --data SPEC")
    try:
        return load_dataset(spec, split="test", **options)
    except TypeError:
        return load_dataset(spec, **options)  # a loader without splits (folders of images)


if __name__ == "__main__":
    sys.exit(main())
