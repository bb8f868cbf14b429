"""Render docs/api-reference.md from the API's own OpenAPI schema.

Run ``python scripts/gen_api_reference.py`` after changing a route; a test fails while the
committed reference differs from what this prints, so the reference never drifts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "api-reference.md"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _page import write_or_check  # noqa: E402


def _schema() -> dict[str, Any]:
    from api import create_app
    from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
    from ktrdr_lib.operations.store import OperationStore

    app = create_app(
        TrainingOrchestrator(store=OperationStore(":memory:")),
        api_token="reference-token-0123456789",
    )
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def _type_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "oneOf" in schema:
        return " or ".join(_type_name(s) for s in schema["oneOf"])
    if schema.get("type") == "array":
        return f"list[{_type_name(schema.get('items', {}))}]"
    return str(schema.get("type", "object"))


def render() -> str:
    """The reference as Markdown."""
    schema = _schema()
    lines = [
        "# HTTP API reference",
        "",
        "Generated from the app's OpenAPI schema by `scripts/gen_api_reference.py`; do not",
        "edit by hand. The live schema is served at `/schema/openapi.json` (and browsable at",
        "`/schema`). Every route but `/api/v1/health` needs `Authorization: Bearer <token>`",
        "when the server has `KTRDR_API_TOKEN` set. Errors always have the body",
        "`{status_code, detail, error_type, success: false, problems}`.",
        "",
        "| method | path | summary | request body | response |",
        "|---|---|---|---|---|",
    ]
    for path, item in sorted(schema["paths"].items()):
        for method, op in sorted(item.items()):
            if method not in {"get", "post", "put", "delete", "patch"}:
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            request = _type_name(body["schema"]) if body else ""
            ok = next(
                (r for code, r in op.get("responses", {}).items() if code.startswith("2")), {}
            )
            content = ok.get("content", {})
            response = next((_type_name(c.get("schema", {})) for c in content.values()), "")
            summary = op.get("summary", "")
            lines.append(f"| {method.upper()} | `{path}` | {summary} | {request} | {response} |")
    lines += ["", "## Schemas", ""]
    for name, comp in sorted(schema.get("components", {}).get("schemas", {}).items()):
        props = comp.get("properties", {})
        required = set(comp.get("required", []))
        fields = ", ".join(f"`{p}`" + ("" if p in required else "?") for p in props)
        lines.append(f"- **{name}**: {fields}" if fields else f"- **{name}**")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Write the reference; with ``--check`` only compare and fail when it differs."""
    return write_or_check(REFERENCE, render(), "gen_api_reference.py", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
