"""The command line end to end, in temporary folders, as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import zarr

from ctinpaint.cli import main
from ctinpaint.io import open_mask, open_volume, save_volume


def _phantom(tmp_path, *args):
    out = tmp_path / "ph.zarr"
    assert main(["phantom", str(out), "--shape", "6", "96", "96", "--artifacts", "8", *args]) == 0
    return out


def test_phantom_writes_volume_mask_and_truth(tmp_path, capsys):
    out = _phantom(tmp_path, "--seed", "3")
    assert "wrote" in capsys.readouterr().out
    volume = open_volume(out, key="volume").compute()
    truth = open_volume(out, key="truth").compute()
    mask = open_mask(out, key="mask").compute()
    assert volume.shape == (6, 96, 96) and volume.dtype == np.uint16 and mask.dtype == bool
    assert mask.any()
    np.testing.assert_array_equal(volume[~mask], truth[~mask])
    assert not np.array_equal(volume[mask], truth[mask])


def test_phantom_refuses_to_overwrite(tmp_path, capsys):
    out = _phantom(tmp_path)
    assert main(["phantom", str(out), "--shape", "6", "96", "96"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["phantom", str(out), "--shape", "6", "96", "96", "--overwrite", "--dtype", "uint8"]) == 0
    assert open_volume(out, key="volume").dtype == np.uint8


def test_phantom_bad_shape_is_a_clean_error(tmp_path, capsys):
    assert main(["phantom", str(tmp_path / "x.zarr"), "--shape", "0", "96", "96"]) == 2
    err = capsys.readouterr().err
    assert "shape" in err and "Traceback" not in err
    assert not (tmp_path / "x.zarr").exists()


def test_info_on_a_phantom_group(tmp_path, capsys):
    out = _phantom(tmp_path)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "arrays mask, truth, volume" in text
    assert "shape (6, 96, 96)" in text and "uint16" in text
    assert "artifacts in slices along axis 0" in text


def test_info_on_a_tiff_with_a_separate_mask(tmp_path, capsys):
    vol = np.random.default_rng(0).integers(0, 255, (3, 40, 40)).astype(np.uint8)
    mask = np.zeros(vol.shape, bool)
    mask[1, 5:9, 5:9] = True
    mask[2, 20:22, 30:39] = True
    save_volume(vol, tmp_path / "v.tif")
    save_volume(mask, tmp_path / "m.zarr")
    assert main(["info", str(tmp_path / "v.tif"), "--mask", str(tmp_path / "m.zarr")]) == 0
    assert "2 artifacts" in capsys.readouterr().out


def test_info_errors(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.zarr")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["phantom", "info", "train", "inpaint", "evaluate", "demo"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert len(capsys.readouterr().out) > 200


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "ctinpaint.cli", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("ctinpaint ")


@pytest.mark.slow
def test_train_inpaint_evaluate(tmp_path, capsys):
    data = _phantom(tmp_path)
    model = tmp_path / "model"
    assert main(["train", str(data), "--key", "volume", "--mask", str(data), "--mask-key", "mask", "--out", str(model),
                 "--steps", "4", "--batch-size", "8", "--device", "cpu"]) == 0
    assert (model / "model.json").exists()
    out = tmp_path / "filled.zarr"
    assert main(["inpaint", str(data), "--key", "volume", "--mask", str(data), "--mask-key", "mask", "--model", str(model),
                 "--out", str(out), "--samples", "8", "--quantiles", "0.025", "0.975", "--device", "cpu"]) == 0
    volume = open_volume(data, key="volume").compute()
    mask = open_mask(data, key="mask").compute()
    filled = open_volume(out, key="inpainted").compute()
    np.testing.assert_array_equal(filled[~mask], volume[~mask])
    assert (open_volume(out, key="std").compute()[mask] > 0).all()
    assert (out / "report.csv").exists() and (out / "q0_025").exists()
    assert zarr.open_group(str(out), mode="r").attrs["ctinpaint_settings"]["paths"] == 16
    one_path = tmp_path / "one_path.zarr"
    assert main(["inpaint", str(data), "--key", "volume", "--mask", str(data), "--mask-key", "mask", "--model", str(model),
                 "--out", str(one_path), "--samples", "8", "--paths", "1", "--device", "cpu"]) == 0
    assert zarr.open_group(str(one_path), mode="r").attrs["ctinpaint_settings"]["paths"] == 1
    assert main(["inpaint", str(data), "--key", "volume", "--mask", str(data), "--mask-key", "mask", "--model", str(model),
                 "--out", str(tmp_path / "bad.zarr"), "--paths", "0", "--device", "cpu"]) == 2
    assert "paths" in capsys.readouterr().err
    assert main(["evaluate", str(data), "--key", "truth", "--model", str(model), "--holes", "8", "--samples", "8",
                 "--json", str(tmp_path / "eval.json"), "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "psnr" in table.lower() and "biharmonic" in table
    numbers = json.loads((tmp_path / "eval.json").read_text())
    assert numbers["n_holes"] == 8
    # A second identical train command resumes (nothing left to do) instead of starting over.
    assert main(["train", str(data), "--key", "volume", "--out", str(model), "--steps", "4", "--batch-size", "8",
                 "--device", "cpu"]) == 0


def test_train_with_context_then_evaluate(tmp_path, capsys):
    data = _phantom(tmp_path)
    model = tmp_path / "model"
    assert main(["train", str(data), "--key", "volume", "--out", str(model), "--context", "1",
                 "--steps", "2", "--batch-size", "8", "--device", "cpu"]) == 0
    assert json.loads((model / "model.json").read_text())["meta"]["ctinpaint"]["model"]["context"] == 1
    capsys.readouterr()
    assert main(["evaluate", str(data), "--key", "truth", "--model", str(model), "--holes", "4", "--samples", "4",
                 "--device", "cpu"]) == 0
    assert "biharmonic" in capsys.readouterr().out
    assert main(["train", str(data), "--key", "volume", "--out", str(tmp_path / "m2"), "--context", "-1",
                 "--steps", "2", "--device", "cpu"]) == 2
    assert "context must be >= 0" in capsys.readouterr().err


def test_train_texture_and_averaging_flags(tmp_path, capsys):
    data = _phantom(tmp_path)
    model = tmp_path / "model"
    assert main(["train", str(data), "--key", "volume", "--out", str(model), "--texture", "0", "--ema", "0",
                 "--tile-holes", "0.5", "--steps", "2", "--batch-size", "8", "--device", "cpu"]) == 0
    train = json.loads((model / "model.json").read_text())["meta"]["ctinpaint"]["train"]
    assert train["texture"] == 0.0 and train["ema"] == 0.0 and train["tile_holes"] == 0.5
    assert train["lr_schedule"] == "cosine"  # the default
    assert main(["train", str(data), "--key", "volume", "--out", str(tmp_path / "m3"), "--lr-schedule", "constant",
                 "--steps", "2", "--batch-size", "8", "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "m3" / "model.json").read_text())["meta"]["ctinpaint"]["train"]["lr_schedule"] == "constant"
    assert main(["train", str(data), "--key", "volume", "--out", str(tmp_path / "m2"), "--ema", "1",
                 "--steps", "2", "--device", "cpu"]) == 2
    assert "ema must be below 1" in capsys.readouterr().err


def test_inpaint_with_a_missing_model_is_a_clean_error(tmp_path, capsys):
    data = _phantom(tmp_path)
    code = main(["inpaint", str(data), "--key", "volume", "--mask", str(data), "--mask-key", "mask",
                 "--model", str(tmp_path / "nomodel"), "--out", str(tmp_path / "o.zarr")])
    assert code == 2
    assert "nomodel" in capsys.readouterr().err
    assert not (tmp_path / "o.zarr").exists()


@pytest.mark.slow
def test_demo_on_the_phantom(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--minutes", "0.05", "--samples", "16", "--device", "cpu"]) == 0
    for name in ("artifacts.png", "loss_curves.png", "metrics.txt", "metrics.json", "inpainted.zarr", "model"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["artifacts"]["n_artifacts"] >= 30
    assert 0 < metrics["artifacts"]["gan"]["mae"] < 1
    text = capsys.readouterr().out
    assert "biharmonic" in text and "held-out" in text
    # A second run refuses to clobber the folder unless asked.
    assert main(["demo", "--out", str(out), "--minutes", "0.05", "--samples", "16"]) == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep me")
    assert main(["demo", "--out", str(tmp_path / "other"), "--overwrite", "--minutes", "0.05"]) == 2
    assert (tmp_path / "other" / "precious.txt").read_text() == "keep me"


@pytest.mark.slow
def test_demo_on_real_slices(tmp_path, sic_dir):
    out = tmp_path / "real"
    assert main(["demo", "--out", str(out), "--data", str(sic_dir), "--minutes", "0.05", "--samples", "8",
                 "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "slice 2" in metrics["source"]
    assert (out / "artifacts.png").exists()
