"""Instruments as data: items, answer scales, scoring and cutoffs.

Parsing works on already-loaded TOML tables (no file I/O here); every rejection names the
source, the item and what is wrong, so a practice can fix its own definition files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SCORINGS = ("sum", "mean")


class InstrumentError(ValueError):
    """A definition that cannot be used; the message names the file, the item and the fix."""


Fail = Callable[[str, str], InstrumentError]


@dataclass(frozen=True)
class Item:
    id: str
    prompt: str
    min: int
    max: int
    labels: Mapping[int, str] = field(default_factory=dict)
    scored: bool = True
    skippable: bool = False
    risk_threshold: int | None = None

    @property
    def values(self) -> range:
        return range(self.min, self.max + 1)


@dataclass(frozen=True)
class Instrument:
    id: str
    title: str
    items: tuple[Item, ...]
    intro: str = ""
    scoring: str = "sum"
    scale_factor: float = 1.0
    cutoff: float | None = None
    reliable_change: float | None = None
    attribution: str = ""
    licence: str = ""
    validated: bool = False

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.scored)

    @property
    def max_total(self) -> float:
        maxima = [item.max for item in self.scored_items]
        raw = sum(maxima) if self.scoring == "sum" else max(maxima, default=0)
        return raw * self.scale_factor

    def total(self, answers: Mapping[str, int]) -> float | None:
        """The score, or None when a scored item is unanswered (a partial total misleads)."""
        values = [answers.get(item.id) for item in self.scored_items]
        present = [v for v in values if v is not None]
        if not present or len(present) != len(values):
            return None
        raw = sum(present) if self.scoring == "sum" else sum(present) / len(present)
        return raw * self.scale_factor


def parse_instrument(data: Mapping[str, Any], source: str) -> Instrument:
    """Build an Instrument from a TOML table; `source` names the file in error messages."""

    def fail(where: str, problem: str) -> InstrumentError:
        return InstrumentError(f"{source}: {where}: {problem}")

    inst_id = _text(data, "id", source, fail)
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise fail("items", "add at least one [[items]] table")
    items: list[Item] = []
    for index, raw in enumerate(raw_items, start=1):
        where = f"item {index}"
        if not isinstance(raw, Mapping):
            raise fail(where, "must be a table ([[items]])")
        item_id = _text(raw, "id", source, fail, where)
        where = f"item '{item_id}'"
        if any(existing.id == item_id for existing in items):
            raise fail(where, "the id is used twice; every item needs its own id")
        low, high = _int(raw, "min", where, fail), _int(raw, "max", where, fail)
        if low >= high:
            raise fail(where, f"min ({low}) must be less than max ({high})")
        if high - low > 10:
            raise fail(where, "a scale may have at most 11 points (it must fit on a phone)")
        labels = _labels(raw.get("labels", {}), low, high, where, fail)
        threshold = raw.get("risk_threshold")
        if threshold is not None and (
            not isinstance(threshold, int) or isinstance(threshold, bool) or threshold > high
        ):
            raise fail(where, f"risk_threshold must be a whole number up to {high}")
        items.append(
            Item(
                id=item_id,
                prompt=_text(raw, "prompt", source, fail, where),
                min=low,
                max=high,
                labels=labels,
                scored=_bool(raw, "scored", True, where, fail),
                skippable=_bool(raw, "skippable", False, where, fail),
                risk_threshold=threshold,
            )
        )
    scoring = data.get("scoring", "sum")
    if scoring not in SCORINGS:
        raise fail("scoring", f"must be one of {', '.join(SCORINGS)}, not {scoring!r}")
    return Instrument(
        id=inst_id,
        title=_text(data, "title", source, fail),
        items=tuple(items),
        intro=str(data.get("intro", "")),
        scoring=scoring,
        scale_factor=_number(data, "scale_factor", 1.0, fail),
        cutoff=_optional_number(data, "cutoff", fail),
        reliable_change=_optional_number(data, "reliable_change", fail),
        attribution=str(data.get("attribution", "")),
        licence=str(data.get("licence", "")),
        validated=_bool(data, "validated", False, "instrument", fail),
    )


def _text(data: Mapping[str, Any], key: str, source: str, fail: Fail, where: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{where} {key}".strip(), "is missing or empty; add a text value")
    if key == "id" and not value.replace("_", "").isalnum():
        raise fail(f"{where} id".strip(), f"{value!r} may hold only letters, digits and _")
    return value


def _int(data: Mapping[str, Any], key: str, where: str, fail: Fail) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(f"{where} {key}", "is missing or not a whole number")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool, where: str, fail: Fail) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise fail(f"{where} {key}", "must be true or false")
    return value


def _number(data: Mapping[str, Any], key: str, default: float, fail: Fail) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(key, "must be a number")
    return float(value)


def _optional_number(data: Mapping[str, Any], key: str, fail: Fail) -> float | None:
    return None if data.get(key) is None else _number(data, key, 0.0, fail)


def _labels(raw: Any, low: int, high: int, where: str, fail: Fail) -> dict[int, str]:
    if not isinstance(raw, Mapping):
        raise fail(f"{where} labels", 'must be a table such as { 0 = "Never", 10 = "Always" }')
    labels: dict[int, str] = {}
    for key, text in raw.items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise fail(f"{where} labels", f"{key!r} is not a scale value") from None
        if not low <= value <= high:
            raise fail(f"{where} labels", f"{value} is outside the scale {low}-{high}")
        if not isinstance(text, str) or not text.strip():
            raise fail(f"{where} labels", f"the label for {value} must be a text")
        labels[value] = text
    return labels
