"""Scores of generated and translated digits, read by the shipped classifiers.

Every function takes float32 image tensors (N, 1, 28, 28) in [-1, 1], the
range the generators' tanh produces; anything else is refused with a message
that names the argument. The classifiers run on the device of the classifier
passed (default: the shipped one on the CPU) in batches of 500.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .classifier import DIGIT_CLASSIFIER, DOMAIN_CLASSIFIER, DigitClassifier, _shared

__all__ = [
    "classifier_features",
    "predict",
    "frechet_distance",
    "frechet_distance_gaussians",
    "mode_coverage",
    "conditional_accuracy",
    "identity_kept",
    "domain_reached",
]

_BATCH = 500
#: Values this far outside [-1, 1] are still accepted (float rounding of tanh outputs).
_RANGE_SLACK = 1e-3


def classifier_features(images, *, classifier: DigitClassifier | None = None) -> np.ndarray:
    """Penultimate-layer features of the digit classifier.

    Parameters
    ----------
    images : torch.Tensor
        float32 (N, 1, 28, 28) in [-1, 1].
    classifier : DigitClassifier, optional
        Default: the shipped digit classifier (64 features).

    Returns
    -------
    numpy.ndarray
        float64 (N, feature_dim).
    """
    model = classifier if classifier is not None else _shared(DIGIT_CLASSIFIER)
    return _run(model, _check_images(images, "images"), features=True).double().numpy()


def predict(images, *, classifier: DigitClassifier | None = None) -> torch.Tensor:
    """Class indices the classifier reads (default: digits), int64 (N,)."""
    model = classifier if classifier is not None else _shared(DIGIT_CLASSIFIER)
    return _run(model, _check_images(images, "images"), features=False).argmax(1)


def frechet_distance(images, reference, *, classifier: DigitClassifier | None = None) -> float:
    """Fréchet distance between two image sets in the digit classifier's feature space (FD).

    Each set is summarised by the mean and covariance of its features
    (:func:`classifier_features`, 64-dimensional for the shipped classifier),
    and the distance of the two Gaussians is returned
    (:func:`frechet_distance_gaussians`). Lower is closer; identical sets give 0.
    Like FID, the value is biased upwards for small sets: compare only numbers
    computed with the same set sizes (a few thousand images each is typical).

    Parameters
    ----------
    images, reference : torch.Tensor
        float32 (N, 1, 28, 28) and (M, 1, 28, 28) in [-1, 1], N, M >= 2.
    classifier : DigitClassifier, optional

    Returns
    -------
    float

    Examples
    --------
    >>> from gan_zoo.data import load_digits
    >>> real = load_digits(split="test").images
    >>> frechet_distance(real, real) < 1e-6
    True
    """
    model = classifier if classifier is not None else _shared(DIGIT_CLASSIFIER)
    a = _features_of(model, images, "images")
    b = _features_of(model, reference, "reference")
    return frechet_distance_gaussians(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def frechet_distance_gaussians(mean_a, cov_a, mean_b, cov_b, *, eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance² of two Gaussians.

    ``|m_a - m_b|² + tr(C_a) + tr(C_b) - 2 tr((C_a C_b)^½)``. The matrix
    square root comes from :func:`scipy.linalg.sqrtm`; when it is not finite
    (a near-singular product, e.g. fewer samples than dimensions) ``eps * I``
    is added to both covariances and it is taken again. Rounding leaves a
    tiny imaginary part, which is dropped; a large one means the covariances
    are not positive semi-definite and raises.

    Parameters
    ----------
    mean_a, mean_b : array_like, float (D,)
    cov_a, cov_b : array_like, float (D, D), symmetric positive semi-definite
    eps : float, default 1e-6

    Returns
    -------
    float
        Non-negative.

    Examples
    --------
    >>> import numpy as np
    >>> frechet_distance_gaussians(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))  # 2 + 2 + 8 - 2*4
    4.0
    """
    from scipy import linalg

    mean_a, mean_b = _vector(mean_a, "mean_a"), _vector(mean_b, "mean_b")
    cov_a, cov_b = _matrix(cov_a, "cov_a", len(mean_a)), _matrix(cov_b, "cov_b", len(mean_b))
    if len(mean_a) != len(mean_b):
        raise ValueError(f"mean_b: dimension {len(mean_b)} differs from mean_a's {len(mean_a)}")
    for name, cov in (("cov_a", cov_a), ("cov_b", cov_b)):
        if not np.allclose(cov, cov.T, rtol=1e-6, atol=1e-9 * max(1.0, np.abs(cov).max())):
            raise ValueError(f"{name} must be symmetric (a covariance matrix)")
    with warnings.catch_warnings():
        # Singular products are expected (features that are always zero); they are handled below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            offset = eps * np.eye(len(mean_a))
            root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(root):
        imaginary = np.abs(root.imag).max()
        if imaginary > 1e-3 * max(1.0, np.abs(root.real).max()):
            raise ValueError(f"cov_a, cov_b: not positive semi-definite (square root has an imaginary part of {imaginary:.3g})")
        root = root.real
    diff = mean_a - mean_b
    distance = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))
    # Rounding can take a distance of zero slightly below it.
    return max(distance, 0.0)


def mode_coverage(images, *, min_share: float = 0.01, classifier: DigitClassifier | None = None) -> dict:
    """How evenly generated digits spread over the classes (mode collapse shows here).

    Parameters
    ----------
    images : torch.Tensor
        float32 (N, 1, 28, 28) in [-1, 1], N >= 1.
    min_share : float, default 0.01
        A class counts as covered when at least this share of the samples is
        read as it (one tenth of the uniform share for ten digits).
    classifier : DigitClassifier, optional

    Returns
    -------
    dict
        ``shares``: list of K floats (share of samples per class, sum 1);
        ``covered``: number of classes with share >= ``min_share``;
        ``classes``: K; ``entropy``: entropy of ``shares`` divided by log K
        (1 for a uniform spread, 0 when every sample is one class).

    Examples
    --------
    >>> from gan_zoo.data import load_digits
    >>> digits = load_digits(split="test")
    >>> mode_coverage(digits.images)["covered"]
    10
    """
    if isinstance(min_share, bool) or not isinstance(min_share, numbers.Real) or not 0 <= min_share <= 1:
        raise ValueError(f"min_share must be a number in [0, 1], got {min_share!r}")
    model = classifier if classifier is not None else _shared(DIGIT_CLASSIFIER)
    images = _check_images(images, "images")
    classes = len(model.config.class_names)
    counts = torch.bincount(_run(model, images, features=False).argmax(1), minlength=classes).double()
    shares = (counts / counts.sum()).numpy()
    nonzero = shares[shares > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum() / math.log(classes))
    return {
        "shares": [float(s) for s in shares],
        "covered": int((shares >= min_share).sum()),
        "classes": classes,
        "entropy": min(max(entropy, 0.0), 1.0),
    }


def conditional_accuracy(images, labels, *, classifier: DigitClassifier | None = None) -> float:
    """Share of samples the classifier reads as the class they were generated for (cGAN).

    Parameters
    ----------
    images : torch.Tensor
        float32 (N, 1, 28, 28) in [-1, 1].
    labels : torch.Tensor or sequence of int
        int (N,) requested classes, in [0, K).

    Returns
    -------
    float
        In [0, 1].
    """
    model = classifier if classifier is not None else _shared(DIGIT_CLASSIFIER)
    images = _check_images(images, "images")
    labels = _check_labels(labels, "labels", len(images), len(model.config.class_names))
    return float((_run(model, images, features=False).argmax(1) == labels).double().mean())


def identity_kept(before, after, *, classifier: DigitClassifier | None = None) -> float:
    """Share of translated digits whose digit the classifier reads the same before and after (CycleGAN, StarGAN).

    Parameters
    ----------
    before, after : torch.Tensor
        float32 (N, 1, 28, 28) in [-1, 1]: inputs and their translations, in the same order.

    Returns
    -------
    float
        In [0, 1].
    """
    model = classifier if classifier is not None else _shared(DIGIT_CLASSIFIER)
    before = _check_images(before, "before")
    after = _check_images(after, "after")
    if len(after) != len(before):
        raise ValueError(f"after: {len(after)} images for {len(before)} in before; they must pair up")
    same = _run(model, before, features=False).argmax(1) == _run(model, after, features=False).argmax(1)
    return float(same.double().mean())


def domain_reached(images, target_domains, *, classifier: DigitClassifier | None = None) -> float:
    """Share of translated digits that the style classifier reads in their target style.

    Parameters
    ----------
    images : torch.Tensor
        float32 (N, 1, 28, 28) in [-1, 1].
    target_domains : str, int, or sequence/tensor of them
        Per image (N,) or one for all: a style name from
        :data:`gan_zoo.data.DIGIT_DOMAINS` or its index there.
    classifier : DigitClassifier, optional
        Default: the shipped style classifier.

    Returns
    -------
    float
        In [0, 1].
    """
    model = classifier if classifier is not None else _shared(DOMAIN_CLASSIFIER)
    images = _check_images(images, "images")
    names = model.config.class_names
    targets = _domain_targets(target_domains, names, len(images))
    return float((_run(model, images, features=False).argmax(1) == targets).double().mean())


# --------------------------------------------------------------------------- helpers


@torch.no_grad()
def _run(model: DigitClassifier, images: torch.Tensor, *, features: bool) -> torch.Tensor:
    if model.training:
        warnings.warn("the classifier is in training mode; metrics put it in eval mode", stacklevel=3)
        model.eval()
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(images), _BATCH):
        batch = images[start : start + _BATCH].to(device)
        outputs.append((model.features(batch) if features else model(batch)).float().cpu())
    return torch.cat(outputs)


def _features_of(model, images, name: str) -> np.ndarray:
    images = _check_images(images, name)
    if len(images) < 2:
        raise ValueError(f"{name}: needs at least 2 images for a covariance, got {len(images)}")
    return _run(model, images, features=True).double().numpy()


def _check_images(images, name: str) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, 1, 28, 28), got {type(images).__name__}")
    if not images.is_floating_point() or images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"{name} must be float (N, 1, 28, 28) images, got {images.dtype} {tuple(images.shape)}")
    if len(images) == 0:
        raise ValueError(f"{name} holds no images")
    images = images.detach().to("cpu", torch.float32)
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < -1 - _RANGE_SLACK or high > 1 + _RANGE_SLACK:
        raise ValueError(f"{name} must lie in [-1, 1] (the generators' tanh range), got values in [{low:.3g}, {high:.3g}]")
    return images


def _check_labels(labels, name: str, n: int, classes: int) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.shape != (n,):
        raise ValueError(f"{name} must be {n} integer class indices (one per image), got {labels.dtype} {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"{name} must lie in [0, {classes}), got {int(labels.min())}..{int(labels.max())}")
    return labels.to(torch.int64)


def _domain_targets(targets, names: Sequence[str], n: int) -> torch.Tensor:
    def index(value) -> int:
        if isinstance(value, str):
            if value not in names:
                raise ValueError(f"target_domains: {value!r} is not one of {list(names)}")
            return list(names).index(value)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < len(names):
            return int(value)
        raise ValueError(f"target_domains: {value!r} is neither a name in {list(names)} nor an index below {len(names)}")

    if isinstance(targets, (str, numbers.Integral)):
        return torch.full((n,), index(targets), dtype=torch.int64)
    if isinstance(targets, torch.Tensor):
        targets = targets.tolist()
    if not isinstance(targets, Sequence) or len(targets) != n:
        raise ValueError(f"target_domains must be one domain or {n} of them (one per image)")
    return torch.tensor([index(t) for t in targets], dtype=torch.int64)


def _vector(value, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1 or not np.isfinite(array).all():
        raise ValueError(f"{name} must be a finite vector (D,), got shape {array.shape}")
    return array


def _matrix(value, name: str, d: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (d, d) or not np.isfinite(array).all():
        raise ValueError(f"{name} must be a finite ({d}, {d}) matrix, got shape {array.shape}")
    return array
