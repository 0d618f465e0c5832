"""How long the `rapport` command takes to answer, beside a bare Python start.

Run: .venv/bin/python -m bench.cli_start [--clients 1000] [--runs 7] [--importtime]

Each command runs as an admin runs it, in a new process (`.venv/bin/rapport ...`, the console
script pip installed), --runs times; the table gives the median and the fastest wall time.
The reference is `python -c pass` with the same interpreter. The code is this script's
checkout (PYTHONPATH), so running the script from an older checkout measures the older code.
`rapport client list` runs on a SQLite database made by `rapport init`'s code with one
therapist and --clients clients invited through the real code (labels sealed with real keys),
so the command decrypts each label.
With --importtime, `-X importtime` of each command lists the modules that took longest to
import (their own time plus their imports', the "cumulative" column).

It measures and prints markdown; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAPPORT = Path(sys.executable).with_name("rapport")


async def enrol(data_dir: Path, clients: int) -> None:
    from bot.cli.setup import initialise
    from bot.settings import Settings

    try:
        from bot.vault import load_vault
    except ImportError:  # a checkout from before bot/vault.py
        from bot.app import load_vault  # type: ignore[attr-defined]
    from store import people
    from store.db import create_engine, session_factory, transaction

    settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
    await initialise(settings)
    vault = load_vault(settings)
    engine = create_engine(settings.resolved_database_url)
    now = datetime.now(UTC)
    try:
        async with transaction(session_factory(engine)) as session:
            therapist, _ = await people.add_therapist(
                session, vault, name="Therapist", is_admin=True, now=now, invite_ttl=timedelta(7)
            )
            for number in range(clients):
                await people.invite_client(
                    session,
                    vault,
                    therapist_id=therapist.id,
                    label=f"Client {number:04d}",
                    timezone="Europe/Berlin",
                    schedule_template=None,
                    now=now,
                    invite_ttl=timedelta(days=7),
                )
    finally:
        await engine.dispose()


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["RAPPORT_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whichever the virtualenv installed
    return env


def timed(command: Sequence[str], env: dict[str, str], cwd: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def importtime(command: Sequence[str], env: dict[str, str], cwd: Path, top: int) -> list[str]:
    """The `top` packages (names without a dot, at any depth) with the largest cumulative
    import time under `-X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "from bot.cli import main; main()", *command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "cumulative" in line:
            continue
        name = parts[2].strip()
        if "." not in name:
            rows.append((int(parts[1]), name))
    rows.sort(reverse=True)
    return [f"{name} {us / 1000:.0f} ms" for us, name in rows[:top]]


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--importtime", action="store_true", help="list the slowest imports")
    parser.add_argument("--top", type=int, default=6, help="modules listed with --importtime")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        asyncio.run(enrol(data_dir, args.clients))
        env, cwd = environment(data_dir), Path(tmp)
        commands = [
            ("`python -c pass` (a bare Python start)", [sys.executable, "-c", "pass"], None),
            ("`rapport --help`", [str(RAPPORT), "--help"], ["--help"]),
            (
                f"`rapport client list` ({args.clients} clients)",
                [str(RAPPORT), "client", "list"],
                ["client", "list"],
            ),
        ]
        load_before = os.getloadavg()[0]
        results = [(name, timed(cmd, env, cwd, args.runs), sub) for name, cmd, sub in commands]
        load_after = os.getloadavg()[0]
        offenders = {
            name: importtime(sub, env, cwd, args.top)
            for name, _, sub in results
            if sub is not None and args.importtime
        }
    print("## `rapport` start-up\n")
    command = f".venv/bin/python -m bench.cli_start {shlex.join(argv)}".rstrip()
    print(f"Command: `{command}`\n")
    print(
        f"Machine: {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}. "
        f"Load average (1 min) before / after: {load_before:.2f} / {load_after:.2f}.\n"
    )
    print("| command | runs | median s | fastest s |\n| --- | ---: | ---: | ---: |")
    for name, times, _ in results:
        print(f"| {name} | {len(times)} | {statistics.median(times):.3f} | {min(times):.3f} |")
    for name, listed in offenders.items():
        print(f"\nSlowest imports of {name} (cumulative): {'; '.join(listed)}.")


if __name__ == "__main__":
    main()
