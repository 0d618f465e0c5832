"""Which flags reach a therapist's phone now, which wait for the pre-session brief.

Ruptures are common and mostly small: clients report tension or a breakdown in 19-42% of
sessions (Safran, Muran & Eubanks-Carter 2011). A message on the therapist's phone for each
of them is alert fatigue, and the alerts that matter drown. So each flag of a closed check-in
is decided once:

- `push`: a Telegram message now (risk at once; a high-confidence rupture after the
  therapist's quiet hours);
- `brief`: kept for the brief the therapist reads before the client's next session, where
  feedback works best (it is discussed in session);
- `none`: neither (an abandoned check-in on its own says little).

A rupture is pushed when the evidence is strong or converges: a drop far below the client's
own level, tension answered "yes", criticism of the therapist or the therapy in the comment,
two different rupture signs on one check-in, a sign that repeats on the next check-in, or a
long run of missed check-ins. Everything else that the detectors see goes into the brief.
The defaults were tuned on synthetic cohorts built two ways (docs/detectors.md).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from alliance.detectors import (
    ALLIANCE_DROP,
    CRITICAL_COMMENT,
    DISENGAGEMENT,
    LOW_ALLIANCE,
    RISK,
    RUPTURE_RULES,
    TENSION,
    Flag,
    Severity,
)


class Delivery(enum.StrEnum):
    PUSH = "push"
    BRIEF = "brief"
    NONE = "none"


class Why(enum.StrEnum):
    """Why a flag was pushed, or why it waits: shown behind the alert's "Why?" button."""

    RISK = "risk"
    STRONG_DROP = "strong_drop"
    VERY_LOW = "very_low"
    TENSION = "tension"
    CRITICISM = "criticism"
    CONVERGING = "converging"
    REPEATED = "repeated"
    LONG_SILENCE = "long_silence"
    SINGLE_SIGN = "single_sign"
    NOT_RUPTURE = "not_rupture"
    TOO_LITTLE = "too_little"


@dataclass(frozen=True)
class TriageSettings:
    """When a rupture sign is strong enough to push. Keys of the config's `[alerts.push]`."""

    # alliance_drop: push at this many SD below the client's usual level (the strict
    # criterion of Stiles et al. 2004 and Gumz et al. 2012 is 2 SD).
    drop_sd: float = 2.0
    # low_alliance: push when the total is this far below the instrument's cutoff, as a share
    # of its range (0.15 = 6 points of 40: 30 or less on the shipped items).
    low_margin: float = 0.15
    # tension: push from this answer (2 = "yes"; 1 "a little" goes into the brief).
    tension_at: int = 2
    # critical_comment: push when the comment criticises the therapist or the therapy.
    criticism: bool = True
    # Two different rupture rules on one check-in are pushed together.
    converging: int = 2
    # A rupture sign on two check-ins in a row: the second is pushed.
    repeated: bool = True
    # disengagement: push from this many check-ins in a row not completed.
    missed_in_a_row: int = 4


PUSH_DEFAULTS = TriageSettings()


@dataclass(frozen=True)
class Decision:
    flag: Flag
    delivery: Delivery
    why: Why


def strong(flag: Flag, settings: TriageSettings = PUSH_DEFAULTS) -> Why | None:
    """Why one rupture flag is a high-confidence sign on its own, or None."""
    evidence = flag.evidence
    if flag.rule == ALLIANCE_DROP:
        z = evidence.get("z")
        if isinstance(z, float | int) and z >= settings.drop_sd - 1e-9:
            return Why.STRONG_DROP
    elif flag.rule == LOW_ALLIANCE:
        total, cutoff, top = (evidence.get(k) for k in ("total", "cutoff", "max_total"))
        if (
            isinstance(total, float | int)
            and isinstance(cutoff, float | int)
            and isinstance(top, float | int)
            and total <= cutoff - settings.low_margin * top + 1e-9
        ):
            return Why.VERY_LOW
    elif flag.rule == TENSION:
        value = evidence.get("value")
        if isinstance(value, float | int) and value >= settings.tension_at:
            return Why.TENSION
    elif flag.rule == CRITICAL_COMMENT:
        if settings.criticism and evidence.get("confrontation") is not None:
            return Why.CRITICISM
    elif flag.rule == DISENGAGEMENT:
        run = evidence.get("in_a_row")
        if isinstance(run, float | int) and run >= settings.missed_in_a_row:
            return Why.LONG_SILENCE
    return None


def _counts(flag: Flag) -> bool:
    """A rupture sign that counts toward convergence and repetition (not an abandoned one)."""
    return flag.rule in RUPTURE_RULES and flag.severity != Severity.INFO


def triage(
    flags: Sequence[Flag],
    previous: Sequence[Flag] = (),
    settings: TriageSettings = PUSH_DEFAULTS,
) -> list[Decision]:
    """Decide each flag of one closed check-in. `previous`: the flags of the client's previous
    closed check-in (empty if none), for the "repeats on the next check-in" rule.

    All rupture flags of one check-in travel together: when one of them is pushed, so are the
    others (the therapist gets one message with the whole picture).
    """
    signs = [flag for flag in flags if _counts(flag)]
    push_why: Why | None = None
    for flag in signs:
        push_why = push_why or strong(flag, settings)
    if push_why is None and len({flag.rule for flag in signs}) >= settings.converging > 0:
        push_why = Why.CONVERGING
    if push_why is None and settings.repeated and signs and any(map(_counts, previous)):
        push_why = Why.REPEATED
    decisions = []
    for flag in flags:
        if flag.rule == RISK:
            decisions.append(Decision(flag, Delivery.PUSH, Why.RISK))
        elif flag.rule not in RUPTURE_RULES:
            decisions.append(Decision(flag, Delivery.BRIEF, Why.NOT_RUPTURE))
        elif not _counts(flag):
            decisions.append(Decision(flag, Delivery.BRIEF, Why.TOO_LITTLE))
        elif push_why is not None:
            decisions.append(Decision(flag, Delivery.PUSH, push_why))
        else:
            decisions.append(Decision(flag, Delivery.BRIEF, Why.SINGLE_SIGN))
    return decisions
