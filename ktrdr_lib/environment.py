"""What this machine runs: library versions and the devices torch can see.

Health reports, model metadata and the training host all describe the environment the same
way.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

__all__ = ["device_summary", "library_versions"]

_VERSIONED = ("ktrdr_lib", "torch", "lightning", "torchmetrics", "numpy", "pandas", "msgspec")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries training depends on."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_summary() -> dict[str, Any]:
    """The accelerators torch can see."""
    import torch

    info: dict[str, Any] = {
        "cuda_available": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["cuda_devices"] = [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
    return info
