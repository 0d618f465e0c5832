"""Backtest: CSV text replayed through the detectors; bad input named by line."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance.backtest import (
    FLAG_COLUMNS,
    BacktestError,
    parse_checkins,
    render_csv,
    render_json_lines,
    render_summary,
    run_backtest,
)
from alliance.history import Status
from alliance.instruments import Instrument, parse_instrument

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / "tests" / "data" / "backtest_sample.csv").read_text(encoding="utf-8")
HEADER = "client,checkin,due_at,answered_at,instrument,item,value"


def _load() -> dict[str, Instrument]:
    found = {}
    for path in sorted((ROOT / "alliance" / "instruments").glob("*.toml")):
        inst = parse_instrument(tomllib.loads(path.read_text(encoding="utf-8")), path.name)
        found[inst.id] = inst
    return found


INSTRUMENTS = _load()

EXPECTED = {
    ("ana", "a5", "alliance_drop", "warn"),
    ("ana", "a5", "wellbeing_drop", "warn"),
    ("ben", "b4", "disengagement", "warn"),
    ("cy", "c1", "low_alliance", "warn"),
    ("cy", "c2", "alliance_drop", "warn"),
    ("cy", "c2", "tension", "warn"),
    ("cy", "c2", "critical_comment", "warn"),
    ("dee", "d2", "disengagement", "info"),
    ("dee", "d3", "critical_comment", "warn"),
    ("eve", "e1", "risk", "urgent"),
}


def checkin_rows(client: str, checkin: str, values: tuple[int, ...], due: str) -> list[str]:
    answered = due.replace("T18:00", "T18:30")
    items = ("bond", "goals", "approach", "overall", "tension")
    return [
        f"{client},{checkin},{due},{answered},alliance,{item},{value}"
        for item, value in zip(items, values, strict=True)
    ]


GOOD = [
    HEADER,
    *checkin_rows("zoe", "z1", (10, 10, 10, 10, 0), "2024-03-04T18:00:00+01:00"),
    *checkin_rows("zoe", "z2", (9, 9, 9, 9, 0), "2024-03-11T18:00:00+01:00"),
]


def replace_line(lines: list[str], number: int, text: str) -> str:
    """The file with line `number` (1-based) replaced."""
    changed = list(lines)
    changed[number - 1] = text
    return "\n".join(changed) + "\n"


# --- the sample file ------------------------------------------------------------------------


def test_sample_gives_the_expected_flags() -> None:
    result = run_backtest(SAMPLE, INSTRUMENTS)
    got = {(f.client, f.checkin, f.rule, f.severity) for f in result.flags}
    assert got == EXPECTED
    assert len(result.flags) == len(EXPECTED)
    reasons = {(f.client, f.checkin, f.rule): f for f in result.flags}
    drop = reasons[("ana", "a5", "alliance_drop")]
    assert "37/40, 1.5 SD below this client's usual 40 (last 4 check-ins" in drop.reason
    comment = reasons[("cy", "c2", "critical_comment")]
    assert comment.rupture_type == "confrontation" and "honestly" not in comment.reason
    assert reasons[("dee", "d3", "critical_comment")].rupture_type == "withdrawal"


def test_sample_summary() -> None:
    summary = run_backtest(SAMPLE, INSTRUMENTS).summary
    assert (summary.clients, summary.checkins) == (5, 15)
    assert summary.statuses == {"completed": 12, "missed": 2, "abandoned": 1, "expired": 0}
    assert summary.flags_per_rule["critical_comment"] == 2
    assert summary.flags_per_rule["wellbeing_low"] == 0
    assert summary.flags_per_100 == pytest.approx(100 * 10 / 15)
    assert summary.alliance_within_sd is not None and summary.alliance_within_sd > 0


def test_rows_in_any_order_give_the_same_flags() -> None:
    lines = SAMPLE.splitlines()
    records = list(csv.reader(io.StringIO(SAMPLE)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(records[0])
    writer.writerows(reversed(records[1:]))
    assert len(lines) > len(records)  # the sample has a comment over two lines
    forward = run_backtest(SAMPLE, INSTRUMENTS).flags
    backward = run_backtest(out.getvalue(), INSTRUMENTS).flags
    # Clients come in the order they first appear; each client's flags in the same order.
    assert backward[0].client == records[-1][0]
    assert sorted(forward, key=lambda f: f.client) == sorted(backward, key=lambda f: f.client)


def test_render_csv_and_json_lines() -> None:
    result = run_backtest(SAMPLE, INSTRUMENTS)
    table = list(csv.DictReader(io.StringIO(render_csv(result))))
    assert tuple(table[0]) == FLAG_COLUMNS and len(table) == len(EXPECTED)
    assert {(r["client"], r["checkin"], r["rule"], r["severity"]) for r in table} == EXPECTED
    lines = [json.loads(line) for line in render_json_lines(result).splitlines()]
    assert [line["type"] for line in lines] == ["flag"] * len(EXPECTED) + ["summary"]
    assert lines[-1]["checkins"] == 15 and lines[-1]["flags_per_rule"]["risk"] == 1
    assert "| alliance_drop | 2 |" in render_summary(result)


def test_delivery_column_follows_severity_and_says_push_or_brief() -> None:
    result = run_backtest(SAMPLE, INSTRUMENTS)
    table = list(csv.DictReader(io.StringIO(render_csv(result))))
    columns = list(FLAG_COLUMNS)
    assert columns[columns.index("severity") + 1] == "delivery"
    tiers = {(r["client"], r["checkin"], r["rule"]): r["delivery"] for r in table}
    assert set(tiers.values()) == {"push", "brief"}
    assert tiers[("ana", "a5", "alliance_drop")] == "brief"  # 37 of 40: one mild sign
    assert all(tier == "push" for (_, _, rule), tier in tiers.items() if rule == "risk")
    lines = [json.loads(line) for line in render_json_lines(result).splitlines()]
    assert {line["delivery"] for line in lines if line["type"] == "flag"} == {"push", "brief"}
    per_tier = lines[-1]["flags_per_tier"]
    assert sum(sum(rules.values()) for rules in per_tier.values()) == len(EXPECTED)
    assert per_tier["push"]["risk"] == 1
    assert "| push | risk | 1 |" in render_summary(result)


def test_partly_answered_instrument_is_abandoned() -> None:
    text = "\n".join([*GOOD[:5]]) + "\n"  # z1 without its tension answer
    histories, _, _ = parse_checkins(text, INSTRUMENTS)
    assert [r.status for r in histories["zoe"]] == [Status.ABANDONED]


def test_missed_row_and_comment_with_comma_and_quotes() -> None:
    text = "\n".join(
        [
            *GOOD,
            "zoe,z3,2024-03-18T18:00:00+01:00,,,,",
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:40:00+01:00,,comment,"
            '"Fine, I ""guess"""',
        ]
    )
    histories, _, _ = parse_checkins(text, INSTRUMENTS)
    _z1, z2, z3 = histories["zoe"]
    assert z2.comment == 'Fine, I "guess"' and z3.status == Status.MISSED


# --- bad input: one test per kind of problem ------------------------------------------------


def test_missing_column() -> None:
    text = "client,checkin,due_at,answered_at,instrument,item\nzoe,z1,x,y,alliance,bond\n"
    with pytest.raises(BacktestError, match=r"^line 1: missing column value"):
        run_backtest(text, INSTRUMENTS)


def test_empty_file() -> None:
    with pytest.raises(BacktestError, match=r"^line 1: the file is empty"):
        run_backtest("", INSTRUMENTS)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,srs,bond,9",
            "unknown instrument 'srs'; use one of alliance, who5",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,alliance,bnd,9",
            "unknown item 'bnd' of alliance",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,alliance,bond,11",
            "value 11 of alliance/bond is off the scale 0-10",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,alliance,tension,-1",
            "value -1 of alliance/tension is off the scale 0-2",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,alliance,bond,nine",
            "value 'nine' of alliance/bond is not a whole number",
        ),
        (
            "zoe,z2,2024-03-11 at six,2024-03-11T18:30:00+01:00,alliance,bond,9",
            "due_at '2024-03-11 at six' is not an ISO 8601 time",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00,2024-03-11T18:30:00+01:00,alliance,bond,9",
            "due_at '2024-03-11T18:00:00' has no UTC offset",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00,alliance,bond,9",
            "answered_at '2024-03-11T18:30:00' has no UTC offset",
        ),
        ("zoe,z2,2024-03-11T18:00:00+01:00,alliance,bond,9", "expected 7 fields, found 6"),
        (
            "zoe,z1,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,alliance,bond,9",
            "due_at 2024-03-11T18:00:00+01:00 differs from line 2 for check-in z1 of zoe",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,alliance,goals,9",
            "alliance/goals of check-in z2 of zoe is answered twice (first on line 8)",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,,,,",
            "check-in z2 of zoe is marked missed here but has answers",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,,bond,9",
            "instrument is empty",
        ),
        (
            "zoe,z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,alliance,comment,hi",
            "a comment row must leave instrument empty",
        ),
        (
            ",z2,2024-03-11T18:00:00+01:00,2024-03-11T18:30:00+01:00,alliance,bond,9",
            "client is empty",
        ),
    ],
)
def test_bad_row_names_its_line(line: str, message: str) -> None:
    text = replace_line(GOOD, 11, line)  # line 11 is z2's tension answer
    with pytest.raises(BacktestError) as caught:
        run_backtest(text, INSTRUMENTS)
    assert str(caught.value).startswith("line 11: ")
    assert message in str(caught.value)
    assert [p.line for p in caught.value.problems] == [11]


def test_line_numbers_count_a_comment_over_several_lines() -> None:
    lines = [
        HEADER,
        'zoe,z1,2024-03-04T18:00:00+01:00,2024-03-04T18:30:00+01:00,,comment,"one\ntwo\nthree"',
        "zoe,z1,2024-03-04T18:00:00+01:00,2024-03-04T18:30:00+01:00,alliance,bond,12",
    ]
    with pytest.raises(BacktestError, match=r"^line 5: value 12"):
        run_backtest("\n".join(lines) + "\n", INSTRUMENTS)


# --- skip_bad_rows --------------------------------------------------------------------------


def test_skip_bad_rows_collects_problems_and_replays_the_rest() -> None:
    lines = list(GOOD)
    lines[3] = "zoe,z1,2024-03-04T18:00:00+01:00,2024-03-04T18:30:00+01:00,alliance,approach,99"
    lines.append("zoe,z3,yesterday,,,,")
    result = run_backtest("\n".join(lines) + "\n", INSTRUMENTS, skip_bad_rows=True)
    assert [(p.line, p.message.split(" ")[0]) for p in result.problems] == [
        (4, "value"),
        (12, "due_at"),
    ]
    assert result.summary.skipped_rows == 2
    # z1 lost a row to a problem: replayed with what is left, not called abandoned.
    assert result.summary.statuses["abandoned"] == 0 and result.summary.checkins == 2
    assert [(f.checkin, f.rule) for f in result.flags] == [("z2", "low_alliance")]
    problems = [json.loads(x) for x in render_json_lines(result).splitlines()]
    assert [p["line"] for p in problems if p["type"] == "problem"] == [4, 12]


def test_skip_bad_rows_still_refuses_a_missing_column() -> None:
    with pytest.raises(BacktestError, match="missing column"):
        run_backtest("client,checkin\nzoe,z1\n", INSTRUMENTS, skip_bad_rows=True)


# --- properties -----------------------------------------------------------------------------

cell = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(cell, min_size=7, max_size=7), max_size=8))
def test_any_rows_either_replay_or_name_a_line(rows: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER.split(","))
    writer.writerows(rows)
    try:
        result = run_backtest(out.getvalue(), INSTRUMENTS)
    except BacktestError as exc:
        assert exc.problems and all(p.line >= 2 for p in exc.problems)
        assert str(exc).startswith(f"line {exc.problems[0].line}: ")
    else:
        assert result.summary.checkins <= len(rows)
    lenient = run_backtest(out.getvalue(), INSTRUMENTS, skip_bad_rows=True)
    assert lenient.summary.skipped_rows == len(lenient.problems)
