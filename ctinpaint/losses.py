"""Losses for training the inpainting GAN: adversarial, mode seeking, R1.

Every function takes raw discriminator outputs (logits) and returns a scalar
tensor; weights are applied by the training code. The sigmoid of the
non-saturating loss is folded into ``softplus``/``logsigmoid``, which stay
finite for any logit, where ``log(sigmoid(x))`` underflows to ``-inf`` for
very negative ``x`` in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gan_zoo import losses as adversarial

from ._checks import check_choice

#: Weight of :func:`mode_seeking_loss` in the reference recipe (added to G's loss).
MODE_SEEKING_WEIGHT = 0.05

#: Kinds of :class:`AdversarialLoss` (the zoo's forms; WGAN needs a critic, which D is not).
ADVERSARIAL_KINDS = ("nonsaturating", "lsgan", "hinge")


@dataclass(frozen=True)
class AdversarialLoss:
    """The two adversarial objectives of one GAN loss, from D's logits.

    Means are over every element, so a patch discriminator's per-location
    logits (B, 1, h, w) count like B * h * w samples.

    ============== ======================================== ===========================
    kind           d_loss(r, f)                             g_loss(f)
    ============== ======================================== ===========================
    nonsaturating  mean softplus(-r) + mean softplus(f)     mean softplus(-f)
    lsgan          0.5 mean (r - 1)^2 + 0.5 mean f^2        mean (f - 1)^2
    hinge          mean relu(1 - r) + mean relu(1 + f)      -mean f
    ============== ======================================== ===========================

    ``nonsaturating`` is the reference's loss (binary cross-entropy on
    sigmoid(logit), G maximising log D(fake)); ``lsgan`` is the least-squares
    GAN with 0/1 targets (Mao et al., 2017), D's objective halved as in
    CycleGAN; ``hinge`` is the hinge loss used with spectral normalisation
    (Miyato et al., 2018). The formulas are :mod:`gan_zoo.losses`' (one
    implementation for both packages); this class adds the checks on shapes
    that the inpainting training relies on.

    Parameters
    ----------
    kind : {"nonsaturating", "lsgan", "hinge"}

    Examples
    --------
    >>> import math, torch
    >>> loss = AdversarialLoss("nonsaturating")
    >>> zeros = torch.zeros(4, 1)
    >>> math.isclose(loss.d_loss(zeros, zeros).item(), 2 * math.log(2), rel_tol=1e-6)
    True
    >>> AdversarialLoss("hinge").g_loss(torch.tensor([[1.0], [3.0]])).item()
    -2.0
    """

    kind: str = "nonsaturating"

    def __post_init__(self):
        check_choice(self.kind, ADVERSARIAL_KINDS, name="kind")

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Discriminator loss: real patches towards "real", fakes towards "fake".

        Parameters
        ----------
        real_logits : torch.Tensor, float (B, ...)
            D's outputs on real patches.
        fake_logits : torch.Tensor, float (B', ...)
            D's outputs on composited fakes (detached from G for this step);
            the same shape as ``real_logits`` after the batch dimension.

        Returns
        -------
        torch.Tensor, float scalar
        """
        _check_logits(real_logits, "real_logits")
        _check_logits(fake_logits, "fake_logits")
        if real_logits.shape[1:] != fake_logits.shape[1:]:
            raise ValueError(
                f"fake_logits shape {tuple(fake_logits.shape)} does not match real_logits shape "
                f"{tuple(real_logits.shape)} after the batch dimension"
            )
        return adversarial.d_loss(self.kind, real_logits, fake_logits)

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """Generator loss: fakes towards "real".

        Parameters
        ----------
        fake_logits : torch.Tensor, float (B, ...)
            D's outputs on composited fakes, with the graph back to G and C.

        Returns
        -------
        torch.Tensor, float scalar
        """
        _check_logits(fake_logits, "fake_logits")
        return adversarial.g_loss(self.kind, fake_logits)


def mode_seeking_loss(
    fill_a: torch.Tensor,
    fill_b: torch.Tensor,
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    eps: float = 1e-5,
    *,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mode-seeking regulariser: penalise fills that do not move when z moves.

    "Mode seeking" (Mao et al., *Mode Seeking Generative Adversarial Networks
    for Diverse Image Synthesis*, CVPR 2019). For two fills of the same
    conditions from two noise batches::

        ratio = mean|fill_a - fill_b| / mean|z_a - z_b|
        loss  = 1 / (ratio + eps)

    G minimises ``loss`` (scaled by :data:`MODE_SEEKING_WEIGHT` in the
    reference recipe), i.e. maximises how far its output travels per unit of
    noise: a generator that ignores z has ``ratio = 0`` and the largest loss.
    Means are over the whole batch, as in the paper.

    Compare only the pixels that get pasted: G's output outside the hole is
    thrown away, and G could satisfy this term by varying those pixels alone.
    Pass the hole pixels as ``mask``, or pass composites (whose known pixels
    are identical and so add nothing to the numerator).

    Parameters
    ----------
    fill_a, fill_b : torch.Tensor, float (B, ...)
        Outputs of G for the same conditions with noise ``z_a`` and ``z_b``.
    z_a, z_b : torch.Tensor, float (B, z_dim)
    eps : float, default 1e-5
        Keeps the loss finite when the fills are identical (then it is 1/eps).
    mask : torch.Tensor, optional
        Broadcastable to ``fill_a``; pixels with mask 1 are compared (the mean
        of the numerator is over them). A mask with no pixel gives ratio 0.

    Returns
    -------
    torch.Tensor, float scalar

    Examples
    --------
    >>> import torch
    >>> z_a, z_b = torch.zeros(2, 8), torch.ones(2, 8)
    >>> fill = torch.full((2, 1, 4, 4), 0.5)
    >>> round(mode_seeking_loss(fill, fill + 0.25, z_a, z_b).item(), 4)   # ratio 0.25
    3.9998
    """
    for t, name in ((fill_a, "fill_a"), (fill_b, "fill_b"), (z_a, "z_a"), (z_b, "z_b")):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim < 1 or t.numel() == 0:
            raise ValueError(f"{name} must be a non-empty floating-point tensor, got {_describe(t)}")
    if fill_b.shape != fill_a.shape:
        raise ValueError(f"fill_b shape {tuple(fill_b.shape)} does not match fill_a shape {tuple(fill_a.shape)}")
    if z_b.shape != z_a.shape:
        raise ValueError(f"z_b shape {tuple(z_b.shape)} does not match z_a shape {tuple(z_a.shape)}")
    if z_a.shape[0] != fill_a.shape[0]:
        raise ValueError(f"z_a has {z_a.shape[0]} rows but fill_a has {fill_a.shape[0]}: one z per fill")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    diff = (fill_a - fill_b).abs()
    if mask is None:
        fill_distance = diff.mean()
    else:
        if not isinstance(mask, torch.Tensor):
            raise ValueError(f"mask must be a tensor, got {type(mask).__name__}")
        try:
            weights = mask.to(diff.dtype).expand_as(diff)
        except RuntimeError as exc:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not broadcast to fill_a shape {tuple(fill_a.shape)}") from exc
        fill_distance = (diff * weights).sum() / weights.sum().clamp(min=1)
    ratio = fill_distance / (z_a - z_b).abs().mean()
    return 1 / (ratio + eps)


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty: squared norm of D's input gradient on real data.

    ``mean over samples of ||d sum(D(x)) / dx||^2`` (Mescheder et al., 2018).
    Penalising D's slope at the data keeps it from growing sharp around the
    real patches, which stabilises training. The graph is kept
    (``create_graph=True``) so the penalty trains D; the usual weight is
    gamma / 2, applied by the caller.

    Parameters
    ----------
    real_logits : torch.Tensor, float (B, ...)
        D's outputs on ``real_inputs``, computed with the graph.
    real_inputs : torch.Tensor, float (B, ...)
        The real patches D saw, with ``requires_grad=True`` set before D ran.

    Returns
    -------
    torch.Tensor, float scalar
        Zero when D does not depend on its input.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(4, 1, 8, 8, requires_grad=True)
    >>> logits = 3 * x.sum(dim=(1, 2, 3))                        # gradient 3 at every pixel
    >>> r1_penalty(logits, x).item()                             # 64 pixels * 3^2
    576.0
    """
    _check_logits(real_logits, "real_logits")
    if not isinstance(real_inputs, torch.Tensor) or not real_inputs.is_floating_point():
        raise ValueError(f"real_inputs must be a floating-point tensor, got {_describe(real_inputs)}")
    if not real_inputs.requires_grad:
        raise ValueError("real_inputs must require grad: call real_inputs.requires_grad_() before running D")
    if not real_logits.requires_grad:
        raise ValueError("real_logits has no graph: compute D(real_inputs) with gradients enabled")
    if real_logits.shape[0] != real_inputs.shape[0]:
        raise ValueError(
            f"real_logits has {real_logits.shape[0]} rows but real_inputs has {real_inputs.shape[0]}"
        )
    (grad,) = torch.autograd.grad(real_logits.sum(), real_inputs, create_graph=True, allow_unused=True)
    if grad is None:  # D's output does not depend on its input at all
        return real_logits.new_zeros(())
    return grad.square().flatten(1).sum(dim=1).mean()


def _check_logits(t, name: str) -> None:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.ndim < 1 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty floating-point tensor (B, ...), got {_describe(t)}")


def _describe(t) -> str:
    if isinstance(t, torch.Tensor):
        return f"{t.dtype} tensor of shape {tuple(t.shape)}"
    return type(t).__name__


def moment_reconstruction_loss(fills: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *,
                               min_std: float = 1e-3, beta: float = 0.0) -> torch.Tensor:
    """Gaussian negative log-likelihood of the truth under the samples' mean and spread.

    The idea is the "moment reconstruction" loss (Lee et al., "Harmonizing
    Maximum Likelihood with GANs for Multimodal Conditional Generation", ICLR
    2019): a plain L1/L2 loss on single samples pulls every sample onto the
    truth and collapses diversity; a loss on the *moments* of K samples for
    one condition trains their mean towards the truth and their spread towards
    the size of the error — which is exactly what makes the std map honest.

    Parameters
    ----------
    fills : torch.Tensor, float (K, B, C, H, W)
        K >= 2 generated fills for each of B conditions.
    target : torch.Tensor, float (B, C, H, W)
        The true content.
    mask : torch.Tensor, optional
        Broadcastable to ``target``; only pixels with mask 1 count (the hole).
        A mask with no pixel gives 0.
    min_std : float, default 1e-3
        Floor of the per-pixel std, so a collapsed generator gives a large but
        finite loss instead of a division by zero.
    beta : float, default 0.0
        Each pixel's term is weighted by its variance to the power ``beta``,
        the weight held constant in the gradient (the "beta-NLL" of Seitzer et
        al., ICLR 2022), normalised to mean 1 over the counted pixels so the
        loss keeps its overall weight against the adversarial term. With 0
        (the plain NLL) the mean's gradient is ``(m - t) / s^2``: pixels the
        generator is unsure of, which are the ones it fills worst, pull the
        mean least, so the mean learns slowly exactly where it is wrong.
        ``beta = 1`` gives every pixel's mean the same squared-error gradient
        (times one factor per batch); the spread still learns its NLL optimum
        ``s^2 = (t - m)^2`` for any ``beta`` in [0, 1].

    Returns
    -------
    torch.Tensor
        Scalar: mean over the counted pixels of
        ``w ((t - m)^2 / (2 s^2) + log s)``, ``w = 1`` for ``beta = 0``, else
        ``s^(2 beta)`` over its mean, held constant in the gradient.

    Examples
    --------
    >>> t = torch.zeros(1, 1, 2, 2)
    >>> wide = torch.randn(64, 1, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    >>> bool(moment_reconstruction_loss(wide, t) < moment_reconstruction_loss(wide + 3.0, t))
    True
    """
    if fills.ndim != target.ndim + 1 or fills.shape[1:] != target.shape:
        raise ValueError(f"fills: expected shape (K, *target.shape), got {tuple(fills.shape)} for target {tuple(target.shape)}")
    if fills.shape[0] < 2:
        raise ValueError("fills: at least two samples per condition are needed to estimate a spread")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    mean = fills.mean(dim=0)
    var = fills.var(dim=0, unbiased=True).clamp_min(min_std**2)
    nll = 0.5 * (target - mean) ** 2 / var + 0.5 * torch.log(var)
    counted = torch.ones_like(nll) if mask is None else torch.broadcast_to(mask, nll.shape).to(nll.dtype)
    if beta:
        w = var.detach() ** beta
        w = w / ((w * counted).sum() / counted.sum().clamp_min(1.0)).clamp_min(1e-30)
        nll = nll * w
    return (nll * counted).sum() / counted.sum().clamp_min(1.0)


def laplacian(images: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """5-point Laplacian of images, and where it sees only masked pixels.

    Only slicing and arithmetic: NumPy arrays work as well as tensors (the
    evaluation's texture ratio uses it on them).

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray, float (..., H, W)
    mask : torch.Tensor or numpy.ndarray, float or bool (..., H, W)
        1 (True) where a pixel counts; broadcastable with ``images``.

    Returns
    -------
    lap, inner : (..., H - 2, W - 2)
        The Laplacian at every interior pixel, and 1 (True for a bool mask)
        where that pixel and its four neighbours are all masked (the pixels
        :func:`ctinpaint.evaluate.evaluate_fills` measures texture on).
    """
    centre = images[..., 1:-1, 1:-1]
    lap = images[..., :-2, 1:-1] + images[..., 2:, 1:-1] + images[..., 1:-1, :-2] + images[..., 1:-1, 2:] - 4 * centre
    inner = mask[..., 1:-1, 1:-1] * mask[..., :-2, 1:-1] * mask[..., 2:, 1:-1] * mask[..., 1:-1, :-2] * mask[..., 1:-1, 2:]
    return lap, inner
