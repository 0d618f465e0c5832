"""Safety checks that act at once, before a check-in is complete: a risk item answered at or
above its threshold, or a comment or any other text from a client with a risk phrase (after
Blueprint's "Safety Net"). The
phrases are the detectors' (`risk_phrase`), so one list serves both."""

from __future__ import annotations

from dataclasses import dataclass

from alliance.detectors import Flag, Severity
from alliance.instruments import Item


def risky_answer(item: Item, value: int) -> bool:
    return item.risk_threshold is not None and value >= item.risk_threshold


@dataclass(frozen=True)
class RiskAnswer:
    """A risk item answered at or above its threshold, as the check-in recorded it."""

    instrument: str
    item: str
    value: int


def risk_flag(reason: str, evidence: dict[str, float | str] | None = None) -> Flag:
    """The flag behind an urgent alert: it ignores quiet hours, and only staff clear it.
    `evidence` carries the numbers and words the therapist's message is made from."""
    return Flag(rule="risk", severity=Severity.URGENT, reason=reason, evidence=evidence or {})


def risk_answer_flag(answer: RiskAnswer) -> Flag:
    reason = f"'{answer.item}' of {answer.instrument} answered {answer.value} (risk item)"
    return risk_flag(reason, {f"{answer.instrument}.{answer.item}": answer.value})


def risk_phrase_flag(phrase: str) -> Flag:
    return risk_flag(f"The comment contains a risk phrase ('{phrase}')", {"phrase": phrase})


# The whole reason of the alert for text a client wrote outside a check-in: neither the text
# nor the phrase matched in it, since the text is not kept.
OUTSIDE_CHECKIN = "A risk phrase was written outside a check-in"


def outside_checkin_flag() -> Flag:
    return risk_flag(OUTSIDE_CHECKIN)
