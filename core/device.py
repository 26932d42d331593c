"""Choosing the training device, and reading GPU load for the dashboard."""

from __future__ import annotations

import contextlib

import torch

from .records import GpuStats


class DeviceError(RuntimeError):
    """A device that was asked for and is not there."""


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when available, else CPU; 'cuda' without CUDA is an error, not a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def gpu_stats(device: torch.device) -> GpuStats | None:
    """Memory and utilisation of a CUDA device, or None on CPU."""
    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    stats = GpuStats(memory_used_mb=(total - free) / 2**20, memory_total_mb=total / 2**20)
    with contextlib.suppress(Exception):  # needs pynvml; memory alone is still useful
        stats["utilization_pct"] = float(torch.cuda.utilization(device))
    return stats


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
