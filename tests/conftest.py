"""Shared fixtures: the real micro-CT slices beside the repository, when present; one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest

#: ``../shared/data`` relative to the repository root.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIC_DIR = SHARED_DATA / "sic_diamonds"


@pytest.fixture
def sic_dir() -> Path:
    """Folder of the three real SiC/diamond slices; skips the test when absent."""
    if not (SIC_DIR / "slice24.png").exists():
        pytest.skip(f"real SiC slices not found in {SIC_DIR} (the shared data folder is not beside this checkout)")
    return SIC_DIR


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one intra-op thread for a module, as the subprocesses its tests start (OMP_NUM_THREADS=1)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
