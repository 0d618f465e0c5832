"""The backtest streams: one client at a time from rows grouped by client, flags out as each
client ends; rows not grouped are sorted first (in memory for text, through temporary files in
`rapport backtest`), with the same flags, summary and line numbers. Memory and time are
measured in bench/backtest_stream.py, not here."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from alliance.backtest import (
    Backtest,
    NotGrouped,
    client_column,
    numbered_rows,
    read_header,
    run_backtest,
    sort_by_client,
)
from bot.cli import backtest as cli_backtest
from tests.test_backtest import INSTRUMENTS, SAMPLE

DATA = Path(__file__).parent / "data"


def _records(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _text(records: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records)
    return out.getvalue()


def grouped(text: str) -> str:
    """The same rows, each client's together (clients in the order they first appear)."""
    header, *rows = _records(text)
    order: dict[str, int] = {}
    for row in rows:
        order.setdefault(row[0], len(order))
    return _text([header, *sorted(rows, key=lambda row: order[row[0]])])


GROUPED = grouped(SAMPLE)


def test_streaming_grouped_rows_gives_the_flags_and_summary_of_the_whole_file() -> None:
    whole = run_backtest(SAMPLE, INSTRUMENTS)
    backtest = Backtest(INSTRUMENTS)
    flags = list(backtest.stream(io.StringIO(GROUPED)))
    assert sorted(flags, key=lambda f: f.client) == sorted(whole.flags, key=lambda f: f.client)
    assert backtest.summary() == whole.summary
    clients = list(dict.fromkeys(row[0] for row in _records(GROUPED)[1:]))
    assert list(dict.fromkeys(f.client for f in flags)) == clients  # in file order


def test_a_clients_flags_come_before_the_next_clients_rows_are_read() -> None:
    lines = GROUPED.splitlines(keepends=True)
    read = 0

    def counted() -> Iterator[str]:
        nonlocal read
        for line in lines:
            read += 1
            yield line

    first = next(iter(Backtest(INSTRUMENTS).stream(counted())))
    reader = csv.reader(io.StringIO(GROUPED, newline=""))
    next(reader)
    first_client = next(reader)[0]
    while next(reader)[0] == first_client:
        pass
    assert first.client == first_client
    # The header, the first client's rows, and the row of the next client that ended them.
    assert read == reader.line_num < len(lines)


def test_rows_not_grouped_are_refused_by_the_stream_and_sorted_in_memory_by_run_backtest() -> None:
    with pytest.raises(NotGrouped) as caught:
        list(Backtest(INSTRUMENTS).stream(io.StringIO(SAMPLE)))
    assert caught.value.client and str(caught.value).startswith(f"line {caught.value.line}: ")
    reader = csv.reader(io.StringIO(SAMPLE, newline=""))
    header, line = read_header(reader)
    rows = sort_by_client(numbered_rows(reader), client_column(header))
    backtest = Backtest(INSTRUMENTS)
    flags = list(backtest.stream_rows(header, line, rows))
    assert flags == list(run_backtest(SAMPLE, INSTRUMENTS).flags)
    assert backtest.summary() == run_backtest(GROUPED, INSTRUMENTS).summary


def test_a_bad_row_keeps_its_line_number_after_sorting() -> None:
    records = _records(SAMPLE)
    records.append(["ana", "a9", "yesterday", "", "", "", ""])
    records.insert(3, ["ben", "b9", "2024-03-05T09:00:00-05:00", "", "alliance", "bond", "5"])
    text = _text(records)
    lenient = run_backtest(text, INSTRUMENTS, skip_bad_rows=True)
    lines = [p.line for p in lenient.problems]
    assert lines == sorted(lines) and len(lines) == 2
    assert lenient.problems[0].message.startswith("answered_at is empty")
    assert "yesterday" in lenient.problems[1].message


# --- the command: sorting through temporary files --------------------------------------------


def test_the_external_sort_groups_like_the_sort_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_backtest, "SORT_ROWS", 7)  # several runs to merge
    monkeypatch.setattr(cli_backtest, "RUN_BATCH", 3)
    with cli_backtest._sorted_by_client(io.StringIO(SAMPLE)) as ((header, line), rows):
        external = list(rows)
    reader = csv.reader(io.StringIO(SAMPLE, newline=""))
    assert (header, line) == read_header(reader)
    assert external == sort_by_client(numbered_rows(reader), client_column(header))


def rapport(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["RAPPORT_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_sorts_rows_not_grouped_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "grouped.csv").write_text(GROUPED, encoding="utf-8")
    together = rapport(tmp_path, "backtest", "grouped.csv", "--format", "json")
    apart = rapport(tmp_path, "backtest", str(DATA / "backtest_sample.csv"), "--format", "json")
    assert together.returncode == 0 and apart.returncode == 0, apart.stderr
    assert "sorting" not in together.stderr
    assert "sorting the rows by client through temporary files" in apart.stderr
    flags = [json.loads(line) for line in apart.stdout.splitlines()]
    expected = [json.loads(line) for line in together.stdout.splitlines()]
    assert sorted(map(str, flags)) == sorted(map(str, expected))
    assert flags[-1]["type"] == "summary" and flags[-1]["checkins"] == 15
    assert apart.stderr.splitlines()[1:] == together.stderr.splitlines()


def test_a_bad_row_after_some_clients_prints_no_flags(tmp_path: Path) -> None:
    records = _records(GROUPED)
    records.append(["zed", "z1", "2024-03-05T09:00:00+01:00", "", "alliance", "bond", "5"])
    text = _text(records)
    (tmp_path / "late.csv").write_text(text, encoding="utf-8")
    failed = rapport(tmp_path, "backtest", "late.csv")
    assert failed.returncode == 1 and failed.stdout == ""
    assert f"late.csv: line {text.count(chr(10))}: answered_at is empty" in failed.stderr


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    data = GROUPED.encode() + "zed,z1,2024-03-05T09:00:00+01:00,,,,\n".encode("latin-1")
    data += b"zed,z2,\xff\n"
    (tmp_path / "latin.csv").write_bytes(data)
    failed = rapport(tmp_path, "backtest", "latin.csv")
    assert failed.returncode == 1 and failed.stdout == ""
    byte = data.index(b"\xff")
    assert f"not UTF-8 text (invalid start byte at byte {byte})" in failed.stderr
