"""Where things live: KTRDR_HOME, data and strategy directories, and package data."""

from __future__ import annotations

from pathlib import Path

from ktrdr_lib.settings import read_path, read_paths

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
    home = read_path("KTRDR_HOME")
    return home if home is not None else Path.home() / ".ktrdr"


def models_dir() -> Path:
    """``KTRDR_HOME/models``."""
    return ktrdr_home() / "models"


def data_dir() -> Path:
    """``KTRDR_DATA_DIR``, else the bundled sample data."""
    value = read_path("KTRDR_DATA_DIR")
    return value if value is not None else SAMPLE_DATA_DIR


def strategies_dirs() -> list[Path]:
    """Directories searched for strategies by name, in order.

    ``KTRDR_STRATEGIES_DIR`` (``os.pathsep``-separated, so several are allowed) first, then the
    example strategies shipped with the package.
    """
    return [*read_paths("KTRDR_STRATEGIES_DIR"), SHIPPED_STRATEGIES_DIR]
