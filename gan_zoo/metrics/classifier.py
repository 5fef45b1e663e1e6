"""The small CNNs behind the metrics: a digit classifier and a digit-style classifier.

Both are trained by :mod:`gan_zoo.metrics.train_classifier` on MNIST and
ship with the package as safetensors + JSON (``gan_zoo/metrics/weights``),
so no metric ever downloads weights.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "ClassifierConfig",
    "DigitClassifier",
    "load_classifier",
    "load_digit_classifier",
    "load_domain_classifier",
    "save_classifier",
    "WEIGHTS_DIR",
]

#: Where the shipped classifiers live inside the package.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DIGIT_CLASSIFIER = "digit_classifier"
DOMAIN_CLASSIFIER = "domain_classifier"
_FORMAT = "gan_zoo.classifier"


@dataclass(frozen=True)
class ClassifierConfig:
    """Shape of a :class:`DigitClassifier`.

    Attributes
    ----------
    class_names : tuple of str
        One output per name.
    widths : tuple of int, default (16, 32, 64)
        Channels of the three stages (28x28, 14x14, 7x7); the last is the
        dimension of the feature space (:meth:`DigitClassifier.features`).
    """

    class_names: tuple[str, ...]
    widths: tuple[int, int, int] = (16, 32, 64)

    def __post_init__(self):
        if not isinstance(self.class_names, tuple) or len(self.class_names) < 2:
            raise ValueError(f"class_names must be a tuple of at least 2 names, got {self.class_names!r}")
        if len(self.widths) != 3 or not all(isinstance(w, int) and w > 0 for w in self.widths):
            raise ValueError(f"widths must be three positive integers, got {self.widths!r}")

    def to_dict(self) -> dict:
        return {"class_names": list(self.class_names), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        return cls(class_names=tuple(d["class_names"]), widths=tuple(d["widths"]))


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class DigitClassifier(nn.Module):
    """A five-layer CNN for 1x28x28 images in [-1, 1].

    28x28 -> conv(w0) -> conv stride 2 (w0) -> 14x14 conv(w1) -> conv stride 2 (w1)
    -> 7x7 conv(w2) -> global average -> ``features`` (N, w2) -> linear -> logits (N, K).
    """

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        w0, w1, w2 = config.widths
        self.body = nn.Sequential(
            _block(1, w0, 1), _block(w0, w0, 2), _block(w0, w1, 1), _block(w1, w1, 2), _block(w1, w2, 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(w2, len(config.class_names))

    @property
    def feature_dim(self) -> int:
        return self.config.widths[2]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """float32 (N, 1, 28, 28) -> float32 (N, feature_dim), the penultimate layer."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """float32 (N, 1, 28, 28) -> logits float32 (N, K)."""
        return self.head(self.body(images))


def save_classifier(model: DigitClassifier, directory, name: str, *, meta: dict) -> Path:
    """Write ``model`` as ``name.json`` + safetensors in ``directory`` (atomically)."""
    from gan_zoo.training import save_checkpoint, state_to_tensors

    tensors, structure = state_to_tensors("weights", {k: v.detach().cpu() for k, v in model.state_dict().items()})
    document = {"format": _FORMAT, "config": model.config.to_dict(), "state": structure, **meta}
    return save_checkpoint(directory, name, tensors=tensors, meta=document)


def load_classifier(directory, name: str, *, device="cpu") -> DigitClassifier:
    """Load a classifier written by :func:`save_classifier`, in eval mode (no pickle involved).

    Raises
    ------
    ValueError
        Missing, corrupt or foreign files.
    """
    from gan_zoo.training import load_checkpoint, resolve_device, state_from_tensors

    tensors, meta = load_checkpoint(directory, name)
    if meta.get("format") != _FORMAT or "config" not in meta:
        raise ValueError(f"{Path(directory) / name}.json is not a gan_zoo classifier")
    model = DigitClassifier(ClassifierConfig.from_dict(meta["config"]))
    try:
        model.load_state_dict(state_from_tensors(meta["state"], tensors), strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"{Path(directory) / name}: weights do not match the stored config: {exc}") from None
    model.meta = {k: v for k, v in meta.items() if k not in ("state",)}
    return model.to(resolve_device(device)).eval()


def load_digit_classifier(device="cpu") -> DigitClassifier:
    """The shipped MNIST digit classifier (classes "0".."9"), in eval mode.

    Its ``meta`` attribute holds how it was trained and its measured test accuracies.

    Examples
    --------
    >>> import torch
    >>> model = load_digit_classifier()
    >>> model(torch.zeros(2, 1, 28, 28) - 1).shape, model.feature_dim
    (torch.Size([2, 10]), 64)
    """
    return load_classifier(WEIGHTS_DIR, DIGIT_CLASSIFIER, device=device)


def load_domain_classifier(device="cpu") -> DigitClassifier:
    """The shipped digit-style classifier (classes :data:`gan_zoo.data.DIGIT_DOMAINS`), in eval mode."""
    return load_classifier(WEIGHTS_DIR, DOMAIN_CLASSIFIER, device=device)


@functools.lru_cache(maxsize=2)
def _shared(name: str) -> DigitClassifier:
    """One CPU copy per shipped classifier for the metrics (they never train it)."""
    return load_classifier(WEIGHTS_DIR, name)
