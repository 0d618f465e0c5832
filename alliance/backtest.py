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
import io
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alliance.detectors import DEFAULTS, RULES, DetectorSettings, detect
from alliance.history import CheckinRecord, Status
from alliance.instruments import Instrument, Item

COLUMNS = ("client", "checkin", "due_at", "answered_at", "instrument", "item", "value")
COMMENT = "comment"
FLAG_COLUMNS = ("client", "checkin", "due_at", "rule", "severity", "rupture_type", "reason")


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

    def row(self) -> dict[str, str]:
        return {
            "client": self.client,
            "checkin": self.checkin,
            "due_at": self.due_at.isoformat(),
            "rule": self.rule,
            "severity": self.severity,
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


@dataclass
class _Checkin:
    client: str
    checkin: str
    due_at: datetime
    line: int
    answers: dict[tuple[str, str], int] = field(default_factory=dict)
    answer_lines: dict[tuple[str, str], int] = field(default_factory=dict)
    comment: str | None = None
    comment_line: int | None = None
    missed_line: int | None = None


class _Rows:
    """CSV records with the line each starts on (quoted comments may span lines)."""

    def __init__(self, text: str) -> None:
        self.reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        while True:
            start = self.reader.line_num + 1
            try:
                row = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise BacktestError([Problem(start, f"not valid CSV ({exc})")]) from None
            if row and any(cell.strip() for cell in row):
                yield start, row


class _Times:
    """ISO 8601 times with an offset; each distinct text is parsed once."""

    def __init__(self) -> None:
        self.seen: dict[str, datetime | str] = {}

    def parse(self, text: str, column: str) -> datetime:
        found = self.seen.get(text)
        if found is None:
            found = self._parse(text)
            self.seen[text] = found
        if isinstance(found, str):
            raise ValueError(f"{column} {found}")
        return found

    @staticmethod
    def _parse(text: str) -> datetime | str:
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return f"{text!r} is not an ISO 8601 time (e.g. 2024-03-01T09:00:00+01:00)"
        if value.tzinfo is None or value.utcoffset() is None:
            return f"{text!r} has no UTC offset; add one (e.g. +01:00 or Z)"
        return value


def parse_checkins(
    text: str, instruments: Mapping[str, Instrument], skip_bad_rows: bool = False
) -> tuple[dict[str, list[CheckinRecord]], list[Problem], int]:
    """Histories per client in due order, the problems found, and the number of rows skipped.

    Without `skip_bad_rows` the first problem raises BacktestError; with it, each bad row is
    skipped and its problem collected. A missing column always raises (nothing can be read).
    """
    rows = iter(_Rows(text))
    try:
        header_line, header = next(rows)
    except StopIteration:
        raise BacktestError([Problem(1, "the file is empty; it needs a header row")]) from None
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
    at = [names.index(column) for column in COLUMNS]
    width = len(names)
    items: dict[tuple[str, str], Item] = {
        (inst.id, item.id): item for inst in instruments.values() for item in inst.items
    }
    times = _Times()
    checkins: dict[tuple[str, str], _Checkin] = {}
    problems: list[Problem] = []
    skipped = 0

    for line, row in rows:
        try:
            if len(row) != width:
                raise ValueError(f"expected {width} fields, found {len(row)}")
            client, checkin, due, answered, inst_id, item_id, value = (
                row[i].strip() if i != at[6] else row[i] for i in at
            )
            _read_row(
                line, client, checkin, due, answered, inst_id, item_id, value,
                instruments, items, times, checkins,
            )  # fmt: skip
        except ValueError as exc:
            problem = Problem(line, str(exc))
            if not skip_bad_rows:
                raise BacktestError([problem]) from None
            problems.append(problem)
            skipped += 1

    histories: dict[str, list[CheckinRecord]] = {}
    for found in sorted(checkins.values(), key=lambda c: (c.client, c.due_at, c.checkin)):
        histories.setdefault(found.client, []).append(_record(found, instruments))
    return histories, problems, skipped


def _read_row(
    line: int,
    client: str,
    checkin_id: str,
    due: str,
    answered: str,
    inst_id: str,
    item_id: str,
    value: str,
    instruments: Mapping[str, Instrument],
    items: Mapping[tuple[str, str], Item],
    times: _Times,
    checkins: dict[tuple[str, str], _Checkin],
) -> None:
    """Check one row and add it to its check-in; a ValueError names the problem."""
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


def _record(found: _Checkin, instruments: Mapping[str, Instrument]) -> CheckinRecord:
    if found.missed_line is not None:
        status = Status.MISSED
    else:
        status = Status.COMPLETED
        asked = {inst_id for inst_id, _ in found.answers}
        for inst_id in asked:
            needed = (item.id for item in instruments[inst_id].items if not item.skippable)
            if any((inst_id, item_id) not in found.answers for item_id in needed):
                status = Status.ABANDONED
                break
    return CheckinRecord(found.checkin, found.due_at, status, found.answers, found.comment)


# --- replay ---------------------------------------------------------------------------------


def replay(
    histories: Mapping[str, Sequence[CheckinRecord]],
    instruments: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
    language: str = "en",
) -> list[FlagRecord]:
    """Every flag `detect` raises, check-in by check-in, as if each had just closed."""
    out: list[FlagRecord] = []
    for client in sorted(histories):
        seen: list[CheckinRecord] = []
        for record in histories[client]:
            seen.append(record)
            for flag in detect(seen, instruments, settings, language):
                out.append(
                    FlagRecord(
                        client,
                        record.checkin_id,
                        record.due_at,
                        flag.rule,
                        str(flag.severity),
                        flag.reason,
                        None if flag.rupture_type is None else str(flag.rupture_type),
                    )
                )
    return out


def run_backtest(
    text: str,
    instruments: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
    skip_bad_rows: bool = False,
    language: str = "en",
) -> BacktestResult:
    """Parse CSV text and replay it: the flags, a summary and (with skip_bad_rows) problems."""
    histories, problems, skipped = parse_checkins(text, instruments, skip_bad_rows)
    flags = replay(histories, instruments, settings, language)
    per_rule = Counter(flag.rule for flag in flags)
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
        alliance_within_sd=None if alliance is None else pooled_within_sd(histories, alliance),
    )
    return BacktestResult(tuple(flags), summary, tuple(problems))


def pooled_within_sd(
    histories: Mapping[str, Sequence[CheckinRecord]], instrument: Instrument
) -> float | None:
    """The within-client SD of an instrument's total, pooled over clients with 2+ totals."""
    squares, freedom = 0.0, 0
    for records in histories.values():
        totals = [
            t
            for r in records
            if r.status is Status.COMPLETED and (t := instrument.total(r.of(instrument.id)))
            is not None
        ]
        if len(totals) > 1:
            mean = math.fsum(totals) / len(totals)
            squares += math.fsum((t - mean) ** 2 for t in totals)
            freedom += len(totals) - 1
    return math.sqrt(squares / freedom) if freedom else None


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
    lines = [json.dumps({"type": "flag", **flag.row()}, ensure_ascii=False) for flag in result.flags]
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
    return "\n".join(lines) + "\n"
