"""Rupture detectors: pure functions from a client's check-in history to flags with reasons.

`detect` looks at the latest check-in in the light of the earlier ones and returns flags, each
with its rule name, severity, a reason for the therapist, the evidence as numbers, a suggested
rupture type where the evidence allows, and one or two repair suggestions. Every threshold lives
in `DetectorSettings`, defaulted from the literature (sources in the field comments and in
docs/detectors.md). Reasons may carry scores but never a comment's text: at most the matched
phrase from the configured list.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from alliance.history import CheckinRecord, Status
from alliance.instruments import Instrument, Item
from alliance.repair import RISK_ACTION, RuptureType, suggest

ALLIANCE = "alliance"

LOW_ALLIANCE = "low_alliance"
ALLIANCE_DROP = "alliance_drop"
TENSION = "tension"
CRITICAL_COMMENT = "critical_comment"
DISENGAGEMENT = "disengagement"
WELLBEING_LOW = "wellbeing_low"
WELLBEING_DROP = "wellbeing_drop"
RISK = "risk"
RULES = (
    RISK,
    LOW_ALLIANCE,
    ALLIANCE_DROP,
    TENSION,
    CRITICAL_COMMENT,
    DISENGAGEMENT,
    WELLBEING_LOW,
    WELLBEING_DROP,
)
# The rules that speak about the relationship; rupture types and repairs attach to these.
RUPTURE_RULES = frozenset({LOW_ALLIANCE, ALLIANCE_DROP, TENSION, CRITICAL_COMMENT, DISENGAGEMENT})

_EPSILON = 1e-9


class Severity(enum.StrEnum):
    INFO = "info"
    WARN = "warn"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARN: 1, Severity.HIGH: 2, Severity.URGENT: 3}


@dataclass(frozen=True)
class Flag:
    """One rule's finding about one check-in.

    `evidence` holds the numbers behind the reason (for charts and exports): totals, baseline
    mean and SD, the SD actually used, z, counts. Text values there are rule-defined words
    (a marker kind, an item id, a matched list phrase), never the client's own text.
    """

    rule: str
    severity: Severity
    reason: str
    rupture_type: RuptureType | None = None
    repair: tuple[str, ...] = ()
    evidence: Mapping[str, float | str] = field(default_factory=dict, hash=False)


_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})
_CLAUSE_END = re.compile(r"[.,;:!?()\"]")


def _normalise(text: str) -> str:
    return " ".join(text.translate(_APOSTROPHES).lower().split())


def _split(text: str) -> tuple[str, ...]:
    """Phrases written one group a line, separated by '|'; lines starting with # are notes."""
    return tuple(
        phrase.strip()
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for phrase in line.split("|")
        if phrase.strip()
    )


# --- default phrase lists -------------------------------------------------------------------
# Matched case-insensitively as whole words after folding curly apostrophes; a practice's list
# for a language replaces the default for that language. Confrontation and withdrawal markers
# follow the 3RS (Eubanks, Muran & Safran's Rupture Resolution Rating System): confrontation is
# complaint or criticism of the therapist or the therapy, or wanting to stop; withdrawal is
# resignation, deferring, going quiet.

CONFRONTATION_EN = _split(
    """
# criticism of the therapist
you don't listen | you didn't listen | you never listen | you weren't listening
not listening to me | you don't understand | you didn't understand | don't understand me
doesn't understand me | you don't get it | you don't get me | you interrupted
you keep interrupting | judged by you | you judged | judging me | felt dismissed
dismissive | patronising | patronizing | condescending | pushy | felt rushed | rushed me
you rushed | annoyed with you | angry with you | angry at you | frustrated with you
disappointed in you | don't like your | didn't like your
# criticism of the therapy
not helpful | unhelpful | not helping | isn't helping | doesn't help | does not help
not working | isn't working | not getting anywhere | going nowhere | waste of time
waste of money | therapy is pointless | sessions are pointless | wrong approach
# wanting to stop
want to quit | want to stop | quit therapy | stop therapy | end therapy | stop coming
thinking of stopping | thinking about stopping | thinking of quitting
thinking about quitting | another therapist | different therapist | new therapist
not coming back | won't come back | cancel my sessions
"""
)

WITHDRAWAL_EN = _split(
    """
doesn't matter | does not matter | nothing matters | whatever | no point
what's the point | whats the point | pointless | why bother | give up | giving up
gave up | don't care | do not care | can't be bothered | nothing to say | nothing to add
never mind | nevermind | same as always | nothing changes | nothing will change
won't change anything | doesn't make a difference | not worth it
"""
)

# Risk phrases are matched without the negation guard: "I'm not suicidal" still alerts, because
# a missed risk costs more than a needless look.
RISK_EN = _split(
    """
kill myself | killing myself | end my life | ending my life | take my own life
taking my own life | suicide | suicidal | want to die | wanna die | wish i was dead
wish i were dead | better off dead | better off without me | hurt myself
hurting myself | harm myself | harming myself | self-harm | self harm | cut myself
cutting myself | overdose | no reason to live | nothing to live for | end it all
don't want to live | don't want to be alive | can't go on
"""
)

# A marker preceded (within its clause, up to three words before) by one of these is skipped:
# "I don't want to quit", "it wasn't a waste of time".
NEGATIONS_EN = _split(
    """
not | no | never | don't | dont | didn't | didnt | won't | wont | wouldn't | wouldnt
isn't | wasn't | aren't | can't | cannot | hardly | nor
"""
)


def _phrases(**lists: tuple[str, ...]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(dict(lists))


@dataclass(frozen=True)
class DetectorSettings:
    """Per-practice detector settings; every default is from the literature or says why not.

    Field names are the keys of the practice config's `[detectors]` TOML table (parse_settings).
    """

    # Which instruments the alliance and wellbeing rules read.
    alliance_instruments: tuple[str, ...] = (ALLIANCE,)
    wellbeing_instruments: tuple[str, ...] = ("who5",)

    # low_alliance. Cutoff None = the instrument's own (`alliance`: 36 of 40, after the SRS
    # concern level of <= 36, Duncan & Miller). An item at or below min + fraction * range is
    # low (0.5: the scale's midpoint, 5 of 0-10; no published item cutoff exists for the SRS,
    # so this is the plainest reading of "below the middle of the scale"). While a client stays
    # low the rule repeats only when the total falls below the lowest since it went low, unless
    # low_alliance_repeat is true (the SRS protocol discusses every low score in session; a
    # Telegram alert every week for the same known low score is alert fatigue).
    low_alliance: bool = True
    low_alliance_cutoff: float | None = None
    low_alliance_item_fraction: float | None = 0.5
    low_alliance_repeat: bool = False

    # alliance_drop. Stiles et al. 2004 and Gumz et al. 2012: a V-shaped drop below the client's
    # own mean of >= 1 SD (warn) or >= 2 SD (high), using the larger of the client's SD and a
    # floor. The floor is a share of the instrument's range (0.05 = 2 points of 40): clients at
    # the ceiling have an SD near zero, and 2 points is at the low end of typical session-to-
    # session variation of SRS-like totals (an assumption; check your own with the backtest's
    # pooled within-client SD). Baseline: the last `drop_baseline_window` totals, at least
    # `drop_min_baseline` of them. A drop from the previous check-in of at least the reliable
    # change (None = the instrument's; `alliance`: 5, after Jacobson & Truax 1991) warns too.
    alliance_drop: bool = True
    drop_min_baseline: int = 3
    drop_baseline_window: int = 8
    drop_warn_sd: float = 1.0
    drop_high_sd: float = 2.0
    drop_sd_floor: float = 0.05
    drop_reliable_change: float | None = None

    # tension: Muran et al.'s post-session question about tension or problems in the
    # relationship; any tension is a rupture marker. Values of the `tension` item (0 no,
    # 1 a little, 2 yes) at or above which the rule warns or is high.
    tension: bool = True
    tension_item: str = "tension"
    tension_warn_at: int = 1
    tension_high_at: int = 2

    # critical_comment: 3RS confrontation (predicted dropout, d = .74) and withdrawal markers.
    critical_comment: bool = True
    confrontation_phrases: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _phrases(en=CONFRONTATION_EN)
    )
    withdrawal_phrases: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _phrases(en=WITHDRAWAL_EN)
    )
    negations: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _phrases(en=NEGATIONS_EN)
    )

    # disengagement: Greenspace alerts after N missed in a row, mPower after 3 missed days; 2
    # weekly check-ins is two weeks without word. It fires when the run reaches N (warn) and 2N
    # (high), not at every miss in between. A started and abandoned check-in is info.
    disengagement: bool = True
    missed_in_a_row: int = 2
    abandoned: bool = True

    # wellbeing_low: WHO-5 raw < 13 (cutoff None = the instrument's `cutoff`, in raw points:
    # 12 for who5). Optionally any item at or below `wellbeing_low_item` (WHO-5: 0-1 suggests
    # screening; off by default). Repeats only on entering the low range unless
    # wellbeing_low_repeat. wellbeing_drop: a fall from the previous WHO-5 of at least
    # `wellbeing_drop_points` on the scaled (percent) score; None = the instrument's
    # reliable_change (who5: 10 percentage points, Topp et al. 2015).
    wellbeing_low: bool = True
    wellbeing_cutoff: float | None = None
    wellbeing_low_item: int | None = None
    wellbeing_low_repeat: bool = False
    wellbeing_drop: bool = True
    wellbeing_drop_points: float | None = None

    # risk: an item with a risk_threshold answered at or above it (the instrument file says
    # which, e.g. PHQ-9 item 9 at 1, after Blueprint's Safety Net), or a risk phrase in the
    # comment. Always urgent. Turning it off is not recommended.
    risk: bool = True
    risk_phrases: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _phrases(en=RISK_EN)
    )

    # Rupture type: withdrawal is suggested when a drop or low score comes with a missed or
    # abandoned check-in among the last `withdrawal_lookback` before it (3RS: going quiet).
    withdrawal_lookback: int = 3

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise SettingsError(problems)


class SettingsError(ValueError):
    """Settings that cannot be used; `problems` names each key and the fix."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def _problems(s: DetectorSettings) -> Iterable[str]:
    def positive_int(name: str, value: int) -> Iterable[str]:
        if value < 1:
            yield f"{name} must be at least 1, not {value}"

    yield from positive_int("drop_min_baseline", s.drop_min_baseline)
    yield from positive_int("drop_baseline_window", s.drop_baseline_window)
    yield from positive_int("missed_in_a_row", s.missed_in_a_row)
    if s.withdrawal_lookback < 0:
        yield f"withdrawal_lookback must be 0 or more, not {s.withdrawal_lookback}"
    if s.drop_baseline_window < s.drop_min_baseline:
        yield (
            f"drop_baseline_window ({s.drop_baseline_window}) must be at least "
            f"drop_min_baseline ({s.drop_min_baseline})"
        )
    if not 0 < s.drop_warn_sd <= s.drop_high_sd:
        yield (
            f"drop_warn_sd ({s.drop_warn_sd:g}) must be above 0 and at most drop_high_sd "
            f"({s.drop_high_sd:g})"
        )
    if not 0 < s.drop_sd_floor < 1:
        yield f"drop_sd_floor is a share of the scale range (0-1), not {s.drop_sd_floor:g}"
    fraction = s.low_alliance_item_fraction
    if fraction is not None and not 0 <= fraction < 1:
        yield f"low_alliance_item_fraction must be from 0 up to (not including) 1, not {fraction:g}"
    if not 0 < s.tension_warn_at <= s.tension_high_at:
        yield (
            f"tension_warn_at ({s.tension_warn_at}) must be above 0 and at most tension_high_at "
            f"({s.tension_high_at})"
        )
    for name in ("drop_reliable_change", "wellbeing_drop_points"):
        value = getattr(s, name)
        if value is not None and value <= 0:
            yield f"{name} must be above 0, not {value:g}"
    for name in ("confrontation_phrases", "withdrawal_phrases", "negations", "risk_phrases"):
        for language, phrases in getattr(s, name).items():
            for phrase in phrases:
                if not _normalise(phrase):
                    yield f"{name}.{language} has an empty phrase; remove it"


DEFAULTS = DetectorSettings()

_TUPLE_FIELDS = {"alliance_instruments", "wellbeing_instruments"}
_PHRASE_FIELDS = {"confrontation_phrases", "withdrawal_phrases", "negations", "risk_phrases"}


def parse_settings(
    table: Mapping[str, Any], source: str, base: DetectorSettings = DEFAULTS
) -> DetectorSettings:
    """Settings from a loaded `[detectors]` TOML table; keys are DetectorSettings fields.

    Keys left out keep `base`. A phrase table lists languages, and a language given replaces
    that language's default list. Every problem names the source and the key.
    """
    fields = {f.name: f for f in dataclasses.fields(DetectorSettings)}
    problems: list[str] = []
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            near = [name for name in fields if key.replace("-", "_") in name or name in key]
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(f"{source}: detectors.{key}: unknown setting{hint}")
            continue
        default = getattr(base, key)
        try:
            changes[key] = _convert(key, value, default)
        except ValueError as exc:
            problems.append(f"{source}: detectors.{key}: {exc}")
    if not problems:
        if any(name in changes for name in _PHRASE_FIELDS):
            for name in _PHRASE_FIELDS & changes.keys():
                changes[name] = MappingProxyType({**getattr(base, name), **changes[name]})
        try:
            return dataclasses.replace(base, **changes)
        except SettingsError as exc:
            problems.extend(f"{source}: detectors.{p}" for p in exc.problems)
    raise SettingsError(problems)


def _convert(key: str, value: Any, default: Any) -> Any:
    if key in _PHRASE_FIELDS:
        if not isinstance(value, Mapping):
            raise ValueError('must be a table of languages, e.g. { en = ["waste of time"] }')
        out: dict[str, tuple[str, ...]] = {}
        for language, phrases in value.items():
            if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
                raise ValueError(f"{language} must be a list of texts")
            out[str(language)] = tuple(phrases)
        return out
    if key in _TUPLE_FIELDS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError('must be a list of instrument ids, e.g. ["alliance"]')
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if isinstance(default, str):
        if not isinstance(value, str) or not value:
            raise ValueError("must be a text")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if isinstance(default, int) and not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


# --- the entry points -----------------------------------------------------------------------


def detect(
    history: Sequence[CheckinRecord],
    instruments: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
    language: str = "en",
) -> list[Flag]:
    """Flags for the latest check-in of a chronological history (oldest first).

    Call it after each completed, missed or abandoned check-in. Answers to instruments that are
    not in `instruments` are ignored. The result is in a fixed rule order (RULES), at most one
    flag per rule and instrument.
    """
    if not history:
        return []
    view = _View(history, instruments)
    latest = history[-1]
    comment = _normalise(latest.comment) if latest.comment else ""
    flags: list[Flag] = []
    if settings.risk:
        flags.extend(_risk(view, comment, settings, language))
    for inst_id in settings.alliance_instruments:
        inst = instruments.get(inst_id)
        if inst is None:
            continue
        if settings.low_alliance and (flag := _low_alliance(view, inst, settings)) is not None:
            flags.append(flag)
        if settings.alliance_drop and (flag := _alliance_drop(view, inst, settings)) is not None:
            flags.append(flag)
    tension_level = 0
    if settings.tension:
        for inst_id in settings.alliance_instruments:
            inst = instruments.get(inst_id)
            if inst is not None and (flag := _tension(latest, inst, settings)) is not None:
                flags.append(flag)
                tension_level = max(tension_level, int(flag.evidence["value"]))
    markers = _Markers.find(comment, settings, language) if comment else _Markers()
    if settings.critical_comment and (flag := markers.flag()) is not None:
        flags.append(flag)
    if settings.disengagement and (flag := _disengagement(view, settings)) is not None:
        flags.append(flag)
    for inst_id in settings.wellbeing_instruments:
        inst = instruments.get(inst_id)
        if inst is None:
            continue
        if settings.wellbeing_low and (flag := _wellbeing_low(view, inst, settings)) is not None:
            flags.append(flag)
        if settings.wellbeing_drop and (flag := _wellbeing_drop(view, inst, settings)) is not None:
            flags.append(flag)
    return _with_rupture_type(view, flags, markers, tension_level, settings)


def evaluate(
    instruments: Sequence[Instrument], answers: Mapping[tuple[str, str], int]
) -> list[Flag]:
    """Flags from one completed check-in alone (answers keyed by instrument and item).

    Kept for the store's current call site until it passes the history to `detect`: it runs
    the single-check-in rules low_alliance and risk on a one-record history.
    """
    record = CheckinRecord(
        checkin_id="", due_at=datetime.min.replace(tzinfo=UTC), status=Status.COMPLETED
    )
    record = dataclasses.replace(record, answers=dict(answers))
    only = dataclasses.replace(
        DEFAULTS,
        alliance_drop=False,
        tension=False,
        critical_comment=False,
        disengagement=False,
        wellbeing_low=False,
        wellbeing_drop=False,
    )
    return detect([record], {inst.id: inst for inst in instruments}, only)


# --- reading the history --------------------------------------------------------------------


class _View:
    """The history with per-record instrument answers and totals computed once per call."""

    def __init__(self, history: Sequence[CheckinRecord], instruments: Mapping[str, Instrument]):
        self.history = history
        self.instruments = instruments
        self.last = len(history) - 1
        self._answers: dict[int, dict[str, dict[str, int]]] = {}
        self._totals: dict[tuple[int, str], float | None] = {}

    def answers(self, index: int, inst_id: str) -> dict[str, int]:
        grouped = self._answers.get(index)
        if grouped is None:
            grouped = {}
            for (inst, item), value in self.history[index].answers.items():
                grouped.setdefault(inst, {})[item] = value
            self._answers[index] = grouped
        return grouped.get(inst_id, {})

    def total(self, index: int, inst: Instrument) -> float | None:
        key = (index, inst.id)
        if key not in self._totals:
            answers = self.answers(index, inst.id)
            self._totals[key] = inst.total(answers) if answers else None
        return self._totals[key]

    def earlier_totals(self, inst: Instrument, before: int, limit: int) -> list[tuple[int, float]]:
        """Up to `limit` full totals before index `before`, most recent first."""
        found: list[tuple[int, float]] = []
        for index in range(before - 1, -1, -1):
            total = self.total(index, inst)
            if total is not None:
                found.append((index, total))
                if len(found) == limit:
                    break
        return found


def _raw(inst: Instrument, total: float) -> float:
    return total / inst.scale_factor if inst.scale_factor else total


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"


_LABELS = {ALLIANCE: "Alliance", "who5": "WHO-5"}


def _label(inst: Instrument) -> str:
    return _LABELS.get(inst.id, inst.id)


def _min_total(inst: Instrument) -> float:
    minima = [item.min for item in inst.scored_items]
    raw = sum(minima) if inst.scoring == "sum" else min(minima, default=0)
    return raw * inst.scale_factor


# --- alliance rules -------------------------------------------------------------------------


def _low_items(inst: Instrument, answers: Mapping[str, int], fraction: float | None) -> list[Item]:
    if fraction is None:
        return []
    low = [
        item
        for item in inst.scored_items
        if item.id in answers and answers[item.id] <= item.min + fraction * (item.max - item.min)
    ]
    return sorted(low, key=lambda item: answers[item.id])


def _is_low(
    view: _View, index: int, inst: Instrument, settings: DetectorSettings
) -> tuple[bool, float | None, list[Item]]:
    answers = view.answers(index, inst.id)
    total = view.total(index, inst)
    cutoff = (
        settings.low_alliance_cutoff if settings.low_alliance_cutoff is not None else inst.cutoff
    )
    below = total is not None and cutoff is not None and _raw(inst, total) <= cutoff + _EPSILON
    items = _low_items(inst, answers, settings.low_alliance_item_fraction)
    return below or bool(items), total, items


def _low_alliance(view: _View, inst: Instrument, settings: DetectorSettings) -> Flag | None:
    low, total, items = _is_low(view, view.last, inst, settings)
    if not low:
        return None
    if not settings.low_alliance_repeat:
        lowest_so_far: float | None = None
        run = 0
        for index in range(view.last - 1, -1, -1):
            if not view.answers(index, inst.id):
                continue  # missed, or this instrument was not asked: no news either way
            was_low, earlier, _ = _is_low(view, index, inst, settings)
            if earlier is None and not was_low:
                continue  # a partial check-in without low items says nothing about recovery
            if not was_low:
                break
            run += 1
            if earlier is not None:
                lowest_so_far = earlier if lowest_so_far is None else min(lowest_so_far, earlier)
        if run and (total is None or lowest_so_far is None or total >= lowest_so_far):
            return None
    answers = view.answers(view.last, inst.id)
    cutoff = (
        settings.low_alliance_cutoff if settings.low_alliance_cutoff is not None else inst.cutoff
    )
    evidence: dict[str, float | str] = {}
    parts: list[str] = []
    if total is not None:
        evidence["total"] = total
        evidence["max_total"] = inst.max_total
        text = f"{_label(inst)} {_fmt(total)}/{_fmt(inst.max_total)}"
        if cutoff is not None and _raw(inst, total) <= cutoff + _EPSILON:
            evidence["cutoff"] = cutoff
            text += f", at or below the cutoff {_fmt(cutoff)}"
        parts.append(text)
    else:
        parts.append(f"{_label(inst)} check-in not finished")
    if items:
        listed = ", ".join(f"'{item.id}' at {answers[item.id]}" for item in items[:3])
        parts.append(("low items " if len(items) > 1 else "low item ") + listed)
        evidence["weak_items"] = ",".join(item.id for item in items)
    elif answers:
        given = [item for item in inst.scored_items if item.id in answers]
        lowest = min(given, key=lambda item: answers[item.id])
        parts.append(f"lowest item '{lowest.id}' at {answers[lowest.id]}")
        if sum(1 for item in given if answers[item.id] == answers[lowest.id]) == 1:
            evidence["weak_items"] = lowest.id
    return Flag(LOW_ALLIANCE, Severity.WARN, "; ".join(parts), evidence=evidence)


def _item_falls(view: _View, inst: Instrument, previous: int) -> list[tuple[str, int, int]]:
    """Up to two items that fell most since `previous`: (item, before, now), 2+ points first."""
    now, before = view.answers(view.last, inst.id), view.answers(previous, inst.id)
    falls = [
        (before[item.id] - now[item.id], item.id)
        for item in inst.scored_items
        if item.id in now and item.id in before and before[item.id] > now[item.id]
    ]
    falls.sort(key=lambda pair: (-pair[0], pair[1]))
    big = [pair for pair in falls if pair[0] >= 2]
    if not big and (len(falls) == 1 or (len(falls) > 1 and falls[0][0] > falls[1][0])):
        big = falls[:1]  # one clear largest fall, even of one point
    return [(item, before[item], now[item]) for _, item in big[:2]]


def _drop_z(
    view: _View, inst: Instrument, index: int, settings: DetectorSettings
) -> tuple[float, float, float, int] | None:
    """(z, mean, sd_used, n) of the total at `index` against its baseline, if there is one."""
    total = view.total(index, inst)
    if total is None:
        return None
    baseline = view.earlier_totals(inst, index, settings.drop_baseline_window)
    if len(baseline) < settings.drop_min_baseline:
        return None
    values = [value for _, value in baseline]
    mean = math.fsum(values) / len(values)
    sd = (
        math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
        if len(values) > 1
        else 0.0
    )
    floor = settings.drop_sd_floor * (inst.max_total - _min_total(inst))
    used = max(sd, floor)
    return (mean - total) / used, mean, used, len(values)


def _alliance_drop(view: _View, inst: Instrument, settings: DetectorSettings) -> Flag | None:
    total = view.total(view.last, inst)
    if total is None:
        return None
    severity: Severity | None = None
    parts: list[str] = []
    evidence: dict[str, float | str] = {"total": total, "max_total": inst.max_total}
    scored = _drop_z(view, inst, view.last, settings)
    if scored is not None:
        z, mean, used, n = scored
        evidence.update(baseline_mean=mean, sd_used=used, baseline_n=n, z=round(z, 3))
        if z >= settings.drop_high_sd - _EPSILON:
            severity = Severity.HIGH
        elif z >= settings.drop_warn_sd - _EPSILON:
            severity = Severity.WARN
        if severity is not None:
            floor = settings.drop_sd_floor * (inst.max_total - _min_total(inst))
            sd_note = f"; SD floor {_fmt(floor)} used" if used <= floor + _EPSILON else ""
            parts.append(
                f"{_label(inst)} {_fmt(total)}/{_fmt(inst.max_total)}, {z:.1f} SD below this "
                f"client's usual {_fmt(round(mean, 1))} (last {n} check-ins{sd_note})"
            )
    previous = view.earlier_totals(inst, view.last, 1)
    rc = settings.drop_reliable_change
    rc = inst.reliable_change if rc is None else rc
    if previous and rc is not None:
        prev_total = previous[0][1]
        fall = prev_total - total
        if fall >= rc - _EPSILON:
            evidence.update(previous_total=prev_total, reliable_change=rc)
            if severity is None:
                severity = Severity.WARN
                parts.append(
                    f"{_label(inst)} {_fmt(total)}/{_fmt(inst.max_total)}, "
                    f"down {_fmt(fall)} from {_fmt(prev_total)} last time "
                    f"(reliable change is {_fmt(rc)})"
                )
            else:
                parts.append(f"down {_fmt(fall)} from {_fmt(prev_total)} last time")
    if severity is None:
        return None
    if previous:
        falls = _item_falls(view, inst, previous[0][0])
        parts.extend(f"'{item}' fell from {was} to {now}" for item, was, now in falls)
        if falls:
            evidence["weak_items"] = ",".join(item for item, _, _ in falls)
    return Flag(ALLIANCE_DROP, severity, "; ".join(parts), evidence=evidence)


def _tension(latest: CheckinRecord, inst: Instrument, settings: DetectorSettings) -> Flag | None:
    value = latest.answers.get((inst.id, settings.tension_item))
    if value is None or value < settings.tension_warn_at:
        return None
    try:
        label = inst.item(settings.tension_item).labels.get(value, str(value))
    except KeyError:
        label = str(value)
    severity = Severity.HIGH if value >= settings.tension_high_at else Severity.WARN
    return Flag(
        TENSION,
        severity,
        f"Tension or misunderstanding with you since the last session: '{label}'",
        evidence={"value": value},
    )


# --- comments -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=128)
def _pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    cleaned = sorted({_normalise(p) for p in phrases if _normalise(p)}, key=len, reverse=True)
    if not cleaned:
        return None
    alternatives = "|".join(re.escape(p) for p in cleaned)
    return re.compile(rf"(?<![\w'])(?:{alternatives})(?![\w'])")


def _for_language(table: Mapping[str, tuple[str, ...]], language: str) -> tuple[str, ...]:
    if language in table:
        return table[language]
    return table.get(language.split("-")[0].split("_")[0], table.get("en", ()))


def _match(text: str, phrases: tuple[str, ...], negations: frozenset[str]) -> str | None:
    """The first listed phrase found in `text` (normalised) that is not negated."""
    pattern = _pattern(phrases)
    if pattern is None:
        return None
    for found in pattern.finditer(text):
        if negations:
            clause = _CLAUSE_END.split(text[max(0, found.start() - 60) : found.start()])[-1]
            if any(word in negations for word in clause.split()[-3:]):
                continue
        return found.group(0)
    return None


@functools.lru_cache(maxsize=32)
def _negation_set(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_normalise(w) for w in words)


@dataclass(frozen=True)
class _Markers:
    confrontation: str | None = None
    withdrawal: str | None = None

    @staticmethod
    def find(text: str, settings: DetectorSettings, language: str) -> _Markers:
        negations = _negation_set(_for_language(settings.negations, language))
        return _Markers(
            _match(text, _for_language(settings.confrontation_phrases, language), negations),
            _match(text, _for_language(settings.withdrawal_phrases, language), negations),
        )

    def flag(self) -> Flag | None:
        parts: list[str] = []
        evidence: dict[str, float | str] = {}
        if self.confrontation is not None:
            parts.append(
                "confrontation markers (criticism of you or the therapy, or wanting to stop): "
                f"'{self.confrontation}'"
            )
            evidence["confrontation"] = self.confrontation
        if self.withdrawal is not None:
            parts.append(f"withdrawal markers (resignation, giving up): '{self.withdrawal}'")
            evidence["withdrawal"] = self.withdrawal
        if not parts:
            return None
        kind = "confrontation" if self.confrontation is not None else "withdrawal"
        if len(parts) == 2:
            kind = "both"
        evidence["kind"] = kind
        return Flag(
            CRITICAL_COMMENT,
            Severity.WARN,
            "The comment has " + " and ".join(parts),
            evidence=evidence,
        )


# --- disengagement --------------------------------------------------------------------------


def _not_completed(record: CheckinRecord) -> bool:
    return record.status is not Status.COMPLETED


def _disengagement(view: _View, settings: DetectorSettings) -> Flag | None:
    latest = view.history[view.last]
    if not _not_completed(latest):
        return None
    run = 0
    for index in range(view.last, -1, -1):
        if not _not_completed(view.history[index]):
            break
        run += 1
    n = settings.missed_in_a_row
    evidence: dict[str, float | str] = {"in_a_row": run}
    since = view.history[view.last - run + 1].due_at.date().isoformat()
    if run in (n, 2 * n):
        unfinished = sum(
            1
            for i in range(view.last - run + 1, view.last + 1)
            if view.history[i].status.unfinished
        )
        detail = f", {unfinished} of them started but not finished" if unfinished else ""
        return Flag(
            DISENGAGEMENT,
            Severity.HIGH if run == 2 * n and n > 0 else Severity.WARN,
            f"{run} check-ins in a row not completed (since {since}{detail})",
            evidence=evidence,
        )
    if latest.status.unfinished and settings.abandoned:
        answered = len(latest.answers)
        return Flag(
            DISENGAGEMENT,
            Severity.INFO,
            f"Check-in started but not finished ({answered} answered)",
            evidence={**evidence, "answered": answered},
        )
    return None


# --- wellbeing ------------------------------------------------------------------------------


def _wellbeing_is_low(
    view: _View, index: int, inst: Instrument, settings: DetectorSettings
) -> tuple[bool, float | None, list[str]]:
    total = view.total(index, inst)
    if total is None:
        return False, None, []
    cutoff = settings.wellbeing_cutoff if settings.wellbeing_cutoff is not None else inst.cutoff
    below = cutoff is not None and _raw(inst, total) <= cutoff + _EPSILON
    items: list[str] = []
    if settings.wellbeing_low_item is not None:
        answers = view.answers(index, inst.id)
        items = [
            item.id
            for item in inst.scored_items
            if answers.get(item.id, item.max) <= settings.wellbeing_low_item
        ]
    return below or bool(items), total, items


def _wellbeing_low(view: _View, inst: Instrument, settings: DetectorSettings) -> Flag | None:
    low, total, items = _wellbeing_is_low(view, view.last, inst, settings)
    if not low or total is None:
        return None
    if not settings.wellbeing_low_repeat:
        previous = view.earlier_totals(inst, view.last, 1)
        if previous and _wellbeing_is_low(view, previous[0][0], inst, settings)[0]:
            return None
    raw = _raw(inst, total)
    max_raw = _raw(inst, inst.max_total)
    cutoff = settings.wellbeing_cutoff if settings.wellbeing_cutoff is not None else inst.cutoff
    text = f"{_label(inst)} raw {_fmt(raw)}/{_fmt(max_raw)}"
    if inst.scale_factor != 1:
        text += f" ({_fmt(total)}%)" if inst.max_total == 100 else f" (scaled {_fmt(total)})"
    if cutoff is not None and raw <= cutoff + _EPSILON:
        text += f", at or below {_fmt(cutoff)}"
    if items:
        text += "; items at the bottom of the scale: " + ", ".join(f"'{i}'" for i in items)
    return Flag(
        WELLBEING_LOW,
        Severity.WARN,
        text,
        evidence={"total": total, "raw": raw, "max_raw": max_raw},
    )


def _wellbeing_drop(view: _View, inst: Instrument, settings: DetectorSettings) -> Flag | None:
    total = view.total(view.last, inst)
    points = settings.wellbeing_drop_points
    points = inst.reliable_change if points is None else points
    if total is None or points is None:
        return None
    previous = view.earlier_totals(inst, view.last, 1)
    if not previous:
        return None
    before = previous[0][1]
    fall = before - total
    if fall < points - _EPSILON:
        return None
    unit, pct = (" percentage points", "%") if inst.max_total == 100 else (" points", "")
    return Flag(
        WELLBEING_DROP,
        Severity.WARN,
        f"{_label(inst)} fell {_fmt(fall)}{unit} since the last check-in "
        f"({_fmt(before)}{pct} to {_fmt(total)}{pct}; {_fmt(points)} or more is meaningful)",
        evidence={"total": total, "previous_total": before, "drop": fall},
    )


# --- risk -----------------------------------------------------------------------------------


def _risk(view: _View, comment: str, settings: DetectorSettings, language: str) -> list[Flag]:
    latest = view.history[view.last]
    parts: list[str] = []
    evidence: dict[str, float | str] = {}
    for (inst_id, item_id), value in sorted(latest.answers.items()):
        inst = view.instruments.get(inst_id)
        if inst is None:
            continue
        try:
            item = inst.item(item_id)
        except KeyError:
            continue
        if item.risk_threshold is not None and value >= item.risk_threshold:
            parts.append(
                f"'{inst_id}' item '{item_id}' answered {value} "
                f"(risk threshold {item.risk_threshold})"
            )
            evidence[f"{inst_id}.{item_id}"] = value
    if comment:
        phrase = _match(comment, _for_language(settings.risk_phrases, language), frozenset())
        if phrase is None and language != "en":
            phrase = _match(comment, settings.risk_phrases.get("en", ()), frozenset())
        if phrase is not None:
            parts.append(f"the comment contains a risk phrase: '{phrase}'")
            evidence["phrase"] = phrase
    if not parts:
        return []
    reason = "; ".join(parts)
    return [
        Flag(RISK, Severity.URGENT, reason[0].upper() + reason[1:], None, RISK_ACTION, evidence)
    ]


# --- rupture type and repair ----------------------------------------------------------------


def _with_rupture_type(
    view: _View,
    flags: list[Flag],
    markers: _Markers,
    tension: int,
    settings: DetectorSettings,
) -> list[Flag]:
    rules = {flag.rule for flag in flags}
    if not rules & RUPTURE_RULES:
        return flags
    scores_low = bool(rules & {LOW_ALLIANCE, ALLIANCE_DROP})
    rupture: RuptureType | None = None
    if markers.confrontation is not None or (scores_low and tension > 0):
        rupture = RuptureType.CONFRONTATION
    elif (
        markers.withdrawal is not None
        or (scores_low and _quiet_before(view, settings))
        or (DISENGAGEMENT in rules and _fell_before_going_quiet(view, settings))
    ):
        rupture = RuptureType.WITHDRAWAL
    weak: set[str] = set()
    for flag in flags:
        if flag.rule in (LOW_ALLIANCE, ALLIANCE_DROP):
            weak.update(str(flag.evidence.get("weak_items", "")).split(","))
    repair = suggest(rupture, weak - {""})
    out = []
    for flag in flags:
        if flag.rule in RUPTURE_RULES:
            flag = dataclasses.replace(flag, rupture_type=rupture, repair=repair)
        out.append(flag)
    return out


def _quiet_before(view: _View, settings: DetectorSettings) -> bool:
    """A missed or abandoned check-in now or among the last few before: going quiet."""
    start = max(0, view.last - settings.withdrawal_lookback)
    return any(_not_completed(view.history[i]) for i in range(start, view.last + 1))


def _fell_before_going_quiet(view: _View, settings: DetectorSettings) -> bool:
    """The last completed check-in before a run of misses showed a low or falling alliance."""
    for index in range(view.last - 1, -1, -1):
        if view.history[index].status is Status.COMPLETED:
            for inst_id in settings.alliance_instruments:
                inst = view.instruments.get(inst_id)
                if inst is None:
                    continue
                if view.total(index, inst) is not None and _is_low(view, index, inst, settings)[0]:
                    return True
                scored = _drop_z(view, inst, index, settings)
                if scored is not None and scored[0] >= settings.drop_warn_sd - _EPSILON:
                    return True
            return False
    return False
