"""From a check-in tap to the edited message, with every Bot API request a round trip away.

Run: .venv/bin/python -m bench.tap_roundtrip [--latency 0.1] [--clients 20] [--reference 30]

On real Telegram each request the bot makes costs a network round trip. A tap needs two
replies: answerCallbackQuery (the button stops spinning, "Saved") and editMessageText (the
next question). Made one after the other, the client waits two round trips for the next
question; made together, one.

The rig: the fake Bot API (tests/botapi) with `latency` seconds added to every request (each
is held that long before the fake applies and answers it), the real Rapport Application
long-polling it (tests/rig.py), SQLite in a temporary directory. --clients clients are enrolled
with no latency; then the latency is switched on. The reference, "one round trip", is the
median of --reference getMe requests made by the bot itself (PTB, httpx, the rate limiter and
the fake, the same way as the replies). Then each client in turn gets an alliance check-in
and answers it as a person would: each tap is pressed once the previous edit has shown; the
time of a tap is from the press (the update queued for the bot's waiting long poll) to the
edited message showing in the fake. Items 1-5 are the headline; the completing tap (No
comment: scores, detectors, the thanks text) is reported on its own row. Every tap's answer
is checked to have been given.

It measures and prints markdown; nothing is asserted about times.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import telegram

from tests.botapi import FakeBotAPI, FakeUser
from tests.rig import Rig, first_question, join, start_rig

ANSWERS = ("9", "8", "9", "10", "No")  # alliance items 1-5
COMPLETE = "No comment"


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def one_round_trip(rig: Rig, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await rig.app.bot.get_me()
        times.append(time.perf_counter() - start)
    return times


async def tap(rig: Rig, client: FakeUser, message_id: int, label: str) -> float:
    start = time.perf_counter()
    press = client.press_button(message_id, label)
    await client.wait_for_message(predicate=lambda m: m.message_id == message_id, timeout=30)
    elapsed = time.perf_counter() - start
    await rig.fake.wait_for(lambda: press.answered, timeout=30, message="the tap's answer")
    return elapsed


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"reference": [], "items": [], "complete": []}
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'rapport.db'}"
        async with FakeBotAPI() as fake, start_rig(fake, Path(tmp), url) as rig:
            therapist_id, _ = await rig.add_therapist()
            clients = []
            for number in range(args.clients):
                client_id, token = await rig.invite(therapist_id, label=f"Client {number}")
                client = fake.user(7_000_000 + number)
                await join(client, token)
                clients.append((client, client_id))
            fake.latency = args.latency
            found["reference"] = await one_round_trip(rig, args.reference)
            for client, client_id in clients:
                await rig.send_checkin(client_id, "alliance")
                question = await first_question(rig, client)
                for label in ANSWERS:
                    found["items"].append(await tap(rig, client, question.message_id, label))
                found["complete"].append(await tap(rig, client, question.message_id, COMPLETE))
    return found


def revision() -> str:
    try:
        done = subprocess.run(
            ["git", "log", "-1", "--format=%h"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def report(found: dict[str, list[float]], args: argparse.Namespace, argv: Sequence[str]) -> str:
    trip = statistics.median(found["reference"])

    def row(name: str, values: list[float]) -> str:
        median = statistics.median(values)
        return (
            f"| {name} | {len(values)} | {median * 1000:.1f} | "
            f"{percentile(values, 0.9) * 1000:.1f} | {median / trip:.2f} |"
        )

    return "\n".join(
        [
            "## A tap to its edited message, each request a round trip away",
            "",
            f"Command: `{f'.venv/bin/python -m bench.tap_roundtrip {shlex.join(argv)}'.rstrip()}`",
            f"Code: commit {revision()} with the working tree of {Path.cwd()}.",
            f"Machine: {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
            f"python-telegram-bot {telegram.__version__}. Load average (1, 5, 15 min) at the end: "
            + ", ".join(f"{x:.2f}" for x in os.getloadavg())
            + ".",
            f"Latency added to every request: {args.latency * 1000:.0f} ms.",
            "",
            "| what | count | median ms | p90 ms | median / one round trip |",
            "| --- | ---: | ---: | ---: | ---: |",
            row("one round trip: getMe made by the bot", found["reference"]),
            row("**tap to edited message**, items 1-5", found["items"]),
            row("tap to edited message, the completing tap (No comment)", found["complete"]),
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per request")
    parser.add_argument("--clients", type=int, default=20, help="clients, one check-in each")
    parser.add_argument("--reference", type=int, default=30, help="getMe requests timed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    found = asyncio.run(measure(args))
    print(report(found, args, argv))


if __name__ == "__main__":
    main()
