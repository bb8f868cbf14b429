"""``indicators``: a v2/legacy list or a v3 mapping, checked and read into internal specs.

Each item is read by :class:`~ktrdr_lib.strategy._indicator_items.ItemReader`; this module
gives each its id and notes what early-v2 KTRDR's trainer did with it (it dropped flat
parameters and could not resolve some spellings).

Ids: a v3 mapping key; a v2 ``feature_id``, else the ``name`` (early-v2 files, which have no
``feature_id`` at all, get ``<name>_<values>`` where a name repeats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ktrdr_lib.features.registry import IndicatorDef
from ktrdr_lib.schemas.strategies import StrategyLayout
from ktrdr_lib.strategy._field_rules import FieldChecker
from ktrdr_lib.strategy._indicator_items import ItemReader, value_text
from ktrdr_lib.strategy._layout import spelled_for_e2_trainer
from ktrdr_lib.strategy._spec_types import is_number
from ktrdr_lib.strategy._yaml_document import FieldPath, show_value
from ktrdr_lib.strategy.spec import IDENTIFIER_PATTERN

__all__ = ["IndicatorTable", "ReadIndicator", "read_indicators"]

_RESERVED_IDS = frozenset({"open", "high", "low", "close", "volume"})


@dataclass
class ReadIndicator:
    """One indicator as read: its id, catalog entry, internal spec and where it was written."""

    id: str
    entry: IndicatorDef
    written_name: str
    path: FieldPath
    spec: dict[str, Any]
    given: set[str] = field(default_factory=set)

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter, defaults filled in."""
        params: dict[str, Any] = self.spec["params"]
        return params


@dataclass
class IndicatorTable:
    """The indicators read, by id, and whether every item could be read (when not, fuzzy
    set keys naming no indicator are not reported: they may name the unreadable one)."""

    by_id: dict[str, ReadIndicator] = field(default_factory=dict)
    complete: bool = True
    unreadable: set[str] = field(default_factory=set)


class _IndicatorReader(ItemReader):
    """Reads one strategy's indicators into an :class:`IndicatorTable`."""

    def __init__(
        self,
        checker: FieldChecker,
        layout: StrategyLayout,
        early_v2: bool,
        context_ids: set[str] | None,
    ) -> None:
        super().__init__(checker, context_ids)
        self.layout = layout
        self.early_v2 = early_v2
        self.table = IndicatorTable()

    def add(self, indicator_id: str, read: ReadIndicator) -> None:
        """Register an indicator under its id (its noticed, dropped keys under it too)."""
        self.table.by_id[indicator_id] = read
        for key_path, where, value, message in self.pending_ignored:
            self.checker.set_aside(key_path, where.format(id=indicator_id), value, message)

    def e2_notes(self, read: ReadIndicator, item: dict[Any, Any]) -> None:
        """What early-v2 KTRDR's trainer did with this indicator."""
        name = read.written_name
        if not spelled_for_e2_trainer(name):
            self.checker.note(
                (*read.path, "name"),
                f"early-v2 KTRDR's trainer could not resolve `{name}` and silently left this "
                "indicator (and its fuzzy sets) out; it is computed here",
                name,
            )
            return
        flat = [key for key in read.given if key in item and item[key] != read.entry.params[key]]
        if flat:
            written = ", ".join(f"{key}: {value_text(item[key])}" for key in flat)
            defaults = ", ".join(f"{key}: {value_text(read.entry.params[key])}" for key in flat)
            self.checker.note(
                read.path,
                f"early-v2 KTRDR's trainer dropped flat parameters and computed `{name}` with "
                f"its defaults ({defaults}); the values written here ({written}) are used",
            )

    def read_list(self, indicators: list[Any]) -> None:
        """A v2/legacy list of items with ``name`` and parameters beside it."""
        owners: dict[str, int] = {}
        names = [item.get("name") for item in indicators if isinstance(item, dict)]
        for index, item in enumerate(indicators):
            path: FieldPath = ("indicators", index)
            self.pending_ignored = []
            if not isinstance(item, dict):
                self.table.complete = False
                self.checker.add(
                    path,
                    "each indicator must be a mapping with `name` and its parameters, "
                    "e.g. `- {name: rsi, period: 14}`",
                    show_value(item),
                )
                continue
            own = {"name", "feature_id", "source", "data_source", "params"}
            read = self.read_item(item, path, own, "name")
            indicator_id = self.v2_id(item, read, names, path, owners)
            if indicator_id is None or (read is None and not self.entry_known):
                self.table.complete = False
                continue
            if read is None:
                self.table.unreadable.add(indicator_id)
                continue
            entry, spec, given = read
            found = ReadIndicator(indicator_id, entry, str(item["name"]), path, spec, given)
            self.add(indicator_id, found)
            if self.early_v2:
                self.e2_notes(found, item)

    def v2_id(
        self,
        item: dict[Any, Any],
        read: tuple[IndicatorDef, dict[str, Any], set[str]] | None,
        names: list[Any],
        path: FieldPath,
        owners: dict[str, int],
    ) -> str | None:
        """The item's id (``feature_id``, else its name), or ``None`` (reported) when taken."""
        if "feature_id" in item:
            feature_id = item["feature_id"]
            if not isinstance(feature_id, str) or not IDENTIFIER_PATTERN.fullmatch(feature_id):
                self.checker.add(
                    (*path, "feature_id"),
                    "must be letters, digits, '_' and '-', starting with a letter or digit",
                    show_value(feature_id),
                )
                return None
            if feature_id.lower() in _RESERVED_IDS:
                self.checker.add(
                    (*path, "feature_id"),
                    "cannot be a price column's name (open, high, low, close, volume)",
                    show_value(feature_id),
                )
                return None
        else:
            feature_id = item.get("name")
            if not isinstance(feature_id, str):
                return None
            if self.early_v2 and names.count(feature_id) > 1 and read is not None:
                numbers = [v for v in read[1]["params"].values() if is_number(v)]
                values = "_".join(value_text(v) for v in numbers)
                feature_id = f"{feature_id}_{values}".replace(".", "_").rstrip("_")
                while feature_id in owners:
                    feature_id += "_2"
        if feature_id in owners:
            self.checker.add(
                (*path, "feature_id"),
                f"feature_id `{feature_id}` is already used by indicators[{owners[feature_id]}]; "
                "give each indicator a distinct `feature_id` (e.g. sma_fast, sma_slow)",
                show_value(feature_id),
            )
            return None
        owners[feature_id] = int(path[-1])
        return feature_id

    def read_mapping(self, indicators: dict[Any, Any]) -> None:
        """A v3 mapping of id → ``{type, parameters…}``."""
        for key, item in indicators.items():
            path: FieldPath = ("indicators", str(key))
            self.pending_ignored = []
            if not isinstance(key, str) or not IDENTIFIER_PATTERN.fullmatch(key):
                self.table.complete = False
                self.checker.add_at_key(
                    path,
                    "an indicator id must be letters, digits, '_' and '-', starting with a "
                    "letter or digit (no dots: `id.output` names an output)",
                )
                continue
            if not isinstance(item, dict):
                self.table.complete = False
                self.checker.add(
                    path,
                    "each indicator must be a mapping with `type` and its parameters, "
                    "e.g. `rsi_14: {type: rsi, period: 14}`",
                    show_value(item),
                )
                continue
            read = self.read_item(item, path, {"type", "source", "data_source", "params"}, "type")
            if read is None:
                self.table.unreadable.add(key)
                continue
            entry, spec, given = read
            self.add(key, ReadIndicator(key, entry, str(item["type"]), path, spec, given))


def read_indicators(
    checker: FieldChecker,
    top: dict[Any, Any],
    layout: StrategyLayout,
    *,
    early_v2: bool,
    context_ids: set[str] | None,
) -> IndicatorTable:
    """Check ``indicators`` and read each into its internal spec, by id.

    Args:
        checker: collects problems, notices and dropped keys.
        top: the whole strategy mapping.
        layout: the file's layout (a v3 file has a mapping, others a list).
        early_v2: whether the file was written for early-v2 KTRDR (no ``feature_id``).
        context_ids: the ids ``data_source`` may name (``None``: any).
    """
    reader = _IndicatorReader(checker, layout, early_v2, context_ids)
    indicators = top.get("indicators")
    if layout == "v3":
        if isinstance(indicators, dict) and indicators:
            reader.read_mapping(indicators)
        elif "indicators" in top:
            reader.table.complete = False
            checker.add(
                ("indicators",),
                "must map each indicator's id to its type and parameters, e.g. "
                "`rsi_14: {type: rsi, period: 14}`",
                show_value(indicators),
            )
    elif isinstance(indicators, list) and indicators:
        reader.read_list(indicators)
    elif "indicators" in top:
        reader.table.complete = False
        v3_hint = (
            " (a mapping of id → indicator is the v3 layout, which also needs nn_inputs)"
            if isinstance(indicators, dict) and indicators
            else ""
        )
        checker.add(
            ("indicators",),
            "must be a non-empty list of indicators, e.g. `- {name: rsi, period: 14}`" + v3_hint,
            show_value(indicators),
        )
    return reader.table
