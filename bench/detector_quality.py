"""Detector quality on synthetic trajectories, against the plain "total <= 36" rule; replay time.

Run: .venv/bin/python -m bench.detector_quality [--clients 3000] [--seed 7] [--replay 100000]
     [--sweep]

For each variant it reports, over labelled rupture episodes (bench/synthetic.py):
- recall: the share of episodes with at least one rupture flag on a check-in inside it;
- false alerts: rupture flags on check-ins in no episode, per 100 client-weeks (a check-in a week);
- latency: check-ins from the episode's first check-in to the first flag inside it.
Only the rupture rules count (low_alliance, alliance_drop, tension, critical_comment,
disengagement); wellbeing and risk flags are reported apart, since the episodes say nothing
about them. Each flag counts (several rules on one check-in are several alerts). With --sweep it
varies one setting at a time on a separate tuning cohort (the defaults were chosen there, not on
the reported cohort). It then times `run_backtest` on a CSV file of at least --replay check-ins
in a fresh process, as the `rapport backtest` command would run it. Prints markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alliance.detectors import DEFAULTS, RUPTURE_RULES, DetectorSettings, detect
from alliance.history import CheckinRecord
from alliance.instruments import Instrument
from bench.synthetic import Cohort, Episode, generate, generate_checkins, to_csv
from bot.config import load_instruments

Rules = Callable[[Sequence[CheckinRecord]], list[str]]


def shipped_instruments() -> dict[str, Instrument]:
    """The instruments Rapport ships, as the bot loads them without a practice config."""
    return load_instruments(None, Path.cwd())


def settings_rules(instruments: Mapping[str, Instrument], settings: DetectorSettings) -> Rules:
    def rules(history: Sequence[CheckinRecord]) -> list[str]:
        return [flag.rule for flag in detect(history, instruments, settings)]

    return rules


def baseline_rules(instruments: Mapping[str, Instrument], cutoff: float = 36) -> Rules:
    """The plain rule: a completed alliance total at or below the cutoff, every time."""
    alliance = instruments["alliance"]

    def rules(history: Sequence[CheckinRecord]) -> list[str]:
        total = alliance.total(history[-1].of("alliance"))
        return ["low_alliance"] if total is not None and total <= cutoff else []

    return rules


@dataclass(frozen=True)
class Quality:
    name: str
    episodes: int
    detected: int
    false_alerts: int
    client_weeks: int
    latencies: tuple[int, ...]
    per_rule_in: Mapping[str, int]
    per_rule_out: Mapping[str, int]
    other_flags: int
    by_kind: Mapping[str, tuple[int, int]]
    by_ceiling: Mapping[bool, tuple[int, int]]

    @property
    def recall(self) -> float:
        return self.detected / self.episodes if self.episodes else 0.0

    @property
    def false_per_100(self) -> float:
        return 100 * self.false_alerts / self.client_weeks

    def latency(self, how: Callable[[Sequence[int]], float]) -> str:
        return f"{how(self.latencies):.2f}" if self.latencies else "-"


def measure(name: str, cohort: Cohort, rules: Rules) -> Quality:
    by_client: dict[str, list[Episode]] = {}
    for episode in cohort.episodes:
        by_client.setdefault(episode.client, []).append(episode)
    detected = false_alerts = other = 0
    latencies: list[int] = []
    rule_in: Counter[str] = Counter()
    rule_out: Counter[str] = Counter()
    kinds: dict[str, list[int]] = {}
    ceilings: dict[bool, list[int]] = {}
    for client in cohort.clients:
        episodes = by_client.get(client.id, [])
        first_flag: dict[int, int] = {}
        for index in range(len(client.records)):
            fired = rules(client.records[: index + 1])
            rupture = [rule for rule in fired if rule in RUPTURE_RULES]
            other += len(fired) - len(rupture)
            inside = [n for n, e in enumerate(episodes) if e.first <= index <= e.last]
            if inside:
                rule_in.update(rupture)
                if rupture:
                    for n in inside:
                        first_flag.setdefault(n, index)
            else:
                rule_out.update(rupture)
                false_alerts += len(rupture)
        for n, episode in enumerate(episodes):
            hit = n in first_flag
            kinds.setdefault(episode.kind, [0, 0])[0] += 1
            kinds[episode.kind][1] += hit
            ceilings.setdefault(client.ceiling, [0, 0])[0] += 1
            ceilings[client.ceiling][1] += hit
            if hit:
                detected += 1
                latencies.append(first_flag[n] - episode.first)
    return Quality(
        name=name,
        episodes=len(cohort.episodes),
        detected=detected,
        false_alerts=false_alerts,
        client_weeks=cohort.checkins,
        latencies=tuple(latencies),
        per_rule_in=dict(rule_in),
        per_rule_out=dict(rule_out),
        other_flags=other,
        by_kind={k: (v[0], v[1]) for k, v in kinds.items()},
        by_ceiling={k: (v[0], v[1]) for k, v in ceilings.items()},
    )


def variants(instruments: Mapping[str, Instrument]) -> list[tuple[str, Rules]]:
    repeat = dataclasses.replace(DEFAULTS, low_alliance_quiet=0)
    return [
        ("baseline: total <= 36 at every check-in", baseline_rules(instruments)),
        ("defaults", settings_rules(instruments, DEFAULTS)),
        ("defaults, low_alliance_quiet = 0", settings_rules(instruments, repeat)),
    ]


def quality_table(results: Sequence[Quality]) -> list[str]:
    lines = [
        "| variant | episodes detected (recall) | false alerts / 100 client-weeks "
        "| median / mean check-ins to first flag |",
        "|---|---:|---:|---:|",
    ]
    for q in results:
        lines.append(
            f"| {q.name} | {q.detected}/{q.episodes} ({100 * q.recall:.1f}%) "
            f"| {q.false_per_100:.2f} | {q.latency(statistics.median)} / "
            f"{q.latency(statistics.mean)} |"
        )
    return lines


def breakdown(results: Sequence[Quality]) -> list[str]:
    kinds = sorted({k for q in results for k in q.by_kind})
    head = " | ".join([*kinds, "ceiling clients", "other clients"])
    lines = [f"| recall by episode kind | {head} |", "|---|" + "---:|" * (len(kinds) + 2)]
    for q in results:
        cells = [f"{q.by_kind.get(k, (0, 0))[1]}/{q.by_kind.get(k, (0, 0))[0]}" for k in kinds]
        for ceiling in (True, False):
            total, hit = q.by_ceiling.get(ceiling, (0, 0))
            cells.append(f"{hit}/{total}")
        lines.append(f"| {q.name} | " + " | ".join(cells) + " |")
    return lines


def per_rule(q: Quality) -> list[str]:
    weeks = q.client_weeks
    lines = [
        f"| rule ({q.name}) | flags in episodes | flags outside (per 100 client-weeks) |",
        "|---|---:|---:|",
    ]
    for rule in sorted(RUPTURE_RULES):
        out = q.per_rule_out.get(rule, 0)
        lines.append(f"| {rule} | {q.per_rule_in.get(rule, 0)} | {out} ({100 * out / weeks:.2f}) |")
    lines.append(
        f"| wellbeing and risk (not rupture rules) | - | {q.other_flags} "
        f"({100 * q.other_flags / weeks:.2f}) |"
    )
    return lines


_TIMED = """
import json, sys, time
from alliance.backtest import run_backtest
from bench.detector_quality import shipped_instruments
instruments = shipped_instruments()
start = time.perf_counter()
with open(sys.argv[1], encoding="utf-8") as handle:
    text = handle.read()
read, cpu = time.perf_counter(), time.process_time()
result = run_backtest(text, instruments)
done = time.perf_counter()
print(json.dumps({"read": read - start, "run": done - read, "cpu": time.process_time() - cpu,
    "checkins": result.summary.checkins, "clients": result.summary.clients,
    "flags": result.summary.flags}))
"""


def replay_time(checkins: int, seed: int, runs: int = 3) -> list[str]:
    """Time `run_backtest` on a CSV file in a fresh process, as `rapport backtest` would run."""
    cohort = generate_checkins(checkins, seed)
    text = to_csv(cohort)
    rows = text.count("\n") - 1
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "replay.csv"
        path.write_text(text, encoding="utf-8")
        del cohort, text
        found = []
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-c", _TIMED, str(path)],
                cwd=root,
                check=True,
                capture_output=True,
                text=True,
            )
            found.append(json.loads(done.stdout))
    wall = sorted(run["run"] for run in found)
    cpu = sorted(run["cpu"] for run in found)
    last = found[-1]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        f"Replay: {last['checkins']} check-ins of {last['clients']} clients ({rows} CSV rows) "
        f"through `run_backtest` (parse and detect) with the defaults, in a fresh process, "
        f"{runs} runs: wall best {wall[0]:.2f} s, median {statistics.median(wall):.2f} s; "
        f"CPU best {cpu[0]:.2f} s, median {statistics.median(cpu):.2f} s (reading the file "
        f"{last['read']:.2f} s more; load average {load} on {os.cpu_count()} cores); "
        f"{last['flags']} flags.",
    ]


def sweep(instruments: Mapping[str, Instrument], clients: int, seed: int) -> list[str]:
    """One setting at a time around the defaults, on a tuning cohort (not the reported one)."""
    cohort = generate(clients, seed)
    choices: list[tuple[str, dict[str, Any]]] = [
        ("defaults", {}),
        ("drop_sd_floor = 0.04 (1.6 points)", {"drop_sd_floor": 0.04}),
        ("drop_sd_floor = 0.0625 (2.5 points)", {"drop_sd_floor": 0.0625}),
        ("drop_sd_floor = 0.075 (3 points)", {"drop_sd_floor": 0.075}),
        ("drop_min_baseline = 4", {"drop_min_baseline": 4}),
        ("drop_min_baseline = 5", {"drop_min_baseline": 5}),
        ("drop_baseline_window = 5", {"drop_baseline_window": 5}),
        ("drop_baseline_window = 20", {"drop_baseline_window": 20}),
        ("missed_in_a_row = 3", {"missed_in_a_row": 3}),
        ("low_alliance_quiet = 5", {"low_alliance_quiet": 5}),
        ("abandoned = false", {"abandoned": False}),
        ("withdrawal_brief_words = 1000 (any length)", {"withdrawal_brief_words": 1000}),
    ]
    results = [
        measure("baseline: total <= 36 at every check-in", cohort, baseline_rules(instruments))
    ]
    for name, changes in choices:
        chosen = dataclasses.replace(DEFAULTS, **changes)
        results.append(measure(name, cohort, settings_rules(instruments, chosen)))
    return [
        f"Sweep on a tuning cohort ({clients} clients, seed {seed}):",
        "",
        *quality_table(results),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Detector quality and replay time.")
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--replay", type=int, default=100_000, help="check-ins to replay; 0: skip")
    parser.add_argument(
        "--sweep", action="store_true", help="also vary one setting at a time (tuning seed 1)"
    )
    args = parser.parse_args(argv)
    instruments = shipped_instruments()
    cohort = generate(args.clients, args.seed)
    command = "python -m bench.detector_quality " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    results = [measure(name, cohort, rules) for name, rules in variants(instruments)]
    ceiling = sum(c.ceiling for c in cohort.clients)
    out = [
        f"`{command.strip()}` ({sys.version.split()[0]})",
        "",
        f"Synthetic cohort: {len(cohort.clients)} clients ({ceiling} at the ceiling), "
        f"{cohort.checkins} weekly check-ins, {len(cohort.episodes)} labelled rupture episodes "
        f"(seed {args.seed}).",
        "",
        *quality_table(results),
        "",
        *breakdown(results),
        "",
        *per_rule(results[1]),
    ]
    if args.sweep:
        out += ["", *sweep(instruments, min(args.clients, 1500), 1 if args.seed != 1 else 2)]
    if args.replay:
        out += ["", *replay_time(args.replay, args.seed)]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
