"""The strategy spec's field types as checks and words, read through ``msgspec.inspect``.

The strategy Structs declare what a field allows (see :mod:`ktrdr_lib.strategy.spec`);
``msgspec.inspect.type_info`` gives that back as data, and this module turns it into a check
of a raw YAML value (:func:`accepts`) and the words for it (:func:`allowed`):

- ``Annotated[int, Meta(ge=1)]`` → a whole number (``true`` is not one) ≥ 1;
- ``Annotated[float, Meta(ge=0, lt=1)]`` → a finite number in [0, 1);
- ``Literal["a", "b"]`` → one of: a, b (in the declared order);
- ``Meta(pattern=..., description=...)`` → text matching the pattern, explained by the
  description; a ``description`` always gives the words for its whole value;
- a list's ``min_length`` and ``examples`` → "a list of at least 1, e.g. [AAPL, MSFT]";
- a nested Struct → a section (a mapping), whose own fields are checked one by one.

``null`` (YAML ``~``) stands for "not given" where the type allows ``None`` and the field is
free text, a free-form mapping or a section (:func:`null_means_absent`); a choice, a
pattern-checked text or a list that is written must be valid.
"""

from __future__ import annotations

import functools
import math
import re
import typing
from collections.abc import Collection
from typing import Any, Literal, TypeGuard

import msgspec
import msgspec.inspect as mi

from ktrdr_lib.strategy._yaml_document import show_value

__all__ = [
    "SECTION_WORDS",
    "accepts",
    "allowed",
    "choices",
    "documented",
    "is_number",
    "is_whole",
    "null_means_absent",
    "optional",
    "section_struct",
    "struct_fields",
    "type_info",
    "yaml_keys",
]

SECTION_WORDS = "a mapping (indented `key: value` lines)"


# -- reading the spec ---------------------------------------------------------------------------


# msgspec.inspect sorts a Literal's values; messages list them in the order the spec declares.
_DECLARED_ORDER: dict[frozenset[object], tuple[object, ...]] = {}


def _note_literal_order(annotation: Any, seen: set[type]) -> None:
    """Remember the declared order of every Literal in ``annotation`` and the Structs in it."""
    if typing.get_origin(annotation) is Literal:
        values = typing.get_args(annotation)
        _DECLARED_ORDER.setdefault(frozenset(values), values)
    for argument in typing.get_args(annotation):
        _note_literal_order(argument, seen)
    is_struct = isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)
    if is_struct and annotation not in seen:
        seen.add(annotation)
        for field in msgspec.structs.fields(annotation):
            _note_literal_order(field.type, seen)


def choices(info: mi.LiteralType) -> tuple[object, ...]:
    """A Literal's values in declared order."""
    return _DECLARED_ORDER.get(frozenset(info.values), info.values)


@functools.cache
def type_info(annotation: Any) -> mi.Type:
    """``msgspec.inspect.type_info``, remembered per type."""
    _note_literal_order(annotation, set())
    return mi.type_info(annotation)


def struct_fields(struct: type[msgspec.Struct]) -> tuple[mi.Field, ...]:
    """The fields of a section Struct, in declaration order, with their types."""
    info = type_info(struct)
    assert isinstance(info, mi.StructType)
    return info.fields


def yaml_keys(struct: type[msgspec.Struct], *, exclude: Collection[str] = ()) -> frozenset[str]:
    """The YAML keys a section Struct accepts (its fields' encoded names)."""
    return frozenset(f.encode_name for f in struct_fields(struct) if f.name not in exclude)


def optional(info: mi.Type) -> tuple[mi.Type, bool]:
    """``X | None`` → ``(X, True)``; any other type → ``(type, False)``."""
    if isinstance(info, mi.UnionType):
        others = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(others) == 1 and len(others) < len(info.types):
            return others[0], True
    return info, False


def section_struct(info: mi.Type) -> type[msgspec.Struct] | None:
    """The Struct of a field that is a section (``Spec`` or ``Spec | None``), else ``None``."""
    inner, _ = optional(info)
    return inner.cls if isinstance(inner, mi.StructType) else None


def documented(info: mi.Type) -> tuple[mi.Type, str | None, object]:
    """The type inside a ``Meta`` with a description or examples, that description, an example."""
    if not isinstance(info, mi.Metadata):
        return info, None, None
    schema = info.extra_json_schema or {}
    examples = schema.get("examples") or [None]
    return info.type, schema.get("description"), examples[0]


def null_means_absent(info: mi.Type) -> bool:
    """Whether ``null`` may stand for "not given": free text, free-form mappings, sections."""
    inner, _, _ = documented(info)
    if isinstance(inner, mi.StrType):
        return inner.pattern is None
    return isinstance(inner, mi.DictType | mi.StructType | mi.AnyType)


# -- values against types -----------------------------------------------------------------------


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float; YAML ``true``/``false`` are not numbers."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_whole(value: object) -> TypeGuard[int]:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _bounds(info: mi.IntType | mi.FloatType) -> tuple[float | None, bool, float | None, bool]:
    """(low, low excluded, high, high excluded)."""
    low, low_open = (info.gt, True) if info.gt is not None else (info.ge, False)
    high, high_open = (info.lt, True) if info.lt is not None else (info.le, False)
    return low, low_open, high, high_open


def _within(info: mi.IntType | mi.FloatType, number: float) -> bool:
    low, low_open, high, high_open = _bounds(info)
    above = low is None or (number > low if low_open else number >= low)
    below = high is None or (number < high if high_open else number <= high)
    return above and below


def _bounds_words(info: mi.IntType | mi.FloatType) -> str:
    """`` ≥ 1``, `` > 0``, `` in [0, 1)`` or ``""``."""
    low, low_open, high, high_open = _bounds(info)
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '≥'} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '≤'} {high:g}"
    return ""


def _sized(info: mi.StrType | mi.ListType | mi.DictType, size: int) -> bool:
    return (info.min_length is None or size >= info.min_length) and (
        info.max_length is None or size <= info.max_length
    )


def accepts(info: mi.Type, value: object) -> bool:
    """Whether ``value``, as YAML gave it, is what ``info`` declares."""
    if isinstance(info, mi.Metadata):
        return accepts(info.type, value)
    if isinstance(info, mi.UnionType):
        return any(accepts(member, value) for member in info.types)
    if isinstance(info, mi.NoneType):
        return value is None
    if isinstance(info, mi.AnyType):
        return True
    if isinstance(info, mi.BoolType):
        return isinstance(value, bool)
    if isinstance(info, mi.IntType):
        return is_whole(value) and _within(info, value)
    if isinstance(info, mi.FloatType):
        return is_number(value) and _within(info, float(value))
    if isinstance(info, mi.StrType):
        return (
            isinstance(value, str)
            and _sized(info, len(value))
            and (info.pattern is None or re.fullmatch(info.pattern, value) is not None)
        )
    if isinstance(info, mi.LiteralType):
        return any(type(value) is type(choice) and value == choice for choice in info.values)
    if isinstance(info, mi.ListType):
        return (
            isinstance(value, list)
            and _sized(info, len(value))
            and all(accepts(info.item_type, item) for item in value)
        )
    if isinstance(info, mi.DictType):  # free-form: only the mapping itself is checked
        return isinstance(value, dict) and _sized(info, len(value))
    if isinstance(info, mi.StructType):  # a section: its fields are walked on their own
        return isinstance(value, dict)
    raise TypeError(f"the strategy checks have no rule for {info!r}; add one to _spec_types")


def allowed(info: mi.Type) -> str:
    """What ``info`` allows, in words: ``a whole number ≥ 1``, ``one of: a, b``, ..."""
    inner, description, example = documented(info)
    if description is not None:
        return description
    if inner is not info:
        words = allowed(inner)
        return f"{words}, e.g. {show_value(example)}" if example is not None else words
    if isinstance(info, mi.IntType):
        return "a whole number" + _bounds_words(info)
    if isinstance(info, mi.FloatType):
        return "a number" + _bounds_words(info)
    if isinstance(info, mi.StrType):
        return "text (quote it)" if info.pattern is None else f"text matching {info.pattern}"
    if isinstance(info, mi.BoolType):
        return "true or false"
    if isinstance(info, mi.LiteralType):
        return "one of: " + ", ".join(str(choice) for choice in choices(info))
    if isinstance(info, mi.ListType):
        return f"a list of at least {info.min_length}" if info.min_length else "a list"
    if isinstance(info, mi.DictType | mi.StructType):
        return SECTION_WORDS
    if isinstance(info, mi.UnionType):
        kinds = [t for t in info.types if not isinstance(t, mi.NoneType)]
        return " or ".join(allowed(kind) for kind in kinds)
    return "any value"
