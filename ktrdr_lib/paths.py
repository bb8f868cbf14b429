"""Where things live: KTRDR_HOME, data and strategy directories, and package data."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "PACKAGE_DIR",
    "SAMPLE_DATA_DIR",
    "SHIPPED_STRATEGIES_DIR",
    "data_dir",
    "ktrdr_home",
    "models_dir",
    "strategies_dirs",
]

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DATA_DIR = PACKAGE_DIR / "data" / "sample"
SHIPPED_STRATEGIES_DIR = PACKAGE_DIR / "strategy" / "examples"


def ktrdr_home() -> Path:
    """``KTRDR_HOME``, else ``~/.ktrdr``. Not created here."""
    value = os.environ.get("KTRDR_HOME")
    return Path(value).expanduser() if value else Path.home() / ".ktrdr"


def models_dir() -> Path:
    """``KTRDR_HOME/models``."""
    return ktrdr_home() / "models"


def data_dir() -> Path:
    """``KTRDR_DATA_DIR``, else the bundled sample data."""
    value = os.environ.get("KTRDR_DATA_DIR")
    return Path(value).expanduser() if value else SAMPLE_DATA_DIR


def strategies_dirs() -> list[Path]:
    """Directories searched for strategies by name, in order.

    ``KTRDR_STRATEGIES_DIR`` (``os.pathsep``-separated, so several are allowed) first, then the
    example strategies shipped with the package.
    """
    dirs: list[Path] = []
    value = os.environ.get("KTRDR_STRATEGIES_DIR")
    if value:
        dirs.extend(Path(part).expanduser() for part in value.split(os.pathsep) if part)
    dirs.append(SHIPPED_STRATEGIES_DIR)
    return dirs
