"""Rupture types and repair suggestions for the therapist, after Safran & Muran.

Suggestions are short, concrete and evidence-based: rupture-repair work predicts better outcome
(Eubanks, Muran & Safran 2018 meta-analysis). Confrontation calls for non-defensive exploration
and acknowledging one's own part; withdrawal for gently naming what was noticed and making it
safe to disagree; low task or goal agreement for renegotiating tasks and goals (Bordin's alliance;
Safran & Muran's "immediate" repair strategies).
"""

from __future__ import annotations

import enum
from collections.abc import Collection


class RuptureType(enum.StrEnum):
    """The two rupture markers of the 3RS: moving against, and moving away."""

    CONFRONTATION = "confrontation"
    WITHDRAWAL = "withdrawal"


EXPLORE = (
    "Invite the client to talk about the relationship itself at the next session: ask what has "
    "and has not been helpful, and say it is fine to disagree with you."
)
CONFRONTATION = (
    "At the next session, invite the client to say what went wrong between you, listen without "
    "defending, and acknowledge your part in it."
)
WITHDRAWAL = (
    "Gently name what you noticed (for example 'I wonder how our work has felt lately') and "
    "invite the client to talk about the relationship itself; make it safe to disagree."
)
TASKS_GOALS = (
    "Revisit goals and tasks together: give your rationale for the approach and ask what would "
    "fit better."
)
BOND = (
    "Check whether the client felt heard: reflect back what mattered to them last time and ask "
    "whether you got it right."
)
RISK_ACTION = (
    "Follow your practice's safety protocol now: contact the client and check their safety "
    "(the client was shown crisis resources).",
)

_OPENING = {
    RuptureType.CONFRONTATION: CONFRONTATION,
    RuptureType.WITHDRAWAL: WITHDRAWAL,
    None: EXPLORE,
}


def suggest(rupture: RuptureType | None, weak_items: Collection[str]) -> tuple[str, ...]:
    """One or two suggestions: one for the rupture type, one for the weakest dimension.

    `weak_items` are the alliance item ids that are low or fell; the shipped `alliance` items
    are bond, goals, approach and overall.
    """
    out = [_OPENING[rupture]]
    if {"goals", "approach"} & set(weak_items):
        out.append(TASKS_GOALS)
    elif "bond" in weak_items:
        out.append(BOND)
    return tuple(out)
