"""Backtest: replay check-in histories from CSV text through the detectors (pure, no I/O).

The CSV has the header `client,checkin,due_at,answered_at,instrument,item,value` (any column
order; extra columns are ignored) and one row per answered item. A comment is a row with
`item` = `comment`, `instrument` empty and the text as `value`. A missed check-in is one row
with `answered_at`, `instrument`, `item` and `value` empty. Times are ISO 8601 with an offset.
Rows may come in any order; each client's check-ins are replayed in `due_at` order through
`detect`, as if each had just closed. A check-in with some but not all items of an instrument
answered counts as abandoned.

The caller reads the file and writes the output; `run_backtest` is the entry point and
`render_csv`, `render_json_lines` and `render_summary` turn its result into text.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import io
import json
import math
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alliance.detectors import DEFAULTS, RULES, DetectorSettings, Flag, detect
from alliance.history import CheckinRecord, Status
from alliance.instruments import Instrument, Item
from alliance.triage import PUSH_DEFAULTS, Delivery, TriageSettings, triage

COLUMNS = ("client", "checkin", "due_at", "answered_at", "instrument", "item", "value")
COMMENT = "comment"
FLAG_COLUMNS = (
    "client",
    "checkin",
    "due_at",
    "rule",
    "severity",
    "delivery",
    "rupture_type",
    "reason",
)


@dataclass(frozen=True)
class Problem:
    """One bad row: its line in the file (where the row starts) and what is wrong."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class BacktestError(ValueError):
    """Input that cannot be replayed; the message starts with the line number."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class FlagRecord:
    client: str
    checkin: str
    due_at: datetime
    rule: str
    severity: str
    reason: str
    rupture_type: str | None = None
    delivery: str = Delivery.BRIEF

    def row(self) -> dict[str, str]:
        return {
            "client": self.client,
            "checkin": self.checkin,
            "due_at": self.due_at.isoformat(),
            "rule": self.rule,
            "severity": self.severity,
            "delivery": self.delivery,
            "rupture_type": self.rupture_type or "",
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Summary:
    clients: int
    checkins: int
    statuses: Mapping[str, int]
    flags: int
    flags_per_rule: Mapping[str, int]
    skipped_rows: int = 0
    # Flags per delivery tier ("push", "brief") and rule.
    flags_per_tier: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # Pooled within-client SD of the first alliance instrument's total: what `drop_sd_floor`
    # guards against being too small (None with too few repeated totals).
    alliance_within_sd: float | None = None

    @property
    def flags_per_100(self) -> float:
        return 100 * self.flags / self.checkins if self.checkins else 0.0

    def per_100(self, rule: str) -> float:
        return 100 * self.flags_per_rule.get(rule, 0) / self.checkins if self.checkins else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "clients": self.clients,
            "checkins": self.checkins,
            "statuses": dict(self.statuses),
            "flags": self.flags,
            "flags_per_100_checkins": round(self.flags_per_100, 2),
            "flags_per_rule": dict(self.flags_per_rule),
            "flags_per_rule_per_100_checkins": {
                rule: round(self.per_100(rule), 2) for rule in self.flags_per_rule
            },
            "flags_per_tier": {tier: dict(rules) for tier, rules in self.flags_per_tier.items()},
            "skipped_rows": self.skipped_rows,
            "alliance_within_sd": (
                None if self.alliance_within_sd is None else round(self.alliance_within_sd, 3)
            ),
        }


@dataclass(frozen=True)
class BacktestResult:
    flags: tuple[FlagRecord, ...]
    summary: Summary
    problems: tuple[Problem, ...] = ()


# --- parsing --------------------------------------------------------------------------------


class _Checkin:
    """One check-in while its rows are read (a plain class: there are many of them)."""

    __slots__ = (
        "answer_lines",
        "answers",
        "checkin",
        "client",
        "comment",
        "comment_line",
        "due_at",
        "line",
        "missed_line",
    )

    def __init__(self, client: str, checkin: str, due_at: datetime, line: int) -> None:
        self.client, self.checkin, self.due_at, self.line = client, checkin, due_at, line
        self.answers: dict[tuple[str, str], int] = {}
        self.answer_lines: dict[tuple[str, str], int] = {}
        self.comment: str | None = None
        self.comment_line: int | None = None
        self.missed_line: int | None = None


class _Times:
    """ISO 8601 times with an offset; each distinct text is parsed once."""

    def __init__(self) -> None:
        self.good: dict[str, datetime] = {}
        self.bad: dict[str, str] = {}

    def get(self, text: str) -> datetime | None:
        """The time, or None if the text is not a good one (parse() says why)."""
        try:
            return self.parse(text, "")
        except ValueError:
            return None

    def ok(self, text: str) -> bool:
        return self.get(text) is not None

    def parse(self, text: str, column: str) -> datetime:
        found = self.good.get(text)
        if found is not None:
            return found
        problem = self.bad.get(text)
        if problem is None:
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                problem = f"{text!r} is not an ISO 8601 time (e.g. 2024-03-01T09:00:00+01:00)"
            else:
                if value.tzinfo is None or value.utcoffset() is None:
                    problem = f"{text!r} has no UTC offset; add one (e.g. +01:00 or Z)"
                else:
                    self.good[text] = value
                    return value
            self.bad[text] = problem
        raise ValueError(f"{column} {problem}")


def parse_checkins(
    text: str, instruments: Mapping[str, Instrument], skip_bad_rows: bool = False
) -> tuple[dict[str, list[CheckinRecord]], list[Problem], int]:
    """Histories per client in due order, the problems found, and the number of rows skipped.

    Without `skip_bad_rows` the first problem raises BacktestError; with it, each bad row is
    skipped and its problem collected. A missing column always raises (nothing can be read).
    Line numbers are where a row starts (a quoted comment may span lines).
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    end = 0  # the line the previous record ended on
    try:
        header: list[str] = []
        while not header:
            header_line = end + 1
            header = next(reader)
            end = reader.line_num
    except StopIteration:
        raise BacktestError([Problem(1, "the file is empty; it needs a header row")]) from None
    except csv.Error as exc:
        raise BacktestError([Problem(end + 1, f"not valid CSV ({exc})")]) from None
    names = [name.strip().lower() for name in header]
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        raise BacktestError(
            [
                Problem(
                    header_line,
                    f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                    f"the header must have {','.join(COLUMNS)}",
                )
            ]
        )
    twice = sorted({name for name in names if names.count(name) > 1 and name in COLUMNS})
    if twice:
        raise BacktestError([Problem(header_line, f"column {twice[0]} appears twice")])
    ci, ki, di, ai, ii, ti, vi = (names.index(column) for column in COLUMNS)
    width = len(names)
    items: dict[tuple[str, str], Item] = {
        (inst.id, item.id): item for inst in instruments.values() for item in inst.items
    }
    # (instrument, item) -> the one key tuple all answers share, and its scale as texts
    scale = {slot: (slot, {str(v): v for v in item.values}) for slot, item in items.items()}
    pick = operator.itemgetter(ci, ki, di, ai, ii, ti, vi)
    times = _Times()
    good_times = times.good
    checkins: dict[tuple[str, str], _Checkin] = {}
    problems: list[Problem] = []
    skipped = 0
    damaged: set[tuple[str, str]] = set()

    last_c = last_k = last_d = ""
    found: _Checkin | None = None
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise BacktestError([Problem(end + 1, f"not valid CSV ({exc})")]) from None
        line, end = end + 1, reader.line_num
        if not row:
            continue
        if len(row) == width:
            # The common case, an answer on a known scale with good times, without the checks;
            # rows of one check-in usually follow each other, so the last one is kept at hand.
            c, k, d, a, inst_id, item_id, v = pick(row)
            known = scale.get((inst_id, item_id))
            if known is not None:
                slot, allowed = known
                value = allowed.get(v)
                if value is not None and (a in good_times or times.ok(a)):
                    if c != last_c or k != last_k or d != last_d:
                        found = None
                        due_at = good_times.get(d) or times.get(d)
                        client, checkin_id = c.strip(), k.strip()
                        if due_at is not None and client and checkin_id:
                            found = checkins.get((client, checkin_id))
                            if found is None:
                                found = _Checkin(client, checkin_id, due_at, line)
                                checkins[(client, checkin_id)] = found
                            elif found.due_at != due_at:
                                found = None
                        last_c, last_k, last_d = (c, k, d) if found is not None else ("", "", "")
                    if (
                        found is not None
                        and found.missed_line is None
                        and slot not in found.answers
                    ):
                        found.answers[slot] = value
                        found.answer_lines[slot] = line
                        continue
        try:
            if len(row) != width:
                raise ValueError(f"expected {width} fields, found {len(row)}")
            fields = _Fields(
                row[ci].strip(),
                row[ki].strip(),
                row[di].strip(),
                row[ai].strip(),
                row[ii].strip(),
                row[ti].strip(),
                row[vi],
            )
            _read_row(line, fields, instruments, items, times, checkins)
        except ValueError as exc:
            problem = Problem(line, str(exc))
            if not skip_bad_rows:
                raise BacktestError([problem]) from None
            problems.append(problem)
            skipped += 1
            if len(row) > max(ci, ki):
                damaged.add((row[ci].strip(), row[ki].strip()))

    required = {
        inst.id: (len(inst.items), frozenset(i.id for i in inst.items if not i.skippable))
        for inst in instruments.values()
    }
    histories: dict[str, list[CheckinRecord]] = {}
    for found in sorted(checkins.values(), key=lambda c: (c.client, c.due_at, c.checkin)):
        record = _record(found, required, (found.client, found.checkin) in damaged)
        histories.setdefault(found.client, []).append(record)
    return histories, problems, skipped


@dataclass(frozen=True)
class _Fields:
    client: str
    checkin: str
    due: str
    answered: str
    instrument: str
    item: str
    value: str


def _read_row(
    line: int,
    row: _Fields,
    instruments: Mapping[str, Instrument],
    items: Mapping[tuple[str, str], Item],
    times: _Times,
    checkins: dict[tuple[str, str], _Checkin],
) -> None:
    """Check one row and add it to its check-in; a ValueError names the problem."""
    client, checkin_id, due, answered = row.client, row.checkin, row.due, row.answered
    inst_id, item_id, value = row.instrument, row.item, row.value
    if not client:
        raise ValueError("client is empty")
    if not checkin_id:
        raise ValueError("checkin is empty")
    if not due:
        raise ValueError("due_at is empty")
    due_at = times.parse(due, "due_at")
    is_comment = item_id == COMMENT
    is_missed = not (answered or inst_id or item_id or value.strip())
    if is_comment:
        if inst_id:
            raise ValueError("a comment row must leave instrument empty")
        if answered:
            times.parse(answered, "answered_at")
    elif not is_missed:
        if not inst_id:
            raise ValueError(
                "instrument is empty; name the instrument, or write item 'comment' for a comment"
            )
        if inst_id not in instruments:
            known = ", ".join(sorted(instruments))
            raise ValueError(f"unknown instrument {inst_id!r}; use one of {known}")
        if not item_id:
            raise ValueError("item is empty")
        item = items.get((inst_id, item_id))
        if item is None:
            known = ", ".join(i.id for i in instruments[inst_id].items)
            raise ValueError(f"unknown item {item_id!r} of {inst_id}; use one of {known}")
        number = value.strip()
        if not number.lstrip("-").isdigit():
            raise ValueError(f"value {value!r} of {inst_id}/{item_id} is not a whole number")
        if not item.min <= int(number) <= item.max:
            raise ValueError(
                f"value {number} of {inst_id}/{item_id} is off the scale {item.min}-{item.max}"
            )
        if not answered:
            raise ValueError("answered_at is empty on an answer row")
        times.parse(answered, "answered_at")

    key = (client, checkin_id)
    found = checkins.get(key)
    if found is None:
        found = _Checkin(client, checkin_id, due_at, line)
    elif found.due_at != due_at:
        raise ValueError(
            f"due_at {due} differs from line {found.line} for check-in {checkin_id} of {client}"
        )
    if is_missed:
        if found.answers or found.comment_line is not None:
            raise ValueError(
                f"check-in {checkin_id} of {client} is marked missed here but has answers "
                f"(line {found.line})"
            )
        found.missed_line = line
    elif found.missed_line is not None:
        raise ValueError(
            f"check-in {checkin_id} of {client} was marked missed on line {found.missed_line} "
            "but has an answer here"
        )
    elif is_comment:
        if found.comment_line is not None:
            raise ValueError(
                f"check-in {checkin_id} of {client} has a second comment "
                f"(the first is on line {found.comment_line})"
            )
        found.comment, found.comment_line = (value if value.strip() else None), line
    else:
        slot = (inst_id, item_id)
        if slot in found.answers:
            raise ValueError(
                f"{inst_id}/{item_id} of check-in {checkin_id} of {client} is answered twice "
                f"(first on line {found.answer_lines[slot]})"
            )
        found.answers[slot] = int(value.strip())
        found.answer_lines[slot] = line
    checkins[key] = found


def _record(
    found: _Checkin, required: Mapping[str, tuple[int, frozenset[str]]], damaged: bool
) -> CheckinRecord:
    """The record; a check-in that lost a row to a problem is not called abandoned for it."""
    if found.missed_line is not None:
        return CheckinRecord(found.checkin, found.due_at, Status.MISSED)
    record = CheckinRecord(
        found.checkin, found.due_at, Status.COMPLETED, found.answers, found.comment
    )
    if not damaged:
        for inst_id, given in record.by_instrument.items():
            count, needed = required[inst_id]
            if len(given) < count and not needed <= given.keys():
                return dataclasses.replace(record, status=Status.ABANDONED)
    return record


# --- replay ---------------------------------------------------------------------------------


def replay(
    histories: Mapping[str, Sequence[CheckinRecord]],
    instruments: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
    language: str = "en",
    push: TriageSettings = PUSH_DEFAULTS,
) -> list[FlagRecord]:
    """Every flag `detect` raises, check-in by check-in, as if each had just closed, with the
    delivery tier `triage` decides for it."""
    out: list[FlagRecord] = []
    for client in sorted(histories):
        seen: list[CheckinRecord] = []
        previous: list[Flag] = []
        for record in histories[client]:
            seen.append(record)
            flags = detect(seen, instruments, settings, language)
            for decision in triage(flags, previous, push):
                flag = decision.flag
                out.append(
                    FlagRecord(
                        client,
                        record.checkin_id,
                        record.due_at,
                        flag.rule,
                        str(flag.severity),
                        flag.reason,
                        None if flag.rupture_type is None else str(flag.rupture_type),
                        str(decision.delivery),
                    )
                )
            previous = flags
    return out


def run_backtest(
    text: str,
    instruments: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
    skip_bad_rows: bool = False,
    language: str = "en",
    push: TriageSettings = PUSH_DEFAULTS,
) -> BacktestResult:
    """Parse CSV text and replay it: the flags, a summary and (with skip_bad_rows) problems."""
    # Parsing makes about ten small objects per check-in that all live to the end and form no
    # cycles; the cyclic collector would walk them again and again (a third of the run time
    # for 100,000 check-ins), so it pauses while this runs and is restored after.
    collecting = gc.isenabled()
    gc.disable()
    try:
        histories, problems, skipped = parse_checkins(text, instruments, skip_bad_rows)
        flags = replay(histories, instruments, settings, language, push)
    finally:
        if collecting:
            gc.enable()
    per_rule = Counter(flag.rule for flag in flags)
    per_tier: dict[str, Counter[str]] = {str(tier): Counter() for tier in Delivery}
    for flag in flags:
        per_tier[flag.delivery][flag.rule] += 1
    statuses = Counter(str(r.status) for records in histories.values() for r in records)
    alliance = next(
        (instruments[i] for i in settings.alliance_instruments if i in instruments), None
    )
    summary = Summary(
        clients=len(histories),
        checkins=sum(len(records) for records in histories.values()),
        statuses={str(s): statuses.get(str(s), 0) for s in Status},
        flags=len(flags),
        flags_per_rule={rule: per_rule.get(rule, 0) for rule in RULES},
        skipped_rows=skipped,
        flags_per_tier={
            tier: {rule: counts[rule] for rule in RULES if counts[rule]}
            for tier, counts in per_tier.items()
            if counts
        },
        alliance_within_sd=None if alliance is None else pooled_within_sd(histories, alliance),
    )
    return BacktestResult(tuple(flags), summary, tuple(problems))


def pooled_within_sd(
    histories: Mapping[str, Sequence[CheckinRecord]], instrument: Instrument
) -> float | None:
    """The within-client SD of an instrument's total, pooled over clients with 2+ totals."""
    squares, freedom = 0.0, 0
    for records in histories.values():
        totals = [t for r in records if (t := _total(r, instrument)) is not None]
        if len(totals) > 1:
            mean = math.fsum(totals) / len(totals)
            squares += math.fsum((t - mean) ** 2 for t in totals)
            freedom += len(totals) - 1
    return math.sqrt(squares / freedom) if freedom else None


def _total(record: CheckinRecord, instrument: Instrument) -> float | None:
    if record.status is not Status.COMPLETED:
        return None
    memo = record.memo.get(instrument.id)  # worked out already by the detectors
    if memo is not None and memo[0] is instrument:
        return memo[1]
    return instrument.total(record.of(instrument.id))


# --- output ---------------------------------------------------------------------------------


def render_csv(result: BacktestResult) -> str:
    """The flags as CSV with a header (FLAG_COLUMNS)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FLAG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for flag in result.flags:
        writer.writerow(flag.row())
    return out.getvalue()


def render_json_lines(result: BacktestResult) -> str:
    """One JSON object a line: each flag ("type": "flag"), each skipped row's problem
    ("type": "problem"), then the summary ("type": "summary")."""
    lines = [
        json.dumps({"type": "flag", **flag.row()}, ensure_ascii=False) for flag in result.flags
    ]
    lines += [
        json.dumps({"type": "problem", "line": p.line, "message": p.message}, ensure_ascii=False)
        for p in result.problems
    ]
    lines.append(json.dumps({"type": "summary", **result.summary.as_dict()}))
    return "\n".join(lines) + "\n"


def render_summary(result: BacktestResult) -> str:
    """A short human-readable summary (markdown) for the terminal."""
    s = result.summary
    statuses = ", ".join(f"{n} {status}" for status, n in s.statuses.items() if n)
    lines = [
        f"{s.clients} clients, {s.checkins} check-ins ({statuses or 'none'}); "
        f"{s.flags} flags, {s.flags_per_100:.1f} per 100 check-ins.",
    ]
    if s.skipped_rows:
        lines.append(f"{s.skipped_rows} bad rows skipped.")
    if s.alliance_within_sd is not None:
        lines.append(f"Pooled within-client SD of the alliance total: {s.alliance_within_sd:.2f}.")
    lines += ["", "| rule | flags | per 100 check-ins |", "|---|---:|---:|"]
    lines += [f"| {r} | {n} | {s.per_100(r):.2f} |" for r, n in s.flags_per_rule.items()]
    if s.flags_per_tier:
        lines += ["", "| delivery | rule | flags | per 100 check-ins |", "|---|---|---:|---:|"]
        for tier, rules in s.flags_per_tier.items():
            for rule, n in rules.items():
                share = 100 * n / s.checkins if s.checkins else 0.0
                lines.append(f"| {tier} | {rule} | {n} | {share:.2f} |")
    return "\n".join(lines) + "\n"
