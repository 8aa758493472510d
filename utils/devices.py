"""Devices, and the process group when launched with torchrun."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when available) as a torch.device, checked."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r}: expected cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif device.type != "cpu":
        raise ValueError(f"device {str(device)!r}: expected cpu, cuda, cuda:N or auto")
    return device


def device_argument(text: str) -> str:
    """The `type` of a --device command-line option: the text, checked by resolve_device, so that a
    bad or unavailable device is a usage error naming the option (argparse: exit status 2)."""
    try:
        resolve_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


@dataclass
class Distributed:
    """Where this process stands: rank 0 of 1 outside torchrun."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sums of `values` over the processes (float64)."""
        if not self.enabled:
            return [float(v) for v in values]
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's decision, on every rank."""
        if not self.enabled:
            return flag
        tensor = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(tensor, src=0)
        return bool(tensor.item())

    def all_gather(self, obj) -> list:
        if not self.enabled:
            return [obj]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def close(self) -> None:
        """Leave the process group together: a rank that tore down its gloo connections while rank 0
        still evaluated sometimes aborted at exit ("terminate called without an active exception")."""
        if self.enabled and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def setup_distributed(device: str) -> Distributed:
    """The process group under torchrun (WORLD_SIZE set): NCCL on CUDA, one GPU per local rank,
    gloo on CPU; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(0, 1, resolve_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    target = resolve_device(device)
    if target.type == "cuda":
        target = torch.device("cuda", local_rank)
        torch.cuda.set_device(target)
    # A long timeout: the other ranks wait at a barrier while rank 0 prepares the data.
    dist.init_process_group("nccl" if target.type == "cuda" else "gloo", rank=rank, world_size=world_size,
                            timeout=timedelta(hours=2))
    return Distributed(rank, world_size, target)
