"""Tests for the multi-process paths, with real processes: inpainting on a dask.distributed
cluster (LocalCluster worker processes, a worker killed mid-job, resume) and training with
DistributedDataParallel over gloo, started by torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ctinpaint.inpaint import inpaint_volume
from ctinpaint.intensity import IntensityMapping
from ctinpaint.io import save_volume
from ctinpaint.models import build_model, config_for

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[2]


def _model_dir(path: Path) -> Path:
    """A model directory in the format ``train_model`` exports (untrained weights)."""
    from gan_zoo.training import save_checkpoint, state_to_tensors

    torch.manual_seed(0)
    config = config_for("unet", width=4)
    net = build_model(config)
    tensors, networks = {}, {}
    for name, module in {"C": net.conditioner, "G": net.generator, "D": net.discriminator}.items():
        parts, structure = state_to_tensors(f"networks.{name}", module.state_dict())
        tensors.update(parts)
        networks[name] = structure
    meta = {
        "model": config.to_dict(),
        "intensity": IntensityMapping(low=0.0, high=4000.0, dtype="uint16").to_dict(),
        "train": {},
        "model_format_version": 1,
    }
    path.mkdir()
    save_checkpoint(path, "model", tensors=tensors, meta={"networks": networks, "ctinpaint": meta, "step": 0})
    return path


def _volume(path: Path, depth: int = 8) -> Path:
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 4000, (depth, 40, 44)).astype(np.uint16)
    mask = np.zeros(vol.shape, bool)
    for k in range(depth):
        r, c = 4 + 3 * k % 20, 6 + 5 * k % 24
        mask[k, r : r + 6, c : c + 9] = True
    mask[depth // 2, 10:34, 8:40] = True  # larger than the hole: tiled
    save_volume({"volume": vol, "mask": mask}, path, chunks=(2, 40, 44))
    return path


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    root = tmp_path_factory.mktemp("job")
    data = _volume(root / "data.zarr")
    model = _model_dir(root / "model")
    # Workers run torch on one thread (dask sets OMP_NUM_THREADS=1 for them); float32 sums
    # split over another number of threads differ in the last bits, so the threaded
    # reference uses one torch thread too, and then the outputs are equal bit for bit.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = inpaint_volume(
            data / "volume", data / "mask", model, n_samples=16, seed=3, slab=2, out=root / "threads.zarr", workers=2
        )
    finally:
        torch.set_num_threads(threads)
    return data, model, reference


def _same(result, reference) -> None:
    np.testing.assert_array_equal(result.inpainted.compute(), reference.inpainted.compute())
    np.testing.assert_array_equal(result.std.compute(), reference.std.compute())
    assert result.report == reference.report


@pytest.mark.slow
def test_cluster_output_equals_the_threaded_one(job, cluster, tmp_path):
    data, model, reference = job
    with distributed.Client(cluster) as client:
        result = inpaint_volume(
            data / "volume", data / "mask", model, n_samples=16, seed=3, slab=2, out=tmp_path / "out.zarr", scheduler=client
        )
        # Each worker process loaded the model once and kept it.
        cached = client.run(lambda: len(__import__("ctinpaint.inpaint").inpaint._WORKER_MODELS))
    _same(result, reference)
    assert sum(cached.values()) >= 1 and set(cached.values()) <= {0, 1}
    # Also in memory (no ``out``), by the cluster's address.
    in_memory = inpaint_volume(
        data / "volume", data / "mask", model, n_samples=16, seed=3, slab=2, scheduler=cluster.scheduler_address
    )
    _same(in_memory, reference)


def test_rerun_after_an_interrupted_cluster_run_skips_finished_slabs(job, cluster, tmp_path):
    data, model, reference = job

    class Stop(Exception):
        pass

    def stop_after_first(done, total):
        raise Stop

    out = tmp_path / "out.zarr"
    with distributed.Client(cluster) as client:
        with pytest.raises(Stop):
            inpaint_volume(data / "volume", data / "mask", model, n_samples=16, seed=3, slab=2, out=out,
                           scheduler=client, progress=stop_after_first)
        markers = sorted((tmp_path / ".out.zarr.partial" / "slabs").glob("*.json"))
        assert markers
        # Mark the finished slabs' std in the partial output: a re-run that skips them keeps the mark.
        import zarr

        partial = zarr.open_group(str(tmp_path / ".out.zarr.partial"), mode="r+")
        finished = [int(m.stem) for m in markers]
        for index in finished:
            partial["std"][2 * index : 2 * index + 2] = -1.0
        result = inpaint_volume(data / "volume", data / "mask", model, n_samples=16, seed=3, slab=2, out=out,
                                scheduler=client)
    assert not (tmp_path / ".out.zarr.partial").exists()
    std, expected = result.std.compute(), reference.std.compute()
    for index in range(4):
        rows = slice(2 * index, 2 * index + 2)
        if index in finished:
            assert (std[rows] == -1.0).all()
        else:
            np.testing.assert_array_equal(std[rows], expected[rows])
    np.testing.assert_array_equal(result.inpainted.compute(), reference.inpainted.compute())
    assert result.report == reference.report


def test_scheduler_errors(job, tmp_path):
    data, model, _ = job
    from ctinpaint.train import load_model

    with pytest.raises(ValueError, match="scheduler"):
        inpaint_volume(data / "volume", data / "mask", model, n_samples=4, scheduler="local:0")
    with pytest.raises(ValueError, match="scheduler"):
        inpaint_volume(data / "volume", data / "mask", model, n_samples=4, scheduler="my-cluster")
    with pytest.raises(TypeError, match="scheduler"):
        inpaint_volume(data / "volume", data / "mask", model, n_samples=4, scheduler=2)
    with pytest.raises(ValueError, match="model"):
        inpaint_volume(data / "volume", data / "mask", load_model(model, device="cpu"), n_samples=4, scheduler="local:1")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_killed_worker_still_gives_the_same_output(job, cluster, tmp_path):
    data, model, reference = job
    with distributed.Client(cluster) as client:
        done, killed = [], []

        def kill_one_worker():
            while not done and time.monotonic() < deadline:
                time.sleep(0.05)
            victim = sorted(client.scheduler_info()["workers"])[0]
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, 9)
            killed.append(pid)

        deadline = time.monotonic() + 60
        killer = threading.Thread(target=kill_one_worker)
        killer.start()
        result = inpaint_volume(
            data / "volume", data / "mask", model, n_samples=16, seed=3, slab=2, out=tmp_path / "out.zarr",
            scheduler=client, progress=lambda d, t: done.append(d),
        )
        killer.join()
    assert killed, "no worker was killed"
    assert len(done) == 4
    _same(result, reference)
