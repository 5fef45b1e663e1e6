"""Tests for gan_zoo.api: train on the shared loop, exact resume, model files, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from ._tiny_models import TINY, registry_name, tiny_data

import gan_zoo
from gan_zoo.data import ImageData

KEYS = sorted(TINY)


def _train(key, out, steps, **kwargs):
    model = gan_zoo.build(registry_name(key), seed=0, **TINY[key])
    options = dict(batch_size=4, progress=False, log_every=1, checkpoint_every=1000, seed=3)
    return model, gan_zoo.train(model, tiny_data(key), steps=steps, out=out, **{**options, **kwargs})


class _Crash(Exception):
    pass


def _crashing_at(model, crash_step):
    """Make the model's first phase raise at ``crash_step``, like a killed process."""
    build_phases = model.training_phases

    def training_phases(**kwargs):
        phases = build_phases(**kwargs)
        loss = phases[0].loss

        def crashing(batch, step):
            if step == crash_step:
                raise _Crash
            return loss(batch, step)

        phases[0].loss = crashing
        return phases

    model.training_phases = training_phases
    return model


@pytest.mark.parametrize("key", ["cgan", "cyclegan", "stargan"])
def test_interrupted_and_resumed_run_is_bit_identical(key, tmp_path):
    whole, _ = _train(key, tmp_path / "whole", 6, checkpoint_every=3)
    crashed = _crashing_at(gan_zoo.build(registry_name(key), seed=0, **TINY[key]), 4)
    with pytest.raises(_Crash):
        gan_zoo.train(crashed, tiny_data(key), steps=6, out=tmp_path / "parts", batch_size=4, progress=False,
                      log_every=1, checkpoint_every=3, seed=3)  # fmt: skip
    resumed, result = _train(key, tmp_path / "parts", 6, checkpoint_every=3)  # a fresh model, same arguments
    assert result.resumed_from == 3 and result.step == 6
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name  # networks and, for CycleGAN, the image pools
    first = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    second = [json.loads(line) for line in (tmp_path / "parts" / "log.jsonl").read_text().splitlines()]
    strip = lambda lines: [{k: v for k, v in line.items() if k != "elapsed"} for line in lines]  # noqa: E731
    assert strip(first) == strip(second)


@pytest.mark.parametrize("key", KEYS)
def test_trained_model_loads_back_identical(key, tmp_path):
    model, _ = _train(key, tmp_path, 2)
    loaded = gan_zoo.load(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    assert loaded.meta["step"] == 2 and loaded.meta["data"]
    if model.kind == "generative":
        assert torch.equal(loaded.sample(5, seed=1), model.sample(5, seed=1))
    else:
        x = torch.rand(2, 1, 28, 28) * 2 - 1
        target = "B" if key == "cyclegan" else ([1.0, 0.0] if "attributes" in key else 1)
        assert torch.equal(loaded.translate(x, target=target), model.translate(x, target=target))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "model.json" in files and any(f.startswith("model.") and f.endswith(".safetensors") for f in files)
    assert not any(f.endswith((".pt", ".pth", ".pkl")) for f in files)


def test_model_file_holds_the_networks_but_not_the_image_pools(tmp_path):
    _train("cyclegan", tmp_path, 1)
    from gan_zoo.training import load_checkpoint

    tensors, meta = load_checkpoint(tmp_path, "model")
    assert {key.split(".")[0] for key in tensors} == {"G_AB", "G_BA", "D_A", "D_B"}
    assert meta["model"]["name"] == "cyclegan" and meta["model"]["config"]["pool_size"] == 3
    latest, _ = load_checkpoint(tmp_path, "latest")
    assert any(key.startswith("networks.pool_A") for key in latest)  # resumable pool


def test_previews_are_written_at_the_interval(tmp_path):
    _train("cgan", tmp_path, 4, preview_every=2)
    assert sorted(p.name for p in (tmp_path / "previews").iterdir()) == ["step_0000002.png", "step_0000004.png"]


# --------------------------------------------------------------------------- bad input


def test_wrong_image_size_is_named(tmp_path):
    model = gan_zoo.build("dcgan", **TINY["dcgan"])
    with pytest.raises(ValueError, match=r"data are 32x32 pixels but the model was built for 28x28"):
        gan_zoo.train(model, ImageData(torch.zeros(4, 1, 32, 32)), steps=1, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"images are 32x32"):
        gan_zoo.build("cyclegan", **TINY["cyclegan"]).translate(torch.zeros(1, 1, 32, 32))
    assert not (tmp_path / "latest.json").exists()


def test_grayscale_into_an_rgb_model_is_named(tmp_path):
    model = gan_zoo.build("dcgan", image_size=28, channels=3, width=4)
    with pytest.raises(ValueError, match=r"data has 1 channel\(s\) \(grayscale\) but the model was built for 3 \(RGB\)"):
        gan_zoo.train(model, ImageData(torch.zeros(4, 1, 28, 28)), steps=1, out=tmp_path, progress=False)
    rgb = gan_zoo.build("stargan", **{**TINY["stargan"], "channels": 3})
    with pytest.raises(ValueError, match="images has 1 channel"):
        rgb.translate(torch.zeros(2, 1, 28, 28), target=0)


def test_labels_out_of_range_are_named(tmp_path):
    model = gan_zoo.build("cgan", **TINY["cgan"])  # 3 classes
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 2\]"):
        model.sample(2, labels=[0, 3])
    with pytest.raises(ValueError, match="labels has 3 entries but n is 2"):
        model.sample(2, labels=[0, 1, 2])
    with pytest.raises(TypeError, match="labels"):
        model.sample(2, labels=[0.5, 1.0])
    ten_classes = ImageData(torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 9, 2]), tuple("0123456789"))
    with pytest.raises(ValueError, match=r"data: labels run from 0 to 9, outside the model's 3 classes"):
        gan_zoo.train(model, ten_classes, steps=1, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="data: cgan needs int64 class labels"):
        gan_zoo.train(model, ImageData(torch.zeros(4, 1, 28, 28)), steps=1, out=tmp_path, progress=False)
    stargan = gan_zoo.build("stargan", **TINY["stargan"])
    with pytest.raises(ValueError, match=r"target must be class indices in \[0, 2\]"):
        stargan.translate(torch.zeros(1, 1, 28, 28), target=5)
    with pytest.raises(ValueError, match="target: unknown domain"):
        stargan.translate(torch.zeros(1, 1, 28, 28), target="bold")
    with pytest.raises(ValueError, match="labels: gan is unconditional"):
        gan_zoo.build("gan", **TINY["gan"]).sample(2, labels=[0, 1])
    with pytest.raises(ValueError, match="target must be 'A' or 'B'"):
        gan_zoo.build("cyclegan", **TINY["cyclegan"]).translate(torch.zeros(1, 1, 28, 28), target="C")


def test_data_of_the_wrong_kind_is_named(tmp_path):
    with pytest.raises(TypeError, match="data: cyclegan trains on a pair"):
        gan_zoo.train(gan_zoo.build("cyclegan", **TINY["cyclegan"]), tiny_data("gan"), steps=1, out=tmp_path)
    with pytest.raises(TypeError, match="DomainData is StarGAN's"):
        gan_zoo.train(gan_zoo.build("dcgan", **TINY["dcgan"]), tiny_data("stargan"), steps=1, out=tmp_path)
    with pytest.raises(ValueError, match=r"data: stargan with labels='attributes' needs float \(N, 2\)"):
        gan_zoo.train(gan_zoo.build("stargan", **TINY["stargan-attributes"]), tiny_data("cgan"), steps=1, out=tmp_path)
    with pytest.raises(TypeError, match="model must be a gan_zoo model"):
        gan_zoo.train(torch.nn.Linear(2, 2), tiny_data("gan"), steps=1, out=tmp_path)
    with pytest.raises(ValueError, match="steps or minutes"):
        gan_zoo.train(gan_zoo.build("gan", **TINY["gan"]), tiny_data("gan"), out=tmp_path)


def test_resuming_another_models_run_is_refused(tmp_path):
    _train("gan", tmp_path, 1)
    other = gan_zoo.build("gan", **{**TINY["gan"], "latent_dim": 9})
    with pytest.raises(ValueError, match="out: .* holds a training run of another model"):
        gan_zoo.train(other, tiny_data("gan"), steps=2, out=tmp_path, progress=False)


def test_mismatched_or_missing_model_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="directory: .* holds no readable gan_zoo model"):
        gan_zoo.load(tmp_path / "nothing")
    _train("dcgan", tmp_path, 1)
    path = tmp_path / "model.json"
    document = json.loads(path.read_text())
    document["meta"]["model"]["config"]["width"] = 8  # weights were trained with width 4
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"directory: the weights of network 'G' .* do not match the stored config"):
        gan_zoo.load(tmp_path)
    document["meta"]["model"]["config"]["depth"] = 3
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"directory: the config stored .* unknown keys \['depth'\]"):
        gan_zoo.load(tmp_path)
    document["meta"]["model"] = {"name": "vae", "config": {}, "format_version": 1}
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="unknown model 'vae'"):
        gan_zoo.load(tmp_path)
    document["meta"]["model"]["format_version"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="newer gan_zoo"):
        gan_zoo.load(tmp_path)
