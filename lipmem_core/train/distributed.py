"""Process setup shared by both training CLIs: seeding, torchrun/DDP, and a resumable sampler.

One process: `python -m lipmem_core.train ...`. Several: `torchrun --nproc_per_node N -m
lipmem_core.train ...` with the same arguments; torchrun's environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR/PORT) selects DistributedDataParallel over gloo (CPU) or nccl (GPU).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: rank r of `world_size`, on `device`."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes logs, checkpoints and progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", threads: int | None = None) -> DistEnv:
    """Join the torchrun process group if there is one; pick the device and CPU threads.

    device: "auto" (CUDA if available), "cpu" or "cuda". On CPU the cores are split evenly
    between the processes of this node unless `threads` is given.
    """
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no GPU; use --device cpu")
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if not use_cuda:
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", str(world if world > 1 else 1)))
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // per_node))
    single_blas_thread()
    return DistEnv(rank, world, local_rank, dev)


def single_blas_thread(_worker_id: int | None = None) -> None:
    """One thread for numpy/scipy's BLAS (torch keeps its own pool); a data-loader worker_init_fn.

    The data code only does small matmuls (the mel filterbank); with several BLAS threads on
    a busy CPU they spin and waste CPU time (docs/ARCHITECTURE.md "Measured figures").
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def shutdown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch. Same seed on every rank: identical initial weights."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def wrap_ddp(module: nn.Module, env: DistEnv) -> nn.Module:
    """DistributedDataParallel around a trainable module when there are several processes."""
    if not env.distributed:
        return module
    ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper (what checkpoints store)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True on every rank if `flag` is True on any rank (a collective: all ranks must call)."""
    if not env.distributed:
        return flag
    t = torch.tensor([float(flag)], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(values: dict[str, float], env: DistEnv) -> dict[str, float]:
    """Average scalar logs over ranks (a collective; keys must match on every rank)."""
    if not env.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    return {k: float(v) / env.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def broadcast_from_first(tensors: list[torch.Tensor], env: DistEnv) -> None:
    """Overwrite each tensor in place with rank 0's copy (a collective: all ranks must call)."""
    if env.distributed:
        for t in tensors:
            dist.broadcast(t.data, src=0)


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


class ResumableSampler(DistributedSampler):
    """DistributedSampler that yields `(epoch, index)` keys and can start mid-epoch.

    The epoch in the key seeds each sample's own randomness (see data/datasets.py). `skip`
    drops this rank's first samples of the epoch, so a resumed run continues exactly where the
    previous one stopped. With one process it is a plain seeded shuffle.
    """

    def __init__(self, dataset: Dataset, env: DistEnv, seed: int, shuffle: bool = True) -> None:
        super().__init__(
            dataset, num_replicas=env.world_size, rank=env.rank, shuffle=shuffle, seed=seed, drop_last=True
        )
        self.skip = 0

    def set_position(self, epoch: int, skip: int) -> None:
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())[self.skip :]
        return iter([(self.epoch, int(i)) for i in indices])

    def __len__(self) -> int:
        return self.num_samples - self.skip
