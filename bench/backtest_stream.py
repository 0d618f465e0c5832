"""`rapport backtest` on large files: time and peak memory, beside a bare read of the file.

Run: .venv/bin/python -m bench.backtest_stream [--checkins 100000 1000000] [--runs 3]
     [--unsorted] [--group-reference-max 100000]

For each size, a CSV file of synthetic check-ins (bench/synthetic.py, seed 7; the same rows
as `to_csv(generate_checkins(N, 7))`) is written to a temporary directory client by client,
so the generator's memory stays out of the measurement. The file comes sorted by client, as
`rapport export --all` writes it (grouped by client). With --unsorted a copy with its rows in
random order (multi-line comments kept whole) is measured too: the backtest then sorts it
through temporary files first.

Each measurement is a fresh process; the table gives the median wall time of --runs runs and
the largest peak RSS (the process's own high-water mark, VmHWM, which it writes at exit):

- bare csv read: `for row in csv.reader(file)`, nothing kept;
- bare read and group: the rows kept in memory in a list per client (what the backtest had to
  do before it streamed); only up to --group-reference-max check-ins (it needs ~5 GB for a
  million);
- `rapport backtest FILE` (`python -m bot.cli`, output to /dev/null) in the checkout this
  script is in: run it from another checkout to measure other code.

It measures and prints markdown; nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.synthetic import CSV_HEADER, csv_rows, iter_checkins

ROOT = Path(__file__).resolve().parent.parent

BARE_READ = """
import csv, sys
with open(sys.argv[1], encoding="utf-8", newline="") as file:
    for row in csv.reader(file):
        pass
"""
# Runs a module or a code string and writes its own peak RSS (VmHWM, KiB) to a file at exit:
# the process's own high-water mark, not the parent's memory it was forked from.
RUNNER = """
import atexit, runpy, sys
def report(path=sys.argv[1]):
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(path, "w") as out:
        out.write(peak)
atexit.register(report)
kind, target = sys.argv[2], sys.argv[3]
sys.argv = [target, *sys.argv[4:]]
if kind == "module":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    exec(compile(target, "<bench>", "exec"), {"__name__": "__main__"})
"""
READ_AND_GROUP = """
import csv, sys
groups = {}
with open(sys.argv[1], encoding="utf-8", newline="") as file:
    reader = csv.reader(file)
    next(reader)
    for row in reader:
        groups.setdefault(row[0], []).append(row)
"""


def write_csv(path: Path, checkins: int, seed: int) -> tuple[int, int]:
    """The synthetic file; returns its clients and data rows."""
    clients = rows = 0
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for client, _ in iter_checkins(checkins, seed):
            listed = list(csv_rows(client))
            writer.writerows(listed)
            clients += 1
            rows += len(listed)
    return clients, rows


def shuffled(source: Path, target: Path, seed: int) -> None:
    with source.open(encoding="utf-8", newline="") as file:
        reader = csv.reader(file)
        header = next(reader)
        rows = list(reader)
    random.Random(seed).shuffle(rows)
    with target.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def run(command: Sequence[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process: `command` is ("module", name, args...)
    or ("code", source, args...)."""
    with tempfile.NamedTemporaryFile(prefix="rapport-bench-peak-") as peak:
        full = [sys.executable, "-c", RUNNER, peak.name, *command]
        start = time.perf_counter()
        done = subprocess.run(full, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed: {done.stderr.decode()[-2000:]}")
        return elapsed, int(Path(peak.name).read_text()) * 1024


def measure(command: Sequence[str], runs: int) -> tuple[float, int]:
    found = [run(command) for _ in range(runs)]
    return statistics.median(t for t, _ in found), max(m for _, m in found)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkins", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--unsorted", action="store_true", help="also rows in random order")
    parser.add_argument(
        "--unsorted-max", type=int, default=100_000, help="largest size shuffled (in memory)"
    )
    parser.add_argument("--group-reference-max", type=int, default=100_000)
    args = parser.parse_args(argv)
    table = [
        "| file | what | median s | peak RSS MiB | time / bare read | time / read and group |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as folder:
        for checkins in args.checkins:
            path = Path(folder) / f"checkins-{checkins}.csv"
            clients, rows = write_csv(path, checkins, args.seed)
            size = path.stat().st_size / 2**20
            name = f"{checkins:,} check-ins"
            notes.append(
                f"{name}: {clients:,} clients, {rows:,} rows, {size:.0f} MiB (sorted by client)"
            )
            files = [(name, path)]
            unsorted = args.unsorted and checkins <= args.unsorted_max
            if unsorted:
                mixed = path.with_name(f"shuffled-{checkins}.csv")
                shuffled(path, mixed, args.seed)
                files.append((f"{name}, rows in random order", mixed))
            bare = measure(["code", BARE_READ, str(path)], args.runs)
            group = None
            if checkins <= args.group_reference_max:
                group = measure(["code", READ_AND_GROUP, str(path)], args.runs)
            entries = [(name, "bare csv read", bare)]
            if group is not None:
                entries.append((name, "bare read and group (in memory)", group))
            for label, file in files:
                done = measure(["module", "bot.cli", "backtest", str(file)], args.runs)
                entries.append((label, "`rapport backtest`", done))
            for label, what, (seconds, peak) in entries:
                ratio_group = f"{seconds / group[0]:.2f}" if group is not None else "-"
                table.append(
                    f"| {label} | {what} | {seconds:.2f} | {peak / 2**20:.0f} | "
                    f"{seconds / bare[0]:.2f} | {ratio_group} |"
                )
            for file in [path] + ([mixed] if unsorted else []):
                file.unlink()
    command = f".venv/bin/python -m bench.backtest_stream {shlex.join(argv)}".rstrip()
    print("## `rapport backtest` on large files\n")
    print(f"Command: `{command}` (code in {ROOT}).\n")
    print(
        f"Machine: {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}. "
        "Load average (1, 5, 15 min) at the end: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + f". {args.runs} runs each.\n"
    )
    print("\n".join(f"- {note}" for note in notes) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
