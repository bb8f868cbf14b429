"""How Lightning runs a fit: kept apart from :mod:`ktrdr_lib.pipeline.run` so that runners and
servers can name these options without importing torch and Lightning."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrainerOptions"]


@dataclass(frozen=True)
class TrainerOptions:
    """How Lightning runs the fit (the host sets these; local runs keep the defaults)."""

    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str | None = None
    cancel_sync_every: int = 8

    @property
    def world_size(self) -> int:
        """Processes training together (``devices`` when it is a count, else 1)."""
        return self.devices if isinstance(self.devices, int) and self.devices > 1 else 1
