"""Backtest: replay check-in histories from CSV text through the detectors (pure, no I/O).

The CSV has the header `client,checkin,due_at,answered_at,instrument,item,value` (any column
order; extra columns are ignored) and one row per answered item. A comment is a row with
`item` = `comment`, `instrument` empty and the text as `value`. A missed check-in is one row
with `answered_at`, `instrument`, `item` and `value` empty. Times are ISO 8601 with an offset.
Each client's check-ins are replayed in `due_at` order through `detect`, as if each had just
closed. A check-in with some but not all items of an instrument answered counts as abandoned.

Replay goes one client at a time, so memory does not grow with the file: `Backtest.stream`
reads rows grouped by client (each client's rows together, in any order among them; what
`rapport export --all` writes) and gives each client's flags as soon as the client's rows end,
clients in the order they appear. Rows not grouped raise NotGrouped there; `sort_by_client`
(in memory) or the command's external sort (bot/cli/backtest.py) groups them first, keeping
line numbers. `run_backtest` takes CSV text in memory in any order. The caller reads the file
and writes the output; `render_csv`, `render_json_lines` and `render_summary` turn a result
into text.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import operator
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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

    LIMIT = 50_000  # distinct texts kept; `trim` empties the cache beyond (memory stays flat)

    def trim(self) -> None:
        if len(self.good) + len(self.bad) > self.LIMIT:
            self.good.clear()
            self.bad.clear()

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


class NotGrouped(Exception):
    """The rows of one client do not all follow each other, so the file cannot be replayed
    one client at a time as it is read: it has to be sorted by client first
    (`sort_by_client` in memory; `rapport backtest` sorts through temporary files)."""

    def __init__(self, line: int, client: str) -> None:
        super().__init__(
            f"line {line}: rows of client {client!r} come again after other clients' rows"
        )
        self.line, self.client = line, client


Rows = Iterable[tuple[int, list[str]]]
"""CSV records after the header, each with the line it starts on."""


def read_header(reader: Iterator[list[str]]) -> tuple[list[str], int]:
    """The header row of a `csv.reader` and the line it is on (blank lines before it skipped);
    a file without one raises BacktestError."""
    end = 0
    header: list[str] = []
    try:
        while not header:
            line = end + 1
            header = next(reader)
            end = getattr(reader, "line_num", line)
    except StopIteration:
        raise BacktestError([Problem(1, "the file is empty; it needs a header row")]) from None
    except csv.Error as exc:
        raise BacktestError([Problem(end + 1, f"not valid CSV ({exc})")]) from None
    return header, line


def numbered_rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """The records of a `csv.reader` after its header, each with the line it starts on."""
    end = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BacktestError([Problem(end + 1, f"not valid CSV ({exc})")]) from None
        yield end + 1, row
        end = reader.line_num


def client_column(header: Sequence[str]) -> int:
    """Where the client column is (after `columns` has checked the header)."""
    return [name.strip().lower() for name in header].index("client")


def client_of(row: Sequence[str], column: int) -> str:
    """The client a record names ("" if none)."""
    return row[column].strip() if len(row) > column else ""


def sort_by_client(rows: Rows, column: int) -> list[tuple[int, list[str]]]:
    """The rows in memory, grouped by client (`column`) in the order clients first appear,
    each client's rows in file order."""
    first: dict[str, int] = {}
    keyed = [(first.setdefault(client_of(row, column), line), line, row) for line, row in rows]
    keyed.sort(key=lambda entry: (entry[0], entry[1]))
    return [(line, row) for _, line, row in keyed]


def _columns(header: Sequence[str], line: int) -> tuple[int, ...]:
    names = [name.strip().lower() for name in header]
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        raise BacktestError(
            [
                Problem(
                    line,
                    f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                    f"the header must have {','.join(COLUMNS)}",
                )
            ]
        )
    twice = sorted({name for name in names if names.count(name) > 1 and name in COLUMNS})
    if twice:
        raise BacktestError([Problem(line, f"column {twice[0]} appears twice")])
    return tuple(names.index(column) for column in COLUMNS)


class _Reader:
    """Rows in, each client's check-ins out, one client at a time.

    The rows of a client must follow each other (any order among them); a client met again
    after other clients raises NotGrouped. Without `skip_bad_rows` the first problem raises
    BacktestError; with it, each bad row is skipped and its problem collected. Memory holds
    one client's check-ins, the names of the clients seen, the problems, and a bounded cache
    of parsed times.
    """

    def __init__(
        self,
        header: Sequence[str],
        header_line: int,
        instruments: Mapping[str, Instrument],
        skip_bad_rows: bool,
    ) -> None:
        self.columns = _columns(header, header_line)
        self.width = len(header)
        self.instruments = instruments
        self.skip_bad_rows = skip_bad_rows
        self.problems: list[Problem] = []
        self.skipped = 0
        self.items: dict[tuple[str, str], Item] = {
            (inst.id, item.id): item for inst in instruments.values() for item in inst.items
        }
        self.required = {
            inst.id: (len(inst.items), frozenset(i.id for i in inst.items if not i.skippable))
            for inst in instruments.values()
        }

    def clients(self, rows: Rows) -> Iterator[tuple[str, list[CheckinRecord]]]:
        """Each client's check-ins in due order, as soon as the client's rows have ended."""
        ci, ki, di, ai, ii, ti, vi = self.columns
        width = self.width
        instruments, items = self.instruments, self.items
        # (instrument, item) -> the one key tuple all answers share, and its scale as texts
        scale = {slot: (slot, {str(v): v for v in item.values}) for slot, item in items.items()}
        pick = operator.itemgetter(ci, ki, di, ai, ii, ti, vi)
        times = _Times()
        checkins: dict[tuple[str, str], _Checkin] = {}
        damaged: set[tuple[str, str]] = set()
        seen: set[str] = set()
        current = current_text = ""

        last_c = last_k = last_d = ""
        found: _Checkin | None = None
        good_times = times.good  # trim() empties it in place
        for line, row in rows:
            if not row:
                continue
            text = row[ci] if len(row) > ci else ""
            if text != current_text:
                client = text.strip()
                if client and client != current:
                    if current:
                        yield current, self._records(checkins, damaged)
                        checkins, damaged = {}, set()
                        last_c = last_k = last_d = ""
                        found = None
                        times.trim()
                    if client in seen:
                        raise NotGrouped(line, client)
                    seen.add(client)
                    current = client
                if client:
                    current_text = text
            if len(row) == width:
                # The common case, an answer on a known scale with good times, without the
                # checks; rows of one check-in usually follow each other, so the last one is
                # kept at hand.
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
                            last_c, last_k, last_d = (
                                (c, k, d) if found is not None else ("", "", "")
                            )
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
                if not self.skip_bad_rows:
                    raise BacktestError([problem]) from None
                self.problems.append(problem)
                self.skipped += 1
                if len(row) > max(ci, ki):
                    damaged.add((row[ci].strip(), row[ki].strip()))
        if current:
            yield current, self._records(checkins, damaged)

    def _records(
        self, checkins: Mapping[tuple[str, str], _Checkin], damaged: set[tuple[str, str]]
    ) -> list[CheckinRecord]:
        return [
            _record(found, self.required, (found.client, found.checkin) in damaged)
            for found in sorted(checkins.values(), key=lambda c: (c.due_at, c.checkin))
        ]


def is_grouped(rows: Rows, column: int) -> bool:
    """Whether each client's rows follow each other (`column` is the client column)."""
    seen: set[str] = set()
    current = ""
    for _, row in rows:
        client = client_of(row, column)
        if client and client != current:
            if client in seen:
                return False
            seen.add(client)
            current = client
    return True


def _from_text(text: str) -> tuple[list[str], int, list[tuple[int, list[str]]]]:
    """CSV text in memory: its header, the header's line and the rows, grouped by client
    (sorted in memory if they were not)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header, header_line = read_header(reader)
    column = _columns(header, header_line)[0]
    rows = list(numbered_rows(reader))
    if not is_grouped(rows, column):
        rows = sort_by_client(rows, column)
    return header, header_line, rows


def parse_checkins(
    text: str, instruments: Mapping[str, Instrument], skip_bad_rows: bool = False
) -> tuple[dict[str, list[CheckinRecord]], list[Problem], int]:
    """Histories per client in due order, the problems found, and the number of rows skipped.

    Without `skip_bad_rows` the first problem raises BacktestError; with it, each bad row is
    skipped and its problem collected. A missing column always raises (nothing can be read).
    Line numbers are where a row starts (a quoted comment may span lines).
    """
    header, header_line, rows = _from_text(text)
    parsing = _Reader(header, header_line, instruments, skip_bad_rows)
    histories = dict(parsing.clients(rows))
    return histories, sorted(parsing.problems, key=lambda p: p.line), parsing.skipped


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


def replay_client(
    client: str,
    records: Sequence[CheckinRecord],
    instruments: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
    language: str = "en",
    push: TriageSettings = PUSH_DEFAULTS,
) -> list[FlagRecord]:
    """Every flag `detect` raises on one client's check-ins (in due order), check-in by
    check-in, as if each had just closed, with the delivery tier `triage` decides for it
    (given the flags of the client's check-in before)."""
    out: list[FlagRecord] = []
    seen: list[CheckinRecord] = []
    previous: list[Flag] = []
    for record in records:
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


def replay(
    histories: Mapping[str, Sequence[CheckinRecord]],
    instruments: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
    language: str = "en",
    push: TriageSettings = PUSH_DEFAULTS,
) -> list[FlagRecord]:
    """`replay_client` for every client, clients in sorted order."""
    out: list[FlagRecord] = []
    for client in sorted(histories):
        out += replay_client(client, histories[client], instruments, settings, language, push)
    return out


class Backtest:
    """A replay that streams: rows in, flags out as each client's rows end.

    `stream` reads CSV lines (an open file) whose rows are grouped by client (each client's
    rows together, in any order among them; clients in any order): memory holds one client
    at a time, and flags come out in the order the clients appear. A client met again after
    other clients raises NotGrouped; `stream_rows` then takes the same rows grouped by client
    (from `sort_by_client`, or an external sort), line numbers kept. Bad rows: as
    `parse_checkins` says. After the stream: `summary()` and `problems` (by line).
    """

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        settings: DetectorSettings = DEFAULTS,
        skip_bad_rows: bool = False,
        language: str = "en",
        push: TriageSettings = PUSH_DEFAULTS,
    ) -> None:
        self.instruments = instruments
        self.settings = settings
        self.skip_bad_rows = skip_bad_rows
        self.language = language
        self.push = push
        self._alliance = next(
            (instruments[i] for i in settings.alliance_instruments if i in instruments), None
        )
        self._reader: _Reader | None = None
        self._clients = self._checkins = 0
        self._statuses: Counter[str] = Counter()
        self._per_rule: Counter[str] = Counter()
        self._per_tier: dict[str, Counter[str]] = {str(tier): Counter() for tier in Delivery}
        self._squares: list[float] = []  # per client, summed exactly (fsum) at the end
        self._freedom = 0

    def stream(self, lines: Iterable[str]) -> Iterator[FlagRecord]:
        reader = csv.reader(lines)
        header, header_line = read_header(reader)
        yield from self.stream_rows(header, header_line, numbered_rows(reader))

    def stream_rows(
        self, header: Sequence[str], header_line: int, rows: Rows
    ) -> Iterator[FlagRecord]:
        parsing = _Reader(header, header_line, self.instruments, self.skip_bad_rows)
        self._reader = parsing
        for client, records in parsing.clients(rows):
            yield from self.client(client, records)

    def client(self, client: str, records: Sequence[CheckinRecord]) -> list[FlagRecord]:
        """One client's flags; counted in the summary."""
        flags = replay_client(
            client, records, self.instruments, self.settings, self.language, self.push
        )
        if not records:
            return flags
        self._clients += 1
        self._checkins += len(records)
        self._statuses.update(str(record.status) for record in records)
        for flag in flags:
            self._per_rule[flag.rule] += 1
            self._per_tier[flag.delivery][flag.rule] += 1
        if self._alliance is not None:
            squares, freedom = _within(records, self._alliance)
            if freedom:
                self._squares.append(squares)
                self._freedom += freedom
        return flags

    @property
    def problems(self) -> list[Problem]:
        return sorted(self._reader.problems, key=lambda p: p.line) if self._reader else []

    def summary(self) -> Summary:
        alliance_sd = None
        if self._alliance is not None and self._freedom:
            alliance_sd = math.sqrt(math.fsum(self._squares) / self._freedom)
        return Summary(
            clients=self._clients,
            checkins=self._checkins,
            statuses={str(s): self._statuses.get(str(s), 0) for s in Status},
            flags=sum(self._per_rule.values()),
            flags_per_rule={rule: self._per_rule.get(rule, 0) for rule in RULES},
            skipped_rows=self._reader.skipped if self._reader else 0,
            flags_per_tier={
                tier: {rule: counts[rule] for rule in RULES if counts[rule]}
                for tier, counts in self._per_tier.items()
                if counts
            },
            alliance_within_sd=alliance_sd,
        )


def run_backtest(
    text: str,
    instruments: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
    skip_bad_rows: bool = False,
    language: str = "en",
    push: TriageSettings = PUSH_DEFAULTS,
) -> BacktestResult:
    """Parse CSV text and replay it: the flags, a summary and (with skip_bad_rows) problems.
    Rows may come in any order (sorted by client in memory when they are not grouped); flags
    come client by client, in the order the clients first appear."""
    backtest = Backtest(instruments, settings, skip_bad_rows, language, push)
    flags = tuple(backtest.stream_rows(*_from_text(text)))
    return BacktestResult(flags, backtest.summary(), tuple(backtest.problems))


def _within(records: Sequence[CheckinRecord], instrument: Instrument) -> tuple[float, int]:
    """One client's sum of squared deviations of the total from its mean, and its degrees of
    freedom (0 with fewer than two totals)."""
    totals = [t for r in records if (t := _total(r, instrument)) is not None]
    if len(totals) < 2:
        return 0.0, 0
    mean = math.fsum(totals) / len(totals)
    return math.fsum((t - mean) ** 2 for t in totals), len(totals) - 1


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
    lines = [flag_json(flag) for flag in result.flags]
    lines += [problem_json(problem) for problem in result.problems]
    lines.append(summary_json(result.summary))
    return "\n".join(lines) + "\n"


def flag_json(flag: FlagRecord) -> str:
    return json.dumps({"type": "flag", **flag.row()}, ensure_ascii=False)


def problem_json(problem: Problem) -> str:
    return json.dumps(
        {"type": "problem", "line": problem.line, "message": problem.message}, ensure_ascii=False
    )


def summary_json(summary: Summary) -> str:
    return json.dumps({"type": "summary", **summary.as_dict()})


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
