"""docs/contracts.md is generated from the schemas and names every field of every Struct."""

from __future__ import annotations

import sys

import msgspec

from .sandbox import REPO

sys.path.insert(0, str(REPO / "scripts"))

import gen_contracts


def test_the_page_is_not_stale() -> None:
    page = (REPO / "docs" / "contracts.md").read_text()
    assert page == gen_contracts.render(), (
        "docs/contracts.md is stale: run scripts/gen_contracts.py"
    )


def test_every_field_of_every_described_struct_is_on_the_page() -> None:
    page = (REPO / "docs" / "contracts.md").read_text()
    structs = gen_contracts.documented_structs()
    assert {"TrainingRequest", "ProgressSnapshot", "OperationSnapshot", "TrainingResult"} <= {
        cls.__name__ for cls in structs
    }
    for cls in structs:
        section = page.split(f"### `{cls.__name__}`\n", 1)
        assert len(section) == 2, f"{cls.__name__} has no section"
        table = section[1].split("\n### ", 1)[0]
        for info in msgspec.structs.fields(cls):
            assert f"| `{info.encode_name}` |" in table, f"{cls.__name__}.{info.name}"


def test_every_status_and_cancel_kind_is_described() -> None:
    import typing

    from ktrdr_lib.schemas import status

    page = (REPO / "docs" / "contracts.md").read_text()
    for value in (*typing.get_args(status.OperationStatus), *typing.get_args(status.CancelKind)):
        assert f"- `{value}`: " in page
