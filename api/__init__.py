"""The KTRDR HTTP API: a thin Litestar adapter over ktrdr_lib's TrainingOrchestrator."""

from __future__ import annotations

from api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
