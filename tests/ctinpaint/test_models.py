"""Tests for ctinpaint.models: layer sizes, compositing, z sensitivity, gradients, config."""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import torch.nn.functional as F
from torch import nn

from ctinpaint.losses import AdversarialLoss
from ctinpaint.models import (
    BUILDERS,
    PRESET_NAMES,
    PRESETS,
    Conditioner,
    Discriminator,
    Generator,
    InpaintingGAN,
    ModelConfig,
    ModulatedGenerator,
    PatchDiscriminator,
    UNetConditioner,
    build_model,
    config_for,
    harmonic_fill,
    slice_guided_fill,
)

# A small unet geometry with an odd margin (P - l = 7, o = 3) next to the defaults.
SMALL_UNET = config_for("unet", patch=15, hole=8, width=4, z_dim=8)


@functools.lru_cache(maxsize=None)
def _eval_model(config: ModelConfig) -> InpaintingGAN:
    torch.manual_seed(0)
    return build_model(config).eval()


def _box_hole(config: ModelConfig, batch: int) -> torch.Tensor:
    hole = torch.zeros(batch, 1, config.patch, config.patch)
    o, l = config.offset, config.hole
    hole[:, :, o : o + l, o : o + l] = 1
    return hole


def _output_sides(module: nn.Module, kinds, run) -> list[int]:
    """Spatial side of the output of every submodule of the given kinds, in call order."""
    sides = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sides.append(tuple(out.shape)))
        for m in module.modules()
        if isinstance(m, kinds)
    ]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return sides


# --------------------------------------------------------------------------- seed sizes


@pytest.mark.parametrize("batch", [1, 7])
def test_seed_conditioner_sizes(batch):
    model = _eval_model(config_for("seed"))
    y, hole = torch.rand(batch, 1, 32, 32), _box_hole(model.config, batch)
    shapes = _output_sides(model.conditioner, nn.Conv2d, lambda: model.condition(y, hole))
    assert shapes == [
        (batch, 4, 30, 30),
        (batch, 8, 26, 26),
        (batch, 16, 22, 22),
        (batch, 16, 18, 18),  # the valid k5 conv added for P = 32
        (batch, 8, 18, 18),
        (batch, 3, 18, 18),
    ]
    # No ReLU after the last layer: conditioning values can be negative.
    assert isinstance(model.conditioner.layers[-1], nn.Conv2d)


@pytest.mark.parametrize("batch", [1, 7])
def test_seed_generator_sizes(batch):
    model = _eval_model(config_for("seed"))
    z, cond = model.sample_z(batch), torch.randn(batch, 3, 18, 18)
    shapes = _output_sides(model.generator, nn.ConvTranspose2d, lambda: model.generate(z, cond))
    assert shapes == [(batch, 64, 5, 5), (batch, 32, 11, 11), (batch, 16, 13, 13), (batch, 8, 15, 15), (batch, 1, 18, 18)]
    first = model.generator.layers[0]
    assert first.in_channels == 200 + 972
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.generator.modules()) == 4
    assert isinstance(model.generator.layers[-1], nn.Sigmoid)


@pytest.mark.parametrize("batch", [1, 7])
def test_seed_discriminator_sizes(batch):
    model = _eval_model(config_for("seed"))
    x = torch.rand(batch, 1, 32, 32)
    hole = _box_hole(model.config, batch)
    shapes = _output_sides(model.discriminator, (nn.Conv2d, nn.Flatten, nn.Linear), lambda: model.discriminate(x, hole))
    assert shapes == [(batch, 16, 30, 30), (batch, 32, 13, 13), (batch, 32, 5, 5), (batch, 800), (batch, 128), (batch, 1)]


def test_seed_at_the_thesis_patch_size():
    # P = 28 is the thesis geometry: no extra conv in C, D flattens 32 * 4 * 4 = 512.
    model = _eval_model(config_for("seed", patch=28))
    y, hole = torch.rand(2, 1, 28, 28), _box_hole(model.config, 2)
    c_shapes = _output_sides(model.conditioner, nn.Conv2d, lambda: model.condition(y, hole))
    assert [s[-1] for s in c_shapes] == [26, 22, 18, 18, 18]
    d_shapes = _output_sides(model.discriminator, (nn.Conv2d, nn.Flatten), lambda: model.discriminate(y, hole))
    assert d_shapes == [(2, 16, 26, 26), (2, 32, 11, 11), (2, 32, 4, 4), (2, 512)]
    assert model(y, hole).shape == (2, 1, 28, 28)


# --------------------------------------------------------------------------- unet shapes


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("config", [PRESETS["unet"], SMALL_UNET], ids=["default", "small-odd"])
def test_unet_shapes(batch, config):
    model = _eval_model(config)
    P, l = config.patch, config.hole
    y, hole = torch.rand(batch, 1, P, P), _box_hole(config, batch)
    with torch.no_grad():
        cond = model.condition(y, hole)
        fill = model.generate(model.sample_z(batch), cond)
        out = model(y, hole)
        logits = model.discriminate(out, hole)
    assert cond.shape == (batch, config.width, l, l) == (batch, *model.cond_shape)
    assert fill.shape == (batch, 1, l, l)
    assert out.shape == (batch, 1, P, P)
    side = P // 2 // 2  # two k4 s2 p1 convolutions: 32 -> 16 -> 8, 15 -> 7 -> 3
    assert logits.shape == (batch, 1, side, side)


def test_unet_uses_groupnorm_and_spectral_norm_not_batchnorm():
    model = _eval_model(PRESETS["unet"])
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.generator.modules())
    convs = [m for m in model.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    assert convs[0].in_channels == 2  # D sees (x, hole)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_fills_are_in_unit_interval_even_for_extreme_inputs(preset):
    model = _eval_model(PRESETS[preset])
    P = model.config.patch
    y, hole = torch.rand(7, 1, P, P), _box_hole(model.config, 7)
    with torch.no_grad():
        cond = model.condition(y, hole)
        fills = torch.cat([model.generate(model.sample_z(7) * scale, cond) for scale in (1.0, 30.0)])
    assert fills.min() >= 0 and fills.max() <= 1
    assert torch.isfinite(fills).all()


# --------------------------------------------------------------------------- composite

_SPECIAL = [-0.0, 0.0, 1.0, 0.1, 1 / 3, 1e-45, -1e-45, 3.4e38, float("nan"), float("inf"), -float("inf")]
_values = st.one_of(st.sampled_from(_SPECIAL), st.floats(width=32, allow_nan=True, allow_infinity=True))


@st.composite
def _composite_case(draw):
    config = draw(st.sampled_from([PRESETS["seed"], SMALL_UNET]))
    batch = draw(st.integers(1, 3))
    P, l = config.patch, config.hole
    y = draw(hnp.arrays(np.float32, (batch, 1, P, P), elements=_values))
    hole = draw(hnp.arrays(np.bool_, (batch, 1, P, P)))
    fill = draw(hnp.arrays(np.float32, (batch, 1, l, l), elements=_values))
    return config, y, hole, fill


@settings(max_examples=60, deadline=None)
@given(_composite_case())
def test_composite_pastes_exactly_the_unknown_box_pixels_bit_for_bit(case):
    config, y, hole, fill = case
    model = _eval_model(config)
    out = model.composite(torch.from_numpy(y), torch.from_numpy(hole.astype(np.float32)), torch.from_numpy(fill))

    o, l = config.offset, config.hole
    expected = y.copy()
    for b, _, i, j in zip(*np.nonzero(hole)):
        if o <= i < o + l and o <= j < o + l:
            expected[b, 0, i, j] = fill[b, 0, i - o, j - o]
    np.testing.assert_array_equal(out.numpy().view(np.int32), expected.view(np.int32))


def test_composite_keeps_values_that_arithmetic_blending_would_change():
    # -0.0 + 0.0 gives +0.0 and 0 * NaN gives NaN: a blend y*(1-m) + f*m changes
    # known pixels, the composite must not.
    model = _eval_model(PRESETS["seed"])
    y = torch.full((1, 1, 32, 32), -0.0)
    y[0, 0, ::3, ::5] = 0.7
    hole = torch.zeros(1, 1, 32, 32)
    hole[:, :, 9:20, 12:16] = 1  # a streak: the box also holds known pixels
    fill = torch.full((1, 1, 18, 18), float("nan"))
    known = hole == 0
    blend = y * (1 - hole) + F.pad(fill, (7, 7, 7, 7)) * hole
    assert not torch.equal(blend.view(torch.int32)[known], y.view(torch.int32)[known])
    out = model.composite(y, hole, fill)
    assert torch.equal(out.view(torch.int32)[known], y.view(torch.int32)[known])
    assert torch.isnan(out[~known]).all()


def test_composite_leaves_unknown_pixels_outside_the_box_as_in_y():
    model = _eval_model(PRESETS["seed"])
    y = torch.rand(2, 1, 32, 32)
    hole = torch.ones(2, 1, 32, 32)  # everything unknown, also outside the box
    out = model.composite(y, hole, torch.full((2, 1, 18, 18), 0.25))
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[7:25, 7:25] = True
    assert torch.equal(out[:, :, ~inside], y[:, :, ~inside])
    assert (out[:, :, inside] == 0.25).all()


def test_composite_gradient_reaches_only_pasted_pixels():
    model = _eval_model(PRESETS["seed"])
    hole = torch.zeros(1, 1, 32, 32)
    hole[:, :, 10:12, 10:15] = 1  # a small rectangle inside the box
    fill = torch.rand(1, 1, 18, 18, requires_grad=True)
    model.composite(torch.rand(1, 1, 32, 32), hole, fill).sum().backward()
    assert torch.equal(fill.grad, hole[:, :, 7:25, 7:25])


# --------------------------------------------------------------------------- conditioning and z


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_expanded_and_repeated_cond_give_the_same_fills(preset):
    model = _eval_model(PRESETS[preset])
    P = model.config.patch
    with torch.no_grad():
        cond = model.condition(torch.rand(3, 1, P, P), _box_hole(model.config, 3))
        z = model.sample_z(3 * 5, generator=torch.Generator().manual_seed(1))
        repeated = model.generate(z, cond.repeat_interleave(5, dim=0))
        expanded = torch.cat(
            [model.generate(z[5 * i : 5 * i + 5], cond[i : i + 1].expand(5, *model.cond_shape)) for i in range(3)]
        )
        broadcast = torch.cat([model.generate(z[5 * i : 5 * i + 5], cond[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(expanded, repeated, rtol=0, atol=1e-6)
    torch.testing.assert_close(broadcast, repeated, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("preset", "min_std"), [("unet", 1e-2), ("seed", 5e-4), ("harmonic", 1e-3)])
def test_untrained_generator_depends_on_z(preset, min_std):
    model = _eval_model(PRESETS[preset])
    P = model.config.patch
    with torch.no_grad():
        cond = model.condition(torch.rand(1, 1, P, P), _box_hole(model.config, 1))
        fills = model.generate(model.sample_z(64, generator=torch.Generator().manual_seed(2)), cond)
    std = fills.std(dim=0)
    assert std.mean() > min_std
    assert (std > 0).all()  # every pixel of the fill moves with z


def test_unet_z_effect_is_not_dwarfed_by_the_condition_at_init():
    # Where z's effect starts tiny compared with the condition's, training tends
    # to drive it to zero (the collapse that makes std maps lie).
    model = _eval_model(PRESETS["unet"])
    with torch.no_grad():
        conds = model.condition(torch.rand(64, 1, 32, 32), _box_hole(model.config, 64))
        z = model.sample_z(64, generator=torch.Generator().manual_seed(3))
        over_z = model.generate(z, conds[:1]).std(dim=0).mean()
        over_cond = model.generate(z[:1].expand(64, -1), conds).std(dim=0).mean()
    assert over_z > 0.5 * over_cond


def test_unet_samples_are_independent_of_their_batch_in_training_mode():
    # GroupNorm: a sample's fill does not depend on the other samples in the batch.
    torch.manual_seed(0)
    model = build_model(PRESETS["unet"]).train()
    cond = torch.randn(1, *model.cond_shape)
    z = model.sample_z(16)
    with torch.no_grad():
        together = model.generate(z, cond)
        alone = model.generate(z[:4], cond)
    torch.testing.assert_close(alone, together[:4], rtol=0, atol=1e-6)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_condition_ignores_the_values_of_unknown_pixels(preset):
    model = _eval_model(PRESETS[preset])
    P = model.config.patch
    x = torch.rand(2, 1, P, P)
    hole = _box_hole(model.config, 2)
    with torch.no_grad():
        assert torch.equal(model.condition(x, hole), model.condition(x * (1 - hole), hole))
        assert not torch.equal(model.condition(x, hole), model.condition(x, torch.zeros_like(hole)))


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_forward_is_condition_generate_composite(preset):
    model = _eval_model(PRESETS[preset])
    P = model.config.patch
    y, hole = torch.rand(3, 1, P, P), _box_hole(model.config, 3)
    z = model.sample_z(3)
    with torch.no_grad():
        out = model(y, hole, z)
        expected = model.composite(y, hole, model.generate(z, model.condition(y, hole)))
        default_z = model(y, hole)
    assert torch.equal(out, expected)
    assert default_z.shape == (3, 1, P, P)


def test_sample_z_is_reproducible_and_on_the_model_device():
    model = _eval_model(PRESETS["unet"])
    a = model.sample_z(5, generator=torch.Generator().manual_seed(4))
    b = model.sample_z(5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and a.shape == (5, 64) and a.dtype == torch.float32
    assert a.device == next(model.parameters()).device
    with pytest.raises(ValueError, match="n must be >= 1"):
        model.sample_z(0)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_gradients_reach_every_parameter(preset):
    torch.manual_seed(0)
    model = build_model(PRESETS[preset]).train()
    loss = AdversarialLoss("nonsaturating")
    P = model.config.patch
    x = torch.rand(4, 1, P, P)
    hole = _box_hole(model.config, 4)
    y = x * (1 - hole)

    fake = model(y, hole)
    loss.g_loss(model.discriminate(fake, hole)).backward()
    for name, p in [*model.conditioner.named_parameters(), *model.generator.named_parameters()]:
        if name.startswith(("mean", "std_head")):
            continue  # a regressed mean and std learn by their own losses only (tests below)
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no g-loss gradient for {name}"

    model.zero_grad(set_to_none=True)
    d = loss.d_loss(model.discriminate(x, hole), model.discriminate(fake.detach(), hole))
    d.backward()
    for name, p in model.discriminator.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no d-loss gradient for {name}"
    for p in [*model.conditioner.parameters(), *model.generator.parameters()]:
        assert p.grad is None  # fakes were detached: D's step does not train C or G


# --------------------------------------------------------------------------- parameters, state


def _counts(model):
    return tuple(sum(p.numel() for p in m.parameters()) for m in (model.conditioner, model.generator, model.discriminator))


def test_parameter_counts_match_the_module_docstring():
    # The seed's counts follow from the reference layers; a change means the
    # architecture no longer matches it.
    assert _counts(_eval_model(PRESETS["seed"])) == (10_679, 1_942_889, 141_281)
    unet = _counts(_eval_model(PRESETS["unet"]))
    assert unet == (111_520, 78_521, 41_937)
    assert 100_000 <= sum(unet) <= 300_000
    assert _counts(_eval_model(PRESETS["harmonic"])) == (242_706, 79_385, 41_937)
    assert _counts(_eval_model(MEAN_NET)) == (223_345, 78_953, 41_937)
    assert _counts(_eval_model(config_for("harmonic", mean_net=False))) == (111_664, 78_953, 41_937)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_state_dict_round_trip_reproduces_outputs(preset):
    model = _eval_model(PRESETS[preset])
    assert not any("_box" in k for k in model.state_dict())
    torch.manual_seed(123)  # a different initialisation
    other = build_model(model.config).eval()
    other.load_state_dict(model.state_dict())
    P = model.config.patch
    y, hole = torch.rand(2, 1, P, P), _box_hole(model.config, 2)
    z = model.sample_z(2)
    with torch.no_grad():
        assert torch.equal(model(y, hole, z), other(y, hole, z))


def test_registry_covers_every_preset():
    assert set(BUILDERS) == set(PRESETS) == set(PRESET_NAMES)
    seed, unet = _eval_model(PRESETS["seed"]), _eval_model(PRESETS["unet"])
    assert (type(seed.conditioner), type(seed.generator), type(seed.discriminator)) == (Conditioner, Generator, Discriminator)
    assert (type(unet.conditioner), type(unet.generator), type(unet.discriminator)) == (
        UNetConditioner,
        ModulatedGenerator,
        PatchDiscriminator,
    )


# --------------------------------------------------------------------------- input checks


def test_shape_errors_name_the_argument():
    model = _eval_model(PRESETS["seed"])
    y, hole = torch.rand(2, 1, 32, 32), _box_hole(model.config, 2)
    cond = model.condition(y, hole)
    z = model.sample_z(2)
    with pytest.raises(ValueError, match=r"^y must be a \(B, 1, 32, 32\)"):
        model.condition(torch.rand(2, 1, 28, 28), hole)
    with pytest.raises(ValueError, match="^hole shape"):
        model.condition(y, hole[:1])
    with pytest.raises(ValueError, match="^hole must be a floating-point"):
        model.condition(y, hole.bool())
    with pytest.raises(ValueError, match="^z must be"):
        model.generate(torch.rand(2, 100), cond)
    with pytest.raises(ValueError, match="^cond must be"):
        model.generate(z, cond[:, :2])
    with pytest.raises(ValueError, match="^cond must be"):
        model.generate(model.sample_z(3), cond)
    with pytest.raises(ValueError, match="^fill must be"):
        model.composite(y, hole, torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="^x must be"):
        model.discriminate(torch.rand(2, 32, 32), hole)
    with pytest.raises(ValueError, match="^z must have one row per window"):
        model(y, hole, model.sample_z(3))
    with pytest.raises(TypeError, match="config must be a ModelConfig"):
        build_model(PRESETS["seed"].to_dict())


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_config_json_round_trip(preset):
    cfg = config_for(preset, z_dim=17)
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.z_dim == 17 and again.preset == preset
    assert cfg.offset == (cfg.patch - cfg.hole) // 2


def test_config_is_frozen_and_overrides_do_not_touch_the_registry():
    cfg = config_for("unet", width=8, patch=24, hole=12)
    assert (cfg.width, cfg.patch, cfg.hole, cfg.z_dim) == (8, 24, 12, 64)
    assert PRESETS["unet"].width == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.width = 4


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"depth": 3}, "depth"),
        ({"patch": "32"}, "patch"),
        ({"patch": 32.0}, "patch"),
        ({"hole": True}, "hole"),
        ({"z_dim": None}, "z_dim"),
        ({"preset": 1}, "preset"),
        ({"preset": "stylegan"}, "preset"),
        ({"z_dim": 0}, "z_dim"),
        ({"context": -1}, "context"),
        ({"context": "1"}, "context"),
    ],
)
def test_config_from_dict_is_strict(change, key):
    data = {**PRESETS["seed"].to_dict(), **change}
    with pytest.raises(ValueError, match=key):
        ModelConfig.from_dict(data)


def test_config_from_dict_rejects_missing_keys_and_non_dicts():
    data = PRESETS["unet"].to_dict()
    del data["width"]
    with pytest.raises(ValueError, match="missing key 'width'"):
        ModelConfig.from_dict(data)
    with pytest.raises(ValueError, match="JSON object"):
        ModelConfig.from_dict([("preset", "seed")])


@pytest.mark.parametrize(
    ("preset", "overrides", "field"),
    [
        ("seed", {"hole": 16}, "hole"),
        ("seed", {"patch": 30}, "patch"),
        ("seed", {"patch": 24}, "patch"),
        ("seed", {"width": 8}, "width"),
        ("unet", {"hole": 32}, "hole"),
        ("unet", {"hole": 3}, "hole"),
        ("unet", {"patch": 6, "hole": 4}, "patch"),
        ("unet", {"width": 6}, "width"),
    ],
)
def test_config_rejects_geometry_the_preset_does_not_support(preset, overrides, field):
    with pytest.raises(ValueError, match=f"^{field} must"):
        config_for(preset, **overrides)


def test_config_for_rejects_unknown_presets_and_fields():
    with pytest.raises(ValueError, match="preset must be one of"):
        config_for("dcgan")
    with pytest.raises(ValueError, match="unknown field 'depth'"):
        config_for("seed", depth=2)
    with pytest.raises(ValueError, match="'preset' is chosen"):
        config_for("seed", preset="unet")
    with pytest.raises(TypeError, match="patch must be an integer"):
        ModelConfig(preset="seed", patch=32.0)


# --------------------------------------------------------------------------- harmonic prior


def _direct_harmonic(y: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Reference solution of the same discrete problem with a sparse direct solver."""
    from scipy.sparse import lil_matrix
    from scipy.sparse.linalg import spsolve

    H, W = y.shape
    index = -np.ones((H, W), int)
    index[unknown] = np.arange(unknown.sum())
    A = lil_matrix((unknown.sum(), unknown.sum()))
    b = np.zeros(unknown.sum())
    for (r, c), i in zip(np.argwhere(unknown), index[unknown]):
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < H and 0 <= cc < W:
                A[i, i] += 1
                if unknown[rr, cc]:
                    A[i, index[rr, cc]] -= 1
                else:
                    b[i] += y[rr, cc]
    out = y.astype(np.float64).copy()
    out[unknown] = spsolve(A.tocsr(), b)
    return out


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_harmonic_fill_solves_laplace_on_any_hole_touching_known_pixels(seed):
    rng = np.random.default_rng(seed)
    y = rng.random((32, 32)).astype(np.float32)
    unknown = np.zeros((32, 32), bool)
    r, c = rng.integers(0, 20, 2)
    h, w = rng.integers(1, 19, 2)
    unknown[r : r + h, c : c + w] = True
    unknown |= rng.random((32, 32)) < 0.1  # scattered pixels, some at the window edge
    out = harmonic_fill(torch.from_numpy(y)[None, None], torch.from_numpy(unknown.astype(np.float32))[None, None])
    expected = _direct_harmonic(y, unknown)
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=2e-4)
    assert np.array_equal(out[0, 0].numpy()[~unknown], y[~unknown])  # known pixels bit for bit


def test_harmonic_fill_edge_cases():
    y = torch.rand(3, 1, 8, 8)
    hole = torch.zeros_like(y)
    hole[0] = 1  # nothing known: 0.5
    hole[1, :, :, :4] = 1  # a region reaching the window edge: continues the known half
    out = harmonic_fill(y, hole)
    assert torch.equal(out[0], torch.full_like(out[0], 0.5))
    assert torch.equal(out[2], y[2])  # nothing unknown: unchanged
    assert out[1, :, :, :4].min() >= y[1, :, :, 4:].min() and out[1, :, :, :4].max() <= y[1, :, :, 4:].max()
    assert torch.isfinite(out).all()


def test_untrained_harmonic_preset_fills_close_to_the_prior():
    model = _eval_model(PRESETS["harmonic"])
    x = torch.rand(8, 1, 32, 32)
    hole = _box_hole(model.config, 8)
    with torch.no_grad():
        out = model(x * (1 - hole), hole)
    prior = harmonic_fill(x * (1 - hole), hole)
    assert (out - prior).abs().max() < 0.1  # the residual starts small
    assert (out - prior).abs().mean() > 0  # ... but not zero, so gradients reach every layer


@pytest.mark.parametrize("preset", ["seed", "unet", "harmonic"])
def test_generate_grouped_equals_generate_on_the_repeated_conditioning(preset):
    torch.manual_seed(0)
    model = build_model(config_for(preset)).eval()
    if preset == "seed":  # non-trivial running statistics, so the folded BatchNorm is exercised
        for module in model.generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.uniform_(-0.3, 0.3)
    hole = (torch.rand(3, 1, 32, 32) > 0.5).float()
    with torch.no_grad():
        cond = model.condition(torch.rand(3, 1, 32, 32), hole)
        z = torch.randn(3, 5, model.config.z_dim)
        grouped = model.generate_grouped(z, cond)
        plain = model.generate(z.reshape(15, -1), cond.repeat_interleave(5, dim=0)).view(3, 5, 1, 18, 18)
    assert grouped.shape == (3, 5, 1, 18, 18)
    torch.testing.assert_close(grouped, plain, rtol=1e-5, atol=1e-5)
    model.train()  # training mode: BatchNorm needs batch statistics, the plain path runs
    with torch.no_grad():
        assert model.generate_grouped(z, cond).shape == (3, 5, 1, 18, 18)


def test_generate_grouped_errors():
    model = build_model(config_for("unet", width=4)).eval()
    cond = torch.zeros(2, *model.cond_shape)
    with pytest.raises(ValueError, match="z must"):
        model.generate_grouped(torch.zeros(2 * 3, model.config.z_dim), cond)
    with pytest.raises(ValueError, match="z must"):
        model.generate_grouped(torch.zeros(2, 0, model.config.z_dim), cond)
    with pytest.raises(ValueError, match="cond must"):
        model.generate_grouped(torch.zeros(3, 4, model.config.z_dim), cond)


# --------------------------------------------------------------------------- 2.5D context


def test_context_config():
    cfg = config_for("harmonic", context=2)
    assert (cfg.context, cfg.channels) == (2, 5) and PRESETS["harmonic"].channels == 1
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    old = PRESETS["unet"].to_dict()
    del old["context"]  # a model file written before 2.5D conditioning
    assert ModelConfig.from_dict(old) == PRESETS["unet"]
    with pytest.raises(ValueError, match="context must be 0 for the seed preset"):
        config_for("seed", context=1)
    with pytest.raises(ValueError, match="context must be <= 8"):
        config_for("unet", context=9)
    with pytest.raises(TypeError, match="context must be an integer"):
        config_for("unet", context=True)


@pytest.mark.parametrize("preset", ["unet", "harmonic"])
def test_context_model_shapes_and_composite(preset):
    model = _eval_model(config_for(preset, width=8, context=1))
    y = torch.rand(4, 3, 32, 32)
    hole = torch.zeros(4, 3, 32, 32)
    hole[:, 1, 7:25, 7:25] = 1
    hole[:, 0, :5] = 1
    with torch.no_grad():
        out = model(y, hole)
        logits = model.discriminate(out, hole)
    assert out.shape == (4, 3, 32, 32) and logits.shape == (4, 1, 8, 8)
    assert torch.equal(out[:, 0], y[:, 0]) and torch.equal(out[:, 2], y[:, 2])  # neighbours pass through
    assert torch.equal(out[:, 1][hole[:, 1] == 0], y[:, 1][hole[:, 1] == 0])
    assert not torch.equal(out[:, 1], y[:, 1])
    with pytest.raises(ValueError, match=r"^y must be a \(B, 3, 32, 32\)"):
        model.condition(y[:, :1], hole[:, :1])


def test_context_model_reads_the_neighbours_but_not_their_unknown_pixels():
    model = _eval_model(config_for("harmonic", width=8, context=1))
    y = torch.rand(2, 3, 32, 32)
    hole = torch.zeros(2, 3, 32, 32)
    hole[:, 1, 7:25, 7:25] = 1
    hole[:, 2, 7:25, 7:25] = 1
    other = y.clone()
    other[:, 2, 7:25, 7:25] = torch.rand(2, 18, 18)  # values under the neighbour's own hole
    with torch.no_grad():
        assert torch.equal(model.condition(y, hole), model.condition(other, hole))
        moved = y.clone()
        moved[:, 0, 7:25, 7:25] = 1 - moved[:, 0, 7:25, 7:25]  # a known neighbour pixel
        assert not torch.allclose(model.condition(y, hole), model.condition(moved, hole))


def test_slice_guided_fill_follows_the_neighbours():
    rng = np.random.default_rng(0)
    base = torch.from_numpy(rng.random((1, 1, 32, 32)).astype(np.float32))
    ramp = torch.linspace(0, 0.2, 32).view(1, 1, 1, 32)
    # Neighbours = the centre plus smooth (harmonic) differences: the guided fill recovers it exactly.
    x = torch.cat([base - ramp, base, base + 0.1], dim=1)
    hole = torch.zeros_like(x)
    hole[:, 1, 7:25, 7:25] = 1
    fill = slice_guided_fill(x * (1 - hole), hole)
    np.testing.assert_allclose(fill.numpy(), x[:, 1:2].numpy(), atol=2e-4)
    assert torch.equal(fill[hole[:, 1:2] == 0], x[:, 1:2][hole[:, 1:2] == 0])  # known pixels bit for bit
    # One neighbour hidden at the hole: the other one guides alone.
    hole[:, 2, 7:25, 7:25] = 1
    one = slice_guided_fill(x * (1 - hole), hole)
    np.testing.assert_allclose(one.numpy(), x[:, 1:2].numpy(), atol=2e-4)
    # Both hidden: the centre's own harmonic fill.
    hole[:, 0] = 1
    both = slice_guided_fill(x * (1 - hole), hole)
    np.testing.assert_allclose(both.numpy(), harmonic_fill(x[:, 1:2] * (1 - hole[:, 1:2]), hole[:, 1:2]).numpy(), atol=1e-5)
    # One slice: harmonic_fill itself.
    assert torch.equal(slice_guided_fill(x[:, 1:2], hole[:, 1:2]), harmonic_fill(x[:, 1:2], hole[:, 1:2]))


# --------------------------------------------------------------------------- regressed mean


MEAN_NET = config_for("harmonic", mean_net=True, std_head=False)


def test_mean_net_config():
    assert ModelConfig.from_dict(json.loads(json.dumps(MEAN_NET.to_dict()))) == MEAN_NET
    old = PRESETS["harmonic"].to_dict()
    del old["mean_net"], old["std_head"]  # a model file written before the mean network existed
    assert ModelConfig.from_dict(old).mean_net is False
    with pytest.raises(ValueError, match="mean_net needs the harmonic preset"):
        config_for("unet", mean_net=True)
    with pytest.raises(ValueError, match="mean_net needs the harmonic preset"):
        config_for("seed", mean_net=True)
    with pytest.raises(TypeError, match="mean_net must be True or False"):
        config_for("harmonic", mean_net=1)
    with pytest.raises(ValueError, match="mean_net"):
        ModelConfig.from_dict({**PRESETS["harmonic"].to_dict(), "mean_net": "yes"})


def test_untrained_mean_net_is_exactly_the_prior():
    # The mean head starts at zero, so before training the regressed mean is the
    # prior's logit bit for bit and the model fills like the plain harmonic preset.
    torch.manual_seed(0)
    with_mean = build_model(MEAN_NET).eval()
    x = torch.rand(3, 1, 32, 32)
    hole = _box_hole(MEAN_NET, 3)
    with torch.no_grad():
        cond = with_mean.condition(x * (1 - hole), hole)
    prior = harmonic_fill(x * (1 - hole), hole)[:, :, 7:25, 7:25].clamp(1e-3, 1 - 1e-3)
    assert cond.shape == (3, 17, 18, 18)
    torch.testing.assert_close(cond[:, -1:], torch.logit(prior), rtol=0, atol=0)
    assert _counts(with_mean)[0] > _counts(_eval_model(config_for("harmonic", mean_net=False)))[0]  # a second U-Net and its head


def _after_g_loss(config, output_layer: str):
    """A model whose G loss has been backpropagated once, with ``output_layer``'s weights made
    non-zero first (so that what it outputs depends on every layer before it); and the batch."""
    torch.manual_seed(0)
    model = build_model(config).train()
    with torch.no_grad():
        model.conditioner.get_parameter(f"{output_layer}.weight").normal_(0, 0.1)
    x = torch.rand(4, 1, 32, 32)
    hole = _box_hole(config, 4)
    y = x * (1 - hole)
    AdversarialLoss("nonsaturating").g_loss(model.discriminate(model(y, hole), hole)).backward()
    return model, x, hole, y


def test_only_squared_error_trains_the_mean_net():
    model, x, hole, y = _after_g_loss(MEAN_NET, "mean_head")
    mean_params = {n for n, _ in model.conditioner.named_parameters() if n.startswith("mean")}
    assert mean_params
    for name, p in model.conditioner.named_parameters():
        reached = p.grad is not None and p.grad.abs().sum() > 0
        assert reached == (name not in mean_params), name  # G's losses train C's features, never the mean

    model.zero_grad(set_to_none=True)
    mean = torch.sigmoid(model.condition(y, hole)[:, -1:])
    ((mean - x[:, :, 7:25, 7:25]) ** 2).mean().backward()
    for name, p in model.conditioner.named_parameters():
        if name in mean_params:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_generator_samples_around_the_mean_net():
    # Moving the regressed mean moves every sample with it (G adds residuals to its logit).
    torch.manual_seed(0)
    model = build_model(MEAN_NET).eval()
    x = torch.rand(2, 1, 32, 32)
    hole = _box_hole(MEAN_NET, 2)
    z = model.sample_z(2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model.generate(z, model.condition(x * (1 - hole), hole))
        model.conditioner.mean_head.bias.fill_(2.0)
        after = model.generate(z, model.condition(x * (1 - hole), hole))
    # (G also reads the mean as an input, which moves its small residual a little.)
    assert (torch.logit(after) - torch.logit(before)).mean() == pytest.approx(2.0, abs=0.05)


# --------------------------------------------------------------------------- regressed std


STD_HEAD = config_for("harmonic", mean_net=True, std_head=True)


def test_std_head_config():
    assert PRESETS["harmonic"].std_head is True
    assert ModelConfig.from_dict(json.loads(json.dumps(STD_HEAD.to_dict()))) == STD_HEAD
    old = MEAN_NET.to_dict()
    del old["std_head"]  # a model file written before the std head existed
    assert ModelConfig.from_dict(old) == MEAN_NET
    # Turning the mean network off turns its std head off too, unless asked for.
    assert config_for("harmonic", mean_net=False).std_head is False
    with pytest.raises(ValueError, match="std_head needs mean_net"):
        config_for("harmonic", mean_net=False, std_head=True)
    with pytest.raises(ValueError, match="std_head needs mean_net"):
        config_for("unet", std_head=True)
    with pytest.raises(TypeError, match="std_head must be True or False"):
        config_for("harmonic", std_head=1)


def test_untrained_std_head_gives_a_tenth_and_leaves_the_mean_alone():
    torch.manual_seed(0)
    model = build_model(STD_HEAD).eval()
    plain = build_model(MEAN_NET).eval()
    plain.conditioner.load_state_dict(
        {k: v for k, v in model.conditioner.state_dict().items() if not k.startswith("std_head")}
    )
    x = torch.rand(3, 1, 32, 32)
    hole = _box_hole(STD_HEAD, 3)
    with torch.no_grad():
        cond = model.condition(x * (1 - hole), hole)
        cond_plain = plain.condition(x * (1 - hole), hole)
    assert cond.shape == (3, 18, 18, 18) and cond_plain.shape == (3, 17, 18, 18)
    torch.testing.assert_close(model.regressed_std(cond), torch.full((3, 1, 18, 18), 0.1))
    torch.testing.assert_close(model.regressed_mean(cond), plain.regressed_mean(cond_plain), rtol=0, atol=0)
    assert plain.regressed_std(cond_plain) is None
    assert build_model(PRESETS["unet"]).regressed_std(torch.zeros(1, 16, 18, 18)) is None


def test_only_its_likelihood_trains_the_std_head():
    model, x, hole, y = _after_g_loss(STD_HEAD, "std_head.4")
    head = {n for n, _ in model.conditioner.named_parameters() if n.startswith("std_head")}
    assert head
    for name, p in model.conditioner.named_parameters():
        if name in head:
            assert p.grad is None or p.grad.abs().sum() == 0, f"G's loss reached {name}"

    model.zero_grad(set_to_none=True)
    cond = model.condition(y, hole)
    err = (x[:, :, 7:25, 7:25] - model.regressed_mean(cond)).detach()
    std = model.regressed_std(cond)
    (torch.log(std) + 0.5 * (err / std) ** 2).mean().backward()
    for name, p in model.conditioner.named_parameters():
        reached = p.grad is not None and p.grad.abs().sum() > 0
        assert reached == (name in head), name  # the likelihood trains the head and nothing else
