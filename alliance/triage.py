"""Which flags reach a therapist's phone now, which wait for the pre-session brief.

Ruptures are common and mostly small: clients report tension or a breakdown in 19-42% of
sessions (Safran, Muran & Eubanks-Carter 2011). A message on the therapist's phone for each
of them is alert fatigue, and the alerts that matter drown. So each flag of a closed check-in
is decided once:

- `push`: a Telegram message now (risk at once; a high-confidence rupture after the
  therapist's quiet hours);
- `brief`: kept for the brief the therapist reads before the client's next session, where
  feedback works best (it is discussed in session);
- `none`: neither. The defaults decide no flag so: even an abandoned check-in on its own
  goes into the brief, where it costs little.

A rupture is pushed when the evidence is strong or corroborated: a drop far below the
client's own level (or, before the client has a level, a reliable fall since the last
check-in), tension answered "yes", two different kinds of sign on the same check-in (a fall
below the client's own level, tension, a comment marker, going quiet), or the same mild sign
again on the next check-in (a fall, a comment marker). Everything else the detectors see
goes into the brief. An absolute low score alone is not pushed (persistently lower scorers
and ceiling effects: within-person change says more), nor are comment markers alone (phrase
lists match words, not meaning) or a run of missed check-ins (the therapist sees whether the
client still comes). The defaults and how they were chosen on two synthetic cohorts:
docs/detectors.md, "Two tiers".
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
    """When a rupture sign is strong enough to push. Keys of the config's `[alerts.push]`.

    Defaults chosen on the tuning seed of two synthetic cohorts (docs/detectors.md)."""

    # alliance_drop: push at this many SD below the client's usual level (the strict
    # criterion of Stiles et al. 2004 and Gumz et al. 2012). Before the client has a usual
    # level (the detectors' drop_min_baseline), a fall by the instrument's reliable change
    # since the last check-in is pushed instead (Jacobson & Truax 1991); once there is one,
    # a reliable fall that stays within drop_sd of it is a return from a good week, not a V
    # below the client's level, and waits for the brief unless something corroborates it.
    drop_sd: float = 2.0
    # low_alliance: push when the total is this far below the instrument's cutoff, as a share
    # of its range (0.4 = 16 points of 40: 20 or less, every item at the middle of the scale
    # on average). Milder low scores go into the brief: an absolute level is not a change.
    low_margin: float = 0.4
    # tension: push from this answer (2 = "yes"; 1 "a little" goes into the brief: clients
    # report some tension in 19-42% of sessions).
    tension_at: int = 2
    # critical_comment: push confrontation markers on their own. Off: the phrase lists match
    # words, not meaning ("felt rushed getting there"); beside a fall they are pushed anyway.
    criticism: bool = False
    # Push when this many different kinds of rupture sign (a fall below the client's own
    # level, tension, a comment marker, going quiet) are on one check-in: two mild signs the
    # client gave independently ("a little" tension and a critical comment) corroborate each
    # other. 0: off.
    converging: int = 2
    # The same kind of mild sign on two check-ins in a row, a fall below the client's own
    # level or a comment marker: the second is pushed (a pattern, not a one-week dip). Not
    # "a little" tension (some clients say it most weeks) nor missed check-ins (holidays).
    repeated: bool = True
    # disengagement: push from this many check-ins in a row not completed (the detectors
    # report runs of their missed_in_a_row and twice it: 2 and 4). 0: off, the brief says it.
    missed_in_a_row: int = 0


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
        if "reliable_change" in evidence and "baseline_n" not in evidence:
            return Why.STRONG_DROP  # fell by the reliable change, and no usual level yet
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
        if (
            settings.missed_in_a_row > 0
            and flag.severity != Severity.INFO
            and isinstance(run, float | int)
            and run >= settings.missed_in_a_row
        ):
            return Why.LONG_SILENCE
    return None


# The kinds of rupture sign that corroborate each other. low_alliance is not one: it reads
# the same answers as a fall, and an absolute level is not a change.
_KIND = {
    ALLIANCE_DROP: "fall",
    TENSION: "tension",
    CRITICAL_COMMENT: "comment",
    DISENGAGEMENT: "quiet",
}


def _counts(flag: Flag) -> bool:
    """A rupture sign (not a lone abandoned check-in, which is info)."""
    return flag.rule in RUPTURE_RULES and flag.severity != Severity.INFO


# The mild signs whose repetition on the next check-in is pushed (`repeated`).
_REPEATS = (ALLIANCE_DROP, CRITICAL_COMMENT)


def _repeated(signs: Sequence[Flag], previous: Sequence[Flag]) -> bool:
    before = {flag.rule for flag in previous if _counts(flag)}
    return any(flag.rule in _REPEATS and flag.rule in before for flag in signs)


def triage(
    flags: Sequence[Flag],
    previous: Sequence[Flag] = (),
    settings: TriageSettings = PUSH_DEFAULTS,
) -> list[Decision]:
    """Decide each flag of one closed check-in. `previous`: the flags of the client's previous
    check-in (empty if none), for the "the same sign again on the next check-in" rule.

    All rupture flags of one check-in travel together: when one of them is pushed, so are the
    others (the therapist gets one message with the whole picture).
    """
    signs = [flag for flag in flags if _counts(flag)]
    push_why: Why | None = None
    for flag in signs:
        push_why = push_why or strong(flag, settings)
    kinds = {_KIND[flag.rule] for flag in signs if flag.rule in _KIND}
    if push_why is None and len(kinds) >= settings.converging > 0:
        push_why = Why.CONVERGING
    if push_why is None and settings.repeated and _repeated(signs, previous):
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
