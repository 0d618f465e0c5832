"""Alerts in words a busy therapist reads at a glance.

`sentence` turns one alert into one plain sentence in the client's own numbers ("Kim's
alliance answers fell well below their usual (38 to 31 of 40)."); `opening_question` gives
one question to open the subject in session; `why_text` is the technical side, shown behind
the alert's "Why?" button: the rule, its severity and thresholds, the numbers, and why the
alert was sent now or kept for the brief before the next session.

Pure functions, no I/O. `detail` is the practice's `[alerts] detail`, and every function
keeps its promise:

- `full`: everything; a comment's matched cue (a phrase from the practice's list) may be
  quoted, the client's comment itself never is;
- `scores`: scores, but no comment text and no matched cue;
- `minimal`: nothing clinical passes through Telegram (`sentence` is None; `why_text` says
  where the details are). Any other value is treated as `minimal`.

Alerts raised before the evidence was stored have none: their sentence says what happened
without numbers.

Every word here goes through the message catalogs in the practice's language (`_()`,
`ngettext()`, `N_()`; English is shipped, handlers/i18n.py); rule ids, severities and evidence
keys stay as they are (they name the detector guide's rules).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence

from alliance.detectors import (
    ALLIANCE_DROP,
    CRITICAL_COMMENT,
    DISENGAGEMENT,
    LOW_ALLIANCE,
    RISK,
    RUPTURE_RULES,
    TENSION,
    WELLBEING_DROP,
    WELLBEING_LOW,
    Severity,
)
from alliance.safety import OUTSIDE_CHECKIN
from handlers.i18n import N_, _, ngettext
from store.alerts import PendingAlert


class Detail(enum.StrEnum):
    """What of a client's answers passes through Telegram and the dashboard
    (`[alerts] detail`): the practice's promise, kept by every message and page."""

    FULL = "full"  # scores, the comments' words, the reasons
    SCORES = "scores"  # scores; a comment by its kind only
    MINIMAL = "minimal"  # nothing clinical: where the details are


def shows_scores(detail: Detail) -> bool:
    return detail in (Detail.FULL, Detail.SCORES)


def shows_comments(detail: Detail) -> bool:
    return detail == Detail.FULL


# The rules in the order their sentences are shown: risk first.
RULE_ORDER = (
    RISK,
    ALLIANCE_DROP,
    LOW_ALLIANCE,
    TENSION,
    CRITICAL_COMMENT,
    DISENGAGEMENT,
    WELLBEING_DROP,
    WELLBEING_LOW,
)
SEVERITY_RANK = {str(severity): severity.rank for severity in Severity}


def severity_rank(severity: str) -> int:
    """0 (info) to 3 (urgent), as alliance's Severity.rank; an unknown severity counts as warn."""
    return SEVERITY_RANK.get(severity, 1)


# The shipped alliance items, as a therapist would say them (`_()` where used).
ITEM_WORDS = {
    "bond": N_("feeling heard"),
    "goals": N_("goals"),
    "approach": N_("the approach"),
    "overall": N_("overall fit"),
}

# Where the details are when the practice keeps them out of Telegram (`_()` where used).
ELSEWHERE = N_(
    "Your practice keeps check-in details out of Telegram: see them in the practice's "
    "records (ask your practice admin)."
)


def ordered(group: Sequence[PendingAlert]) -> list[PendingAlert]:
    """A client's alerts, most important first: risk, then by severity, then by rule."""

    def key(alert: PendingAlert) -> tuple[int, int, int]:
        rule = RULE_ORDER.index(alert.rule) if alert.rule in RULE_ORDER else len(RULE_ORDER)
        return (alert.rule != RISK, -severity_rank(alert.severity), rule)

    return sorted(group, key=key)


def opening_question(rupture_type: str | None) -> str:
    """One question to open the subject at the next session, by the suggested rupture type
    (alliance.repair.RuptureType values; anything else gets the general question)."""
    if rupture_type == "withdrawal":
        return _(
            "Last week's answers were quieter than usual. How has our work felt to you lately?"
        )
    if rupture_type == "confrontation":
        return _(
            "It sounded like something in our work did not sit right with you. "
            "Can we look at it together?"
        )
    return _("How is our work together going for you, and is there anything you would change?")


# --- one sentence per alert -----------------------------------------------------------------


def sentence(alert: PendingAlert, detail: Detail) -> str | None:
    """One plain sentence about one alert, ending with a full stop; None under `minimal`.

    No rule ids, no SD: the client's own numbers ("33 of 40", "64% to 40%"). Under `scores`
    a comment is described by its kind only; under `full` the matched cue may be quoted.
    """
    if not shows_scores(detail):
        return None
    words = _SENTENCES.get(alert.rule, _other)
    return end(words(alert, alert.client_label, alert.evidence, shows_comments(detail)))


def end(text: str) -> str:
    """A sentence with one full stop ("A.B." does not get a second)."""
    return text if text.endswith((".", "!", "?")) else text + "."


def sentences(group: Sequence[PendingAlert], detail: Detail) -> list[str]:
    """The sentences for a client's alerts, most important first, without saying a number
    twice: a low total is not repeated beside a fall to that same total (the fall says it).
    Empty under `minimal`."""
    alerts = ordered(group)
    drops = {_number(a.evidence, "total") for a in alerts if a.rule == ALLIANCE_DROP and a.evidence}
    out: list[str] = []
    for alert in alerts:
        total = _number(alert.evidence, "total")
        if alert.rule == LOW_ALLIANCE and total is not None and total in drops:
            continue
        said = sentence(alert, detail)
        if said is not None and said not in out:
            out.append(said)
    return out


Evidence = Mapping[str, float | str]


def _number(evidence: Evidence, key: str) -> float | None:
    value = evidence.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _n(value: float) -> str:
    """A score as a therapist writes it: 31, 37.5."""
    rounded = round(value, 1)
    return f"{int(rounded)}" if rounded == int(rounded) else f"{rounded:.1f}"


def _whole(value: float) -> str:
    """A mean for a glance: the nearest whole number (37.5 is 38)."""
    return f"{int(value + 0.5)}"


def _items(evidence: Evidence) -> str:
    raw = evidence.get("weak_items")
    if not isinstance(raw, str) or not raw:
        return ""
    names = [_(ITEM_WORDS[i]) if i in ITEM_WORDS else f"'{i}'" for i in raw.split(",") if i]
    return _both(names[:2])


def _both(parts: Sequence[str]) -> str:
    """'a', or 'a and b' in the practice's language."""
    if len(parts) < 2:
        return "".join(parts)
    return _("{first} and {second}", first=parts[0], second=parts[1])


def _low_alliance(alert: PendingAlert, who: str, evidence: Evidence, full: bool) -> str:
    total, top = _number(evidence, "total"), _number(evidence, "max_total")
    weak = _items(evidence)
    if total is None or top is None:
        if weak:
            return _("{who} rated {weak} low", who=who, weak=weak)
        return _("{who}'s alliance answers are low", who=who)
    score = _("{score} of {top}", score=_n(total), top=_n(top))
    if weak and "cutoff" not in evidence:  # the total is fine; one area is low
        return _("{who} rated {weak} low (alliance {score})", who=who, weak=weak, score=score)
    if weak:
        return _(
            "{who}'s alliance answers are low ({score}), lowest on {weak}",
            who=who,
            score=score,
            weak=weak,
        )
    return _("{who}'s alliance answers are low ({score})", who=who, score=score)


def _alliance_drop(alert: PendingAlert, who: str, evidence: Evidence, full: bool) -> str:
    total, top = _number(evidence, "total"), _number(evidence, "max_total")
    mean, z = _number(evidence, "baseline_mean"), _number(evidence, "z")
    previous = _number(evidence, "previous_total")
    strong = severity_rank(alert.severity) >= 2
    weak = _items(evidence)
    if total is None or top is None:
        if strong:
            text = _("{who}'s alliance answers fell well below their usual", who=who)
        else:
            text = _("{who}'s alliance answers fell below their usual", who=who)
    elif mean is not None and (z is None or z >= 1 or previous is None):
        values = {"who": who, "usual": _whole(mean), "score": _n(total), "top": _n(top)}
        if strong:
            text = _(
                "{who}'s alliance answers fell well below their usual ({usual} to {score} of "
                "{top})",
                **values,
            )
        else:
            text = _(
                "{who}'s alliance answers fell below their usual ({usual} to {score} of {top})",
                **values,
            )
    elif previous is not None:
        text = _(
            "{who}'s alliance answers fell sharply since last time ({before} to {score} of {top})",
            who=who,
            before=_n(previous),
            score=_n(total),
            top=_n(top),
        )
    else:
        values = {"who": who, "score": _n(total), "top": _n(top)}
        if strong:
            text = _(
                "{who}'s alliance answers fell well below their usual ({score} of {top})", **values
            )
        else:
            text = _("{who}'s alliance answers fell below their usual ({score} of {top})", **values)
    return _("{sentence}, most on {weak}", sentence=text, weak=weak) if weak else text


def _tension(alert: PendingAlert, who: str, evidence: Evidence, full: bool) -> str:
    value = _number(evidence, "value")
    if value is not None and value < 2:
        return _(
            "{who} said there was some tension between you in or since the last session", who=who
        )
    return _("{who} said there was tension between you in or since the last session", who=who)


def _critical_comment(alert: PendingAlert, who: str, evidence: Evidence, full: bool) -> str:
    kind = evidence.get("kind")
    confrontation = kind in ("confrontation", "both") or "confrontation" in evidence
    withdrawal = kind in ("withdrawal", "both") or "withdrawal" in evidence
    if confrontation and withdrawal:
        text = _("{who} wrote something critical of the therapy and sounded resigned", who=who)
    elif confrontation:
        text = _("{who} wrote something critical of the therapy", who=who)
    elif withdrawal:
        text = _("{who}'s comment sounded resigned", who=who)
    else:
        return _("{who}'s comment was flagged", who=who)
    if full:
        cues = [str(evidence[k]) for k in ("confrontation", "withdrawal") if evidence.get(k)]
        if cues:
            text += " (" + "; ".join(f'"{cue}"' for cue in cues) + ")"
    return text


def _disengagement(alert: PendingAlert, who: str, evidence: Evidence, full: bool) -> str:
    run = _number(evidence, "in_a_row")
    if "answered" in evidence or (alert.severity == "info" and (run is None or run < 2)):
        return _("{who} started a check-in but did not finish it", who=who)
    if run is not None and run >= 2:
        return ngettext(
            "{who} missed {n} check-in in a row",
            "{who} missed {n} check-ins in a row",
            int(run),
            who=who,
        )
    return _("{who} has missed check-ins", who=who)


_INSTRUMENT = re.compile(r"^(\S+) (?:raw|fell) ")


def _wellbeing_name(alert: PendingAlert) -> str | None:
    """The instrument's short name (WHO-5): from the evidence, or for an alert raised before
    the evidence held it, from the rule's own reason text."""
    name = alert.evidence.get("instrument")
    if isinstance(name, str) and name:
        return name
    found = _INSTRUMENT.match(alert.reason)
    return found.group(1) if found else None


def _wellbeing_low(alert: PendingAlert, who: str, evidence: Evidence, full: bool) -> str:
    total = _number(evidence, "total")
    raw, max_raw = _number(evidence, "raw"), _number(evidence, "max_raw")
    name = _wellbeing_name(alert) or _("wellbeing")
    if total is not None and raw and max_raw and abs(max_raw * total / raw - 100) < 1e-6:
        return _("{who}'s wellbeing is low ({name} {score}%)", who=who, name=name, score=_n(total))
    if raw is not None and max_raw is not None:
        return _(
            "{who}'s wellbeing is low ({name} {score} of {top})",
            who=who,
            name=name,
            score=_n(raw),
            top=_n(max_raw),
        )
    return _("{who}'s wellbeing is low", who=who)


def _wellbeing_drop(alert: PendingAlert, who: str, evidence: Evidence, full: bool) -> str:
    total, previous = _number(evidence, "total"), _number(evidence, "previous_total")
    if total is None or previous is None:
        return _("{who}'s wellbeing fell", who=who)
    name = _wellbeing_name(alert) or _("wellbeing")
    unit = alert.evidence.get("unit")
    if not isinstance(unit, str):  # raised before the evidence held it
        unit = "%" if "percentage points" in alert.reason else ""
    before, score = _n(previous) + unit, _n(total) + unit
    return _(
        "{who}'s wellbeing fell ({name} {before} to {score})",
        who=who,
        name=name,
        before=before,
        score=score,
    )


# The risk reasons written by the store's safety net and by the detectors.
_RISK_ITEM = re.compile(r"'([^']+)' of \S+ answered \d+|item '([^']+)' answered \d+")


def _risk_items(alert: PendingAlert) -> list[str]:
    items = [key.split(".", 1)[1] for key in alert.evidence if "." in key]
    if not items:
        items = [a or b for a, b in _RISK_ITEM.findall(alert.reason)]
    return list(dict.fromkeys(items))


def _risk_phrase(alert: PendingAlert) -> str | None:
    """The matched risk phrase (from the practice's list), or "" when only the reason says a
    phrase was found; None when the comment played no part."""
    phrase = alert.evidence.get("phrase")
    if isinstance(phrase, str) and phrase:
        return phrase
    found = re.search(r"risk phrase\W*'([^']+)'", alert.reason)
    if found:
        return found.group(1)
    return "" if "comment" in alert.reason else None


def _risk(alert: PendingAlert, who: str, evidence: Evidence, full: bool) -> str:
    if alert.reason == OUTSIDE_CHECKIN:  # the message was not kept: nothing more to say
        return _(
            "{who} wrote a risk phrase in a message outside a check-in (it was not kept)", who=who
        )
    items, phrase = _risk_items(alert), _risk_phrase(alert)
    parts = []
    if items:
        asked = _both([f"'{item}'" for item in items[:2]])
        parts.append(
            ngettext(
                "gave a risk answer (the {asked} question)",
                "gave a risk answer (the {asked} questions)",
                min(len(items), 2),
                asked=asked,
            )
        )
    if phrase is not None:
        if full and phrase:
            parts.append(_('used a risk phrase in their comment ("{phrase}")', phrase=phrase))
        else:
            parts.append(_("used a risk phrase in their comment"))
    if not parts:
        return _("{who} gave a risk answer", who=who)
    return _("{who} {did}", who=who, did=_both(parts))


def _other(alert: PendingAlert, who: str, evidence: Evidence, full: bool) -> str:
    return _("{who}'s check-in raised a flag", who=who)


_SENTENCES: dict[str, Callable[[PendingAlert, str, Evidence, bool], str]] = {
    RISK: _risk,
    LOW_ALLIANCE: _low_alliance,
    ALLIANCE_DROP: _alliance_drop,
    TENSION: _tension,
    CRITICAL_COMMENT: _critical_comment,
    DISENGAGEMENT: _disengagement,
    WELLBEING_LOW: _wellbeing_low,
    WELLBEING_DROP: _wellbeing_drop,
}


def rupture_type(group: Sequence[PendingAlert]) -> str | None:
    """The rupture type the detectors suggested for these alerts (they share one), if any."""
    types = [a.rupture_type for a in ordered(group) if a.rupture_type and a.rule in RUPTURE_RULES]
    return types[0] if types else None


# `_()` where used.
TYPE_WORDS = {
    "withdrawal": N_("It may be withdrawal: pulling back, going quiet."),
    "confrontation": N_("It may be confrontation: criticism, pushing back."),
}


# --- the "Why?" button ----------------------------------------------------------------------

WHY_WORDS = {  # `_()` where used
    "risk": N_("a risk answer or phrase is always sent at once, also in quiet hours"),
    "strong_drop": N_("a fall far below the client's usual level ([alerts.push] drop_sd)"),
    "very_low": N_("a total far below the cutoff ([alerts.push] low_margin)"),
    "tension": N_("tension answered 'yes' ([alerts.push] tension_at)"),
    "criticism": N_("the comment criticises you or the therapy"),
    "converging": N_("two or more different rupture signs on one check-in"),
    "repeated": N_("a rupture sign on two check-ins in a row"),
    "long_silence": N_("a long run of check-ins not completed ([alerts.push] missed_in_a_row)"),
    "single_sign": N_("one sign on its own"),
    "not_rupture": N_("wellbeing, not a rupture sign"),
    "too_little": N_("too little on its own"),
}
# Evidence keys that hold words from a comment (a matched cue), never shown under `scores`.
CUE_KEYS = frozenset({"confrontation", "withdrawal", "phrase"})
# Evidence keys that name what the numbers are of (the sentence uses them), not numbers.
NAME_KEYS = frozenset({"instrument", "unit"})


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _comment_based(alert: PendingAlert) -> bool:
    """Whether a comment's words are behind the alert: a marker, or a risk phrase (for an
    alert raised before the evidence held the phrase, the reason's English tells)."""
    if alert.rule == CRITICAL_COMMENT or "phrase" in alert.evidence:
        return True
    return not alert.evidence and "comment" in alert.reason.lower()


def _technical_reason(alert: PendingAlert, detail: Detail) -> str:
    """The rule's own reason; under `scores`, a comment's part is told without its cue."""
    if shows_comments(detail) or not _comment_based(alert):
        return alert.reason
    if alert.rule == CRITICAL_COMMENT:
        kind = alert.evidence.get("kind")
        kinds = {
            "confrontation": _(
                "confrontation markers (criticism of you or the therapy, or wanting to stop)"
            ),
            "withdrawal": _("withdrawal markers (resignation, giving up)"),
            "both": _("confrontation and withdrawal markers"),
        }
        markers = _("markers")
        what = kinds.get(str(kind), markers) if isinstance(kind, str) else markers
        return _(
            "The comment has {what}; the comment and the matched words stay out of Telegram",
            what=what,
        )
    parts = [
        _("'{item}' answered at or above its risk threshold", item=item)
        for item in _risk_items(alert)
    ]
    parts.append(_("a risk phrase in the comment (the words stay out of Telegram)"))
    return _upper_first("; ".join(parts))


def _numbers(alert: PendingAlert, detail: Detail) -> str:
    shown = []
    for key, value in alert.evidence.items():
        if key in NAME_KEYS or (key in CUE_KEYS and not shows_comments(detail)):
            continue
        if isinstance(value, float):
            value = round(value, 2)
            value = int(value) if value == int(value) else value
        shown.append(f"{key} {value}")
    return ", ".join(shown)


def why_text(group: Sequence[PendingAlert], detail: Detail) -> str:
    """The technical reason behind a client's alerts, for the "Why?" button: each rule id with
    its severity, the detector's reason (thresholds and numbers), the evidence, and why it was
    sent now or kept for the brief; then the suggested rupture type and repair ideas.
    Under `minimal`: only where the details are, without a number."""
    if not group:
        return _("There are no open alerts for this client now.")
    label = group[0].client_label
    if not shows_scores(detail):
        return _("Why Rapport flagged {label}: {elsewhere}", label=label, elsewhere=_(ELSEWHERE))
    lines = [_("Why Rapport flagged {label}", label=label)]
    decided: dict[tuple[str, str | None], list[str]] = {}
    for alert in ordered(group):
        lines += ["", f"• {alert.rule} ({alert.severity}): {_technical_reason(alert, detail)}"]
        numbers = _numbers(alert, detail)
        if numbers:
            lines.append("  " + _("Numbers: {numbers}", numbers=numbers))
        decided.setdefault((alert.delivery, alert.why), []).append(alert.rule)
    lines.append("")
    for (delivery, why), rules in decided.items():
        if delivery == "brief":
            when = _("Kept for the brief before the next session")
        else:
            when = _("Sent now")
        if why is None:
            because = _("raised before Rapport recorded why")
        else:
            because = f"{_(WHY_WORDS[why]) if why in WHY_WORDS else why} [{why}]"
        lines.append(f"{when}: {', '.join(rules)}: {because}.")
    kind = rupture_type(group)
    if kind:
        lines += ["", _("Suggested rupture type: {kind} (Safran & Muran's 3RS).", kind=kind)]
    ideas = list(dict.fromkeys(idea for a in ordered(group) for idea in a.repair))
    if ideas:
        lines += ["", _("Repair ideas:")] + [f"• {idea}" for idea in ideas]
    if detail == Detail.SCORES and any(_comment_based(a) for a in group):
        lines += ["", _("Comments stay out of Telegram in this practice.")]
    lines += [
        "",
        _(
            "The rules and their thresholds are explained in the practice's detector guide "
            "(docs/detectors.md); the practice can tune them."
        ),
    ]
    return "\n".join(lines)
