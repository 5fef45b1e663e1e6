"""The shared training machinery: one loop, checkpoints that are data, devices.

Public names
------------
run_training, Phase, LoopConfig, TrainResult, load_networks, ema_update
    the training loop driven by phases, with exact resume, and a moving
    average of weights for a phase's ``after_step`` (:mod:`.loop`)
save_checkpoint, load_checkpoint, state_to_tensors, state_from_tensors,
rng_state_to_tensors, rng_state_from_tensors
    safetensors + JSON checkpoints, loaded without pickle (:mod:`.checkpoint`)
resolve_device, autocast, to_device
    device names, bf16 autocast on CUDA, batches to a device (:mod:`.devices`)
init_distributed, rank_and_world, data_parallel
    several processes under torchrun with DistributedDataParallel (:mod:`.distributed`)
"""

from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    load_checkpoint,
    rng_state_from_tensors,
    rng_state_to_tensors,
    save_checkpoint,
    state_from_tensors,
    state_to_tensors,
)
from .devices import autocast, resolve_device, to_device
from .distributed import data_parallel, init_distributed, rank_and_world
from .loop import LoopConfig, Phase, TrainResult, ema_update, load_networks, run_training

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "LoopConfig",
    "Phase",
    "TrainResult",
    "autocast",
    "data_parallel",
    "ema_update",
    "init_distributed",
    "load_checkpoint",
    "load_networks",
    "rank_and_world",
    "resolve_device",
    "rng_state_from_tensors",
    "rng_state_to_tensors",
    "run_training",
    "save_checkpoint",
    "state_from_tensors",
    "state_to_tensors",
    "to_device",
]
