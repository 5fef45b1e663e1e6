"""Training on several processes: ``torchrun`` and DistributedDataParallel.

``torchrun --nproc_per_node N script`` starts N processes and tells each its
place through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``). Three small pieces make the shared loop use
them:

- :func:`init_distributed` joins the process group those variables describe
  (``env://``; NCCL on CUDA, gloo on the CPU) and does nothing in a single
  process;
- :func:`rank_and_world` says where this process stands (0 and 1 alone);
- :func:`data_parallel` wraps a network in
  :class:`torch.nn.parallel.DistributedDataParallel`, whose backward pass
  averages gradients over the processes, so every process takes the same
  optimizer step. A loss must call the wrapper; checkpoints keep the bare
  network. In a single process the network itself is returned.

:func:`gan_zoo.training.run_training` does the rest when a process group is
up: each rank seeds its random generators with ``seed + rank`` (different
noise and batches per rank, rank 0 as in a single process), only rank 0
writes logs, validation results, previews and checkpoints, the stop decision
is taken by rank 0 and broadcast, and every rank resumes from the same
``latest`` checkpoint.
"""

from __future__ import annotations

import atexit
import os

import torch
from torch import nn

__all__ = ["init_distributed", "rank_and_world", "data_parallel"]


def init_distributed(device: str | torch.device = "auto") -> bool:
    """Join the process group ``torchrun`` describes in the environment, if any.

    Parameters
    ----------
    device : str or torch.device, default "auto"
        Where training runs (see :func:`~gan_zoo.training.resolve_device`):
        CUDA uses the NCCL backend and makes ``cuda:LOCAL_RANK`` this
        process's current device; the CPU uses gloo.

    Returns
    -------
    bool
        True when this process is one of several (the group is up, now or
        before); False in a single process (``WORLD_SIZE`` unset or 1).

    Raises
    ------
    ValueError
        ``WORLD_SIZE`` > 1 with CUDA asked for and fewer GPUs than
        ``LOCAL_RANK`` + 1.

    Examples
    --------
    >>> init_distributed("cpu")          # not started by torchrun
    False
    """
    import torch.distributed as dist

    from .devices import resolve_device

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    device = resolve_device(device)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ValueError(
                f"device: LOCAL_RANK {local} needs GPU {local}, but this node has {torch.cuda.device_count()}; "
                "start at most one process per GPU (torchrun --nproc_per_node)"
            )
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://")
    # A process that exits with its group alive can abort in the backend's threads at
    # interpreter shutdown ("terminate called without an active exception" from gloo).
    atexit.register(_destroy_process_group)
    return True


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes: ``(0, 1)`` without a process group.

    Examples
    --------
    >>> rank_and_world()
    (0, 1)
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def data_parallel(network: nn.Module) -> nn.Module:
    """``network`` wrapped in DistributedDataParallel when there are several processes.

    Call it after the network is on its device (the wrapper broadcasts rank
    0's parameters and buffers, so every rank starts from the same weights).
    Attributes of ``network`` that are not parameters, buffers or submodules
    are not reachable through the wrapper; use ``wrapper.module``.

    Parameters
    ----------
    network : torch.nn.Module

    Returns
    -------
    torch.nn.Module
        The wrapper, or ``network`` itself in a single process.

    Examples
    --------
    >>> net = nn.Linear(2, 1)
    >>> data_parallel(net) is net        # a single process
    True
    """
    if rank_and_world()[1] == 1:
        return network
    device = next(network.parameters()).device
    ids = [device] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(network, device_ids=ids)
