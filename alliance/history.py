"""A client's check-in history as the detectors see it: plain, frozen records, oldest first."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


class Status(enum.StrEnum):
    """How a check-in ended.

    The values `completed`, `missed` and `expired` are the store's own check-in states, so a
    stored row maps over by value:

    - `completed`: every item answered (a comment is optional).
    - `missed`: the answer window closed before the client answered anything.
    - `abandoned`: started, not finished (some answers, then nothing).
    - `expired`: the store's name for a check-in that was started and whose window closed
      before it was finished. Detectors treat it exactly like `abandoned`.
    """

    COMPLETED = "completed"
    MISSED = "missed"
    ABANDONED = "abandoned"
    EXPIRED = "expired"

    @property
    def unfinished(self) -> bool:
        """Started and left (abandoned, or expired while in progress)."""
        return self in (Status.ABANDONED, Status.EXPIRED)


@dataclass(frozen=True)
class CheckinRecord:
    """One check-in: when it was due, how it ended, what was answered and the comment.

    `answers` is keyed by (instrument id, item id). An abandoned check-in may carry the answers
    given before the client stopped; the detectors still look at those (a risk item answered
    before leaving must not be lost), but never compute a total from a partial instrument.
    """

    checkin_id: str
    due_at: datetime
    status: Status
    answers: Mapping[tuple[str, str], int] = field(default_factory=dict, hash=False)
    comment: str | None = None

    # Worked out once per record (the detectors read them again at every later check-in).
    by_instrument: Mapping[str, Mapping[str, int]] = field(
        init=False, repr=False, compare=False, hash=False
    )
    memo: dict[str, tuple[object, float | None]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        grouped: dict[str, dict[str, int]] = {}
        for (inst, item), value in self.answers.items():
            into = grouped.get(inst)
            if into is None:
                into = grouped[inst] = {}
            into[item] = value
        object.__setattr__(self, "by_instrument", grouped)
        object.__setattr__(self, "memo", {})  # each instrument's total, for the detectors

    def of(self, instrument_id: str) -> Mapping[str, int]:
        """The answers to one instrument, keyed by item id."""
        return self.by_instrument.get(instrument_id, _EMPTY)


_EMPTY: Mapping[str, int] = {}
