"""Strategy routes: list what is found by name, and validate YAML text."""

from __future__ import annotations

import msgspec
import yaml
from litestar import Controller, get, post
from litestar.params import JSONBody

from ktrdr_lib.schemas.v1 import (
    StrategiesResponse,
    StrategyValidateRequest,
    StrategyValidateResponse,
)
from ktrdr_lib.strategy.discovery import list_strategies
from ktrdr_lib.strategy.loader import check_strategy_text
from web.errors import ERROR_RESPONSES

__all__ = ["StrategiesController"]


class StrategiesController(Controller):
    """``/strategies``."""

    path = "/strategies"
    tags = ["strategies"]  # noqa: RUF012

    @get("/", responses=ERROR_RESPONSES, sync_to_thread=True, summary="Strategies found by name")
    def list_all(self) -> StrategiesResponse:
        """KTRDR_STRATEGIES_DIR first, then the shipped examples; invalid files included."""
        return StrategiesResponse(
            success=True, strategies=[msgspec.to_builtins(s) for s in list_strategies()]
        )

    @post(
        "/validate",
        responses=ERROR_RESPONSES,
        status_code=200,
        sync_to_thread=True,
        summary="Validate strategy YAML",
    )
    def validate(self, data: JSONBody[StrategyValidateRequest]) -> StrategyValidateResponse:
        """Every problem in the text, each with its field path and line (YAML is only ever
        safe-loaded)."""
        problems = check_strategy_text(data.content, file=data.file_name)
        name = None
        if not problems:
            loaded = yaml.safe_load(data.content)
            name = loaded.get("name") if isinstance(loaded, dict) else None
        return StrategyValidateResponse(
            success=True,
            valid=not problems,
            name=name,
            problems=[msgspec.to_builtins(p) for p in problems],
        )
