"""Tests for ctinpaint.losses: hand-computed values, stability, mode seeking, R1."""

from __future__ import annotations

import math

import pytest
import torch

from ctinpaint.losses import (
    ADVERSARIAL_KINDS,
    MODE_SEEKING_WEIGHT,
    AdversarialLoss,
    laplacian,
    mode_seeking_loss,
    r1_penalty,
)

LOG2 = math.log(2.0)


def _close(t: torch.Tensor, value: float) -> None:
    assert t.ndim == 0
    assert math.isclose(t.item(), value, rel_tol=1e-6, abs_tol=1e-7), (t.item(), value)


def test_nonsaturating_values():
    loss = AdversarialLoss()
    assert loss.kind == "nonsaturating"
    zeros = torch.zeros(5, 1)
    _close(loss.d_loss(zeros, zeros), 2 * LOG2)
    _close(loss.g_loss(zeros), LOG2)
    real, fake = torch.tensor([[1.0], [-2.0]]), torch.tensor([[0.5], [3.0]])
    bce = lambda p, target: -(target * math.log(p) + (1 - target) * math.log(1 - p))  # noqa: E731
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected_d = (bce(sig(1.0), 1) + bce(sig(-2.0), 1)) / 2 + (bce(sig(0.5), 0) + bce(sig(3.0), 0)) / 2
    _close(loss.d_loss(real, fake), expected_d)
    _close(loss.g_loss(fake), (-math.log(sig(0.5)) - math.log(sig(3.0))) / 2)


def test_nonsaturating_is_stable_for_extreme_logits():
    # sigmoid(-200) underflows to 0 in float32, so log(sigmoid) would give inf.
    loss = AdversarialLoss("nonsaturating")
    big = torch.full((3, 1), 200.0)
    _close(loss.g_loss(-big), 200.0)
    _close(loss.d_loss(-big, big), 400.0)
    _close(loss.d_loss(big, -big), 0.0)
    logits = (-big).requires_grad_()
    loss.g_loss(logits).backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad < 0).all()


def test_lsgan_values():
    loss = AdversarialLoss("lsgan")
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    _close(loss.d_loss(real, fake), 0.5 * (0 + 4) / 2 + 0.5 * (0 + 4) / 2)
    _close(loss.g_loss(fake), (1 + 9) / 2)
    _close(loss.d_loss(torch.ones(4), torch.zeros(4)), 0.0)


def test_hinge_values():
    loss = AdversarialLoss("hinge")
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 1.0])
    # relu(1 - r) = [0, 0.5, 2]; relu(1 + f) = [0, 1, 2]
    _close(loss.d_loss(real, fake), 2.5 / 3 + 3.0 / 3)
    _close(loss.g_loss(fake), 2.0 / 3)


@pytest.mark.parametrize("kind", ADVERSARIAL_KINDS)
def test_patch_logits_are_averaged_over_every_location(kind):
    loss = AdversarialLoss(kind)
    real, fake = torch.randn(4, 1, 8, 8), torch.randn(6, 1, 8, 8)
    flat = loss.d_loss(real.reshape(-1), fake.reshape(-1))
    torch.testing.assert_close(loss.d_loss(real, fake), flat)
    torch.testing.assert_close(loss.g_loss(fake), loss.g_loss(fake.reshape(-1)))


@pytest.mark.parametrize("kind", ADVERSARIAL_KINDS)
def test_losses_reward_the_right_direction(kind):
    # D's loss falls as reals score higher and fakes lower; G's falls as fakes score higher.
    loss = AdversarialLoss(kind)
    low, high = torch.full((4, 1), -0.5), torch.full((4, 1), 0.5)
    assert loss.d_loss(high, low) < loss.d_loss(low, high)
    assert loss.g_loss(high) < loss.g_loss(low)


def test_adversarial_loss_checks_its_inputs():
    with pytest.raises(ValueError, match="kind must be one of"):
        AdversarialLoss("wasserstein")
    loss = AdversarialLoss("hinge")
    with pytest.raises(ValueError, match="^fake_logits shape"):
        loss.d_loss(torch.zeros(4, 1), torch.zeros(4, 1, 8, 8))
    with pytest.raises(ValueError, match="^real_logits must be"):
        loss.d_loss(torch.zeros(4, dtype=torch.long), torch.zeros(4))
    with pytest.raises(ValueError, match="^fake_logits must be"):
        loss.g_loss(torch.zeros(0))


def test_mode_seeking_value_and_weight():
    assert MODE_SEEKING_WEIGHT == 0.05
    z_a, z_b = torch.zeros(2, 4), torch.full((2, 4), 2.0)  # mean |dz| = 2
    fill = torch.rand(2, 1, 6, 6)
    # mean |dfill| = 0.5 -> ratio 0.25 -> loss 1 / (0.25 + eps)
    _close(mode_seeking_loss(fill, fill + 0.5, z_a, z_b), 1 / (0.25 + 1e-5))
    _close(mode_seeking_loss(fill, fill + 0.5, z_a, z_b, eps=0.75), 1.0)


def test_mode_seeking_is_largest_for_identical_fills():
    z_a, z_b = torch.randn(3, 8), torch.randn(3, 8)
    fill = torch.rand(3, 1, 6, 6)
    identical = mode_seeking_loss(fill, fill.clone(), z_a, z_b)
    _close(identical, 1 / 1e-5)
    assert identical > mode_seeking_loss(fill, torch.rand(3, 1, 6, 6), z_a, z_b)


def test_mode_seeking_gradient_pushes_fills_apart():
    fill_a = torch.full((2, 1, 4, 4), 0.5, requires_grad=True)
    fill_b = torch.full((2, 1, 4, 4), 0.6)
    mode_seeking_loss(fill_a, fill_b, torch.zeros(2, 3), torch.ones(2, 3)).backward()
    assert (fill_a.grad > 0).all()  # descending lowers fill_a, away from fill_b


def test_mode_seeking_mask_compares_only_masked_pixels():
    z_a, z_b = torch.zeros(1, 2), torch.ones(1, 2)
    fill_a = torch.zeros(1, 1, 4, 4)
    fill_b = torch.zeros(1, 1, 4, 4)
    fill_b[..., 0, :] = 1.0  # differs only in the first row
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1:, :] = 1  # ... which the mask leaves out
    _close(mode_seeking_loss(fill_a, fill_b, z_a, z_b, mask=mask), 1 / 1e-5)
    _close(mode_seeking_loss(fill_a, fill_b, z_a, z_b, mask=1 - mask), 1 / (1 + 1e-5))
    # A mask broadcast over the batch works too.
    _close(mode_seeking_loss(fill_a, fill_b, z_a, z_b, mask=(1 - mask)[0, 0]), 1 / (1 + 1e-5))


def test_mode_seeking_checks_its_inputs():
    f, z = torch.rand(2, 1, 4, 4), torch.rand(2, 3)
    with pytest.raises(ValueError, match="^fill_b shape"):
        mode_seeking_loss(f, f[:1], z, z)
    with pytest.raises(ValueError, match="^z_b shape"):
        mode_seeking_loss(f, f, z, z[:, :2])
    with pytest.raises(ValueError, match="^z_a has 3 rows"):
        mode_seeking_loss(f, f, torch.rand(3, 3), torch.rand(3, 3))
    with pytest.raises(ValueError, match="^eps must be"):
        mode_seeking_loss(f, f, z, z, eps=0)
    with pytest.raises(ValueError, match="^mask shape"):
        mode_seeking_loss(f, f, z, z, mask=torch.ones(3, 1, 4, 4))
    with pytest.raises(ValueError, match="^fill_a must be"):
        mode_seeking_loss(f.long(), f, z, z)


def test_r1_is_zero_for_a_constant_discriminator():
    bias = torch.nn.Parameter(torch.tensor(0.3))
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    _close(r1_penalty(bias.expand(4, 1), x), 0.0)  # output does not depend on x
    logits = (x * 0).sum(dim=(1, 2, 3)) + bias  # depends on x only through a zero weight
    _close(r1_penalty(logits, x), 0.0)


def test_r1_matches_the_analytic_gradient_of_a_linear_discriminator():
    torch.manual_seed(0)
    d = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    x = torch.rand(5, 1, 4, 4, requires_grad=True)
    penalty = r1_penalty(d(x), x)
    _close(penalty, d[1].weight.square().sum().item())
    penalty.backward()  # create_graph: the penalty trains D
    torch.testing.assert_close(d[1].weight.grad, 2 * d[1].weight.detach())


def test_r1_checks_its_inputs():
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="requires_grad_"):
        r1_penalty(torch.zeros(2, 1, requires_grad=True), x)
    x.requires_grad_()
    with pytest.raises(ValueError, match="no graph"):
        r1_penalty(torch.zeros(2, 1), x)
    with pytest.raises(ValueError, match="^real_logits has 3 rows"):
        r1_penalty(x.sum() * torch.ones(3, 1), x)


# --------------------------------------------------------------------------- moment reconstruction


def test_moment_reconstruction_matches_gaussian_nll():
    from ctinpaint.losses import moment_reconstruction_loss

    fills = torch.tensor([[[[0.0]]], [[[2.0]]]]).unsqueeze(1)  # K=2, B=1, 1x1 pixel: mean 1, var 2
    target = torch.tensor([[[[3.0]]]])
    expected = 0.5 * (3.0 - 1.0) ** 2 / 2.0 + 0.5 * math.log(2.0)
    assert float(moment_reconstruction_loss(fills, target)) == pytest.approx(expected, rel=1e-6)


def test_moment_reconstruction_rewards_honest_spread():
    from ctinpaint.losses import moment_reconstruction_loss

    gen = torch.Generator().manual_seed(0)
    target = torch.zeros(4, 1, 6, 6)
    errors = 0.3 * torch.randn(4, 1, 6, 6, generator=gen)
    mean = target + errors  # the mean is off by about 0.3
    honest = mean + 0.3 * torch.randn(256, 4, 1, 6, 6, generator=gen)
    overconfident = mean + 0.01 * torch.randn(256, 4, 1, 6, 6, generator=gen)
    assert moment_reconstruction_loss(honest, target) < moment_reconstruction_loss(overconfident, target)


def test_moment_reconstruction_mask_and_errors():
    from ctinpaint.losses import moment_reconstruction_loss

    fills = torch.rand(3, 2, 1, 4, 4, requires_grad=True)
    target = torch.rand(2, 1, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, 1:3, 1:3] = 1
    loss = moment_reconstruction_loss(fills, target, mask)
    loss.backward()
    assert fills.grad[:, :, :, 0, 0].abs().max() == 0  # pixels outside the mask get no gradient
    assert float(moment_reconstruction_loss(fills.detach(), target, torch.zeros_like(mask))) == 0.0
    with pytest.raises(ValueError, match="fills"):
        moment_reconstruction_loss(fills[:1], target)
    with pytest.raises(ValueError, match="fills"):
        moment_reconstruction_loss(fills, target[:1])


def test_moment_reconstruction_beta_gives_the_mean_a_squared_error_gradient():
    from ctinpaint.losses import moment_reconstruction_loss

    # Two pixels, same error 1 of the mean, spreads 0.1 and 1.
    offsets = torch.tensor([-1.0, 1.0]).view(2, 1, 1) / math.sqrt(2)  # K=2 samples: unbiased variance 1
    spread = torch.tensor([0.1, 1.0])
    target = torch.zeros(1, 2)
    mean_grads = {}
    for beta in (0.0, 0.5, 1.0):
        shift = torch.ones(1, 2, requires_grad=True)  # the mean, as a leaf
        fills = shift + offsets * spread  # (K, 1, 2)
        moment_reconstruction_loss(fills, target, beta=beta).backward()
        mean_grads[beta] = shift.grad[0]
    ratio = {beta: float(g[0] / g[1]) for beta, g in mean_grads.items()}
    # Plain NLL: the confident pixel pulls 100x harder (1/s^2); beta 0.5: 10x; beta 1: equally.
    assert ratio[0.0] == pytest.approx(100.0, rel=1e-4)
    assert ratio[0.5] == pytest.approx(10.0, rel=1e-4)
    assert ratio[1.0] == pytest.approx(1.0, rel=1e-4)
    # Normalised weights: for equal spreads beta changes nothing.
    fills = torch.randn(4, 3, 1, 5, 5, generator=torch.Generator().manual_seed(1))
    equal = fills / fills.std(dim=0, keepdim=True)
    t = torch.rand(3, 1, 5, 5)
    assert float(moment_reconstruction_loss(equal, t, beta=1.0)) == pytest.approx(float(moment_reconstruction_loss(equal, t)), rel=1e-5)


def test_moment_reconstruction_beta_mask_and_range():
    from ctinpaint.losses import moment_reconstruction_loss

    fills = torch.rand(3, 2, 1, 4, 4, requires_grad=True)
    target = torch.rand(2, 1, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, 1:3, 1:3] = 1
    moment_reconstruction_loss(fills, target, mask, beta=0.5).backward()
    assert fills.grad[:, :, :, 0, 0].abs().max() == 0
    assert float(moment_reconstruction_loss(fills.detach(), target, torch.zeros_like(mask), beta=0.5)) == 0.0
    for beta in (-0.1, 1.5):
        with pytest.raises(ValueError, match="beta must be in"):
            moment_reconstruction_loss(fills, target, beta=beta)


def test_laplacian_matches_the_texture_metric():
    from ctinpaint.evaluate import _laplacian_energy

    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 9, 9, generator=gen, dtype=torch.float64)
    mask = (torch.rand(3, 1, 9, 9, generator=gen) > 0.2).double()
    lap, inner = laplacian(images, mask)
    assert lap.shape == inner.shape == (3, 1, 7, 7)
    # A quadratic's Laplacian is its constant second derivative: x^2 + y^2 gives 4 everywhere.
    y, x = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    assert torch.all(laplacian((x**2 + y**2)[None, None], torch.ones(1, 1, 9, 9))[0] == 4.0)
    # Same pixels and values as the evaluation's texture ratio.
    energy, count = _laplacian_energy(images[:, 0].numpy(), mask[:, 0].numpy() > 0)
    assert count == int(inner.sum())
    assert math.isclose(float((lap**2 * inner).sum() / inner.sum()), energy, rel_tol=1e-12)


def test_laplacian_works_on_stacks_of_samples():
    fills = torch.rand(4, 2, 1, 6, 6)
    lap, inner = laplacian(fills, torch.ones(2, 1, 6, 6))
    assert lap.shape == (4, 2, 1, 4, 4) and inner.shape == (2, 1, 4, 4)
    assert torch.allclose(lap[1], laplacian(fills[1], torch.ones(2, 1, 6, 6))[0])
