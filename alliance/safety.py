"""Safety checks that act at once, before a check-in is complete: a risk item answered at or
above its threshold, or a comment with a risk phrase (after Blueprint's "Safety Net")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from alliance.detectors import Flag, Severity
from alliance.instruments import Item

DEFAULT_RISK_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        "kill myself",
        "killing myself",
        "end my life",
        "end it all",
        "suicide",
        "suicidal",
        "want to die",
        "better off dead",
        "hurt myself",
        "harm myself",
        "self-harm",
        "self harm",
        "no reason to live",
        "can't go on",
        "cannot go on",
    ),
}


def risky_answer(item: Item, value: int) -> bool:
    return item.risk_threshold is not None and value >= item.risk_threshold


def risk_phrase(text: str, phrases: Sequence[str]) -> str | None:
    """The first risk phrase found in `text` (case- and spacing-insensitive), or None."""
    folded = " ".join(re.sub(r"[’`]", "'", text).lower().split())
    for phrase in phrases:
        pattern = r"(?<![a-z])" + re.escape(" ".join(phrase.lower().split())) + r"(?![a-z])"
        if re.search(pattern, folded):
            return phrase
    return None


def risk_flag(reason: str) -> Flag:
    """The flag behind an urgent alert: it ignores quiet hours, and only staff clear it."""
    return Flag(rule="risk", severity=Severity.URGENT, reason=reason)
