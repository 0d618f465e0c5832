"""Synthetic client trajectories with labelled rupture episodes (seeded, deterministic).

The generator models what the literature describes, not what the detectors look for:

- ceiling effects: a large share of clients answer at or near the maximum every time (ACORN:
  54% gave the maximum on every item of a 7-item alliance form);
- everyone else at a personal level with personal week-to-week noise and a slow rise of the
  alliance over therapy;
- rupture episodes in about half of the clients (Stevens et al. 2007: 50%; McLaughlin et al.
  2014: 46%): a V-shaped drop below the client's own level of varying depth (some too shallow to
  see) and length, repaired (back to the level) or not (a lasting lower level, sometimes dropout);
  confrontation episodes bring tension answers and critical comments some of the time,
  withdrawal episodes bring missed or abandoned check-ins, flat answers and resigned comments;
  "silent" episodes show only in the scores;
- benign noise that looks like a signal: holidays (missed weeks in a row), occasional missed or
  abandoned check-ins, occasional mild tension, comments in everyday words that contain marker
  words in another sense ("work feels pointless"), negated markers ("I don't want to stop").

Comments are written as varied natural sentences; many rupture comments use words that are not
in the detectors' default phrase lists. Every episode is labelled (client, first and last
check-in index). WHO-5 is generated too (independent of the alliance), for replay timing.

Run `python -m bench.synthetic --clients 50 > sample.csv` to write the backtest CSV format.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from alliance.backtest import COLUMNS
from alliance.history import CheckinRecord, Status

ALLIANCE_ITEMS = ("bond", "goals", "approach", "overall")
WHO5_ITEMS = ("who5_1", "who5_2", "who5_3", "who5_4", "who5_5")

CONFRONTATION_COMMENTS = (
    "Honestly it felt like a waste of time today.",
    "I don't think you really listened to what I was saying.",
    "You keep pushing me towards things I said I don't want to talk about.",
    "I felt rushed at the end and a bit dismissed.",
    "I'm not sure this approach is right for me.",
    "Thinking about stopping for a while.",
    "I was annoyed that you checked your watch so often.",
    "It feels like we're going round in circles.",
    "I didn't like how you brushed off my question about medication.",
    "Maybe I need a different therapist.",
    "Felt judged when I talked about my drinking.",
    "This isn't helping and I don't know why I keep coming.",
)
WITHDRAWAL_COMMENTS = (
    "whatever",
    "doesn't matter",
    "fine",
    "ok",
    "nothing to add",
    "I guess it's fine.",
    "not much to say this week",
    "What's the point really.",
    "I've kind of given up on it changing anything.",
    "same",
)
BENIGN_COMMENTS = (
    "Good session, thanks.",
    "Helpful to talk about my sister.",
    "I liked the breathing exercise.",
    "Busy week, but the homework helped.",
    "Felt lighter afterwards.",
    "Looking forward to next time.",
    "Work feels pointless at the moment, but the session helped.",
    "My boss never listens, it was good to vent.",
    "I gave up sugar this week, small win!",
    "I don't want to stop coming, this is helping.",
    "Tired today.",
    "We talked about the move, useful.",
    "Sorry I was late.",
    "Whatever happens with the job, I feel more ready.",
    "Not much to report, good week.",
    "It was hard but useful.",
)
RISK_COMMENTS = ("Some days I just want to die.", "I've been thinking about hurting myself.")


@dataclass(frozen=True)
class Params:
    """Knobs of the generator, with the source or the reason for each."""

    weeks_min: int = 8  # brief to medium-length therapies, weekly check-ins
    weeks_max: int = 30
    ceiling_share: float = 0.5  # ACORN: 54% at the maximum on every item
    level_mean: float = 34.5  # non-ceiling clients: SRS-like totals mostly in the 30s
    level_sd: float = 3.0
    noise_min: float = 0.8  # personal week-to-week SD of the total, in points
    noise_max: float = 2.5
    rise_max: float = 2.0  # alliance grows a little over therapy (0 to this many points)
    rupture_share: float = 0.5  # Stevens 2007: 50%; McLaughlin 2014: 46%
    second_rupture: float = 0.3  # of those, share with a second episode
    repaired_share: float = 0.7  # most ruptures in completed therapies are repaired
    dropout_if_unrepaired: float = 0.35  # unrepaired ruptures predict dropout
    kinds: tuple[tuple[str, float], ...] = (
        ("confrontation", 0.35),
        ("withdrawal", 0.35),
        ("silent", 0.30),
    )
    tension_in_confrontation: float = 0.5
    comment_in_confrontation: float = 0.45
    missed_in_withdrawal: float = 0.35  # per episode check-in
    abandoned_in_withdrawal: float = 0.1
    flat_in_withdrawal: float = 0.3  # the same middling value on every item
    comment_in_withdrawal: float = 0.3
    missed_rate: float = 0.06  # benign missed check-ins
    abandoned_rate: float = 0.02
    holiday_share: float = 0.25  # clients with a two-week holiday (two missed in a row)
    benign_tension: float = 0.03  # "a little" tension outside any episode
    comment_rate: float = 0.25
    risk_comment_rate: float = 0.002
    who5_level_mean: float = 13.0  # raw; clients in therapy often start below 13
    who5_level_sd: float = 4.0


@dataclass(frozen=True)
class Episode:
    client: str
    first: int  # index of the first check-in of the episode in the client's history
    last: int  # index of the last one (inclusive)
    kind: str  # confrontation, withdrawal or silent
    depth: float  # points below the client's level at the deepest
    repaired: bool


@dataclass(frozen=True)
class SyntheticClient:
    id: str
    ceiling: bool
    records: tuple[CheckinRecord, ...]


@dataclass(frozen=True)
class Cohort:
    clients: tuple[SyntheticClient, ...]
    episodes: tuple[Episode, ...] = field(default=())

    @property
    def checkins(self) -> int:
        return sum(len(c.records) for c in self.clients)


START = datetime(2024, 1, 1, 18, 0, tzinfo=timezone(timedelta(hours=1)))


def _depth(rng: random.Random) -> float:
    """Shallow (2-3 points), moderate (4-7) or deep (8-15) in about 3:4:3."""
    roll = rng.random()
    if roll < 0.3:
        return rng.uniform(2, 3.5)
    if roll < 0.7:
        return rng.uniform(3.5, 7.5)
    return rng.uniform(7.5, 15)


def _pick(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    roll, acc = rng.random() * sum(w for _, w in weighted), 0.0
    for name, weight in weighted:
        acc += weight
        if roll < acc:
            return name
    return weighted[-1][0]


def _client(index: int, rng: random.Random, p: Params) -> tuple[SyntheticClient, list[Episode]]:
    cid = f"c{index:05d}"
    weeks = rng.randint(p.weeks_min, p.weeks_max)
    ceiling = rng.random() < p.ceiling_share
    level = 40.0 if ceiling else min(39.0, max(20.0, rng.gauss(p.level_mean, p.level_sd)))
    noise = 0.8 if ceiling else rng.uniform(p.noise_min, p.noise_max)
    rise = 0.0 if ceiling else rng.uniform(0, p.rise_max)
    offsets = [rng.gauss(0, 0.4) for _ in ALLIANCE_ITEMS]
    who5_level = min(24.0, max(2.0, rng.gauss(p.who5_level_mean, p.who5_level_sd)))
    who5_rise = rng.uniform(-1, 5)

    # Plan episodes: (first, length, kind, depth, repaired, dropout).
    plans: list[tuple[int, int, str, float, bool, bool]] = []
    if rng.random() < p.rupture_share and weeks >= 5:
        count = 2 if rng.random() < p.second_rupture and weeks >= 14 else 1
        taken: set[int] = set()
        for _ in range(count):
            for _attempt in range(20):
                first = rng.randint(1, weeks - 3)
                length = rng.choice((1, 2, 2, 3, 3, 4))
                span = set(range(first - 2, first + length + 2))
                if not span & taken:
                    break
            else:
                continue
            kind = _pick(rng, p.kinds)
            repaired = rng.random() < p.repaired_share
            dropout = not repaired and rng.random() < p.dropout_if_unrepaired
            taken |= span
            plans.append((first, min(length, weeks - first), kind, _depth(rng), repaired, dropout))
    plans.sort()

    drop_at = [0.0] * weeks  # points below the level, per week
    lasting = [0.0] * weeks
    kind_at: list[str | None] = [None] * weeks
    ended = weeks
    episodes: list[Episode] = []
    for first, length, kind, depth, repaired, dropout in plans:
        if first >= ended:
            continue
        last = min(first + length - 1, ended - 1)
        for k, week in enumerate(range(first, last + 1)):
            # V shape: deepest at onset, climbing back over the episode.
            share = 1 - k / max(1, length) if repaired else 1 - 0.5 * k / max(1, length)
            drop_at[week] = max(drop_at[week], depth * share)
            kind_at[week] = kind
        if not repaired:
            for week in range(last + 1, weeks):
                lasting[week] += depth * 0.5
        if dropout:
            stop = min(weeks, last + 1 + rng.randint(0, 1))
            ended = min(weeks, stop + 3)  # three missed, then therapy is over
            for week in range(stop, ended):
                kind_at[week] = "dropout"
            last = ended - 1
        episodes.append(Episode(cid, first, last, kind, round(depth, 2), repaired))
    weeks = ended

    focus = rng.sample(range(len(ALLIANCE_ITEMS)), rng.choice((1, 2)))
    holiday = rng.randint(1, weeks - 2) if rng.random() < p.holiday_share and weeks > 4 else -1
    records: list[CheckinRecord] = []
    for week in range(weeks):
        due = START + timedelta(weeks=week, minutes=index)
        now = kind_at[week]
        in_episode = drop_at[week] > 0 or now == "dropout"
        missed = (
            now == "dropout"
            or week in (holiday, holiday + 1)
            or (now == "withdrawal" and rng.random() < p.missed_in_withdrawal)
            or (not in_episode and rng.random() < p.missed_rate)
        )
        abandoned = not missed and (
            (now == "withdrawal" and rng.random() < p.abandoned_in_withdrawal)
            or (not in_episode and rng.random() < p.abandoned_rate)
        )
        status = Status.MISSED if missed else Status.ABANDONED if abandoned else Status.COMPLETED
        if status is Status.MISSED:
            records.append(CheckinRecord(f"{cid}-{week:03d}", due, status))
            continue

        gone = drop_at[week] + lasting[week]
        base = (level + rise * week / max(1, weeks - 1)) / 4
        means = [10.4 if ceiling else base + off for off in offsets]
        for i in range(len(means)):  # a fall concentrates on one or two items, as it tends to
            means[i] -= gone * (0.65 / len(focus) if i in focus else 0.35 / (4 - len(focus)))
        values = [min(10, max(0, round(rng.gauss(m, noise / 2)))) for m in means]
        if now == "withdrawal" and rng.random() < p.flat_in_withdrawal:
            flat = min(10, max(0, round(sum(values) / 4)))
            values = [flat] * 4
        answers: dict[tuple[str, str], int] = {
            ("alliance", item): v for item, v in zip(ALLIANCE_ITEMS, values, strict=True)
        }
        tension = 0
        if now == "confrontation" and rng.random() < p.tension_in_confrontation:
            tension = rng.choice((1, 2))
        elif not in_episode and rng.random() < p.benign_tension:
            tension = 1
        answers[("alliance", "tension")] = tension
        who5_mean = (who5_level + who5_rise * week / max(1, weeks - 1)) / 5
        for item in WHO5_ITEMS:
            answers[("who5", item)] = min(5, max(0, round(rng.gauss(who5_mean, 0.7))))

        comment: str | None = None
        if now == "confrontation" and rng.random() < p.comment_in_confrontation:
            comment = rng.choice(CONFRONTATION_COMMENTS)
        elif now == "withdrawal" and rng.random() < p.comment_in_withdrawal:
            comment = rng.choice(WITHDRAWAL_COMMENTS)
        elif rng.random() < p.risk_comment_rate:
            comment = rng.choice(RISK_COMMENTS)
        elif rng.random() < p.comment_rate:
            comment = rng.choice(BENIGN_COMMENTS)

        if status is Status.ABANDONED:
            keep = rng.randint(1, len(ALLIANCE_ITEMS) - 1)
            answers = {k: v for k, v in answers.items() if k[0] == "alliance"}
            answers = dict(list(answers.items())[:keep])
            comment = None
        records.append(CheckinRecord(f"{cid}-{week:03d}", due, status, answers, comment))
    return SyntheticClient(cid, ceiling, tuple(records)), episodes


def generate(clients: int, seed: int = 1, params: Params | None = None) -> Cohort:
    """A cohort of `clients` trajectories; the same seed gives the same cohort."""
    p = params or Params()
    rng = random.Random(seed)
    made: list[SyntheticClient] = []
    episodes: list[Episode] = []
    for index in range(clients):
        client, found = _client(index, random.Random(rng.getrandbits(64)), p)
        made.append(client)
        episodes.extend(found)
    return Cohort(tuple(made), tuple(episodes))


def generate_checkins(checkins: int, seed: int = 1, params: Params | None = None) -> Cohort:
    """A cohort with at least `checkins` check-ins in all (for replay timing)."""
    made: list[SyntheticClient] = []
    episodes: list[Episode] = []
    for client, found in iter_checkins(checkins, seed, params):
        made.append(client)
        episodes.extend(found)
    return Cohort(tuple(made), tuple(episodes))


def iter_checkins(
    checkins: int, seed: int = 1, params: Params | None = None
) -> Iterator[tuple[SyntheticClient, list[Episode]]]:
    """generate_checkins' clients one at a time (the same seed gives the same clients), so a
    large cohort can go to disk without being held in memory."""
    p = params or Params()
    rng = random.Random(seed)
    made = total = 0
    while total < checkins:
        client, found = _client(made, random.Random(rng.getrandbits(64)), p)
        yield client, found
        made += 1
        total += len(client.records)


CSV_HEADER = COLUMNS  # the backtest's input header


def csv_rows(client: SyntheticClient) -> Iterator[tuple[object, ...]]:
    """One client's rows in the backtest CSV format (an answer, comment or missed check-in
    each)."""
    for record in client.records:
        due = record.due_at.isoformat()
        if record.status is Status.MISSED:
            yield (client.id, record.checkin_id, due, "", "", "", "")
            continue
        answered = (record.due_at + timedelta(hours=2)).isoformat()
        for (instrument, item), value in record.answers.items():
            yield (client.id, record.checkin_id, due, answered, instrument, item, value)
        if record.comment is not None:
            yield (client.id, record.checkin_id, due, answered, "", "comment", record.comment)


def to_csv(cohort: Cohort) -> str:
    """The cohort in the backtest CSV format (one row per answer, comment or missed check-in)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for client in cohort.clients:
        writer.writerows(csv_rows(client))
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sys.stdout.write(to_csv(generate(args.clients, args.seed)))


if __name__ == "__main__":
    main()
