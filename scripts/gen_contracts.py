"""Render docs/contracts.md from the schemas in ktrdr_lib/schemas/ and the store's transitions.

Run ``python scripts/gen_contracts.py`` after changing a schema; ``--check`` exits 1 while the
committed page differs from what this prints (tests/docs/test_contracts.py runs it), so the
page never drifts from the Structs the library, the API and the host exchange.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "contracts.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from _page import write_or_check  # noqa: E402

STATUS_MEANING = {
    "pending": "stored and waiting for a free slot (`max_concurrent` runs train at once)",
    "running": "preparing data or training",
    "cancelling": "a cancel was asked for; the run has not stopped yet",
    "completed": "ended with a result (a graceful stop completes too)",
    "failed": "ended with an error; `error_message` says what and what to do",
    "cancelled": "stopped by an abort (or cancelled while still pending)",
    "interrupted": "its process died while it was active; found at the next start-up",
}
CANCEL_MEANING = {
    "abort": "stop within one batch; the run ends `cancelled`, nothing is saved, its partial "
    "result keeps the epochs that ran to their end",
    "graceful": "finish the current epoch (its validation included), then evaluate and save; "
    "the run ends `completed` with `training_metrics.early_stopped` set",
}
MODE_MEANING = {
    "local": "in this process, or a child process of it (the API's default)",
    "host": "on a training host (`ktrdr serve host`) at `KTRDR_HOST_URL`",
    "ray": "in a worker of a Ray cluster",
}
SECTIONS: list[tuple[str, str, list[str]]] = [
    (
        "Requests",
        "What a caller may ask of a run, whichever door it comes through.",
        ["ktrdr_lib.schemas.requests:TrainingRequest"],
    ),
    (
        "Operations and progress",
        "What every reader (Python, CLI, API, notebook view) sees of a run.",
        [
            "ktrdr_lib.schemas.operations:OperationSnapshot",
            "ktrdr_lib.schemas.progress:ProgressSnapshot",
            "ktrdr_lib.schemas.progress:DeviceResources",
            "ktrdr_lib.schemas.progress:EpochHistoryRow",
            "ktrdr_lib.schemas.operations:OperationList",
            "ktrdr_lib.schemas.operations:FinalEvent",
        ],
    ),
    (
        "Results",
        (
            "A run's result (`op.result()`, `GET /api/v1/operations/{id}/result`) and the "
            "Structs it holds."
        ),
        ["ktrdr_lib.schemas.results:TrainingResult"],
    ),
    (
        "Predictions",
        "What `predict_signal` returns (`POST /api/v1/models/predict` wraps the same).",
        ["ktrdr_lib.inference:SignalPrediction"],
    ),
    (
        "Errors",
        "The body of every error answer of the API and the training host.",
        ["ktrdr_lib.schemas.errors:ErrorBody"],
    ),
]


def _load(target: str) -> type[msgspec.Struct]:
    module, name = target.split(":")
    cls = getattr(__import__(module, fromlist=[name]), name)
    assert issubclass(cls, msgspec.Struct)
    return cls


def _attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` section of a Google-style docstring, field by field."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^Attributes:\n((?:[ ]{4}.*\n?|\n)+)", doc, re.MULTILINE)
    if not match:
        return {}
    docs: dict[str, str] = {}
    current = ""
    for line in match.group(1).splitlines():
        entry = re.match(r"^ {4}(\w+): (.*)$", line)
        if entry:
            current = entry.group(1)
            docs[current] = entry.group(2)
        elif line.startswith("        ") and current:
            docs[current] += " " + line.strip()
    return docs


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    paragraph = doc.split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def _type_text(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type_text(typing.get_args(tp)[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_text(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_text(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "None"
    if tp is typing.Any:
        return "Any"
    return getattr(tp, "__name__", str(tp))


def _structs_in(tp: Any) -> list[type[msgspec.Struct]]:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return [tp]
    found: list[type[msgspec.Struct]] = []
    for arg in typing.get_args(tp):
        found.extend(_structs_in(arg))
    return found


def _default(info: msgspec.structs.FieldInfo) -> str:
    if info.required:
        return "required"
    if info.default is not msgspec.NODEFAULT:
        return f"`{info.default!r}`"
    return f"`{info.default_factory()!r}`"


def _struct_table(cls: type[msgspec.Struct]) -> list[str]:
    docs = _attribute_docs(cls)
    lines = [f"### `{cls.__name__}`", "", _summary(cls), ""]
    lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
    for info in msgspec.structs.fields(cls):
        meaning = docs.get(info.name, "").replace("|", "\\|")
        lines.append(
            f"| `{info.encode_name}` | {_type_text(info.type)} | {_default(info)} | {meaning} |"
        )
    return [*lines, ""]


def documented_structs() -> list[type[msgspec.Struct]]:
    """Every Struct the page describes: the roots of SECTIONS and what their fields hold."""
    seen: list[type[msgspec.Struct]] = []
    for _, _, targets in SECTIONS:
        stack = [_load(t) for t in targets]
        while stack:
            cls = stack.pop(0)
            if cls in seen:
                continue
            seen.append(cls)
            for info in msgspec.structs.fields(cls):
                stack.extend(_structs_in(info.type))
    return seen


def _literal_list(values: tuple[str, ...], meaning: dict[str, str]) -> list[str]:
    missing = set(values) ^ set(meaning)
    if missing:
        raise SystemExit(f"gen_contracts.py: describe (or drop) {sorted(missing)}")
    return [f"- `{value}`: {meaning[value]}" for value in values]


def render() -> str:
    """The page as Markdown."""
    from ktrdr_lib.operations.store import _ALLOWED
    from ktrdr_lib.schemas import status

    lines = [
        "# Contracts",
        "",
        "Generated from `ktrdr_lib/schemas/` (and the operation store's transition table) by",
        "`scripts/gen_contracts.py`; do not edit by hand. These Structs are the one schema the",
        "library, the HTTP API, the training host, the CLI and the notebook view encode and",
        "decode; fields are only ever added. The API's KTRDR v1 shapes (`ktrdr_lib/schemas/v1.py`)",
        "are in the [API reference](api-reference.md).",
        "",
        "## Operation statuses",
        "",
        *_literal_list(typing.get_args(status.OperationStatus), STATUS_MEANING),
        "",
        (
            f"Final: {', '.join(f'`{s}`' for s in sorted(status.FINAL_STATUSES))}; a final "
            "status is never overwritten. Active: "
            f"{', '.join(f'`{s}`' for s in sorted(status.ACTIVE_STATUSES))}."
        ),
        "",
        "The only transitions the store accepts (any other raises `StateConflictError`):",
        "",
        "| from | to |",
        "|---|---|",
    ]
    for source in typing.get_args(status.OperationStatus):
        if source in _ALLOWED:
            targets = ", ".join(
                f"`{t}`" for t in typing.get_args(status.OperationStatus) if t in _ALLOWED[source]
            )
            lines.append(f"| `{source}` | {targets} |")
    lines += [
        "",
        "## Cancel kinds",
        "",
        "`OperationSnapshot.cancel_kind` records what a cancel asked for (`None` when none was);",
        "an abort may escalate a graceful stop, never the reverse.",
        "",
        *_literal_list(typing.get_args(status.CancelKind), CANCEL_MEANING),
        "",
        "## Phases and modes",
        "",
        (
            "A pipeline goes through "
            + ", ".join(f"`{p}`" for p in typing.get_args(status.PipelinePhase))
            + " in that order; a progress snapshot's `phase` is one of those, or `queued` "
            "(waiting) or `remote` (a run elsewhere that has not reported a phase yet)."
        ),
        "",
        "Where a run trains (`mode`):",
        "",
        *_literal_list(typing.get_args(status.TrainingMode), MODE_MEANING),
        "",
    ]
    for title, intro, targets in SECTIONS:
        lines += [f"## {title}", "", intro, ""]
        roots = [_load(t) for t in targets]
        for cls in documented_structs():
            if cls in roots or _home_section(cls) == title:
                lines += _struct_table(cls)
    return "\n".join(lines).rstrip() + "\n"


def _home_section(cls: type[msgspec.Struct]) -> str:
    """The first section whose roots reach ``cls``."""
    for title, _, targets in SECTIONS:
        stack = [_load(t) for t in targets]
        seen: list[type] = []
        while stack:
            current = stack.pop(0)
            if current is cls:
                return title
            if current in seen:
                continue
            seen.append(current)
            for info in msgspec.structs.fields(current):
                stack.extend(_structs_in(info.type))
    return ""


def main(argv: list[str]) -> int:
    return write_or_check(PAGE, render(), "gen_contracts.py", argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
