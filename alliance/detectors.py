"""Rupture detectors: pure functions from a client's answers to flags with reasons."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alliance.instruments import Instrument

ALLIANCE = "alliance"


class Severity(enum.StrEnum):
    INFO = "info"
    WARN = "warn"
    HIGH = "high"
    URGENT = "urgent"


@dataclass(frozen=True)
class Flag:
    rule: str
    severity: Severity
    reason: str


def _fmt(value: float) -> str:
    return f"{value:g}"


def low_alliance(instrument: Instrument, answers: Mapping[str, int]) -> Flag | None:
    """Total at or below the instrument's cutoff (36 of 40 for `alliance`, after the SRS)."""
    total = instrument.total(answers)
    if total is None or instrument.cutoff is None or total > instrument.cutoff:
        return None
    lowest = min(instrument.scored_items, key=lambda item: answers[item.id])
    return Flag(
        rule="low_alliance",
        severity=Severity.WARN,
        reason=(
            f"Alliance {_fmt(total)}/{_fmt(instrument.max_total)}, at or below the cutoff "
            f"{_fmt(instrument.cutoff)}; lowest item '{lowest.id}' at {answers[lowest.id]}"
        ),
    )


def evaluate(
    instruments: Sequence[Instrument], answers: Mapping[tuple[str, str], int]
) -> list[Flag]:
    """All flags raised by one completed check-in (answers keyed by instrument and item)."""
    flags = []
    for instrument in instruments:
        own = {item: v for (inst, item), v in answers.items() if inst == instrument.id}
        if instrument.id == ALLIANCE and (flag := low_alliance(instrument, own)) is not None:
            flags.append(flag)
    return flags
