"""Tests for gan_zoo.training.devices: device names, autocast, moving batches."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import pytest
import torch

from gan_zoo.training import autocast, resolve_device, to_device

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def one_fake_gpu(monkeypatch):
    """CUDA reported as present with one device (nothing is ever run on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_auto_is_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


def test_auto_is_cuda_with_cuda(one_fake_gpu):
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("name", ["cpu", torch.device("cpu")])
def test_cpu_is_accepted(name):
    assert resolve_device(name) == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_names_device(no_cuda, name):
    with pytest.raises(ValueError, match="device=.*CUDA is not available"):
        resolve_device(name)


def test_cuda_index_is_checked(one_fake_gpu):
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match=r"device='cuda:1'.*1 CUDA device"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("name", ["gpu", "CPU", "cuda:", "cuda:-1", "cuda:x", "mps", "", " cpu"])
def test_unknown_strings_are_refused(name):
    with pytest.raises(ValueError, match="device must be"):
        resolve_device(name)


@pytest.mark.parametrize("bad", [0, None, 1.5])
def test_non_string_is_a_type_error(bad):
    with pytest.raises(TypeError, match="device"):
        resolve_device(bad)


def test_autocast_is_a_no_op_on_cpu():
    a = torch.randn(4, 4)
    with autocast(torch.device("cpu"), enabled=True):
        assert not torch.is_autocast_enabled("cpu")
        assert (a @ a).dtype == torch.float32
    # The same matmul under real CPU autocast would be bf16: the check above can fail.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16


@needs_cuda
def test_autocast_is_bf16_on_cuda():
    a = torch.randn(4, 4, device="cuda")
    with autocast(torch.device("cuda"), enabled=True):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(torch.device("cuda"), enabled=False):
        assert (a @ a).dtype == torch.float32


class Pair(NamedTuple):
    image: object
    label: object


def test_to_device_rebuilds_structures_and_converts_arrays():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    readonly = np.ones(3, dtype=np.int64)
    readonly.flags.writeable = False
    batch = {
        "pair": Pair(array, torch.tensor([1, 2])),
        "list": [readonly, "text", 7],
        "ordered": OrderedDict(x=np.zeros(2, np.uint8)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when wrapping a read-only array
        moved = to_device(batch, "cpu")
    assert isinstance(moved["pair"], Pair)
    assert isinstance(moved["pair"].image, torch.Tensor) and moved["pair"].image.dtype == torch.float32
    assert torch.equal(moved["pair"].image, torch.from_numpy(array))
    assert moved["list"][1:] == ["text", 7]
    assert moved["list"][0].dtype == torch.int64
    assert isinstance(moved["ordered"], OrderedDict) and moved["ordered"]["x"].dtype == torch.uint8
    # the input is not modified
    assert isinstance(batch["pair"].image, np.ndarray) and isinstance(batch["list"][0], np.ndarray)


def test_to_device_refuses_object_arrays():
    with pytest.raises(TypeError, match="dtype object"):
        to_device(np.array([object()]), "cpu")


@needs_cuda
def test_to_device_copies_pinned_batches_to_cuda():
    pinned = torch.randn(16, 3).pin_memory()
    moved = to_device((pinned, np.ones(2)), "cuda")
    torch.cuda.synchronize()
    assert moved[0].is_cuda and moved[1].is_cuda
    assert torch.equal(moved[0].cpu(), pinned)
