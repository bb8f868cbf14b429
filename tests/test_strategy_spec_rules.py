"""The loader's per-field checks are read from the spec's types: bounds, choices, patterns."""

from __future__ import annotations

import copy
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import msgspec
import msgspec.inspect as mi
import pytest
import yaml
from msgspec import Meta

from ktrdr_lib.strategy._field_rules import FieldChecker
from ktrdr_lib.strategy._section_rules import REQUIRED_SECTIONS
from ktrdr_lib.strategy._spec_types import (
    allowed,
    optional,
    section_struct,
    struct_fields,
    type_info,
)
from ktrdr_lib.strategy._yaml_document import FieldPath, dotted
from ktrdr_lib.strategy.loader import check_strategy_text
from ktrdr_lib.strategy.spec import (
    LABEL_KINDS,
    MEMBERSHIP_PARAMETER_COUNTS,
    MembershipType,
    StrategySpec,
)

from .test_strategy_loader import VALID


def _sections(
    struct: type[msgspec.Struct], data: dict[str, Any], path: FieldPath
) -> Iterator[tuple[FieldPath, msgspec.structs.FieldInfo, mi.Type]]:
    """Every field of the sections VALID writes out, with its declared and inspected type."""
    declared = {f.encode_name: f for f in msgspec.structs.fields(struct)}
    for field in struct_fields(struct):
        key = field.encode_name
        child = section_struct(field.type)
        if key == "labels" and isinstance(data.get(key), dict):  # a union tagged by `source`
            child = LABEL_KINDS[data[key].get("source", "zigzag")]
        if child is not None and isinstance(data.get(key), dict):
            yield from _sections(child, data[key], (*path, key))
        elif child is None and key in data and key not in _OWN_RULES:
            yield (*path, key), declared[key], field.type


# Read by rules of their own: the layout-specific sections, and the words an unknown value
# falls back from (an unknown activation is relu, an unknown optimizer adam; another training
# method or output activation is kept unused — each with a notice).
_OWN_RULES = ("indicators", "fuzzy_sets", "activation", "optimizer", "method", "output_activation")
FIELDS = list(_sections(StrategySpec, VALID, ()))


def _problems_after(path: FieldPath, value: object) -> list[tuple[str, str]]:
    data = copy.deepcopy(VALID)
    node: Any = data
    for segment in path[:-1]:
        node = node[segment]
    node[path[-1]] = value
    return [(p.path, p.message) for p in check_strategy_text(yaml.safe_dump(data))]


def _bounded() -> Iterator[tuple[FieldPath, mi.IntType | mi.FloatType, float]]:
    """Each bounded number field, and one value just outside each of its bounds."""
    for path, _, info in FIELDS:
        number, _ = optional(info)
        if not isinstance(number, mi.IntType | mi.FloatType):
            continue
        step = 1 if isinstance(number, mi.IntType) else 0.5
        for outside in (
            None if number.ge is None else number.ge - step,
            number.gt,
            number.lt,
            None if number.le is None else number.le + step,
        ):
            if outside is not None:
                yield path, number, outside


BOUNDED = list(_bounded())


def _declared_values(annotation: Any) -> tuple[Any, ...]:
    """The values of ``Literal[...]`` or ``Literal[...] | None``, as written."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    return next(_declared_values(a) for a in typing.get_args(annotation) if a is not type(None))


CHOICES = [
    (path, _declared_values(declared.type))
    for path, declared, info in FIELDS
    if isinstance(optional(info)[0], mi.LiteralType)
]


def test_the_spec_declares_the_bounds_and_choices_the_loader_checks() -> None:
    assert len(BOUNDED) >= 12
    assert len(CHOICES) >= 4


@pytest.mark.parametrize(
    ("path", "number", "outside"), BOUNDED, ids=[f"{dotted(p)}={v}" for p, _, v in BOUNDED]
)
def test_a_number_outside_its_declared_bound_is_one_problem_naming_the_bound(
    path: FieldPath, number: mi.IntType | mi.FloatType, outside: float
) -> None:
    ((where, message),) = _problems_after(path, outside)
    assert where == dotted(path)
    assert message == f"must be {allowed(number)}"
    bounds = [b for b in (number.ge, number.gt, number.lt, number.le) if b is not None]
    assert all(f"{bound:g}" in message for bound in bounds)


@pytest.mark.parametrize(("path", "values"), CHOICES, ids=[dotted(p) for p, _ in CHOICES])
def test_a_choice_lists_the_declared_values_in_declared_order(
    path: FieldPath, values: tuple[str, ...]
) -> None:
    ((where, message),) = _problems_after(path, "zzz_not_a_choice")
    assert where == dotted(path)
    assert message == "must be one of: " + ", ".join(values)


def test_required_sections() -> None:
    # `training` takes its era's defaults and v2 files get nn_inputs from their fuzzy sets.
    assert REQUIRED_SECTIONS == ("name", "indicators", "fuzzy_sets", "model")


def test_membership_parameter_counts_cover_every_membership_type() -> None:
    assert set(MEMBERSHIP_PARAMETER_COUNTS) == set(typing.get_args(MembershipType))


# --- a Struct of its own: what it declares is what is checked -----------------------------------


class Probe(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A section that exists only here."""

    size: Annotated[int, Meta(ge=5)] = 5
    ratio: Annotated[float, Meta(gt=0, le=2)] = 1.0
    mode: Literal["b", "a"] = "b"
    tag: Annotated[str, Meta(pattern="^x+$", description="some x's")] | None = None
    items: Annotated[list[Annotated[int, Meta(ge=0)]], Meta(min_length=2, examples=[[1, 2]])] = (
        msgspec.field(default_factory=lambda: [1, 2])
    )
    note: str | None = None
    choice: Literal["on", "off"] | None = None
    needed: bool


def _findings(mapping: dict[str, Any]) -> dict[str, str]:
    checker = FieldChecker()
    checker.walk(mapping, Probe, ("probe",))
    return {dotted(finding.path): finding.message for finding in checker.findings}


def test_a_struct_of_its_own_is_checked_by_what_it_declares() -> None:
    written = {
        "size": 4,
        "ratio": 2.5,
        "mode": "c",
        "tag": "y",
        "items": [1],
        "needed": "yes",
        "oops": 1,
    }
    assert _findings(written) == {
        "probe.oops": "unknown key; probe takes "
        "choice, items, mode, needed, note, ratio, size, tag",
        "probe.size": "must be a whole number ≥ 5",
        "probe.ratio": "must be a number in (0, 2]",
        "probe.mode": "must be one of: b, a",
        "probe.tag": "must be some x's",
        "probe.items": "must be a list of at least 2, e.g. [1, 2]",
        "probe.needed": "must be true or false",
    }


def test_list_items_are_reported_at_their_index_and_missing_fields_say_what_they_take() -> None:
    assert _findings({"items": [1, -1, True]}) == {
        "probe.items[1]": "must be a whole number ≥ 0",
        "probe.items[2]": "must be a whole number ≥ 0",
        "probe.needed": "missing; true or false",
    }


def test_null_means_not_given_only_for_free_text_mappings_and_sections() -> None:
    findings = _findings({"needed": True, "note": None, "choice": None, "tag": None})
    assert findings == {
        "probe.choice": "must be one of: on, off",
        "probe.tag": "must be some x's",
    }


def test_words_for_each_kind_of_type() -> None:
    assert allowed(type_info(Annotated[int, Meta(ge=1)])) == "a whole number ≥ 1"
    assert allowed(type_info(Annotated[float, Meta(lt=3)])) == "a number < 3"
    assert allowed(type_info(float)) == "a number"
    assert allowed(type_info(str)) == "text (quote it)"
    assert allowed(type_info(dict[str, Any])) == "a mapping (indented `key: value` lines)"
    assert allowed(type_info(int | str)) == "a whole number or text (quote it)"
