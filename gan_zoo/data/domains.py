"""Digit styles with known truth: thin, bold, slanted and inverted digits.

A translation model (CycleGAN, StarGAN) trained on these can be measured:
the digit must survive the translation (a digit classifier reads the same
label before and after) and the style must be reached (a style classifier
reads the target style). Every style is a fixed, deterministic image
operation on 28x28 digits in [-1, 1]:

* ``thin``: grey-level erosion with a 2x2 square, strokes about 1 px thinner;
* ``bold``: grey-level dilation with a 3x3 cross, strokes about 2 px wider;
* ``slanted``: a horizontal shear by ``SHEAR`` (x += SHEAR * (y - centre)), an italic;
* ``inverted``: white background, black strokes (``-x``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .images import DomainData, ImageData, _check_int

__all__ = ["DIGIT_DOMAINS", "SHEAR", "to_domain", "digit_domains", "thin_bold"]

#: The styles :func:`digit_domains` knows, in the order of the style classifier's outputs.
DIGIT_DOMAINS = ("thin", "bold", "slanted", "inverted")
#: Horizontal shift per row (from the centre row) of the ``slanted`` style.
SHEAR = 0.35

_THIN_FOOTPRINT = np.ones((2, 2), dtype=bool)
_BOLD_FOOTPRINT = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def to_domain(images: torch.Tensor, domain: str) -> torch.Tensor:
    """Render digits in one style.

    Parameters
    ----------
    images : torch.Tensor
        float32 (N, 1, H, W) in [-1, 1], light strokes on a dark background.
    domain : str
        One of :data:`DIGIT_DOMAINS`.

    Returns
    -------
    torch.Tensor
        float32 (N, 1, H, W) in [-1, 1], a new tensor.

    Examples
    --------
    >>> import torch
    >>> digit = -torch.ones(1, 1, 28, 28); digit[..., 8:20, 13:15] = 1
    >>> bool((to_domain(digit, "bold") > 0).sum() > (digit > 0).sum())
    True
    """
    from scipy import ndimage

    if domain not in DIGIT_DOMAINS:
        raise ValueError(f"domain must be one of {list(DIGIT_DOMAINS)}, got {domain!r}")
    _check_digits(images, "images")
    if domain == "inverted":
        return -images
    array = images.detach().cpu().numpy()[:, 0]
    if domain == "thin":
        out = ndimage.grey_erosion(array, footprint=_THIN_FOOTPRINT[None])
    elif domain == "bold":
        out = ndimage.grey_dilation(array, footprint=_BOLD_FOOTPRINT[None])
    else:
        h = array.shape[1]
        # Output (y, x) samples the input at (y, x - SHEAR * (centre - y)): the top leans right.
        matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, SHEAR, 1.0]])
        offset = np.array([0.0, 0.0, -SHEAR * (h - 1) / 2.0])
        out = ndimage.affine_transform(array, matrix, offset=offset, order=1, mode="constant", cval=-1.0)
    out = np.clip(out, -1.0, 1.0).astype(np.float32)
    return torch.from_numpy(out[:, None]).to(images.device)


def digit_domains(data: ImageData, domains: Sequence[str] = DIGIT_DOMAINS, *, seed: int = 0) -> DomainData:
    """Split digits into styles: each source image appears once, in one style.

    The images are shuffled with ``seed`` and dealt out to the domains in
    turn, so the domains are balanced and share no source image.

    Parameters
    ----------
    data : ImageData
        Labelled 1-channel digits (MNIST, scikit-learn digits).
    domains : sequence of str, default :data:`DIGIT_DOMAINS`
        At least two distinct names from :data:`DIGIT_DOMAINS`; the index of a
        name in this sequence is its domain index.
    seed : int, default 0

    Returns
    -------
    DomainData
        images float32 (N, 1, H, W), labels int64 (N,) digits, domains int64 (N,).
    """
    names = _check_domains(domains)
    _check_source(data, "data")
    seed = _check_int(seed, "seed", minimum=0)
    order = np.random.default_rng(seed).permutation(len(data))
    assigned = np.empty(len(data), dtype=np.int64)
    assigned[order] = np.arange(len(data)) % len(names)
    images = torch.empty_like(data.images)
    for index, name in enumerate(names):
        members = torch.from_numpy(np.flatnonzero(assigned == index))
        images[members] = to_domain(data.images[members], name)
    return DomainData(
        images=images,
        labels=data.labels.clone(),
        domains=torch.from_numpy(assigned),
        domain_names=names,
        class_names=data.class_names,
        source=f"digit_domains({', '.join(names)}) of {data.source}",
    )


def thin_bold(data: ImageData, *, seed: int = 0) -> tuple[ImageData, ImageData]:
    """Unpaired thin and bold digits for CycleGAN: different source images on each side.

    Parameters
    ----------
    data : ImageData
        Labelled 1-channel digits, at least 2.
    seed : int, default 0
        Shuffles the images before they are halved.

    Returns
    -------
    (ImageData, ImageData)
        Domain A (thin) and domain B (bold), each float32 (N/2, 1, H, W) with
        its digit labels, so identity after translation can be checked.
    """
    _check_source(data, "data")
    seed = _check_int(seed, "seed", minimum=0)
    if len(data) < 2:
        raise ValueError(f"data: needs at least 2 images to make two domains, got {len(data)}")
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(data)))
    half = len(data) // 2
    parts = []
    for name, index in (("thin", order[:half]), ("bold", order[half : 2 * half])):
        part = data.subset(index)
        parts.append(ImageData(to_domain(part.images, name), part.labels, part.class_names, f"{name} digits of {data.source}"))
    return parts[0], parts[1]


def _check_domains(domains) -> tuple[str, ...]:
    if isinstance(domains, str) or not isinstance(domains, Sequence):
        raise TypeError(f"domains must be a sequence of names from {list(DIGIT_DOMAINS)}, got {domains!r}")
    names = tuple(domains)
    unknown = [d for d in names if d not in DIGIT_DOMAINS]
    if unknown:
        raise ValueError(f"domains: unknown {unknown}; valid domains are {list(DIGIT_DOMAINS)}")
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"domains must hold at least two distinct names, got {list(names)}")
    return names


def _check_source(data, name: str) -> None:
    if not isinstance(data, ImageData):
        raise TypeError(f"{name} must be an ImageData, got {type(data).__name__}")
    if data.channels != 1 or data.labels is None or data.labels.ndim != 1:
        raise ValueError(f"{name} must hold labelled 1-channel digits (channels={data.channels}, labels={'none' if data.labels is None else tuple(data.labels.shape)})")


def _check_digits(images, name: str) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.float32 or images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"{name} must be float32 (N, 1, H, W), got {images.dtype} {tuple(images.shape)}")
