"""Choosing the training device, and reading GPU load for the dashboard."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import torch

from ffterm_core.records import GpuStats


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


@cache
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return frozenset(value.split())
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether the device multiplies bfloat16 natively (else bf16 is emulated and slower than float32).

    CPU: AVX-512 BF16 or AMX (x86), the bf16 extension (ARM); an AVX2-only CPU ran the bf16 FF
    layer-epoch 6.5× slower than float32.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))  # torch leaves it unannotated
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})


def fp32_matmul_precision(device: torch.device) -> str:
    """What torch runs float32 matmuls in on `device` now: 'ieee' (true float32), 'tf32' or 'bf16'.

    Read through the current API (`torch.backends.<backend>.matmul.fp32_precision`), which also
    reflects `torch.set_float32_matmul_precision`, `torch.backends.fp32_precision` and the
    TORCH_ALLOW_TF32_CUBLAS_OVERRIDE environment variable; 'none' is the unset default, IEEE.
    """
    mkldnn = torch.backends.mkldnn.matmul  # type: ignore[attr-defined]  # set by torch at import, not in its stubs
    backend = torch.backends.cuda.matmul if device.type == "cuda" else mkldnn
    value = str(backend.fp32_precision)
    return "ieee" if value == "none" else value


def effective_precision(precision: str, device: torch.device) -> str:
    """What a run's training matmuls run in under :func:`matmul_precision`: 'bf16', 'tf32' or 'ieee'."""
    if precision == "bf16":
        return "bf16"
    with matmul_precision(precision, device):
        return fp32_matmul_precision(device)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device would run slower than float32, or not at all, and an fp32 run
    whose float32 matmuls torch was set to round (one line)."""
    if precision == "fp32" and (actual := fp32_matmul_precision(device)) != "ieee":
        raise DeviceError(
            f"precision fp32: float32 matmuls on {describe(device)} are set to run in {actual}, so the run "
            "would not be float32 (set by TORCH_ALLOW_TF32_CUBLAS_OVERRIDE, torch.set_float32_matmul_precision "
            "or torch.backends' fp32_precision); unset that, or ask for precision tf32"
        )
    if precision == "bf16" and not native_bf16(device):
        raise DeviceError(
            f"precision bf16: {describe(device)} has no native bfloat16 arithmetic, where bf16 runs several "
            "times slower than fp32; use precision fp32 here (bf16 pays off on GPUs and AVX-512 BF16/AMX CPUs)"
        )
    if precision == "tf32" and not (device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8):
        raise DeviceError(
            f"precision tf32: {describe(device)} has no TF32 matmuls (an Ampere or newer NVIDIA GPU has); "
            "use precision fp32 here"
        )


@contextlib.contextmanager
def matmul_precision(precision: str, device: torch.device, autocast_cache: bool = True) -> Iterator[None]:
    """Training matmuls in the run's precision: fp32, tf32 (CUDA matmuls with TF32 inputs) or bf16 (autocast).

    The setting is restored on exit, so evaluation and analysis stay in float32. `autocast_cache`
    False while a CUDA graph is captured (its cast weights must not outlive the capture).
    """
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=autocast_cache):
            yield
    elif precision == "tf32":
        # the current API only: on torch >= 2.9 reading the legacy `allow_tf32` after it raises
        before = torch.backends.cuda.matmul.fp32_precision
        torch.backends.cuda.matmul.fp32_precision = "tf32"
        try:
            yield
        finally:
            torch.backends.cuda.matmul.fp32_precision = before
    else:
        yield
