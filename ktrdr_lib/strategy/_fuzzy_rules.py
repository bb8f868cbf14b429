"""``fuzzy_sets``: what each set reads, its input transform and its membership functions.

A v3 set names its indicator (``indicator: id`` or ``id.output``; an ``output:`` key is read as
the ``.output`` it evidently means); a v2 set is keyed by what it reads
(:mod:`ktrdr_lib.strategy._indicator_refs`). ``input_transform: {type: price_ratio,
reference: close}`` works in v2 and v3 (decision 2), and early-v2 files get it on their
``sma``/``ema`` sets, as early-v2 KTRDR fed ``close / MA`` to them.

Memberships are ``{type, parameters}`` or bare lists (``[a, b, c]`` triangular, ``[a, b, c,
d]`` trapezoidal) in every layout; types match without regard to case and with the aliases
KTRDR's validators knew (decision 8).
"""

from __future__ import annotations

from typing import Any

from ktrdr_lib.schemas.strategies import StrategyLayout
from ktrdr_lib.strategy._field_rules import FieldChecker, did_you_mean
from ktrdr_lib.strategy._indicator_refs import (
    check_reference,
    named_output,
    reference,
    resolve_key,
)
from ktrdr_lib.strategy._indicator_rules import IndicatorTable, ReadIndicator
from ktrdr_lib.strategy._spec_types import is_number
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value
from ktrdr_lib.strategy.spec import (
    MEMBERSHIP_PARAMETER_COUNTS,
    InputTransformSpec,
    MembershipSpec,
)

__all__ = ["MEMBERSHIP_ALIASES", "read_fuzzy_sets"]

MEMBERSHIP_ALIASES: dict[str, str] = {
    "triangularmf": "triangular",
    "trimf": "triangular",
    "triangle": "triangular",
    "trapezoidalmf": "trapezoidal",
    "trapmf": "trapezoidal",
    "trapezoid": "trapezoidal",
    "gaussianmf": "gaussian",
    "gaussmf": "gaussian",
    "gauss": "gaussian",
    "sigmoidmf": "sigmoid",
    "sigmf": "sigmoid",
}
"""Other spellings of the membership types (matched after lower-casing)."""

# Accepted only by KTRDR's agent validator: no KTRDR engine evaluated them.
_NEVER_EVALUATED = frozenset({"triangle", "trapezoid", "sigmoid", "sigmoidmf", "sigmf"})
_RATIO_BY_DEFAULT = frozenset({"simplemovingaverage", "exponentialmovingaverage"})
_SET_KEYS = ("indicator", "input_transform", "output")
_BARE_TYPES = {3: "triangular", 4: "trapezoidal"}


class _FuzzyReader:
    """Reads one strategy's fuzzy sets into internal FuzzySetSpec mappings."""

    def __init__(
        self,
        checker: FieldChecker,
        layout: StrategyLayout,
        table: IndicatorTable,
        early_v2: bool,
    ) -> None:
        self.checker = checker
        self.layout = layout
        self.table = table
        self.early_v2 = early_v2

    # -- what a set reads ----------------------------------------------------------------

    def v3_reference(self, body: dict[Any, Any], path: FieldPath) -> tuple[str, str | None] | None:
        """A v3 set's ``indicator:`` (and ``output:``) as (id, output)."""
        if "indicator" not in body:
            if self.table.complete:
                self.checker.add(
                    (*path, "indicator"),
                    "every v3 fuzzy set needs `indicator: <indicator id>` (or "
                    "`<indicator id>.<output>`)",
                )
            return None
        found = check_reference(self.checker, self.table, body["indicator"], (*path, "indicator"))
        output = body.get("output")
        if found is None or not isinstance(output, str):
            return found
        indicator_id, dotted_output = found
        if dotted_output is not None:
            self.checker.add_at_key(
                (*path, "output"),
                f"the output is given twice (`{body['indicator']}` and `output: {output}`); "
                "keep `indicator: <id>.<output>`",
            )
            return None
        checked = check_reference(
            self.checker, self.table, f"{indicator_id}.{output}", (*path, "output")
        )
        if checked is not None:
            self.checker.note(
                (*path, "output"),
                f"read as `indicator: {indicator_id}.{output}` (its evident meaning); KTRDR "
                "took `output` for a membership and its training failed",
                output,
            )
        return checked

    def v2_reference(
        self, key: str, body: dict[Any, Any], path: FieldPath
    ) -> tuple[str, str | None] | None:
        """What a v2 set's key names (or its ``indicator:``, as KTRDR's migration wrote it)."""
        if "indicator" in body:
            return self.v3_reference(body, path)
        match = resolve_key(key, self.table, early_v2=self.early_v2)
        if match is None:
            if key not in self.table.unreadable and self.table.complete:
                declared = ", ".join(self.table.by_id)
                self.checker.add_at_key(
                    path,
                    f"no indicator has feature_id `{key}`; declared: {declared}"
                    f"{did_you_mean(key, self.table.by_id)}",
                )
            return None
        read = self.table.by_id[match.indicator_id]
        if match.way in ("id_case", "column_case", "named"):
            self.checker.note_at_key(
                path,
                f"read as `{reference(read, match.output)}`; KTRDR matched fuzzy keys "
                "case-sensitively against its own column names, found none for this key and "
                "silently trained without this set",
            )
        return match.indicator_id, match.output

    def migration_hazard(self, set_id: str, read: ReadIndicator, output: str | None) -> None:
        """A set whose name says one output but that reads another (KTRDR's v2 → v3
        migration wrote ids without the output)."""
        said = named_output(set_id, self.table)
        actual = output or read.entry.primary_output
        if said is None or said.indicator_id != read.id or said.output in (None, actual):
            return
        self.checker.note_at_key(
            ("fuzzy_sets", set_id),
            f"this set reads `{read.id}`'s {actual} output, but its name says {said.output}; "
            f"write `indicator: {read.id}.{said.output}` if that was meant (KTRDR's v2 → v3 "
            "migration dropped the output)",
        )

    # -- input transform -----------------------------------------------------------------

    def input_transform(
        self, body: dict[Any, Any], path: FieldPath, read: ReadIndicator
    ) -> dict[str, Any] | None:
        """The set's transform: as written, or early v2's automatic ``close / MA``."""
        if "input_transform" not in body:
            if self.early_v2 and read.entry.name in _RATIO_BY_DEFAULT:
                self.checker.note_at_key(
                    path,
                    f"reads close / {read.written_name} (input_transform: price_ratio), as "
                    "early-v2 KTRDR fed it to sets over sma/ema; later KTRDR versions fed the "
                    "moving average itself",
                )
                return {"type": "price_ratio", "reference": "close"}
            return None
        where = (*path, "input_transform")
        value = body["input_transform"]
        if not isinstance(value, dict):
            self.checker.add(
                where, "must be `{type: price_ratio, reference: close}` or `{type: identity}`"
            )
            return None
        before = len(self.checker.findings)
        self.checker.walk(value, InputTransformSpec, where)
        if len(self.checker.findings) > before or value.get("type", "identity") == "identity":
            return None
        if self.layout == "v3":
            self.checker.note_at_key(
                where,
                "applied here; KTRDR's v3 training took input_transform for a membership and "
                "failed",
            )
        return {"type": "price_ratio", "reference": value.get("reference", "close")}

    # -- memberships ---------------------------------------------------------------------

    def membership(self, value: object, path: FieldPath) -> dict[str, Any] | None:
        """One membership function, checked: ``{type, parameters}`` with a canonical type."""
        if isinstance(value, list):
            kind = _BARE_TYPES.get(len(value))
            if kind is None or not all(is_number(point) for point in value):
                self.checker.add(
                    path,
                    "a bare list is [a, b, c] (triangular) or [a, b, c, d] (trapezoidal) "
                    "numbers; write `{type: gaussian, parameters: [mean, sigma]}` for others",
                    show_value(value),
                )
                return None
            if self.layout != "v3":
                self.checker.note(
                    path,
                    f"read as {kind}; KTRDR's v2 fuzzy engine skipped bare-list sets",
                    value,
                )
            membership: dict[Any, Any] = {"type": kind, "parameters": value}
        elif isinstance(value, dict):
            membership = dict(value)
        else:
            self.checker.add(
                path,
                "must be a mapping like `{type: triangular, parameters: [a, b, c]}` or a "
                "list [a, b, c]",
                show_value(value),
            )
            return None
        written = membership.get("type")
        if isinstance(written, str):
            lowered = written.strip().lower()
            kind = MEMBERSHIP_ALIASES.get(lowered, lowered)
            if kind in MEMBERSHIP_PARAMETER_COUNTS:
                membership["type"] = kind
                if lowered in _NEVER_EVALUATED:
                    self.checker.note(
                        (*path, "type"),
                        self.never_evaluated(lowered, kind),
                        written,
                    )
        before = len(self.checker.findings)
        self.checker.walk(membership, MembershipSpec, path)
        if len(self.checker.findings) > before:
            return None
        self.zero_width(membership, path)
        return {"type": membership["type"], "parameters": list(membership["parameters"])}

    @staticmethod
    def never_evaluated(written: str, kind: str) -> str:
        if kind == "sigmoid":
            return (
                "no KTRDR version evaluated sigmoid memberships (its training failed); here "
                "[center, slope] gives 1 / (1 + exp(−slope·(x − center)))"
            )
        return f"read as {kind}; KTRDR's training engines did not know `{written}`"

    def zero_width(self, membership: dict[Any, Any], path: FieldPath) -> None:
        """A side of zero width: KTRDR gave 0 beyond that edge; here the shoulder is flat."""
        kind, points = membership["type"], [float(p) for p in membership["parameters"]]
        if kind not in ("triangular", "trapezoidal"):
            return
        edges = []
        at = "at and " if kind == "trapezoidal" else ""  # a triangle's peak test came first
        if points[0] == points[1]:
            edges.append(f"{at}below {points[0]:g}")
        if points[-2] == points[-1]:
            edges.append(f"{at}above {points[-1]:g}")
        if edges:
            self.checker.note(
                (*path, "parameters"),
                f"a side of zero width: KTRDR's membership was 0 {' and '.join(edges)}; here it "
                "stays 1 there (a flat shoulder, the evident intent)",
                membership["parameters"],
            )

    def memberships(self, body: dict[Any, Any], path: FieldPath) -> dict[str, Any] | None:
        """The set's membership functions, in file order (``None`` when there are none)."""
        result: dict[str, Any] = {}
        for name, value in body.items():
            if name in _SET_KEYS and not (name == "output" and isinstance(value, dict)):
                continue
            member_path = (*path, str(name))
            if not isinstance(name, str):
                self.checker.add(member_path, "set names must be text; quote it", show_value(name))
                continue
            membership = self.membership(value, member_path)
            if membership is not None:
                result[name] = membership
        return result

    # -- one set -------------------------------------------------------------------------

    def read_set(self, key: object, body: object) -> dict[str, Any] | None:
        path: FieldPath = ("fuzzy_sets", str(key))
        if not isinstance(body, dict) or not [k for k in body if k not in _SET_KEYS]:
            self.checker.add(
                path,
                "must map set names to membership functions, e.g. "
                "`oversold: {type: triangular, parameters: [0, 20, 35]}`",
                show_value(body),
            )
            return None
        set_id = str(key)
        found = (
            self.v3_reference(body, path)
            if self.layout == "v3"
            else self.v2_reference(set_id, body, path)
        )
        memberships = self.memberships(body, path)
        if found is None or memberships is None:
            return None
        read = self.table.by_id[found[0]]
        self.migration_hazard(set_id, read, found[1])
        result: dict[str, Any] = {
            "indicator": reference(read, found[1]),
            "memberships": memberships,
        }
        transform = self.input_transform(body, path, read)
        if transform is not None:
            result["input_transform"] = transform
        return result


def read_fuzzy_sets(
    checker: FieldChecker,
    top: dict[Any, Any],
    layout: StrategyLayout,
    table: IndicatorTable,
    *,
    early_v2: bool,
) -> dict[str, dict[str, Any]]:
    """Check ``fuzzy_sets`` and read each set into its internal mapping, by set id."""
    if "fuzzy_sets" not in top:
        return {}
    fuzzy_sets = top["fuzzy_sets"]
    if not isinstance(fuzzy_sets, dict) or not fuzzy_sets:
        checker.add(
            ("fuzzy_sets",),
            "must map each fuzzy set to what it reads and its membership sets, e.g. "
            "`rsi: {oversold: {type: triangular, parameters: [0, 20, 35]}}` (v2: keyed by "
            "feature_id)",
            show_value(fuzzy_sets),
        )
        return {}
    reader = _FuzzyReader(checker, layout, table, early_v2)
    result: dict[str, dict[str, Any]] = {}
    for key, body in fuzzy_sets.items():
        read = reader.read_set(key, body)
        if read is not None:
            result[str(key)] = read
    return result
