"""Instruments as data: items, answer scales, scoring and cutoffs.

Parsing works on already-loaded TOML tables (no file I/O here); every rejection names the
source, the item and what is wrong, so a practice can fix its own definition files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SCORINGS = ("sum", "mean")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


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
    # The same instrument in other languages (texts only; ids, scales and scoring are the
    # file's), by language code: from the file's `[translations.<lang>]` and each item's
    # `[items.translations.<lang>]` tables.
    translations: Mapping[str, Instrument] = field(default_factory=dict, compare=False, repr=False)

    def in_language(self, language: str | None) -> Instrument:
        """This instrument's texts in `language` ('de', 'pt-br' or its base 'pt') when the
        file has them, else as written (English)."""
        if not language or not self.translations:
            return self
        found = self.translations.get(language) or self.translations.get(language.split("-")[0])
        return found or self

    @property
    def languages(self) -> list[str]:
        return sorted(self.translations)

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
    base = Instrument(
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
    translated = _translations(data, raw_items, base, fail)
    return replace(base, translations=translated) if translated else base


_INSTRUMENT_TEXTS = ("title", "intro", "attribution")
_ITEM_TEXTS = ("prompt", "labels")


def _tables(raw: Any, where: str, fail: Fail) -> Mapping[str, Mapping[str, Any]]:
    """A `translations` table: language codes, each a table."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise fail(where, 'must be a table of languages, e.g. [translations.de] title = "..."')
    for language, table in raw.items():
        if not isinstance(language, str) or not LANGUAGE.match(language):
            raise fail(f"{where}.{language}", "is not a language code such as de or pt-br")
        if not isinstance(table, Mapping):
            raise fail(f"{where}.{language}", "must be a table")
    return raw


def _translations(
    data: Mapping[str, Any], raw_items: list[Any], base: Instrument, fail: Fail
) -> dict[str, Instrument]:
    """The instrument in each language its file translates it into. A language must give
    every item's prompt (a check-in is never half in one language), and labels for the
    same scale points as the English ones."""
    own = _tables(data.get("translations"), "translations", fail)
    per_item = [
        _tables(raw.get("translations"), f"item '{item.id}' translations", fail)
        for raw, item in zip(raw_items, base.items, strict=True)
    ]
    languages = sorted({*own, *(lang for tables in per_item for lang in tables)})
    found: dict[str, Instrument] = {}
    for language in languages:
        texts = own.get(language, {})
        for key in texts:
            if key not in _INSTRUMENT_TEXTS:
                raise fail(
                    f"translations.{language}.{key}",
                    f"unknown; translate only {', '.join(_INSTRUMENT_TEXTS)} here and each "
                    "item's prompt and labels under [items.translations." + language + "]",
                )
        items = []
        for item, tables in zip(base.items, per_item, strict=True):
            where = f"item '{item.id}' translations.{language}"
            table = tables.get(language)
            if table is None:
                raise fail(where, "is missing; translate every item, or none, into a language")
            for key in table:
                if key not in _ITEM_TEXTS:
                    raise fail(f"{where}.{key}", "unknown; an item translates prompt and labels")
            prompt = _text(table, "prompt", "", fail, where)
            labels = _labels(table.get("labels", {}), item.min, item.max, where, fail)
            if set(labels) != set(item.labels):
                raise fail(
                    f"{where} labels",
                    f"must label the same points as the English labels ({sorted(item.labels)})",
                )
            items.append(replace(item, prompt=prompt, labels=labels))
        found[language] = replace(
            base,
            title=_optional_text(texts, "title", base.title, language, fail),
            intro=_optional_text(texts, "intro", base.intro, language, fail),
            attribution=_optional_text(texts, "attribution", base.attribution, language, fail),
            items=tuple(items),
        )
    return found


def _optional_text(
    texts: Mapping[str, Any], key: str, default: str, language: str, fail: Fail
) -> str:
    value = texts.get(key, default)
    if not isinstance(value, str):
        raise fail(f"translations.{language}.{key}", "must be a text")
    return value


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
