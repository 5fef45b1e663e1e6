"""The losses of the zoo: adversarial (four forms), gradient penalty, cycle/identity L1, classification.

Every adversarial function takes raw discriminator outputs (logits or critic
scores, any shape with a batch dimension first) and returns a scalar: the mean
over every element, so a PatchGAN's (B, 1, h, w) map counts like B·h·w
decisions. Weights (λ) are applied by the models, which say which paper they
follow.

============== =========================================== =========================
kind           discriminator / critic                      generator
============== =========================================== =========================
nonsaturating  mean softplus(-r) + mean softplus(f)        mean softplus(-f)
lsgan          0.5 · (mean (r - 1)² + mean f²)             mean (f - 1)²
hinge          mean relu(1 - r) + mean relu(1 + f)         -mean f
wgan           mean f - mean r                             -mean f
============== =========================================== =========================

``nonsaturating`` is the binary cross-entropy of Goodfellow et al. (2014) with
the generator maximising log D(G(z)) (their practical recommendation);
``softplus(-x) = -log sigmoid(x)`` stays finite for any logit. ``lsgan`` is the
least-squares form as CycleGAN (Zhu et al., 2017) uses it: targets 1 and 0, the
discriminator's objective halved "to slow down the rate at which D learns".
``wgan`` is the critic of WGAN-GP (Gulrajani et al., 2017), used with
:func:`gradient_penalty`; StarGAN's default.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "ADVERSARIAL_KINDS",
    "d_loss",
    "g_loss",
    "gradient_penalty",
    "l1_loss",
    "classification_loss",
]

#: The adversarial loss forms :func:`d_loss` and :func:`g_loss` know.
ADVERSARIAL_KINDS = ("nonsaturating", "lsgan", "hinge", "wgan")


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator (critic) loss: real outputs towards "real", fakes towards "fake".

    Parameters
    ----------
    kind : {"nonsaturating", "lsgan", "hinge", "wgan"}
        See the module's table.
    real : torch.Tensor, float (B, ...)
        Outputs of D on real images.
    fake : torch.Tensor, float (B', ...)
        Outputs of D on generated images (detached from G by the caller).

    Returns
    -------
    torch.Tensor, float scalar

    Examples
    --------
    >>> import math, torch
    >>> zeros = torch.zeros(4, 1)
    >>> math.isclose(d_loss("nonsaturating", zeros, zeros).item(), 2 * math.log(2), rel_tol=1e-6)
    True
    >>> d_loss("wgan", torch.tensor([3.0, 1.0]), torch.tensor([0.5, 0.5])).item()
    -1.5
    """
    _check_kind(kind)
    _check_outputs(real, "real")
    _check_outputs(fake, "fake")
    if kind == "nonsaturating":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1).square().mean() + fake.square().mean())
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return fake.mean() - real.mean()


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss: D's outputs on generated images towards "real".

    Parameters
    ----------
    kind : {"nonsaturating", "lsgan", "hinge", "wgan"}
    fake : torch.Tensor, float (B, ...)
        Outputs of D on generated images, with the graph back to G.

    Returns
    -------
    torch.Tensor, float scalar

    Examples
    --------
    >>> import torch
    >>> g_loss("lsgan", torch.tensor([0.0, 2.0])).item()
    1.0
    """
    _check_kind(kind)
    _check_outputs(fake, "fake")
    if kind == "nonsaturating":
        return F.softplus(-fake).mean()
    if kind == "lsgan":
        return (fake - 1).square().mean()
    return -fake.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty: mean over samples of (‖∇ critic(x̂)‖₂ − 1)², unweighted.

    ``x̂ = ε·real + (1 − ε)·fake`` with one ε ~ U[0, 1) per sample, drawn from
    torch's global generator (checkpointed by the training loop). The graph is
    kept (``create_graph=True``) so the penalty trains the critic.

    Parameters
    ----------
    critic : callable ``(B, C, H, W) -> (B, ...)``
        The critic's score (for StarGAN: the source head only). Scores of one
        sample are summed before differentiation, as for a PatchGAN map.
    real, fake : torch.Tensor, float (B, C, H, W)
        Same shape; ``fake`` detached from G by the caller.

    Returns
    -------
    torch.Tensor, float scalar

    Examples
    --------
    >>> import torch
    >>> critic = lambda x: 3.0 * x.flatten(1).sum(1)        # gradient norm 3·sqrt(4) = 6 everywhere
    >>> gradient_penalty(critic, torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)).item()
    25.0
    """
    _check_outputs(real, "real")
    _check_outputs(fake, "fake")
    if real.shape != fake.shape:
        raise ValueError(f"fake shape {tuple(fake.shape)} does not match real shape {tuple(real.shape)}")
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference: CycleGAN's cycle and identity losses, StarGAN's reconstruction.

    Parameters
    ----------
    output, target : torch.Tensor, float, same shape

    Returns
    -------
    torch.Tensor, float scalar

    Examples
    --------
    >>> import torch
    >>> l1_loss(torch.tensor([1.0, -1.0]), torch.tensor([0.5, 0.5])).item()
    1.0
    """
    _check_outputs(output, "output")
    _check_outputs(target, "target")
    if output.shape != target.shape:
        raise ValueError(f"target shape {tuple(target.shape)} does not match output shape {tuple(output.shape)}")
    return (output - target).abs().mean()


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """StarGAN's domain-classification loss, for single domains or attribute sets.

    - ``labels`` int64 (B,): one domain per image; softmax cross-entropy,
      averaged over the batch.
    - ``labels`` float (B, K) of 0/1: attributes (CelebA hair colour, gender,
      age); binary cross-entropy per attribute, summed over attributes and
      averaged over the batch, as in the StarGAN reference.

    Parameters
    ----------
    logits : torch.Tensor, float (B, K)
    labels : torch.Tensor, int64 (B,) or float (B, K)

    Returns
    -------
    torch.Tensor, float scalar

    Examples
    --------
    >>> import math, torch
    >>> math.isclose(classification_loss(torch.zeros(2, 4), torch.tensor([0, 3])).item(), math.log(4), rel_tol=1e-6)
    True
    >>> math.isclose(classification_loss(torch.zeros(1, 3), torch.ones(1, 3)).item(), 3 * math.log(2), rel_tol=1e-6)
    True
    """
    _check_outputs(logits, "logits")
    if logits.ndim != 2:
        raise ValueError(f"logits must be (B, K), got shape {tuple(logits.shape)}")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype == torch.int64:
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"labels: int64 labels must be (B,) = {tuple(logits.shape[:1])}, got {tuple(labels.shape)}")
        return F.cross_entropy(logits, labels)
    if labels.is_floating_point():
        if labels.shape != logits.shape:
            raise ValueError(f"labels: attribute labels must have the logits' shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / logits.shape[0]
    raise TypeError(f"labels must be int64 (domains) or float (attributes), got {labels.dtype}")


def _check_kind(kind) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, ADVERSARIAL_KINDS))}; got {kind!r}")


def _check_outputs(t, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point() or t.ndim < 1 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty floating-point tensor with a batch dimension, got {t.dtype} {tuple(t.shape)}")
