"""Checks raw YAML mappings field by field against the strategy spec's Structs.

:class:`FieldChecker` walks a section the way its Struct declares it: unknown keys named with a
suggestion, each present field checked against its type (words and checks from
:mod:`ktrdr_lib.strategy._spec_types`), required fields that are missing reported, nested
sections walked in turn. A list is checked item by item, each problem at its index, unless its
Meta has a ``description``: then it is judged as one value. Every problem is collected as a
:class:`Finding`; rules that tie fields together are added by a subclass through
:meth:`FieldChecker.after_fields`.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi

from ktrdr_lib.strategy._spec_types import (
    SECTION_WORDS,
    accepts,
    allowed,
    choices,
    documented,
    null_means_absent,
    optional,
    section_struct,
    struct_fields,
    yaml_keys,
)
from ktrdr_lib.strategy._yaml_document import FieldPath, dotted, show_value

__all__ = ["FieldChecker", "Finding", "did_you_mean", "listing"]


# -- words ---------------------------------------------------------------------------------------


def did_you_mean(word: object, options: Collection[str]) -> str:
    """``; did you mean `x`?`` when an option is close to ``word``, else ``""``."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    close = close or [option for option in sorted(options) if word and option.startswith(word)]
    return f"; did you mean `{close[0]}`?" if close else ""


def listing(options: Collection[str]) -> str:
    """The options, sorted, comma-separated."""
    return ", ".join(sorted(options))


# -- the checker --------------------------------------------------------------------------------


SUGGEST_LIMIT = 100
"""Problems past this many get no "did you mean" (each costs a fuzzy match)."""


@dataclass(frozen=True)
class Finding:
    """A problem before its line is known; ``at_key`` points the line at the key itself."""

    path: FieldPath
    message: str
    value: str | None = None
    at_key: bool = False


class FieldChecker:
    """Checks raw mappings against section Structs and collects every problem.

    Besides problems (:attr:`findings`) it collects notices (:attr:`notes`: the file loads,
    but trains differently from what KTRDR would have done) and the keys set aside because
    KTRDR did not use them either (:attr:`ignored`, by dotted path in the internal model).
    """

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.notes: list[Finding] = []
        self.ignored: dict[str, Any] = {}

    def add(self, path: FieldPath, message: str, value: str | None = None) -> None:
        """Record a problem with the value at ``path`` (``value`` ``None``: nothing there)."""
        self.findings.append(Finding(path, message, value))

    def add_at_key(self, path: FieldPath, message: str) -> None:
        """Record a problem with the key at ``path`` itself (its line is the key's)."""
        self.findings.append(Finding(path, message, at_key=True))

    def note(self, path: FieldPath, message: str, value: object = None) -> None:
        """Record a notice about the value at ``path`` (shown as written, when there is one)."""
        shown = None if value is None else show_value(value)
        self.notes.append(Finding(path, message, shown))

    def note_at_key(self, path: FieldPath, message: str) -> None:
        """Record a notice about the key at ``path`` itself."""
        self.notes.append(Finding(path, message, at_key=True))

    def set_aside(self, path: FieldPath, where: str, value: object, message: str) -> None:
        """Keep a key KTRDR did not use either under ``where`` (a dotted path in the internal
        model) and note it at ``path``."""
        self.ignored[where] = msgspec.to_builtins(value)
        self.note_at_key(path, message)

    def keys(self, mapping: dict[Any, Any], path: FieldPath, known: Collection[str]) -> None:
        """Report keys of ``mapping`` that the format does not have at ``path`` (a suggestion
        for the first :data:`SUGGEST_LIMIT` problems only: past them nobody reads them)."""
        where = dotted(path) or "the top level"
        for key in mapping:
            if str(key) not in known:
                hint = did_you_mean(key, known) if len(self.findings) < SUGGEST_LIMIT else ""
                self.add_at_key(
                    (*path, str(key)), f"unknown key; {where} takes {listing(known)}{hint}"
                )

    def check_value(self, value: object, info: mi.Type, path: FieldPath) -> bool:
        """Check one present value against its type; ``False`` (and reported) if not allowed."""
        inner, nullable = optional(info)
        if value is None and nullable and null_means_absent(inner):
            return True
        bare, description, example = documented(inner)
        if description is None and isinstance(bare, mi.ListType):
            return self._check_list(value, bare, example, path)
        if accepts(inner, value):
            return True
        options = [str(c) for c in choices(bare)] if isinstance(bare, mi.LiteralType) else []
        message = f"must be {allowed(inner)}{did_you_mean(value, options) if options else ''}"
        self.add(path, message, show_value(value))
        return False

    def _check_list(
        self, value: object, info: mi.ListType, example: object, path: FieldPath
    ) -> bool:
        """A list of at least ``min_length``, each item checked and reported at its index."""
        minimum = info.min_length or 0
        if not isinstance(value, list) or len(value) < minimum:
            hint = f", e.g. {show_value(example)}" if example is not None else ""
            self.add(path, f"must be a list of at least {minimum}{hint}", show_value(value))
            return False
        results = [
            self.check_value(item, info.item_type, (*path, i)) for i, item in enumerate(value)
        ]
        return all(results)

    def check_fields(
        self,
        mapping: dict[Any, Any],
        struct: type[msgspec.Struct],
        path: FieldPath,
        *,
        skip: Collection[str] = (),
        report_missing: bool = True,
    ) -> set[str]:
        """Check every field of ``struct`` that is not a section; the keys that passed.

        A required field that is missing is reported as ``missing; <what it allows>``.
        """
        valid: set[str] = set()
        for field in struct_fields(struct):
            key = field.encode_name
            if key in skip or section_struct(field.type) is not None:
                continue
            if key not in mapping:
                if field.required and report_missing:
                    self.add((*path, key), f"missing; {allowed(field.type)}")
                continue
            if self.check_value(mapping[key], field.type, (*path, key)):
                valid.add(key)
        return valid

    def section(
        self, parent: dict[Any, Any], key: str, info: mi.Type, path: FieldPath
    ) -> dict[Any, Any] | None:
        """The mapping under ``key`` (``None`` when absent, null where allowed, or reported)."""
        if key not in parent:
            return None
        value = parent[key]
        if value is None and optional(info)[1]:
            return None
        if isinstance(value, dict):
            return value
        self.add((*path, key), f"must be {SECTION_WORDS}", show_value(value))
        return None

    def walk_section(
        self, parent: dict[Any, Any], struct: type[msgspec.Struct], key: str, path: FieldPath
    ) -> None:
        """Walk the section under ``parent[key]``, one of ``struct``'s fields."""
        field = next(f for f in struct_fields(struct) if f.encode_name == key)
        child_struct = section_struct(field.type)
        assert child_struct is not None, f"{struct.__name__}.{key} is not a section"
        child = self.section(parent, key, field.type, path)
        if child is not None:
            self.walk(child, child_struct, (*path, key))

    def walk(self, mapping: dict[Any, Any], struct: type[msgspec.Struct], path: FieldPath) -> None:
        """Check a section: its keys, its fields, the rules across them, then its sections."""
        self.keys(mapping, path, yaml_keys(struct))
        valid = self.check_fields(mapping, struct, path)
        self.after_fields(struct, mapping, path, valid)
        for field in struct_fields(struct):
            if section_struct(field.type) is not None:
                self.walk_section(mapping, struct, field.encode_name, path)

    def after_fields(
        self,
        struct: type[msgspec.Struct],
        mapping: dict[Any, Any],
        path: FieldPath,
        valid: set[str],
    ) -> None:
        """Rules across the fields of one section, once each field is checked (none here).

        Args:
            struct: the section's Struct.
            mapping: the section as written.
            path: where it is.
            valid: the keys present and allowed.
        """
