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
from types import MappingProxyType
from typing import Any

from alliance import comments
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
# English comments are read by alliance/comments.py: cue patterns over word stems, with
# negation scope and targets, for confrontation and withdrawal (3RS: Eubanks, Muran & Safran's
# Rupture Resolution Rating System; confrontation is complaint or criticism of the therapist or
# the therapy, or wanting to stop; withdrawal is resignation, deferring, going quiet) and risk.
# The former default phrases are folded into those patterns. The English lists below are extra
# exact cues beside the patterns (fixed expressions the patterns do not spell out), matched as
# whole normalised words; a practice's English list replaces them (the patterns stay). A
# practice's list for another language replaces the default for that language and is matched
# as exact phrases, with the negation guard below.

CONFRONTATION_EN = _split(
    """
rip off | ripoff | cash grab | money grab | psychobabble | waste of space
"""
)

WITHDRAWAL_EN = _split(
    """
it's whatever | whatevs | cba | idc | i'm easy | same old same old
"""
)

# Risk phrases are matched without the negation guard: "I'm not suicidal" still alerts, because
# a missed risk costs more than a needless look.
RISK_EN = _split(
    """
sewer slide | not be here anymore | not be around anymore | kill me now | want to sleep forever
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


# German and Spanish: exact phrases (whole normalised words; no stems or paraphrases, so a
# verb form that is not listed is not found), with the negation guard for confrontation and
# withdrawal. Written for Rapport from the 3RS marker descriptions; not a validated lexicon. A
# practice's list for a language replaces these.

CONFRONTATION_DE = _split(
    """
zeitverschwendung | verschwendete zeit | bringt nichts | bringt mir nichts | bringt mir nix
hilft mir nicht | hilft nicht | sie hören mir nicht zu | hören mir nicht zu | nicht zugehört
nicht ernst genommen | fühle mich nicht verstanden | nicht verstanden gefühlt
will aufhören | möchte aufhören | will die therapie beenden | möchte die therapie beenden
therapie abbrechen | will abbrechen | möchte abbrechen | sinnlos | nutzlos | frustrierend
unzufrieden | enttäuscht | genervt | von oben herab | drehen uns im kreis | am thema vorbei
"""
)

WITHDRAWAL_DE = _split(
    """
ist doch egal | ist mir egal | mir egal | alles egal | ist egal | keine ahnung | weiß nicht
weiss nicht | keine lust | passt schon | wie immer | nichts zu sagen | nichts neues
was soll's | was solls | bringt eh nichts | hat eh keinen sinn | ich gebe auf | mal sehen
wie sie meinen | wenn sie meinen
"""
)

RISK_DE = _split(
    """
umbringen | mich umbringen | mich umzubringen | bringe mich um | bring mich um | selbstmord
selbstmordgedanken | suizid | suizidgedanken | suizidal | lebensmüde | nicht mehr leben
will sterben | möchte sterben | will tot sein | wäre lieber tot | lieber tot | tot sein wollen
mir das leben nehmen | mir etwas antun | mir was antun | mich verletzen | mich ritzen
ritze mich | mich zu ritzen | alles beenden | ein ende machen | nicht mehr aufwachen
keinen sinn mehr zu leben | halte das nicht mehr aus
"""
)

NEGATIONS_DE = _split(
    """
nicht | kein | keine | keinen | keiner | keinem | keines | nie | niemals | kaum | weder | nix
"""
)

CONFRONTATION_ES = _split(
    """
pérdida de tiempo | perdida de tiempo | no me sirve | no sirve de nada | no me ayuda
no me escucha | no me escuchas | no me entiende | no me siento escuchado
no me siento escuchada | no me siento comprendido | no me siento comprendida
quiero dejar la terapia | dejar la terapia | quiero dejarlo | no tiene sentido | inútil
sin sentido | frustrante | frustrado | frustrada | decepcionado | decepcionada | enfadado
enfadada | harto | harta
"""
)

WITHDRAWAL_ES = _split(
    """
me da igual | da igual | da lo mismo | lo que sea | ni idea | no tengo ni idea | no sé
qué más da | que mas da | para qué | como siempre | no tengo nada que decir
nada nuevo | me rindo | ya veremos | lo que usted diga | lo que tú digas
"""
)

RISK_ES = _split(
    """
suicidio | suicidarme | suicida | matarme | me quiero matar | quiero morir | quiero morirme
no quiero vivir | no quiero seguir viviendo | quitarme la vida | acabar con todo
acabar con mi vida | hacerme daño | autolesión | autolesionarme | cortarme las venas
mejor muerto | mejor muerta | desaparecer para siempre | no despertar
ya no aguanto más | no vale la pena vivir
"""
)

NEGATIONS_ES = _split(
    """
no | nunca | jamás | jamas | tampoco | ni | sin | apenas
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
    # so this is the plainest reading of "below the middle of the scale"). The rule alerts when
    # a client comes into the low range: it stays quiet while any of the last
    # `low_alliance_quiet` check-ins with this instrument was low (0: alert at every low
    # score). A further fall is alliance_drop's to report. (The SRS protocol discusses every
    # low score in session; a Telegram alert every week for the same known low score is alert
    # fatigue. The 3 is a judgement, not a published figure.)
    low_alliance: bool = True
    low_alliance_cutoff: float | None = None
    low_alliance_item_fraction: float | None = 0.5
    low_alliance_quiet: int = 3

    # alliance_drop. Stiles et al. 2004 and Gumz et al. 2012: a V-shaped drop below the client's
    # own mean of >= 1 SD (warn) or >= 2 SD (high), using the larger of the client's SD and a
    # floor. The floor is a share of the instrument's range (0.05 = 2 points of 40): clients at
    # the ceiling have an SD near zero, and 2 points is at the low end of typical session-to-
    # session variation of SRS-like totals (an assumption; check your own with the backtest's
    # pooled within-client SD). Baseline: the last `drop_baseline_window` totals, at least
    # `drop_min_baseline` of them. A drop from the previous check-in of at least the reliable
    # change (None = the instrument's; `alliance`: 5, after Jacobson & Truax 1991) warns too.
    # A steady client (the same total on every check-in of the baseline window, at least
    # `drop_steady` of them: mostly the ceiling, ACORN: 54 % at the maximum) warns at any fall
    # below that total: the floor would hide their one-point dips, and from a client who
    # never varies a dip is news. The window may end one check-in back, at a first dip (a
    # dip on two check-ins in a row warns twice). 0: off. 4 is a judgement: a month of
    # weekly check-ins, half the baseline window.
    alliance_drop: bool = True
    drop_min_baseline: int = 3
    drop_baseline_window: int = 8
    drop_warn_sd: float = 1.0
    drop_high_sd: float = 2.0
    drop_sd_floor: float = 0.05
    drop_reliable_change: float | None = None
    drop_steady: int = 4

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
        default_factory=lambda: _phrases(
            en=CONFRONTATION_EN, de=CONFRONTATION_DE, es=CONFRONTATION_ES
        )
    )
    withdrawal_phrases: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _phrases(en=WITHDRAWAL_EN, de=WITHDRAWAL_DE, es=WITHDRAWAL_ES)
    )
    negations: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _phrases(en=NEGATIONS_EN, de=NEGATIONS_DE, es=NEGATIONS_ES)
    )
    # Withdrawal markers count in a brief comment (a minimal response, 3RS) of up to this many
    # words, or beside another sign of rupture (low or falling scores, tension, a missed or
    # abandoned check-in lately). Confrontation markers always count.
    withdrawal_brief_words: int = 8

    # disengagement: Greenspace alerts after N missed in a row, mPower after 3 missed days; 2
    # weekly check-ins is two weeks without word. It fires when the run reaches N (warn) and 2N
    # (high), not at every miss in between. A started and abandoned check-in is info.
    disengagement: bool = True
    missed_in_a_row: int = 2
    abandoned: bool = True

    # wellbeing_low: WHO-5 raw < 13 (cutoff None = the instrument's `cutoff`, in raw points:
    # 12 for who5). Optionally any item at or below `wellbeing_low_item` (WHO-5: 0-1 suggests
    # screening; off by default). Like low_alliance it alerts on coming into the low range:
    # quiet while any of the last `wellbeing_low_quiet` WHO-5 scores was low (0: every time).
    # wellbeing_drop: a fall from the previous WHO-5 of at least
    # `wellbeing_drop_points` on the scaled (percent) score; None = the instrument's
    # reliable_change (who5: 10 percentage points, Topp et al. 2015).
    wellbeing_low: bool = True
    wellbeing_cutoff: float | None = None
    wellbeing_low_item: int | None = None
    wellbeing_low_quiet: int = 3
    wellbeing_drop: bool = True
    wellbeing_drop_points: float | None = None

    # risk: an item with a risk_threshold answered at or above it (the instrument file says
    # which, e.g. PHQ-9 item 9 at 1, after Blueprint's Safety Net), or a risk phrase in the
    # comment. Always urgent. Turning it off is not recommended.
    risk: bool = True
    risk_phrases: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _phrases(en=RISK_EN, de=RISK_DE, es=RISK_ES)
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
    if s.drop_steady == 1 or s.drop_steady < 0:
        yield f"drop_steady must be 0 (off) or at least 2, not {s.drop_steady}"
    for name in ("low_alliance_quiet", "wellbeing_low_quiet", "withdrawal_brief_words"):
        if getattr(s, name) < 0:
            yield f"{name} must be 0 or more, not {getattr(s, name)}"
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
        try:
            changes[key] = _convert(key, value, str(fields[key].type))
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


def _convert(key: str, value: Any, kind: str) -> Any:
    """A TOML value checked against the field's declared type (a string: postponed)."""
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
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise ValueError("must be a text")
        return value
    optional = kind.endswith("| None")
    if optional and value is False:
        return None  # TOML has no null: false switches an optional threshold off
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number" + (", or false for none" if optional else ""))
    if kind.startswith("int") and not isinstance(value, int):
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

    Call it after each completed, missed or abandoned check-in. `language` picks the phrase
    lists for the comment (English where the settings have none for it). Answers to instruments
    that are not in `instruments` are ignored. The result has at most one flag per rule (the
    store keeps one open alert per client and rule), in the order of RULES.
    """
    if not history:
        return []
    view = _View(history, instruments)
    latest = history[-1]
    comment = _normalise(latest.comment) if latest.comment else ""
    flags: list[Flag] = []
    if settings.risk:
        flags.extend(_risk(view, comment, settings, language))
    answered = latest.by_instrument
    for inst_id in settings.alliance_instruments:
        inst = instruments.get(inst_id)
        if inst is None or inst_id not in answered:
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
    markers = _Markers.find(comment, settings, language) if comment else _NO_MARKERS
    if markers.withdrawal is not None and len(comment.split()) > settings.withdrawal_brief_words:
        # In a longer comment a resigned phrase is often about something else ("work feels
        # pointless"); it counts there only beside another sign of rupture.
        other = {flag.rule for flag in flags} & {LOW_ALLIANCE, ALLIANCE_DROP, TENSION}
        if not other and not _quiet_before(view, settings):
            markers = _Markers(markers.confrontation, None)
    if settings.critical_comment and (flag := markers.flag()) is not None:
        flags.append(flag)
    if settings.disengagement and (flag := _disengagement(view, settings)) is not None:
        flags.append(flag)
    for inst_id in settings.wellbeing_instruments:
        inst = instruments.get(inst_id)
        if inst is None or inst_id not in answered:
            continue
        if settings.wellbeing_low and (flag := _wellbeing_low(view, inst, settings)) is not None:
            flags.append(flag)
        if settings.wellbeing_drop and (flag := _wellbeing_drop(view, inst, settings)) is not None:
            flags.append(flag)
    return _with_rupture_type(view, _one_per_rule(flags), markers, tension_level, settings)


def _one_per_rule(flags: list[Flag]) -> list[Flag]:
    """With several alliance or wellbeing instruments a rule can fire twice: merge those."""
    if len({flag.rule for flag in flags}) == len(flags):
        return flags
    merged: dict[str, Flag] = {}
    for flag in flags:
        first = merged.get(flag.rule)
        if first is None:
            merged[flag.rule] = flag
        else:
            severity = max(first.severity, flag.severity, key=lambda s: s.rank)
            reason = f"{first.reason}. {flag.reason}"
            merged[flag.rule] = Flag(flag.rule, severity, reason, evidence=first.evidence)
    return list(merged.values())


# --- reading the history --------------------------------------------------------------------


class _Spec:
    """What the detectors need of an instrument, worked out once per Instrument object."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        scored = inst.scored_items
        self.scored_items = scored
        self._thresholds: dict[float, tuple[tuple[Item, float], ...]] = {}
        self.scored = tuple(item.id for item in scored)
        self.mean = inst.scoring == "mean"
        self.scale = inst.scale_factor
        minima = [item.min for item in scored]
        raw_min = sum(minima) if not self.mean else min(minima, default=0)
        self.min_total = raw_min * inst.scale_factor
        self.max_total = inst.max_total
        self.risk = {
            item.id: item.risk_threshold for item in inst.items if item.risk_threshold is not None
        }

    def low_thresholds(self, fraction: float) -> tuple[tuple[Item, float], ...]:
        """Each scored item with its low-item threshold: min + fraction * range."""
        found = self._thresholds.get(fraction)
        if found is None:
            found = tuple(
                (item, item.min + fraction * (item.max - item.min)) for item in self.scored_items
            )
            self._thresholds[fraction] = found
        return found

    def total(self, answers: Mapping[str, int]) -> float | None:
        """As Instrument.total: None unless every scored item is answered."""
        if not answers or not self.scored:
            return None
        try:
            values = [answers[item] for item in self.scored]
        except KeyError:
            return None
        raw = sum(values) if not self.mean else sum(values) / len(values)
        return raw * self.scale


_SPECS: dict[int, _Spec] = {}


def _spec(inst: Instrument) -> _Spec:
    found = _SPECS.get(id(inst))
    if found is None or found.inst is not inst:
        if len(_SPECS) > 256:
            _SPECS.clear()
        found = _SPECS[id(inst)] = _Spec(inst)
    return found


_NO_ANSWERS: Mapping[str, int] = {}


class _View:
    """The history, with totals and baselines worked out once per call."""

    def __init__(self, history: Sequence[CheckinRecord], instruments: Mapping[str, Instrument]):
        self.history = history
        self.instruments = instruments
        self.last = len(history) - 1
        self._earlier: dict[tuple[str, int], tuple[list[tuple[int, float]], bool]] = {}

    def answers(self, index: int, inst_id: str) -> Mapping[str, int]:
        return self.history[index].by_instrument.get(inst_id, _NO_ANSWERS)

    def total(self, index: int, inst: Instrument) -> float | None:
        record = self.history[index]
        memo = record.memo.get(inst.id)
        if memo is not None and memo[0] is inst:
            return memo[1]
        answers = record.by_instrument.get(inst.id)
        total = None if answers is None else _spec(inst).total(answers)
        record.memo[inst.id] = (inst, total)
        return total

    def earlier_totals(self, inst: Instrument, before: int, limit: int) -> list[tuple[int, float]]:
        """Up to `limit` full totals before index `before`, most recent first."""
        cached = self._earlier.get((inst.id, before))
        if cached is not None and (len(cached[0]) >= limit or cached[1]):
            return cached[0][:limit]
        found: list[tuple[int, float]] = []
        exhausted = True
        history, inst_id = self.history, inst.id
        for index in range(before - 1, -1, -1):
            memo = history[index].memo.get(inst_id)
            total = memo[1] if memo is not None and memo[0] is inst else self.total(index, inst)
            if total is not None:
                found.append((index, total))
                if len(found) == limit:
                    exhausted = False
                    break
        self._earlier[(inst.id, before)] = (found, exhausted)
        return found


def _raw(inst: Instrument, total: float) -> float:
    return total / inst.scale_factor if inst.scale_factor else total


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"


_LABELS = {ALLIANCE: "Alliance", "who5": "WHO-5"}


def _label(inst: Instrument) -> str:
    return _LABELS.get(inst.id, inst.id)


# --- alliance rules -------------------------------------------------------------------------


def _low_items(inst: Instrument, answers: Mapping[str, int], fraction: float | None) -> list[Item]:
    if fraction is None or not answers:
        return []
    low = [
        item
        for item, threshold in _spec(inst).low_thresholds(fraction)
        if answers.get(item.id, threshold + 1) <= threshold
    ]
    if len(low) > 1:
        low.sort(key=lambda item: answers[item.id])
    return low


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


def _was_low(view: _View, index: int, inst: Instrument, settings: DetectorSettings) -> bool:
    """As _is_low(...)[0], without gathering the evidence."""
    total = view.total(index, inst)
    cutoff = (
        settings.low_alliance_cutoff if settings.low_alliance_cutoff is not None else inst.cutoff
    )
    if total is not None and cutoff is not None and _raw(inst, total) <= cutoff + _EPSILON:
        return True
    fraction = settings.low_alliance_item_fraction
    if fraction is None:
        return False
    answers = view.answers(index, inst.id)
    return any(
        answers.get(item.id, threshold + 1) <= threshold
        for item, threshold in _spec(inst).low_thresholds(fraction)
    )


def _recently_low(view: _View, inst: Instrument, settings: DetectorSettings) -> bool:
    """A low score among the last few check-ins that asked this instrument."""
    seen = 0
    for index in range(view.last - 1, -1, -1):
        if not view.answers(index, inst.id):
            continue  # missed, or this instrument was not asked: no news either way
        if _was_low(view, index, inst, settings):
            return True
        seen += 1
        if seen == settings.low_alliance_quiet:
            break
    return False


def _low_alliance(view: _View, inst: Instrument, settings: DetectorSettings) -> Flag | None:
    low, total, items = _is_low(view, view.last, inst, settings)
    if not low:
        return None
    if settings.low_alliance_quiet and _recently_low(view, inst, settings):
        return None
    answers = view.answers(view.last, inst.id)
    cutoff = (
        settings.low_alliance_cutoff if settings.low_alliance_cutoff is not None else inst.cutoff
    )
    evidence: dict[str, float | str] = {}
    parts: list[str] = []
    if total is not None:
        evidence["total"] = total
        evidence["max_total"] = _spec(inst).max_total
        text = f"{_label(inst)} {_fmt(total)}/{_fmt(_spec(inst).max_total)}"
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
        ties = sum(1 for item in given if answers[item.id] == answers[lowest.id])
        if ties == len(given) > 1:
            parts.append(f"every item at {answers[lowest.id]}")
        else:
            parts.append(f"lowest item '{lowest.id}' at {answers[lowest.id]}")
            if ties == 1:
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


def _floor(inst: Instrument, settings: DetectorSettings) -> float:
    spec = _spec(inst)
    return settings.drop_sd_floor * (spec.max_total - spec.min_total)


def _against(
    total: float, values: Sequence[float], floor: float
) -> tuple[float, float, float, int]:
    """(z, mean, sd_used, n): how far `total` is below the mean of `values`, in SD units."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum([(v - mean) ** 2 for v in values]) / (n - 1)) if n > 1 else 0.0
    used = max(sd, floor)
    return (mean - total) / used, mean, used, n


def usual_range(
    earlier: Sequence[float], inst: Instrument, settings: DetectorSettings = DEFAULTS
) -> tuple[float, float] | None:
    """(mean, SD used) of a client's earlier totals, as alliance_drop sees them: the last
    `drop_baseline_window` of them, the SD floored; None with too few to say."""
    window = list(earlier)[-settings.drop_baseline_window :]
    if len(window) < settings.drop_min_baseline:
        return None
    _, mean, used, _ = _against(window[-1], window, _floor(inst, settings))
    return mean, used


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
    return _against(total, [value for _, value in baseline], _floor(inst, settings))


def _alliance_drop(view: _View, inst: Instrument, settings: DetectorSettings) -> Flag | None:
    total = view.total(view.last, inst)
    if total is None:
        return None
    window = view.earlier_totals(inst, view.last, settings.drop_baseline_window)
    if not window:
        return None
    floor = _floor(inst, settings)
    scored = None
    if len(window) >= settings.drop_min_baseline:
        values = [value for _, value in window]
        # The SD used is at least the floor, so a fall under warn * floor cannot reach warn.
        if sum(values) / len(values) - total >= settings.drop_warn_sd * floor - _EPSILON:
            scored = _against(total, values, floor)
    prev_index, prev_total = window[0]
    rc = settings.drop_reliable_change
    rc = inst.reliable_change if rc is None else rc
    fall = prev_total - total
    reliable = rc is not None and fall >= rc - _EPSILON
    if scored is None and not reliable:
        return _steady_dip(view, inst, total, settings)

    severity: Severity | None = None
    parts: list[str] = []
    max_total = _spec(inst).max_total
    evidence: dict[str, float | str] = {"total": total, "max_total": max_total}
    if scored is not None:
        z, mean, used, n = scored
        evidence.update(baseline_mean=mean, sd_used=used, baseline_n=n, z=round(z, 3))
        if z >= settings.drop_high_sd - _EPSILON:
            severity = Severity.HIGH
        elif z >= settings.drop_warn_sd - _EPSILON:
            severity = Severity.WARN
        if severity is not None:
            sd_note = f"; SD floor {_fmt(floor)} used" if used <= floor + _EPSILON else ""
            parts.append(
                f"{_label(inst)} {_fmt(total)}/{_fmt(max_total)}, {z:.1f} SD below this "
                f"client's usual {_fmt(round(mean, 1))} (last {n} check-ins{sd_note})"
            )
    if reliable and rc is not None:
        evidence.update(previous_total=prev_total, reliable_change=rc)
        if scored is None and len(window) >= settings.drop_min_baseline:
            evidence["baseline_n"] = len(window)  # a baseline, and the fall stays near it
        if severity is None:
            severity = Severity.WARN
            parts.append(
                f"{_label(inst)} {_fmt(total)}/{_fmt(max_total)}, "
                f"down {_fmt(fall)} from {_fmt(prev_total)} last time "
                f"(reliable change is {_fmt(rc)})"
            )
        else:
            parts.append(f"down {_fmt(fall)} from {_fmt(prev_total)} last time")
    if severity is None:
        return _steady_dip(view, inst, total, settings)
    falls = _item_falls(view, inst, prev_index)
    parts.extend(f"'{item}' fell from {was} to {now}" for item, was, now in falls)
    if falls:
        evidence["weak_items"] = ",".join(item for item, _, _ in falls)
    return Flag(ALLIANCE_DROP, severity, "; ".join(parts), evidence=evidence)


def _steady_dip(
    view: _View, inst: Instrument, total: float, settings: DetectorSettings
) -> Flag | None:
    """A fall below the total a steady client gave on every check-in of the baseline window
    (at least `drop_steady` of them; the window may end one check-in back, at a first dip),
    when the SD rule cannot see it."""
    need = settings.drop_steady
    if not need:
        return None
    window = settings.drop_baseline_window
    earlier = view.earlier_totals(inst, view.last, window + 1)
    values = [value for _, value in earlier]
    if len(values) > 1 and values[0] < values[1] - _EPSILON:
        earlier, values = earlier[1:], values[1:]  # the previous check-in was a first dip
    values = values[:window]
    run = _steady_run(values)
    if run < need or run < len(values) or total >= values[0] - _EPSILON:
        return None
    usual, max_total = values[0], _spec(inst).max_total
    evidence: dict[str, float | str] = {
        "total": total,
        "max_total": max_total,
        "baseline_mean": usual,
        "baseline_n": run,
        "steady": run,
    }
    parts = [
        f"{_label(inst)} {_fmt(total)}/{_fmt(max_total)}, below this client's steady "
        f"{_fmt(usual)} (the same total on {run} check-ins in a row before)"
    ]
    falls = _item_falls(view, inst, earlier[0][0])
    parts.extend(f"'{item}' fell from {was} to {now}" for item, was, now in falls)
    if falls:
        evidence["weak_items"] = ",".join(item for item, _, _ in falls)
    return Flag(ALLIANCE_DROP, Severity.WARN, "; ".join(parts), evidence=evidence)


def _steady_run(values: Sequence[float]) -> int:
    """How many of `values` (most recent first) in a row equal the first."""
    run = 0
    for value in values:
        if abs(value - values[0]) > _EPSILON:
            break
        run += 1
    return run


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
        f"Tension or misunderstanding with you in or since the last session: '{label}'",
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


def _base_language(language: str) -> str:
    return language.split("-")[0].split("_")[0]


def _list_key(table: Mapping[str, tuple[str, ...]], language: str) -> str:
    """Which list of `table` serves `language`: its own, its base language's, or English."""
    if language in table:
        return language
    base = _base_language(language)
    return base if base in table else "en"


def _for_language(table: Mapping[str, tuple[str, ...]], language: str) -> tuple[str, ...]:
    return table.get(_list_key(table, language), ())


def _read_as_english(table: Mapping[str, tuple[str, ...]], language: str) -> bool:
    """Whether `language` uses the English list of `table` (its own, or for want of one)."""
    return _base_language(_list_key(table, language)) == "en"


def _english_cues(settings: DetectorSettings) -> comments.ExactCues:
    return comments.ExactCues(
        _for_language(settings.confrontation_phrases, "en"),
        _for_language(settings.withdrawal_phrases, "en"),
        _for_language(settings.risk_phrases, "en"),
        _for_language(settings.negations, "en"),
        settings.withdrawal_brief_words,
    )


def read_comment(
    comment: str, settings: DetectorSettings = DEFAULTS, language: str = "en"
) -> comments.Reading:
    """The markers in a comment and the cue of each. English (and a language without its own
    list) is read by `alliance.comments` (paraphrases, negation scope, targets), with the
    practice's English phrases as extra exact cues; a language with its own list is matched
    against that list as exact phrases. Risk is always read in English too."""
    english = comments.read(comment, _english_cues(settings))
    negations = _negation_set(_for_language(settings.negations, language))

    def cue(kind: comments.Kind, table: Mapping[str, tuple[str, ...]]) -> str | None:
        if _read_as_english(table, language):
            return english.cue(kind)
        return _match(_normalise(comment), _for_language(table, language), negations)

    return comments.Reading(
        cue("confrontation", settings.confrontation_phrases),
        cue("withdrawal", settings.withdrawal_phrases),
        risk_phrase(comment, settings, language),
    )


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
        reading = read_comment(text, settings, language)
        return _Markers(reading.confrontation, reading.withdrawal)

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


_NO_MARKERS = _Markers()


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
    if settings.wellbeing_low_quiet:
        earlier = view.earlier_totals(inst, view.last, settings.wellbeing_low_quiet)
        if any(_wellbeing_is_low(view, index, inst, settings)[0] for index, _ in earlier):
            return None
    raw = _raw(inst, total)
    max_raw = _raw(inst, _spec(inst).max_total)
    cutoff = settings.wellbeing_cutoff if settings.wellbeing_cutoff is not None else inst.cutoff
    text = f"{_label(inst)} raw {_fmt(raw)}/{_fmt(max_raw)}"
    if inst.scale_factor != 1:
        text += f" ({_fmt(total)}%)" if _spec(inst).max_total == 100 else f" (scaled {_fmt(total)})"
    if cutoff is not None and raw <= cutoff + _EPSILON:
        text += f", at or below {_fmt(cutoff)}"
    if items:
        text += "; items at the bottom of the scale: " + ", ".join(f"'{i}'" for i in items)
    return Flag(
        WELLBEING_LOW,
        Severity.WARN,
        text,
        evidence={"total": total, "raw": raw, "max_raw": max_raw, "instrument": _label(inst)},
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
    before_index, before = previous[0]
    fall = before - total
    when = view.history[before_index].due_at.date().isoformat()
    if fall < points - _EPSILON:
        return None
    unit, pct = (" percentage points", "%") if _spec(inst).max_total == 100 else (" points", "")
    return Flag(
        WELLBEING_DROP,
        Severity.WARN,
        f"{_label(inst)} fell {_fmt(fall)}{unit} since the last one on {when} "
        f"({_fmt(before)}{pct} to {_fmt(total)}{pct}; {_fmt(points)} or more is meaningful)",
        evidence={
            "total": total,
            "previous_total": before,
            "drop": fall,
            "instrument": _label(inst),
            "unit": pct,
        },
    )


# --- risk -----------------------------------------------------------------------------------


def risk_phrase(
    comment: str, settings: DetectorSettings = DEFAULTS, language: str = "en"
) -> str | None:
    """The risk cue in a comment, if any, in the client's language or English (English is
    read by `alliance.comments`). Negation is ignored on purpose: "I'm not suicidal" still
    deserves a look."""
    if not _read_as_english(settings.risk_phrases, language):
        table = _for_language(settings.risk_phrases, language)
        phrase = _match(_normalise(comment), table, frozenset())
        if phrase is not None:
            return phrase
    return comments.read(comment, _english_cues(settings)).risk


def _risk(view: _View, comment: str, settings: DetectorSettings, language: str) -> list[Flag]:
    latest = view.history[view.last]
    parts: list[str] = []
    evidence: dict[str, float | str] = {}
    for inst_id, answers in latest.by_instrument.items():
        inst = view.instruments.get(inst_id)
        risky = None if inst is None else _spec(inst).risk
        if not risky:
            continue
        for item_id, threshold in risky.items():
            value = answers.get(item_id)
            if value is not None and value >= threshold:
                parts.append(
                    f"'{inst_id}' item '{item_id}' answered {value} (risk threshold {threshold})"
                )
                evidence[f"{inst_id}.{item_id}"] = value
    if comment:
        phrase = risk_phrase(comment, settings, language)
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
    if not flags:
        return flags
    rules = {flag.rule for flag in flags}
    if not rules & RUPTURE_RULES:
        return flags
    scores_low = bool(rules & {LOW_ALLIANCE, ALLIANCE_DROP})
    rupture: RuptureType | None = None
    if markers.confrontation is not None or (scores_low and tension > 0):
        rupture = RuptureType.CONFRONTATION
    elif (
        markers.withdrawal is not None
        or (scores_low and (_quiet_before(view, settings) or _flat_answers(view, settings)))
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
            flag = Flag(flag.rule, flag.severity, flag.reason, rupture, repair, flag.evidence)
        out.append(flag)
    return out


def _quiet_before(view: _View, settings: DetectorSettings) -> bool:
    """A missed or abandoned check-in now or among the last few before: going quiet."""
    start = max(0, view.last - settings.withdrawal_lookback)
    return any(_not_completed(view.history[i]) for i in range(start, view.last + 1))


def _flat_answers(view: _View, settings: DetectorSettings) -> bool:
    """Minimal answers: the same value on every alliance item, unlike the check-in before."""
    for inst_id in settings.alliance_instruments:
        inst = view.instruments.get(inst_id)
        if inst is None or view.total(view.last, inst) is None:
            continue
        previous = view.earlier_totals(inst, view.last, 1)
        if previous and _flat(view.answers(view.last, inst_id), inst):
            return not _flat(view.answers(previous[0][0], inst_id), inst)
    return False


def _flat(answers: Mapping[str, int], inst: Instrument) -> bool:
    return len({answers[item] for item in _spec(inst).scored}) == 1


def _fell_before_going_quiet(view: _View, settings: DetectorSettings) -> bool:
    """The last completed check-in before a run of misses showed a low or falling alliance."""
    for index in range(view.last - 1, -1, -1):
        if view.history[index].status is Status.COMPLETED:
            for inst_id in settings.alliance_instruments:
                inst = view.instruments.get(inst_id)
                if inst is None:
                    continue
                if view.total(index, inst) is not None and _was_low(view, index, inst, settings):
                    return True
                scored = _drop_z(view, inst, index, settings)
                if scored is not None and scored[0] >= settings.drop_warn_sd - _EPSILON:
                    return True
            return False
    return False
