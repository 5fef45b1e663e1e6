"""Tests for gan_zoo.losses: every loss against a hand computation, and its argument checks."""

from __future__ import annotations

import math

import pytest
import torch

from gan_zoo import losses

R = torch.tensor([[2.0], [-1.0]])  # discriminator outputs on real images
F_ = torch.tensor([[0.5], [-3.0]])  # ... on fakes


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    "kind, expected_d, expected_g",
    [
        (
            "nonsaturating",
            # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
            (_softplus(-2) + _softplus(1)) / 2 + (_softplus(0.5) + _softplus(-3)) / 2,
            (_softplus(-0.5) + _softplus(3)) / 2,
        ),
        ("lsgan", 0.5 * (((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + (0.5**2 + 3**2) / 2), ((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2),
        ("hinge", (max(0, 1 - 2) + max(0, 1 + 1)) / 2 + (max(0, 1 + 0.5) + max(0, 1 - 3)) / 2, -(0.5 - 3) / 2),
        ("wgan", (0.5 - 3) / 2 - (2 - 1) / 2, -(0.5 - 3) / 2),
    ],
)
def test_adversarial_losses_match_hand_computation(kind, expected_d, expected_g):
    assert losses.d_loss(kind, R, F_).item() == pytest.approx(expected_d, rel=1e-6)
    assert losses.g_loss(kind, F_).item() == pytest.approx(expected_g, rel=1e-6)


def test_nonsaturating_loss_stays_finite_for_extreme_logits():
    big = torch.tensor([[-200.0], [200.0]])
    assert torch.isfinite(losses.d_loss("nonsaturating", big, -big))
    assert torch.isfinite(losses.g_loss("nonsaturating", big))


def test_patch_outputs_are_averaged_over_every_location():
    real = torch.ones(2, 1, 3, 3)
    fake = torch.zeros(2, 1, 3, 3)
    assert losses.d_loss("lsgan", real, fake).item() == 0.0
    fake[0, 0, 0, 0] = 1.0  # one of 18 decisions wrong: 0.5 * 1/18
    assert losses.d_loss("lsgan", real, fake).item() == pytest.approx(0.5 / 18)


def test_gradient_penalty_matches_hand_computation():
    # critic(x) = sum(w * x): gradient w everywhere, penalty (|w| - 1)^2 whatever the mix.
    w = torch.tensor([3.0, 4.0]).view(1, 1, 1, 2)  # |w| = 5 -> (5 - 1)^2 = 16
    real, fake = torch.randn(4, 1, 1, 2), torch.randn(4, 1, 1, 2)
    penalty = losses.gradient_penalty(lambda x: (w * x).flatten(1).sum(1), real, fake)
    assert penalty.item() == pytest.approx(16.0)


def test_gradient_penalty_trains_the_critic():
    critic = torch.nn.Linear(4, 1)
    real, fake = torch.randn(8, 4), torch.randn(8, 4)
    losses.gradient_penalty(critic, real, fake).backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_gradient_penalty_interpolates_between_real_and_fake():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.sum(dim=(1, 2, 3))

    real, fake = torch.zeros(64, 1, 2, 2), torch.ones(64, 1, 2, 2)
    losses.gradient_penalty(critic, real, fake)
    mixed = seen[0]
    # One epsilon per sample: all pixels of a sample equal, samples differ, all in [0, 1].
    assert torch.all(mixed.flatten(1).std(1) == 0)
    assert mixed.min() >= 0 and mixed.max() <= 1 and mixed[:, 0, 0, 0].std() > 0.1


def test_l1_and_classification_losses_match_hand_computation():
    assert losses.l1_loss(torch.tensor([1.0, -1.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])).item() == pytest.approx(1.0)
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1))) - math.log(1 / (2 + math.e))) / 2
    assert losses.classification_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    attributes = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    # BCE summed over attributes, averaged over the batch.
    per = [
        [_softplus(-2), _softplus(0), _softplus(1)],
        [_softplus(0), _softplus(1), _softplus(0)],
    ]
    assert losses.classification_loss(logits, attributes).item() == pytest.approx(sum(map(sum, per)) / 2, rel=1e-6)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: losses.d_loss("minimax", R, F_), ValueError, "kind"),
        (lambda: losses.g_loss("lsgan", [1.0]), TypeError, "fake"),
        (lambda: losses.d_loss("lsgan", torch.tensor([1, 2]), F_), ValueError, "real"),
        (lambda: losses.gradient_penalty(lambda x: x, torch.zeros(2, 3), torch.zeros(3, 3)), ValueError, "fake shape"),
        (lambda: losses.l1_loss(torch.zeros(2), torch.zeros(3)), ValueError, "target"),
        (lambda: losses.classification_loss(torch.zeros(2, 3), torch.tensor([0, 1, 2])), ValueError, "labels"),
        (lambda: losses.classification_loss(torch.zeros(2, 3), torch.zeros(2, 2)), ValueError, "labels"),
        (lambda: losses.classification_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int32)), TypeError, "labels"),
        (lambda: losses.classification_loss(torch.zeros(6), torch.zeros(6, dtype=torch.int64)), ValueError, "logits"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
