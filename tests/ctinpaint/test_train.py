"""Tests for ctinpaint.train, all with real training on the phantom (no mocks):

* a few hundred CPU steps clearly lower the held-out MAE;
* an interrupted run resumed in the same folder ends bit-identical to one that
  never stopped;
* :func:`load_model` round-trips a model and refuses bad folders with a
  ValueError naming ``model_dir``, without ever unpickling anything;
* :class:`TrainConfig` validation and its dict round trip;
* :func:`heldout_rows`, and that the training sampler never uses a window that
  touches the held-out rows.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import torch

from ctinpaint.calibration import TEXTURE_DEPTHS, Calibration
from ctinpaint.evaluate import evaluate_model
from ctinpaint.intensity import IntensityMapping
from ctinpaint.io import open_volume
from ctinpaint.models import build_model, config_for
from ctinpaint.phantom import add_artifacts, make_phantom
from ctinpaint.train import (
    MODEL_FORMAT_VERSION,
    CosineBudget,
    LoadedModel,
    TrainConfig,
    heldout_rows,
    load_model,
    train_model,
)
from gan_zoo.training import load_checkpoint, load_networks, save_checkpoint

P = 32  # patch side of every preset used here

#: Tiny network and run settings for the tests that only need *a* trained model.
TINY_MODEL = config_for("unet", width=4)
#: Deliberately not the mapping fit_intensity would find, so the round trip is visible.
TINY_INTENSITY = IntensityMapping(low=9000.0, high=52000.0, dtype="uint16")


def tiny_config(steps: int, **overrides) -> TrainConfig:
    # Constant rates: runs extended from 3 to 6 steps must match runs of 6, and a cosine's end
    # moves with the budget (the cosine tests ask for it).
    settings = dict(
        steps=steps, batch_size=8, n_val=4, val_samples=2,
        validate_every=3, checkpoint_every=3, log_every=1, device="cpu", lr_schedule="constant",
    )  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


# One intra-op thread: the 2 shared cores also run the patch sampler's two
# worker threads, and an oversubscribed OpenMP pool can be 10x slower.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_volume() -> np.ndarray:
    return make_phantom((4, 96, 96), seed=0)


@pytest.fixture(scope="module")
def tiny_run(tiny_volume, tmp_path_factory) -> Path:
    """6 uninterrupted steps of the tiny model; treat as read-only (copy before editing)."""
    out = tmp_path_factory.mktemp("tiny_run")
    result = train_model(
        tiny_volume, out, model_config=TINY_MODEL, config=tiny_config(6), intensity=TINY_INTENSITY, progress=False
    )
    assert result.step == 6 and result.resumed_from is None
    return out


@pytest.fixture
def model_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny run, free to be damaged."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def _log(path: Path) -> list[dict]:
    """log.jsonl without the wall-clock times, which legitimately differ between runs."""
    lines = [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "elapsed"} for line in lines]


def _json_doc(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- training lowers the held-out error


@pytest.mark.slow
def test_training_clearly_lowers_heldout_mae(tmp_path):
    vol = make_phantom((8, 96, 96), seed=0)
    corrupted = add_artifacts(vol, n=6, seed=0)
    model_config = config_for("unet", width=8)
    # moments=0: the reference's pure GAN recipe. With the moment-reconstruction loss at its
    # default weight (1.0) the Gaussian NLL first widens the spread and moves the mean fill
    # only slowly: held-out MAE 0.38 -> ~0.36 after 200 steps, ~0.24 after 600 (measured).
    config = TrainConfig(
        steps=200, batch_size=32, device="cpu", moments=0.0, n_val=16, val_samples=4,
        validate_every=50, checkpoint_every=10**6, log_every=50,
    )  # fmt: skip
    result = train_model(
        corrupted.volume, tmp_path, mask=corrupted.mask, model_config=model_config, config=config, progress=False
    )
    assert result.step == 200

    trained = load_model(tmp_path, device="cpu")
    # The untrained model train_model started from: same config, same seed.
    torch.manual_seed(config.seed)
    untrained = build_model(model_config).eval()

    # Only windows lying entirely in the rows training held out (and off the artifacts).
    heldout = heldout_rows(open_volume(corrupted.volume), patch=model_config.patch, fraction=config.holdout)
    common = dict(
        intensity=trained.intensity, n_holes=32, n_samples=16, seed=3, mask=corrupted.mask, exclude=~heldout,
        hole_shape="square",
    )  # fmt: skip
    mae_trained = evaluate_model(trained.model, corrupted.volume, **common).gan["mae"]
    mae_untrained = evaluate_model(untrained, corrupted.volume, **common).gan["mae"]
    assert mae_trained < 0.5 * mae_untrained, (mae_trained, mae_untrained)


# --------------------------------------------------------------------------- exact resume


def test_resume_is_bit_identical_to_an_uninterrupted_run(tiny_volume, tiny_run, tmp_path):
    split = tmp_path / "split"
    first = train_model(
        tiny_volume, split, model_config=TINY_MODEL, config=tiny_config(3), intensity=TINY_INTENSITY, progress=False
    )
    assert (first.step, first.resumed_from) == (3, None)
    at_step_3, _ = load_checkpoint(split, "latest")

    # No intensity given this time: the resumed run must take the stored one, not fit a new one.
    second = train_model(tiny_volume, split, model_config=TINY_MODEL, config=tiny_config(6), progress=False)
    assert (second.step, second.resumed_from) == (6, 3)

    whole, parts = load_model(tiny_run, device="cpu"), load_model(split, device="cpu")
    assert parts.intensity == TINY_INTENSITY
    state_whole, state_parts = whole.model.state_dict(), parts.model.state_dict()
    assert list(state_whole) == list(state_parts)
    for key in state_whole:
        assert torch.equal(state_whole[key], state_parts[key]), key

    whole_latest, whole_meta = load_checkpoint(tiny_run, "latest")
    parts_latest, parts_meta = load_checkpoint(split, "latest")
    assert whole_meta["step"] == parts_meta["step"] == 6
    assert whole_latest.keys() == parts_latest.keys()
    trained = [k for k in whole_latest if k.startswith(("networks.", "optimizers."))]
    assert any(k.startswith("networks.C.") for k in trained) and any(k.startswith("optimizers.") for k in trained)
    for key in trained:
        assert torch.equal(whole_latest[key], parts_latest[key]), key
    # The second session really trained: the networks moved after step 3.
    assert any(
        not torch.equal(at_step_3[k], parts_latest[k]) for k in trained if k.startswith("networks.G.")
    )

    # Same log lines (losses of every step, validations at 3 and 6), none of steps 4..6 twice.
    log_whole, log_parts = _log(tiny_run), _log(split)
    assert log_parts == log_whole
    losses = [line for line in log_whole if "validation" not in line and line["step"] >= 4]
    assert [line["step"] for line in losses] == [4, 5, 6]
    assert all(np.isfinite(line["G"]["loss"]) and np.isfinite(line["D"]["loss"]) for line in losses)


def test_cosine_schedule_decays_both_rates_and_resumes_exactly(tiny_volume, tmp_path):
    import threading

    config = tiny_config(6, lr_schedule="cosine")
    whole = tmp_path / "whole"
    train_model(tiny_volume, whole, model_config=TINY_MODEL, config=config, intensity=TINY_INTENSITY, progress=False)
    lines = [line for line in _log(whole) if "validation" not in line]
    for phase, base in (("G", config.lr_g), ("D", config.lr_d)):
        rates = [line[phase]["lr"] for line in lines]
        assert all(a > b for a, b in zip(rates, rates[1:])), rates
        assert rates[0] <= base and rates[-1] < 0.1 * base

    # Cut after step 4 and resumed: the schedulers' state comes back with the checkpoint.
    stop = threading.Event()

    def cancel_at_3(step, total, line):
        if step == 3:
            stop.set()

    split = tmp_path / "split"
    first = train_model(tiny_volume, split, model_config=TINY_MODEL, config=config, intensity=TINY_INTENSITY,
                        progress=cancel_at_3, stop=stop)  # fmt: skip
    second = train_model(tiny_volume, split, model_config=TINY_MODEL, config=config, progress=False)
    assert (first.step, second.resumed_from, second.step) == (4, 4, 6)
    assert [line for line in _log(split) if "validation" not in line] == lines
    a, b = load_checkpoint(whole, "latest")[0], load_checkpoint(split, "latest")[0]
    for key in (k for k in a if k.startswith(("networks.", "optimizers.", "schedulers."))):
        assert torch.equal(a[key], b[key]), key


def test_cancelled_training_exports_a_model_and_resumes_exactly(tiny_volume, tiny_run, tmp_path):
    import threading

    stop = threading.Event()
    seen = []

    def readout(step, total, line):
        seen.append((step, total, line["G"]["loss"]))
        if step == 3:
            stop.set()

    out = tmp_path / "cut"
    first = train_model(tiny_volume, out, model_config=TINY_MODEL, config=tiny_config(6),
                        intensity=TINY_INTENSITY, progress=readout, stop=stop)  # fmt: skip
    # Set while step 3 was logged, so step 4 (between checkpoint intervals) is the last one.
    assert (first.stopped_by, first.step) == ("cancelled", 4)
    assert [(s, t) for s, t, _ in seen] == [(1, 6), (2, 6), (3, 6), (4, 6)] and all(np.isfinite(v) for _, _, v in seen)
    assert load_checkpoint(out, "latest")[1]["step"] == 4
    assert load_model(out, device="cpu").meta["step"] in (3, 4)  # exported (from the best checkpoint) as at a normal end

    second = train_model(tiny_volume, out, model_config=TINY_MODEL, config=tiny_config(6), progress=False)
    assert (second.resumed_from, second.step, second.stopped_by) == (4, 6, "steps")
    whole, parts = load_checkpoint(tiny_run, "latest")[0], load_checkpoint(out, "latest")[0]
    trained = [k for k in whole if k.startswith(("networks.", "optimizers."))]
    for key in trained:
        assert torch.equal(whole[key], parts[key]), key


# --------------------------------------------------------------------------- load_model


def test_load_model_round_trip(tiny_run):
    loaded = load_model(tiny_run, device="cpu")
    assert isinstance(loaded, LoadedModel)
    assert loaded.model.config == TINY_MODEL
    assert not any(module.training for module in loaded.model.modules())
    assert all(p.device.type == "cpu" for p in loaded.model.parameters())
    assert loaded.intensity == TINY_INTENSITY

    _, best = load_checkpoint(tiny_run, "best")
    assert loaded.meta["model"] == TINY_MODEL.to_dict()
    assert loaded.meta["intensity"] == TINY_INTENSITY.to_dict()
    assert TrainConfig.from_dict(loaded.meta["train"]) == tiny_config(6)
    assert loaded.meta["model_format_version"] == MODEL_FORMAT_VERSION
    # The spread was calibrated on held-out windows and travels with the model.
    assert isinstance(loaded.calibration, Calibration)
    assert loaded.calibration.n_pixels > 0 and loaded.calibration.std_scale > 0
    assert loaded.meta["calibration"] == loaded.calibration.to_dict()
    # ... and so do the factors for artifacts larger than a window, fitted on large artifacts
    # cut into the held-out rows (32 rows here: 28 x 36 artifacts, depths up to 14).
    assert loaded.calibration.tiled_depths is not None
    assert min(loaded.calibration.tiled_std_scale) > 0
    assert set(loaded.calibration.tiled_after) == {"coverage_1sigma", "coverage_2sigma", "interval_coverage"}
    # The exported model is the best checkpoint's networks (C and G averaged, the default), and
    # says which step that was.
    assert loaded.meta["step"] == best["step"]
    best_model = build_model(TINY_MODEL)
    load_networks(tiny_run, "best", {"C_ema": best_model.conditioner, "G_ema": best_model.generator,
                                     "D": best_model.discriminator})  # fmt: skip
    state, expected = loaded.model.state_dict(), best_model.state_dict()
    for key in expected:
        assert torch.equal(state[key], expected[key]), key

    # And it samples: a forward pass on a real window gives values in the network range.
    x = torch.rand(2, 1, P, P)
    hole = torch.zeros_like(x)
    hole[:, :, 7:25, 7:25] = 1
    with torch.no_grad():
        out = loaded.model(x * (1 - hole), hole)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_a_model_with_context_trains_on_neighbouring_slices_and_inpaints(tiny_volume, tmp_path):
    from ctinpaint.inpaint import inpaint_volume

    config = config_for("harmonic", width=4, context=1)
    result = train_model(tiny_volume, tmp_path / "run", model_config=config, config=tiny_config(3),
                         intensity=TINY_INTENSITY, progress=False)  # fmt: skip
    assert result.step == 3
    loaded = load_model(tmp_path / "run", device="cpu")
    assert loaded.model.config == config and loaded.meta["model"]["context"] == 1
    assert all(np.isfinite(row["psnr"]) for row in _log(tmp_path / "run") if "psnr" in row)
    # The calibration windows hold unguided pixels enough for their own factors and texture tilt.
    calibration = loaded.calibration
    assert calibration.guided_std_scale is not None
    assert len(calibration.texture_tilt) == len(calibration.guided_texture_tilt) == len(TEXTURE_DEPTHS)
    # The whole hole box, which the tilt is also fitted on, leaves both neighbours known around each hole.
    assert len(calibration.flanked_texture_tilt) == len(TEXTURE_DEPTHS)
    mask = np.zeros(tiny_volume.shape, bool)
    mask[1, 40:50, 40:52] = True
    out = np.asarray(inpaint_volume(tiny_volume, mask, loaded, n_samples=4, seed=0).inpainted)
    np.testing.assert_array_equal(out[~mask], tiny_volume[~mask])


def test_the_mean_net_and_std_head_learn_by_their_losses_and_travel_with_the_model(tiny_volume, tiny_run, tmp_path):
    config = config_for("harmonic", width=4)
    assert config.mean_net and config.std_head
    train_model(tiny_volume, tmp_path / "run", model_config=config, config=tiny_config(12, lr_g=3e-3),
                intensity=TINY_INTENSITY, progress=False)  # fmt: skip
    g_logs = [row["G"] for row in _log(tmp_path / "run") if "G" in row]
    assert len(g_logs) == 12
    assert all(np.isfinite(g["mean_mse"]) and np.isfinite(g["std_nll"]) for g in g_logs)
    # The fill's errors here are far below the starting spread of 0.1: the likelihood shrinks it.
    assert np.mean([g["std_nll"] for g in g_logs[-3:]]) < np.mean([g["std_nll"] for g in g_logs[:3]])
    loaded = load_model(tmp_path / "run", device="cpu")
    assert loaded.model.config == config
    assert loaded.meta["model"]["mean_net"] is True and loaded.meta["model"]["std_head"] is True
    # Training moved both heads off their zero start: the mean is no longer just the prior.
    assert loaded.model.conditioner.mean_head.weight.abs().sum() > 0
    assert loaded.model.conditioner.std_head[-1].weight.abs().sum() > 0
    # Its calibration holds a texture tilt per depth bin, fitted on the held-out windows.
    assert len(loaded.calibration.texture_tilt) == len(TEXTURE_DEPTHS)
    assert set(loaded.calibration.texture) == {"holes_before", "holes_after", "box_before", "box_after"}
    # A model without them logs no such terms, and keeps G's own texture.
    assert not any({"mean_mse", "std_nll"} & set(row.get("G", {})) for row in _log(tiny_run))
    assert load_model(tiny_run, device="cpu").calibration.texture_tilt is None


def test_the_generator_of_a_mean_net_model_trains_without_the_moment_and_diversity_terms(tiny_volume, tmp_path):
    # Pure adversarial training draws one fill per patch; centred on the mean it would *be* the
    # mean, so training draws two and G still learns.
    config = config_for("harmonic", width=4, mean_net=True)
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in build_model(config).generator.state_dict().items()}
    train_model(tiny_volume, tmp_path / "run", model_config=config, intensity=TINY_INTENSITY, progress=False,
                config=tiny_config(3, moments=0.0, mode_seeking=0.0, seed=0))  # fmt: skip
    after = load_model(tmp_path / "run", device="cpu").model.generator.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))


def test_the_texture_term_is_logged_only_when_on(tiny_volume, tiny_run, tmp_path):
    train_model(tiny_volume, tmp_path / "run", model_config=TINY_MODEL, config=tiny_config(3, texture=0.5),
                intensity=TINY_INTENSITY, progress=False)  # fmt: skip
    g_logs = [row["G"] for row in _log(tmp_path / "run") if "G" in row]
    assert len(g_logs) == 3 and all(np.isfinite(g["texture"]) for g in g_logs)
    # The total includes it: loss = adv + mode seeking + moments + texture.
    for g in g_logs:
        parts = g["adv"] + 0.05 * g["mode_seeking"] + g["moments"] + 0.5 * g["texture"]
        assert g["loss"] == pytest.approx(parts, rel=1e-4, abs=1e-5)
    assert all("texture" in row["G"] for row in _log(tiny_run) if "G" in row)  # on by default
    train_model(tiny_volume, tmp_path / "off", model_config=TINY_MODEL, config=tiny_config(1, texture=0.0),
                intensity=TINY_INTENSITY, progress=False)  # fmt: skip
    assert not any("texture" in row.get("G", {}) for row in _log(tmp_path / "off"))
    # Alone (no moment term), it still gets the several fills per patch a spread needs.
    train_model(tiny_volume, tmp_path / "alone", model_config=TINY_MODEL, intensity=TINY_INTENSITY, progress=False,
                config=tiny_config(1, texture=0.5, moments=0.0, mode_seeking=0.0))  # fmt: skip
    assert np.isfinite(_log(tmp_path / "alone")[0]["G"]["texture"])


def test_the_texture_term_on_drawn_fills_sees_them_scaled_to_the_std_head(tiny_volume, tmp_path):
    # Same seed, same first batch and fills: only the scaling differs, so the first logged
    # texture term differs with a std head and is the same without one.
    def first_texture(name, model_config, fills):
        train_model(tiny_volume, tmp_path / name, model_config=model_config, intensity=TINY_INTENSITY, progress=False,
                    config=tiny_config(1, texture=0.5, texture_fills=fills, seed=0))  # fmt: skip
        return _log(tmp_path / name)[0]["G"]["texture"]

    harmonic = config_for("harmonic", width=4)
    assert harmonic.std_head
    as_drawn, own = first_texture("drawn", harmonic, "drawn"), first_texture("own", harmonic, "generator")
    assert np.isfinite(as_drawn) and as_drawn != pytest.approx(own, rel=1e-3)
    assert first_texture("plain_drawn", TINY_MODEL, "drawn") == first_texture("plain_own", TINY_MODEL, "generator")


def test_validation_nll_ranks_flat_maps_by_psnr_and_prefers_an_informative_map():
    from ctinpaint.sampling import FillStats
    from ctinpaint.train import _validation_metrics

    rng = np.random.default_rng(0)
    truth = rng.random((64, 8, 8)).astype(np.float32)
    scale = rng.uniform(0.01, 0.2, truth.shape).astype(np.float32)
    err = rng.standard_normal(truth.shape).astype(np.float32) * scale
    filled = np.ones(truth.shape, bool)

    def metrics(error, std):
        stats = FillStats(mean=truth + error, std=std, quantiles=None, filled=filled)
        return _validation_metrics(truth, stats)

    flat = np.full(truth.shape, 0.05, np.float32)
    worse, better = metrics(2 * err, flat), metrics(err, flat)
    assert better["psnr"] > worse["psnr"] and better["nll"] < worse["nll"]
    # Rescaling a flat map changes nothing: the factor is fitted.
    assert metrics(err, 3 * flat)["nll"] == pytest.approx(better["nll"], abs=1e-5)
    # Same fills, same PSNR; the map that is high where the error is wins.
    informed = metrics(err, scale)
    assert informed["psnr"] == better["psnr"] and informed["nll"] < better["nll"] - 0.2


def test_weight_averaging_is_what_validates_and_is_exported(tiny_volume, tmp_path):
    out = tmp_path / "run"
    train_model(tiny_volume, out, model_config=TINY_MODEL, config=tiny_config(6, ema=0.9, lr_g=3e-3),
                intensity=TINY_INTENSITY, progress=False)  # fmt: skip
    _, best = load_checkpoint(out, "best")
    assert set(best["networks"]) == {"C", "G", "D", "C_ema", "G_ema"}
    raw = {name: build_model(TINY_MODEL) for name in ("trained", "averaged")}
    load_networks(out, "best", {"C": raw["trained"].conditioner, "G": raw["trained"].generator})
    load_networks(out, "best", {"C_ema": raw["averaged"].conditioner, "G_ema": raw["averaged"].generator})
    exported = load_model(out, device="cpu").model
    for part in ("conditioner", "generator"):
        mine = getattr(exported, part).state_dict()
        averaged, trained = getattr(raw["averaged"], part).state_dict(), getattr(raw["trained"], part).state_dict()
        assert all(torch.equal(mine[k], averaged[k]) for k in mine)
        assert any(not torch.equal(mine[k], trained[k]) for k in mine if k.endswith("weight"))
    # Averaging never changes training, only what is validated (and so which checkpoint is best).
    train_model(tiny_volume, tmp_path / "plain", model_config=TINY_MODEL, config=tiny_config(6, ema=0.0, lr_g=3e-3),
                intensity=TINY_INTENSITY, progress=False)  # fmt: skip
    assert set(load_checkpoint(tmp_path / "plain", "best")[1]["networks"]) == {"C", "G", "D"}
    lines = {name: _log(tmp_path / name) for name in ("run", "plain")}
    training = {name: [row for row in rows if "G" in row] for name, rows in lines.items()}
    assert training["run"] == training["plain"]
    validation = {name: [row["validation"] for row in rows if "validation" in row] for name, rows in lines.items()}
    assert len(validation["run"]) == len(validation["plain"]) == 2
    assert validation["run"] != validation["plain"]


def test_load_model_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="model_dir"):
        load_model(tmp_path / "does_not_exist", device="cpu")
    with pytest.raises(ValueError, match="model_dir"):
        load_model(tmp_path, device="cpu")  # exists, but empty


def test_load_model_given_a_file_instead_of_the_folder(model_copy):
    weights = next(model_copy.glob("model.*.safetensors"))
    with pytest.raises(ValueError, match="model_dir"):
        load_model(weights, device="cpu")


def test_load_model_training_checkpoint_without_model_files(model_copy):
    for path in [model_copy / "model.json", *model_copy.glob("model.*.safetensors")]:
        path.unlink()
    assert (model_copy / "latest.json").exists()  # a training folder, just not exported
    with pytest.raises(ValueError, match="model_dir"):
        load_model(model_copy, device="cpu")


def test_load_model_missing_weights_file(model_copy):
    (weights,) = model_copy.glob("model.*.safetensors")
    weights.unlink()
    with pytest.raises(ValueError, match="model_dir"):
        load_model(model_copy, device="cpu")


def test_load_model_refuses_a_newer_model_format(model_copy):
    path = model_copy / "model.json"
    document = _json_doc(path)
    # The weights hash covers the weights file only, so editing the metadata keeps the checkpoint valid...
    document["meta"]["ctinpaint"]["model_format_version"] = MODEL_FORMAT_VERSION
    path.write_text(json.dumps(document), encoding="utf-8")
    assert load_model(model_copy, device="cpu").meta["model_format_version"] == MODEL_FORMAT_VERSION
    # ... and only the version makes the difference.
    document["meta"]["ctinpaint"]["model_format_version"] = MODEL_FORMAT_VERSION + 1
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^model_dir: .*model format {MODEL_FORMAT_VERSION + 1}"):
        load_model(model_copy, device="cpu")


def test_load_model_weights_that_do_not_match_the_config(model_copy):
    tensors, meta = load_checkpoint(model_copy, "model")
    assert meta["ctinpaint"]["model"]["width"] == 4
    meta["ctinpaint"]["model"]["width"] = 8
    save_checkpoint(model_copy, "model", tensors=tensors, meta=meta)
    with pytest.raises(ValueError, match="^model_dir: .*do not match the stored config"):
        load_model(model_copy, device="cpu")


class _CreatesFile:
    """Unpickling this creates ``path``: the visible effect of running code from a file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


@pytest.mark.parametrize("consistent_json", [False, True], ids=["weights-replaced", "json-updated-too"])
def test_load_model_never_unpickles(model_copy, tmp_path, consistent_json):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"networks.C.weight": _CreatesFile(marker)})
    json_path = model_copy / "model.json"
    (weights,) = model_copy.glob("model.*.safetensors")
    if consistent_json:
        # A forger who also fixes the JSON: right file name, size and sha256 for the pickle.
        digest = hashlib.sha256(payload).hexdigest()
        weights.unlink()
        weights = model_copy / f"model.{digest[:16]}.safetensors"
        document = _json_doc(json_path)
        document["weights"] = {"file": weights.name, "sha256": digest, "bytes": len(payload)}
        json_path.write_text(json.dumps(document), encoding="utf-8")
    weights.write_bytes(payload)

    with pytest.raises(ValueError, match="model_dir"):
        load_model(model_copy, device="cpu")
    assert not marker.exists()
    # Control: the payload is live, so the assertion above could have failed.
    pickle.loads(payload)
    assert marker.exists()


def test_resuming_with_another_lr_schedule_is_refused_by_name(tiny_volume, tmp_path):
    out = tmp_path / "run"
    train_model(tiny_volume, out, model_config=TINY_MODEL, config=tiny_config(2, lr_schedule="constant"),
                intensity=TINY_INTENSITY, progress=False)  # fmt: skip
    before = (out / "latest.json").read_bytes()
    with pytest.raises(ValueError, match=r"^config\.lr_schedule: .*'constant'.*--lr-schedule constant"):
        train_model(tiny_volume, out, model_config=TINY_MODEL, config=tiny_config(3, lr_schedule="cosine"),
                    intensity=TINY_INTENSITY, progress=False)  # fmt: skip
    assert (out / "latest.json").read_bytes() == before  # nothing written
    resumed = train_model(tiny_volume, out, model_config=TINY_MODEL, config=tiny_config(3, lr_schedule="constant"),
                          intensity=TINY_INTENSITY, progress=False)  # fmt: skip
    assert resumed.step == 3


# --------------------------------------------------------------------------- CosineBudget


def _rates(optimizer):
    return [group["lr"] for group in optimizer.param_groups]


def _two_group_optimizer():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    return torch.optim.Adam([{"params": a.parameters(), "lr": 1e-3}, {"params": b.parameters(), "lr": 3e-4}])


def test_cosine_budget_by_steps_is_cosine_annealing():
    ours, ref = _two_group_optimizer(), _two_group_optimizer()
    schedule, reference = CosineBudget(ours, steps=10), torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=10)
    for _ in range(10):
        ours.step(), ref.step(), schedule.step(), reference.step()
        np.testing.assert_allclose(_rates(ours), _rates(ref), rtol=1e-9, atol=1e-15)
    assert _rates(ours) == [0.0, 0.0]
    assert schedule.progress() == 1.0


def test_cosine_budget_by_minutes_reaches_zero_when_the_time_is_spent():
    opt = _two_group_optimizer()
    # One second (the steps would take far longer); the sleeps leave a loaded machine 0.6 s of slack.
    schedule = CosineBudget(opt, steps=10_000, minutes=1 / 60)
    schedule.step()
    assert 0.9e-3 < _rates(opt)[0] <= 1e-3  # a few milliseconds in
    time.sleep(0.4)
    schedule.step()
    assert 0 < _rates(opt)[0] < 0.7e-3 and schedule.count == 2
    time.sleep(0.7)
    schedule.step()
    assert _rates(opt) == [0.0, 0.0] and schedule.progress() == 1.0


def test_cosine_budget_state_carries_steps_and_time_into_a_new_session():
    opt = _two_group_optimizer()
    schedule = CosineBudget(opt, steps=8, minutes=10.0)
    for _ in range(3):
        schedule.step()
    time.sleep(0.05)
    state = json.loads(json.dumps(schedule.state_dict()))  # what a checkpoint stores
    assert state["count"] == 3 and state["elapsed"] >= 0.05 and state["initial"] == [1e-3, 3e-4]
    resumed_opt = _two_group_optimizer()
    resumed = CosineBudget(resumed_opt, steps=8, minutes=10.0)
    resumed.load_state_dict(state)
    assert resumed.count == 3 and resumed.elapsed() >= 0.05
    schedule.step(), resumed.step()
    np.testing.assert_allclose(_rates(resumed_opt), _rates(opt))


def test_cosine_budget_errors():
    opt = _two_group_optimizer()
    with pytest.raises(ValueError, match="steps or minutes"):
        CosineBudget(opt)
    with pytest.raises(ValueError, match="^minutes"):
        CosineBudget(opt, minutes=0.0)
    with pytest.raises(ValueError, match="^steps"):
        CosineBudget(opt, steps=0)


# --------------------------------------------------------------------------- TrainConfig


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(steps=None, minutes=None), "steps or minutes"),
        (dict(loss="wasserstein"), "loss"),
        (dict(hole_shape="circle"), "hole_shape"),
        (dict(holdout=0.51), "holdout"),
        (dict(lr_g=-1e-4), "lr_g"),
        (dict(lr_d=-1e-4), "lr_d"),
        (dict(moments_beta=1.5), "moments_beta"),
        (dict(moments_beta=-0.5), "moments_beta"),
        (dict(lr_schedule="step"), "lr_schedule"),
        (dict(ema=1.0), "ema"),
        (dict(ema=-0.5), "ema"),
        (dict(texture=-1.0), "texture"),
        (dict(texture_fills="scaled"), "texture_fills"),
        (dict(tile_holes=1.5), "tile_holes"),
        (dict(tile_holes=-0.1), "tile_holes"),
    ],
)
def test_train_config_errors_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        TrainConfig(**overrides)


def test_train_config_boundaries_are_accepted():
    assert TrainConfig(holdout=0.5).holdout == 0.5
    assert TrainConfig(lr_g=0.0, lr_d=0.0).lr_g == 0.0
    assert TrainConfig(steps=None, minutes=1.5).steps is None
    assert TrainConfig(steps=None, minutes=1.5).lr_schedule == "cosine"  # decays over the time budget
    assert TrainConfig(moments_beta=1.0).moments_beta == 1.0


def test_train_config_dict_round_trip():
    config = TrainConfig(
        steps=None, minutes=2.5, batch_size=16, lr_g=2e-4, loss="hinge", hole_shape="square",
        axes=[0, 2], holdout=0.25, n_val=8, val_samples=3, seed=7, device="cpu", log_every=5,
    )  # fmt: skip
    assert config.axes == (0, 2)
    data = config.to_dict()
    assert data["axes"] == [0, 2] and data["minutes"] == 2.5 and data["loss"] == "hinge"
    assert TrainConfig.from_dict(json.loads(json.dumps(data))) == config
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


def test_train_config_from_dict_refuses_unknown_keys():
    data = {**TrainConfig().to_dict(), "epochs": 3}
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig.from_dict(data)
    with pytest.raises(ValueError):
        TrainConfig.from_dict([("steps", 3)])


# --------------------------------------------------------------------------- heldout_rows


@pytest.mark.parametrize(
    ("Y", "fraction", "rows"),
    [
        (96, 0.125, 32),  # 12 rows asked, a whole patch held out
        (400, 0.25, 100),
        (200, 0.3, 60),
        (64, 0.5, 32),  # exactly one patch left for training
        (100, 0.0, 32),
    ],
)
def test_heldout_rows_marks_the_bottom_rows(Y, fraction, rows):
    vol = da.zeros((3, Y, 40), dtype=np.uint16, chunks=(2, 30, 25))
    band = heldout_rows(vol, patch=P, fraction=fraction)
    assert isinstance(band, da.Array)
    assert band.shape == vol.shape and band.dtype == bool and band.chunks == vol.chunks
    values = band.compute()
    expected = np.zeros(vol.shape, bool)
    expected[:, Y - rows :, :] = True
    np.testing.assert_array_equal(values, expected)


def test_heldout_rows_refuses_slices_too_small_to_train():
    vol = da.zeros((2, 63, 64), dtype=np.uint8, chunks=(1, 63, 64))
    with pytest.raises(ValueError, match="^volume"):
        heldout_rows(vol, patch=P, fraction=0.1)


def test_train_model_refuses_a_volume_too_small_to_hold_out(tmp_path):
    with pytest.raises(ValueError, match="^volume"):
        train_model(make_phantom((2, 63, 96), seed=0), tmp_path, model_config=TINY_MODEL, config=tiny_config(1), progress=False)


# --------------------------------------------------------------------------- no training patch from the held-out rows


@pytest.mark.parametrize("clean_training_rows", [P - 1, P], ids=["one-row-short", "exactly-one-patch"])
def test_training_never_uses_a_window_touching_the_heldout_rows(tmp_path, clean_training_rows):
    """Mask the whole training region except a strip of clean rows just above the
    held-out band. With P - 1 clean rows, every artifact-free window overlaps the
    held-out band by at least one row, so a sampler that respects the band finds
    nothing and train_model must fail; with P clean rows exactly one window height
    fits, and training runs. A leak of even one held-out row into training would
    make the first case train."""
    Z, Y, X = 2, 96, 96
    config = tiny_config(1, validate_every=1)
    vol = make_phantom((Z, Y, X), seed=1)
    band = heldout_rows(open_volume(vol), patch=P, fraction=config.holdout).compute()
    first_heldout = int(np.argmax(band[0, :, 0]))
    assert first_heldout == Y - P and band[:, first_heldout:].all() and not band[:, :first_heldout].any()
    mask = np.zeros(vol.shape, bool)
    mask[:, : first_heldout - clean_training_rows, :] = True

    def train():
        return train_model(vol, tmp_path, mask=mask, model_config=TINY_MODEL, config=config, progress=False)

    if clean_training_rows < P:
        with pytest.raises(ValueError, match="^mask: no artifact-free region"):
            train()
    else:
        assert train().step == 1


def test_a_model_file_without_calibration_still_loads(model_copy):
    tensors, meta = load_checkpoint(model_copy, "model")
    del meta["ctinpaint"]["calibration"]
    save_checkpoint(model_copy, "model", tensors=tensors, meta=meta)
    assert load_model(model_copy, device="cpu").calibration is None


def test_a_model_file_with_a_bad_calibration_is_refused(model_copy):
    tensors, meta = load_checkpoint(model_copy, "model")
    meta["ctinpaint"]["calibration"]["std_scale"] = -1.0
    save_checkpoint(model_copy, "model", tensors=tensors, meta=meta)
    with pytest.raises(ValueError, match="std_scale"):
        load_model(model_copy, device="cpu")
