"""Tests for the ``gan-zoo`` command line, run as a real subprocess on real (small) data sets."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def gan_zoo(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "gan_zoo.cli", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def test_console_script_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gan-zoo"] == "gan_zoo.cli:main"


def test_train_sample_evaluate_a_cgan_on_the_digits(tmp_path):
    run = tmp_path / "run"
    out = gan_zoo("train", "cgan", "--data", "digits", "--out", run, "--steps", "3", "--batch-size", "8", "--quiet",
                  "--set", "hidden=[16,32]", "--set", "latent_dim=8", "--set", "loss=lsgan")  # fmt: skip
    assert "trained cgan for 3 steps" in out.stdout
    model_json = json.loads((run / "model.json").read_text())
    config = model_json["meta"]["model"]["config"]
    assert (config["image_size"], config["n_classes"], config["hidden"], config["loss"]) == (28, 10, [16, 32], "lsgan")
    assert model_json["meta"]["extra"]["data_spec"] == "digits"

    gan_zoo("sample", run, "--n", "20", "--out", tmp_path / "grid.png", "--labels", "7", "--nrow", "5")
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.shape == (2 * (4 * 30 + 2), 2 * (5 * 30 + 2))  # 4 rows of 5 digits of 28 px, padding 2, scale 2

    result = json.loads(gan_zoo("evaluate", run, "--n", "50").stdout)
    assert result["model"] == "cgan" and 0 <= result["conditional_accuracy"] <= 1
    assert result["fd"] > 0 and len(result["shares"]) == 10


def test_train_and_sample_a_cyclegan_on_thin_and_bold_digits(tmp_path):
    run = tmp_path / "run"
    gan_zoo("train", "cyclegan", "--data", "thin-bold:digits", "--out", run, "--steps", "2", "--batch-size", "2", "--quiet",
            "--set", "width=4", "--set", "n_blocks=1", "--set", "d_width=4")  # fmt: skip
    config = json.loads((run / "model.json").read_text())["meta"]["model"]["config"]
    assert (config["image_size"], config["channels"], config["d_layers"]) == (28, 1, 2)
    gan_zoo("sample", run, "--n", "4", "--out", tmp_path / "pairs.png", "--target", "B")
    assert np.asarray(Image.open(tmp_path / "pairs.png")).shape == (2 * (30 + 2), 2 * (8 * 30 + 2))
    result = json.loads(gan_zoo("evaluate", run, "--n", "20").stdout)
    assert 0 <= result["identity_kept"] <= 1 and result["n"] == 20


@pytest.fixture
def celeba_root(tmp_path):
    """Four aligned 178x218 'faces' with two attributes, in CelebA's layout."""
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    lines = ["4", "Blond_Hair Male"]
    for i in range(4):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(np.full((218, 178, 3), 60 * i, np.uint8)).save(root / "img_align_celeba" / name)
        lines.append(f"{name} {1 if i % 2 else -1} {1 if i > 1 else -1}")
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def test_stargan_on_celeba_attributes_and_a_missing_attribute(celeba_root, tmp_path):
    run = tmp_path / "run"
    gan_zoo("train", "stargan", "--data", f"celeba:{celeba_root}", "--size", "16", "--attributes", "Blond_Hair", "Male",
            "--out", run, "--steps", "1", "--batch-size", "2", "--quiet", "--set", "width=4", "--set", "d_width=4",
            "--set", "n_blocks=1")  # fmt: skip
    config = json.loads((run / "model.json").read_text())["meta"]["model"]["config"]
    assert (config["labels"], config["c_dim"], config["domain_names"], config["channels"]) == ("attributes", 2, ["Blond_Hair", "Male"], 3)
    bad = gan_zoo("train", "stargan", "--data", f"celeba:{celeba_root}", "--attributes", "Blond_Hair", "Bald",
                  "--out", tmp_path / "bad", "--steps", "1", check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "attributes: unknown ['Bald']; valid attributes are ['Blond_Hair', 'Male']" in bad.stderr


def test_bad_input_gives_one_line_and_status_2(tmp_path, capsys):
    from gan_zoo.cli import main

    cases = [
        (("train", "dcgan", "--data", "imagenet", "--out", tmp_path / "a", "--steps", "1"), "spec: unknown data set"),
        (("train", "dcgan", "--data", "digits", "--out", tmp_path / "b", "--steps", "1", "--set", "width"), "--set: expected KEY=VALUE"),
        (("train", "dcgan", "--data", "digits", "--out", tmp_path / "c", "--steps", "1", "--set", "depth=3"), "config: dcgan has no option(s) ['depth']"),
        (("train", "dcgan", "--data", "digits", "--out", tmp_path / "d"), "steps or minutes"),
        (("sample", tmp_path, "--out", tmp_path / "x.png"), "directory: "),
        (("evaluate", tmp_path / "missing"), "directory: "),
    ]
    for args, message in cases:
        assert main([str(a) for a in args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    # The same through a real process: one line on stderr, status 2, no traceback.
    result = gan_zoo("sample", tmp_path, "--out", tmp_path / "x.png", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.startswith("gan-zoo sample: error: directory:")


def test_a_failed_write_gives_one_line_and_status_1(tmp_path):
    (tmp_path / "afile").write_text("")
    result = gan_zoo("train", "dcgan", "--data", "digits", "--out", tmp_path / "afile" / "run", "--steps", "1",
                     "--quiet", check=False)  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("gan-zoo train: error: ") and "Not a directory" in result.stderr
