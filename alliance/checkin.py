"""The order of questions in one check-in, independent of how they are shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from alliance.instruments import Instrument, Item


@dataclass(frozen=True)
class Step:
    """One question: which instrument and item, and where it stands in the check-in."""

    instrument: Instrument
    item: Item
    position: int
    count: int

    @property
    def progress(self) -> str:
        return f"{self.position + 1}/{self.count}"


def steps(instruments: Sequence[Instrument]) -> list[Step]:
    flat = [(inst, item) for inst in instruments for item in inst.items]
    return [Step(inst, item, i, len(flat)) for i, (inst, item) in enumerate(flat)]


def scores(
    instruments: Sequence[Instrument], answers: Mapping[tuple[str, str], int]
) -> dict[str, float | None]:
    """Each instrument's total from answers keyed by (instrument id, item id)."""
    return {
        inst.id: inst.total({item: v for (i, item), v in answers.items() if i == inst.id})
        for inst in instruments
    }
