"""What the host trains on: the device kind and each device's name, memory and load.

GPU figures come from torch and, when ``nvidia-ml-py`` (``pynvml``) is installed and a driver
answers, from NVML (utilisation, used memory). Anything not measurable is ``None``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

__all__ = ["device_kind", "device_stats"]


def device_kind(accelerator: str) -> str:
    """``"cuda"`` when training will use a CUDA GPU under ``accelerator``, else ``"cpu"``."""
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def device_stats(kind: str) -> list[dict[str, Any]]:
    """One entry per device: ``name``, ``memory_total_mb``, ``memory_used_mb``,
    ``utilization_percent``."""
    if kind == "cuda":
        return _cuda_stats()
    return [_cpu_stats()]


def _cuda_stats() -> list[dict[str, Any]]:
    import torch

    nvml = _nvml()
    stats: list[dict[str, Any]] = []
    for index in range(torch.cuda.device_count()):
        entry: dict[str, Any] = {
            "name": torch.cuda.get_device_name(index),
            "memory_total_mb": None,
            "memory_used_mb": None,
            "utilization_percent": None,
        }
        with contextlib.suppress(RuntimeError):
            free, total = torch.cuda.mem_get_info(index)
            entry["memory_total_mb"] = round(total / 2**20, 1)
            entry["memory_used_mb"] = round((total - free) / 2**20, 1)
        if nvml is not None:
            with contextlib.suppress(Exception):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                entry["memory_total_mb"] = round(memory.total / 2**20, 1)
                entry["memory_used_mb"] = round(memory.used / 2**20, 1)
                entry["utilization_percent"] = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        stats.append(entry)
    return stats


def _nvml() -> Any:
    """The initialised ``pynvml`` module, or ``None`` without it or without a driver."""
    try:
        import pynvml  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    return pynvml


def _cpu_stats() -> dict[str, Any]:
    import platform

    total = used = None
    with contextlib.suppress(OSError, ValueError):
        page, pages = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_PHYS_PAGES")
        total = round(page * pages / 2**20, 1)
        available = _meminfo_kb("MemAvailable")
        if available is not None:
            used = round(total - available / 1024, 1)
    return {
        "name": platform.processor() or platform.machine() or "cpu",
        "memory_total_mb": total,
        "memory_used_mb": used,
        "utilization_percent": None,
    }


def _meminfo_kb(field: str) -> int | None:
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as info:
        for line in info:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None
