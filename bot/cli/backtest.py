"""`rapport backtest`: replay a practice's own check-ins through the detectors, to choose
thresholds. Needs no database and no keys: the input is a CSV file the practice provides
(for example from `rapport export --format csv`).

The file is read once, one client at a time, when each client's rows are together (an export
is); otherwise it is sorted by client through temporary files first, a bounded number of rows
in memory at a time. Either way memory stays flat however large the file
(docs/performance.md)."""

from __future__ import annotations

import argparse
import codecs
import csv
import gc
import heapq
import marshal
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bot.cli.common import CliError, Env

if TYPE_CHECKING:
    from alliance.backtest import Backtest, FlagRecord


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay check-ins from a CSV file through the detectors",
        description=(
            "Input: UTF-8 CSV with the header client,checkin,due_at,answered_at,instrument,item,"
            "value. Flags go to standard output, the summary to standard error. Rows of each "
            "client together are read in one pass; otherwise the file is sorted by client "
            "through temporary files first."
        ),
    )
    p.add_argument("input", type=Path, help="the CSV file")
    p.add_argument("--config", type=Path, help="a practice config file (detector settings)")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format")
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="report bad rows and skip them instead of stopping",
    )
    p.set_defaults(handler=cmd_backtest, needs_config=False)


def cmd_backtest(env: Env, args: argparse.Namespace) -> None:
    from alliance.backtest import BacktestError, BacktestResult, NotGrouped, render_summary
    from bot import config as practice_config

    loaded = practice_config.load(args.config or env.settings.resolved_config)
    settings = (
        loaded.instruments,
        loaded.detectors,
        args.skip_bad_rows,
        loaded.config.practice.language,
        loaded.config.alerts.push.settings(),
    )
    # The flags wait in a temporary file (in memory up to a few MB) until the run is done:
    # a bad row stops it with nothing printed, as it always has, and unsorted input is
    # replayed again after sorting.
    with tempfile.SpooledTemporaryFile(
        max_size=SPOOL_BYTES, mode="w+", encoding="utf-8", newline=""
    ) as out:
        try:
            try:
                with _open(args.input) as lines:
                    backtest = _write(out, args.format, lambda b: b.stream(lines), settings)
            except NotGrouped as exc:
                print(
                    f"{args.input}: {exc} (the backtest reads one client at a time); sorting "
                    "the rows by client through temporary files first",
                    file=sys.stderr,
                )
                out.seek(0)
                out.truncate()
                with _open(args.input) as lines, _sorted_by_client(lines) as (head, rows):
                    backtest = _write(
                        out, args.format, lambda b: b.stream_rows(*head, rows), settings
                    )
        except BacktestError as exc:
            raise CliError(f"{args.input}: {exc}") from None
        except UnicodeDecodeError:
            reason, byte = _first_bad_byte(args.input)
            raise CliError(f"{args.input}: not UTF-8 text ({reason} at byte {byte})") from None
        summary, problems = backtest.summary(), backtest.problems
        if args.format == "json":
            from alliance.backtest import problem_json, summary_json

            out.writelines(problem_json(problem) + "\n" for problem in problems)
            out.write(summary_json(summary) + "\n")
        out.seek(0)
        shutil.copyfileobj(out, sys.stdout)
    for problem in problems:
        print(f"{args.input}: skipped {problem}", file=sys.stderr)
    print(render_summary(BacktestResult((), summary, tuple(problems))), file=sys.stderr)


SPOOL_BYTES = 8 * 1024 * 1024
SORT_ROWS = 100_000  # rows sorted in memory at a time when the input must be sorted
RUN_BATCH = 500  # rows of a sorted run read back at a time (marshal: fast, and our own files)


def _write(
    out: IO[str],
    fmt: str,
    flags_of: Callable[[Backtest], Iterator[FlagRecord]],
    settings: tuple[Any, ...],
) -> Backtest:
    """Run a new Backtest with `settings`, writing each flag to `out` as it comes."""
    from alliance.backtest import FLAG_COLUMNS, Backtest, flag_json

    backtest = Backtest(*settings)
    if fmt == "json":
        out.writelines(flag_json(flag) + "\n" for flag in flags_of(backtest))
    else:
        writer = csv.DictWriter(out, fieldnames=FLAG_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flag.row() for flag in flags_of(backtest))
    return backtest


@contextmanager
def _open(path: Path) -> Iterator[IO[str]]:
    """The file as text lines; what cannot be opened is a CliError. (A BOM is dropped; line
    ends are read as they were when the whole file was read at once.)"""
    try:
        file = path.open(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(
            f"{path}: is a directory; give the CSV file in it (e.g. {path / 'checkins.csv'})"
        ) from None
    except PermissionError:
        raise CliError(f"{path}: not allowed to read it (check its permissions)") from None
    with file:
        yield file


def _first_bad_byte(path: Path) -> tuple[str, int]:
    """Why the file is not UTF-8, and the offset of the first byte that is not."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return exc.reason, offset - pending + exc.start
            offset += len(chunk)
    return "truncated data", offset


@contextmanager
def _sorted_by_client(
    lines: Iterable[str],
) -> Iterator[tuple[tuple[list[str], int], Iterator[tuple[int, list[str]]]]]:
    """The header (and its line) and the rows grouped by client, in the order clients first
    appear, each client's rows in file order, with their line numbers: an external merge
    sort, SORT_ROWS rows at a time in memory, runs in a temporary directory."""
    from alliance.backtest import client_column, client_of, numbered_rows, read_header

    reader = csv.reader(lines)
    header, header_line = read_header(reader)
    column = client_column(header)
    first: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="rapport-backtest-") as folder:
        runs: list[Path] = []
        chunk: list[tuple[int, int, list[str]]] = []

        def spill() -> None:
            chunk.sort()  # by (order, line): unique, so rows are never compared
            path = Path(folder) / f"run{len(runs)}"
            with path.open("wb") as file:
                for start in range(0, len(chunk), RUN_BATCH):
                    data = marshal.dumps(chunk[start : start + RUN_BATCH])
                    file.write(len(data).to_bytes(8, "little") + data)
            runs.append(path)
            chunk.clear()

        # The chunk's many small objects form no cycles; the cyclic collector would walk
        # them again and again (half the time of this loop), so it pauses while they are read.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for line, row in numbered_rows(reader):
                chunk.append((first.setdefault(client_of(row, column), len(first)), line, row))
                if len(chunk) >= SORT_ROWS:
                    spill()
            if chunk:
                spill()
        finally:
            if collecting:
                gc.enable()
        with ExitStack() as files:
            readers = [_run_rows(files.enter_context(path.open("rb"))) for path in runs]
            merged = heapq.merge(*readers)
            yield (header, header_line), ((line, row) for _, line, row in merged)


def _run_rows(file: IO[bytes]) -> Iterator[tuple[int, int, list[str]]]:
    """A sorted run's entries, RUN_BATCH at a time in memory."""
    while size := file.read(8):
        batch: list[tuple[int, int, list[str]]] = marshal.loads(
            file.read(int.from_bytes(size, "little"))
        )
        yield from batch
