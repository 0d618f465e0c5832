"""Safety checks that act at once, before a check-in is complete: a risk item answered at or
above its threshold, or a comment or any other text from a client with a risk phrase (after
Blueprint's "Safety Net"). The
phrases are the detectors' (`risk_phrase`), so one list serves both."""

from __future__ import annotations

from alliance.detectors import Flag, Severity
from alliance.instruments import Item


def risky_answer(item: Item, value: int) -> bool:
    return item.risk_threshold is not None and value >= item.risk_threshold


def risk_flag(reason: str) -> Flag:
    """The flag behind an urgent alert: it ignores quiet hours, and only staff clear it."""
    return Flag(rule="risk", severity=Severity.URGENT, reason=reason)


# The whole reason of the alert for text a client wrote outside a check-in: neither the text
# nor the phrase matched in it, since the text is not kept.
OUTSIDE_CHECKIN = "A risk phrase was written outside a check-in"


def outside_checkin_flag() -> Flag:
    return risk_flag(OUTSIDE_CHECKIN)
