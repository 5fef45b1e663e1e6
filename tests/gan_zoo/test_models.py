"""Tests for gan_zoo.models: architectures as the papers give them, one training step of each, configs."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ._tiny_models import TINY, registry_name, tiny_data
from torch import nn

import gan_zoo
from gan_zoo.models import MODELS, CycleGANConfig, DCGANConfig, StarGANConfig, build
from gan_zoo.models.blocks import ImagePool, PatchDiscriminator
from gan_zoo.models.dcgan import upsampling_plan


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- one training step each


@pytest.mark.parametrize("key", sorted(TINY))
def test_one_training_step_changes_every_network_with_finite_losses(key, tmp_path):
    model = build(registry_name(key), seed=0, **TINY[key])
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks().items()}
    steps = getattr(model.config, "n_critic", 1)  # StarGAN's G moves every n_critic steps
    result = gan_zoo.train(model, tiny_data(key), steps=steps, batch_size=4, out=tmp_path, progress=False, log_every=1)

    for phase in ("D", "G"):
        entry = result.logs[phase]
        values = [v for k, v in entry.items() if k != "lr"]
        assert values and all(v is not None and math.isfinite(v) for v in values), entry
    for name, net in model.networks().items():
        moved = [not torch.equal(a, b.cpu()) for a, b in zip(before[name], net.parameters())]
        assert any(moved), f"network {name} did not change"
    assert (tmp_path / "model.json").exists()
    assert sorted((tmp_path / "previews").iterdir())[-1].suffix == ".png"

    shape = (3, 1, 28, 28)
    if model.kind == "generative":
        labels = [0, 1, 2] if model.n_classes else None
        out = model.sample(3, labels=labels, seed=0)
    elif key == "cyclegan":
        out = model.translate(torch.zeros(shape), target="A")
    elif key == "stargan":
        out = model.translate(torch.zeros(shape), target=[0, 1, 2])
    else:
        out = model.translate(torch.zeros(shape), target=[1.0, 0.0])
    assert out.shape == shape and out.dtype == torch.float32
    assert out.abs().max() <= 1 and torch.isfinite(out).all()


# --------------------------------------------------------------------------- architectures


def test_dcgan_64_is_the_papers_network():
    model = build("dcgan")
    convs = [m for m in model.G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [512, 256, 128, 64, 3]
    assert isinstance(model.G.net[-1], nn.Tanh)
    d_convs = [m for m in model.D.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in d_convs] == [64, 128, 256, 512, 1]
    assert not isinstance(model.D.net[1], nn.BatchNorm2d)  # no batch norm on D's input layer
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in model.modules())
    # Feature map sizes 4 -> 8 -> 16 -> 32 -> 64.
    x = torch.randn(2, 100)
    sizes = []
    h = x.view(2, 100, 1, 1)
    for layer in model.G.net:
        h = layer(h)
        if isinstance(layer, nn.ConvTranspose2d):
            sizes.append(h.shape[-1])
    assert sizes == [4, 8, 16, 32, 64]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.002  # N(0, 0.02) initialisation


def test_dcgan_28_is_the_mnist_variant():
    model = build("dcgan", image_size=28, channels=1)
    assert upsampling_plan(28) == (7, 2) and upsampling_plan(64) == (4, 4)
    assert model.sample(2, seed=0).shape == (2, 1, 28, 28)
    assert model.D(torch.zeros(2, 1, 28, 28)).shape == (2, 1)


def test_cyclegan_default_is_the_papers_network():
    model = build("cyclegan")
    # The 9-block ResNet generator and the 70x70 PatchGAN of the paper's code: 11.378 M and 2.765 M parameters.
    assert _count(model.G_AB) == 11_378_179
    assert _count(model.D_A) == 2_764_737
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in model.G_AB.modules()) > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in model.G_AB.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1 and m.stride == (1, 1)]
    assert convs and all(m.padding_mode == "reflect" for m in convs)
    assert build("cyclegan", image_size=128, n_blocks=6).translate(torch.zeros(1, 3, 128, 128)).shape == (1, 3, 128, 128)


def test_patchgan_sees_70_by_70_pixels():
    d = PatchDiscriminator(1, width=4, n_layers=3)
    # The receptive field is the convolutions'; instance norm's statistics span the whole
    # image by design (every logit depends weakly on every pixel through them), so it is
    # taken out for this measurement.
    for i, layer in enumerate(d.net):
        if isinstance(layer, nn.InstanceNorm2d):
            d.net[i] = nn.Identity()
    x = torch.rand(1, 1, 140, 140, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_stargan_default_is_the_papers_network():
    model = build("stargan")
    assert model.G.net[0].in_channels == 3 + 5  # image + target label maps
    src, cls = model.D(torch.zeros(1, 3, 128, 128))
    assert src.shape == (1, 1, 2, 2) and cls.shape == (1, 5)
    c = model.config
    assert (c.lambda_cls, c.lambda_rec, c.lambda_gp, c.n_critic, c.loss) == (1.0, 10.0, 10.0, 5, "wgan-gp")
    phases = model.training_phases(steps=10)
    assert [(p.name, p.every) for p in phases] == [("D", 1), ("G", 5)]


def test_stargan_generator_reads_the_target_label():
    model = build("stargan", seed=0, **TINY["stargan"])
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    assert not torch.equal(model.translate(x, target=0), model.translate(x, target=2))
    named = build("stargan", seed=0, **{**TINY["stargan"], "domain_names": ("thin", "bold", "slanted")})
    assert torch.equal(named.translate(x, target="slanted"), named.translate(x, target=2))


def test_cgan_samples_follow_the_labels_given():
    model = build("cgan", seed=0, **TINY["cgan"])
    a = model.sample(4, labels=[0, 0, 0, 0], seed=3)
    b = model.sample(4, labels=[2, 2, 2, 2], seed=3)
    assert not torch.equal(a, b)
    assert torch.equal(model.sample(4, labels=2, seed=3), b)
    assert torch.equal(model.sample(6, seed=1), model.sample(6, labels=[0, 1, 2, 0, 1, 2], seed=1))


def test_sampling_is_reproducible_and_leaves_training_mode():
    model = build("dcgan", seed=0, **TINY["dcgan"])
    assert model.training
    assert torch.equal(model.sample(5, seed=7), model.sample(5, seed=7))
    assert not torch.equal(model.sample(5, seed=7), model.sample(5, seed=8))
    assert model.training and model.G.training


def test_build_with_a_seed_gives_the_same_weights_and_leaves_the_global_generator():
    state = torch.get_rng_state()
    a, b = build("gan", seed=4, **TINY["gan"]), build("gan", seed=4, **TINY["gan"])
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# --------------------------------------------------------------------------- training details


def test_cyclegan_lr_is_constant_then_decays_linearly_to_zero():
    model = build("cyclegan", **TINY["cyclegan"])
    phases = model.training_phases(steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(phases[0].optimizer.param_groups[0]["lr"])
        phases[0].optimizer.step()
        phases[0].scheduler.step()
    assert lrs[:6] == [2e-4] * 6
    assert lrs[5:] == pytest.approx([2e-4 * (1 - k / 5) for k in range(5)])
    assert phases[0].optimizer.param_groups[0]["lr"] == 0.0
    # Stopped by time: no planned end, constant lr.
    assert build("cyclegan", **TINY["cyclegan"]).training_phases(steps=None)[0].scheduler.get_last_lr() == [2e-4]


def test_cyclegan_optimizes_both_generators_together_and_both_discriminators_together():
    model = build("cyclegan", **TINY["cyclegan"])
    g, d = model.training_phases(steps=4)
    ids = lambda *nets: {id(p) for n in nets for p in n.parameters()}  # noqa: E731
    assert {id(p) for grp in g.optimizer.param_groups for p in grp["params"]} == ids(model.G_AB, model.G_BA)
    assert {id(p) for grp in d.optimizer.param_groups for p in grp["params"]} == ids(model.D_A, model.D_B)


def test_image_pool_fills_then_mixes_history_with_new_fakes():
    torch.manual_seed(0)
    pool = ImagePool(4, (1, 2, 2))
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    assert torch.equal(pool.query(first), first)  # filling: passed through and stored
    assert int(pool.count) == 4
    new = torch.arange(4.0, 204.0).view(200, 1, 1, 1).expand(200, 1, 2, 2)
    out = pool.query(new)
    from_history = (out[:, 0, 0, 0] != new[:, 0, 0, 0]).sum().item()
    assert 60 < from_history < 140  # about half the time a stored image comes back
    # What comes back from the pool is a first fake or a new fake stored earlier in this batch.
    came_back = out[:, 0, 0, 0][out[:, 0, 0, 0] != new[:, 0, 0, 0]]
    assert torch.all(came_back < new[:, 0, 0, 0][out[:, 0, 0, 0] != new[:, 0, 0, 0]])
    assert torch.all(pool.images >= 4.0)  # the first fakes were all replaced by newer ones by now
    assert "images" in pool.state_dict() and "count" in pool.state_dict()
    assert torch.equal(ImagePool(0, (1, 2, 2)).query(first), first)


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", sorted(MODELS))
def test_configs_round_trip_through_json(name):
    model = build(name, **TINY[name])
    text = json.dumps(model.config.to_dict())
    assert type(model.config).from_dict(json.loads(text)) == model.config


@pytest.mark.parametrize(
    "name, kwargs, error, match",
    [
        ("dcgan", {"image_size": 30}, ValueError, "image_size"),
        ("dcgan", {"width": 0}, ValueError, "width"),
        ("dcgan", {"loss": "wgan"}, ValueError, "loss"),
        ("gan", {"hidden": ()}, ValueError, "hidden"),
        ("gan", {"lr": -1.0}, ValueError, "lr"),
        ("gan", {"latent_dim": 2.5}, TypeError, "latent_dim"),
        ("cgan", {"n_classes": 1}, ValueError, "n_classes"),
        ("cgan", {"arch": "resnet"}, ValueError, "arch"),
        ("cyclegan", {"image_size": 30}, ValueError, "image_size"),
        ("cyclegan", {"image_size": 28, "d_layers": 3}, ValueError, "d_layers"),
        ("stargan", {"c_dim": 2, "domain_names": ("a",)}, ValueError, "domain_names"),
        ("stargan", {"loss": "hinge"}, ValueError, "loss"),
        ("stargan", {"n_critic": 0}, ValueError, "n_critic"),
        ("gan", {"colour": True}, ValueError, "colour"),
        ("vae", {}, ValueError, "name"),
    ],
)
def test_bad_configs_are_named(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        build(name, **kwargs)


def test_config_from_dict_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys"):
        DCGANConfig.from_dict({"image_size": 28, "depth": 3})
    assert CycleGANConfig.from_dict({"n_blocks": 6}).n_blocks == 6
    assert StarGANConfig.from_dict({"domain_names": ["a", "b", "c", "d", "e"]}).domain_names == ("a", "b", "c", "d", "e")


def test_models_refuse_the_wrong_operation():
    with pytest.raises(TypeError, match="translate"):
        build("cyclegan", **TINY["cyclegan"]).sample(4)
    with pytest.raises(TypeError, match="sample"):
        build("gan", **TINY["gan"]).translate(torch.zeros(1, 1, 28, 28))
