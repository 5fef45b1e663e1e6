"""Fixtures of the napari plugin tests: a real viewer under Xvfb (pytest-xvfb), a tiny trained model."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# Mesa (the software OpenGL under Xvfb) writes a shader cache into the user's home by default.
_CACHE = tempfile.mkdtemp(prefix="ctinpaint-test-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ.setdefault("MESA_SHADER_CACHE_DIR", _CACHE)
os.environ.setdefault("XDG_CACHE_HOME", _CACHE)

#: The tiny network every test here uses: trains in seconds, samples in milliseconds.
TINY_WIDTH = 4
TINY_TRAIN = dict(batch_size=8, n_val=4, val_samples=2, validate_every=1000, checkpoint_every=1000, log_every=1)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The tests share 2 cores with napari's rendering thread; more intra-op threads only thrash."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_phantom():
    """(6, 64, 64) uint16 phantom with 4 artifacts: ``Corrupted(volume, mask, truth)``."""
    from ctinpaint import add_artifacts, make_phantom

    return add_artifacts(make_phantom((6, 64, 64), seed=3), n=4, seed=3)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_phantom, tmp_path_factory):
    """A model folder trained for 4 steps on the tiny phantom (read-only for the tests)."""
    from ctinpaint import TrainConfig, config_for, train_model

    out = tmp_path_factory.mktemp("tiny_model")
    train_model(tiny_phantom.volume, out, mask=tiny_phantom.mask, model_config=config_for("unet", width=TINY_WIDTH),
                config=TrainConfig(steps=4, device="cpu", **TINY_TRAIN), progress=False)  # fmt: skip
    return out


@pytest.fixture
def tiny_training() -> dict:
    """TrainRequest overrides for the tiny network: ``model_overrides`` and ``train_overrides``."""
    return {"model_overrides": {"width": TINY_WIDTH}, "train_overrides": dict(TINY_TRAIN)}


@pytest.fixture
def errors_shown():
    """Messages of the error notifications shown during the test."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    start = len(notification_manager.records)

    def messages():
        return [n.message for n in notification_manager.records[start:] if n.severity == NotificationSeverity.ERROR]

    return messages
