"""A third synthetic cohort, matched to the published description of the owners' held-out cohort.

bench/synthetic.py gives each client a fixed level plus independent normal noise and
bench/cohort_drift.py a drifting latent level with AR(1) noise and response styles. This one is
a *deficit count* model instead, built from what the held-out cohort's owners published about it
(300 clients x 20 weekly check-ins; many clients at the ceiling; benign look-alikes: holiday
misses, harmless comments, life-event wellbeing dips, persistently lower scorers; WHO-5 asked
too; the plain rule "alliance total <= 36 at a check-in" finds 0.95 of the rupture episodes at
7.2 false events per 100 client-weeks):

- every client belongs to one of three groups: *ceiling* (answers 40/40 every ordinary week),
  *typical* (a usual total of 38.2-39.7) and *persistently lower* (a usual total of 28-35 with
  nothing wrong);
- each item's answer is 10 minus a count of "points withheld": a Poisson count whose mean is the
  client's usual deficit shared over the items, times a gamma-distributed factor for the week (a
  good or bad week moves every item together; weeks are independent of each other). So answers
  are discrete, skewed away from the top and bounded, and a ceiling client's answers stay at 40;
- a rupture episode (1-3 check-ins, in about half of the clients) takes a fraction `depth` of the
  client's usual total away at its deepest check-in: a stepwise drop (sometimes a partial first
  step, then the deepest point) with a geometric recovery; unrepaired episodes leave a little
  of the drop behind. Confrontation episodes bring tension answers ("yes"/"a little") and
  critical comments, withdrawal episodes missed and abandoned check-ins, flat answers and short
  or resigned comments, silent episodes only the scores;
- benign look-alikes: one-off "a little" tension in ordinary weeks, holiday runs of missed
  check-ins, a personal rate of ordinary misses, life events that pull WHO-5 down for a few
  weeks (and the alliance a little, except for ceiling clients), everyday comments that use
  "listen", "waste", "stop", "point" and the like in other senses;
- WHO-5 every other week (its recall window is two weeks), with life-event dips.

The parameters are set from the literature and the owners' description; the only calibration
(marked "calibrated" below) is of the group mix, the typical level, the week factor, the depth
scale, the withdrawal miss and abandon rates and the lasting share, so that the plain
"total <= 36" rule lands near the owners' figure (0.95 recall, 6.5-8 false events per 100
client-weeks) on seed 1: 0.953 and 7.32 with 3000 clients. Nothing here is shaped to Rapport's
own detectors or triage (which were not read to write it).

Not matched: Safran, Muran & Eubanks-Carter (2011) report tension or a breakdown in 19-42% of
sessions on post-session questionnaires, which count minor tensions; with about half of the
clients having 1-3 episodes of 1-3 check-ins, about 7% of the check-ins here lie inside an
episode, and "a little" tension is answered in about 2.5% of the others.

Labels (client, first and last check-in index, kind, depth) use bench.synthetic's dataclasses,
so bench/tier_quality.py and the CSV backtest read this cohort like the others. `depth` is the
share of the client's usual total lost at the deepest check-in (0.04-0.6). A client counts as
at the ceiling when at least half of its completed check-ins outside episodes total 40.

Run: python -m bench.cohort_matched --clients 50 > sample.csv   (the backtest CSV format)
Run: python -m bench.tier_quality --cohort matched --clients 3000 --seed 13
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from alliance.history import CheckinRecord, Status
from bench.synthetic import (
    ALLIANCE_ITEMS,
    START,
    WHO5_ITEMS,
    Cohort,
    Episode,
    SyntheticClient,
    _pick,
    to_csv,
)

GROUPS = ("ceiling", "typical", "lower")
KINDS = ("confrontation", "withdrawal", "silent")

# --- comments (written for this generator; not the lists of the other two) -------------------

# Confrontation: criticism of the therapist or the therapy, said outright or softened.
CRITICAL = (
    "I felt you weren't really listening to me today.",
    "We keep doing the same worksheet and it isn't helping.",
    "I didn't like being told what I 'really' feel.",
    "To be honest the session felt like a waste of my time.",
    "You cut me off when I was finally getting to the point.",
    "I'm not sure you understand why I came to therapy.",
    "I'm starting to wonder if I should stop coming.",
    "It annoyed me that we started late again.",
    "The advice felt generic, like from a leaflet.",
    "I felt judged when I mentioned the drinking.",
    "I'd rather talk about what I bring than follow the plan.",
    "Maybe it's me, but today felt a bit off between us.",
    "I left feeling worse and a bit misunderstood.",
    "I don't think this method suits me.",
)
# Withdrawal: short, flat or resigned.
RESIGNED = (
    "ok",
    "fine",
    ".",
    "nothing",
    "n/a",
    "same",
    "meh",
    "don't know",
    "nothing to add",
    "not really",
    "doesn't matter much",
    "I suppose it's fine",
    "not sure there's any point",
    "whatever works",
)
# Everyday comments, many with marker-like words in another sense.
HARMLESS = (
    "My boss never listens, so it was good to be heard.",
    "I don't want to waste the weekend worrying again.",
    "I want to stop checking my phone at night.",
    "Good session, thank you.",
    "Helpful to plan for the family visit.",
    "My mum doesn't listen either, we talked about that.",
    "Tried the breathing thing before the meeting, it worked.",
    "I'm tired, long week at work.",
    "Work meetings are a waste of time, but that's another story.",
    "No point worrying about the exam now, it's done.",
    "I stopped smoking on Monday!",
    "Quiet week, nothing much to report.",
    "It was hard to talk about, but useful.",
    "Running late today, sorry for the short answer.",
    "My partner says I should stop apologising so much.",
    "Looking forward to next week.",
    "Whatever the result, I'm proud I went to the interview.",
    "Kids were ill, so not much sleep.",
    "I felt listened to.",
    "Not a waste at all, I needed that.",
)
RISK = ("I keep thinking everyone would be better off without me.",)


@dataclass(frozen=True)
class MatchedParams:
    """Knobs of the matched model, each with the reason for its value."""

    weeks: int = 20  # the held-out cohort: 20 weekly check-ins per client
    # Client groups (calibrated on seed 1 to the "total <= 36" figure, within the literature):
    groups: tuple[tuple[str, float], ...] = (
        ("ceiling", 0.45),  # ACORN ~54% at the maximum on every item; owners: "many"
        ("typical", 0.49),  # the rest of the ordinary clients, just below the top
        ("lower", 0.06),  # owners' "persistently lower scorers"; share set by the calibration
    )
    typical_deficit: tuple[float, float] = (0.3, 1.8)  # usual total 38.2-39.7 (calibrated: the
    # Poisson spread alone takes a usual 37 to <= 36 a third of the time)
    lower_total: tuple[float, float] = (28.0, 35.0)  # the owners' example of lower scorers
    week_cv: tuple[float, float] = (0.15, 0.4)  # week factor's spread: good and bad weeks
    # (calibrated; on top of the Poisson count's own spread)
    item_spread: float = 0.3  # items differ a little in how much each client withholds
    # Ruptures:
    rupture_share: float = 0.5  # Stevens et al. 2007: 50%; McLaughlin et al. 2014: 46%
    counts: tuple[float, float, float] = (0.6, 0.3, 0.1)  # 1, 2, 3 episodes among those clients
    lengths: tuple[int, ...] = (1, 1, 2, 2, 3)  # owners: episodes last 1-3 check-ins, mostly short
    gap: int = 2  # ordinary check-ins at least between two episodes (a repair, then a new one)
    kinds: tuple[tuple[str, float], ...] = (
        ("confrontation", 0.3),  # 3RS: moving against the therapist
        ("withdrawal", 0.45),  # 3RS: moving away; coded more often than confrontation
        ("silent", 0.25),  # felt, not said: shows only in the ratings
    )
    depth_median: float = 0.27  # share of the usual total lost at the deepest check-in
    # (calibrated: the owners' rule sees 0.95 of episodes, so most drops reach 4+ points at 40)
    depth_sigma: float = 0.35  # lognormal spread: from a few points to a collapse
    depth_range: tuple[float, float] = (0.04, 0.6)  # a rupture never takes everything
    partial_onset: float = 0.35  # of longer episodes, share that start with a partial step
    onset_step: float = 0.55  # that first step's share of the full drop
    recovery: tuple[float, float] = (0.3, 0.6)  # share of the drop left one check-in later
    repaired_share: float = 0.75  # most ruptures are resolved within a few sessions
    lasting: float = 0.15  # an unrepaired episode leaves this share of the drop (calibrated)
    # Episode markers:
    tension_inside: tuple[tuple[str, float, float], ...] = (
        ("confrontation", 0.40, 0.35),  # (kind, P(yes), P(a little)) per check-in
        ("withdrawal", 0.03, 0.10),  # withdrawing clients rarely name the tension
        ("silent", 0.0, 0.0),  # scores only
    )
    critical_in_confrontation: float = 0.45  # a critical comment, per completed check-in
    missed_in_withdrawal: tuple[float, float] = (0.05, 0.3)  # P(missed) at the first check-in,
    # then at later ones: withdrawal deepens, from flat answers to not answering (calibrated)
    abandoned_in_withdrawal: float = 0.03  # started and left: twice the ordinary rate (calibrated)
    flat_in_withdrawal: float = 0.30  # the same value on every item (low-effort answering)
    resigned_in_withdrawal: float = 0.35  # a short or resigned comment, per completed check-in
    # Benign look-alikes:
    benign_little: float = 0.025  # a one-off "a little" tension in an ordinary week (2-3%)
    benign_yes: float = 0.003  # "yes" outside any episode: rare (a scheduling mix-up)
    miss_rate: tuple[float, float] = (0.0, 0.08)  # most clients miss a few check-ins
    heavy_missers: float = 0.07  # a few miss a lot
    heavy_rate: tuple[float, float] = (0.15, 0.3)  # their miss rate: one check-in in 3-7
    abandoned_rate: float = 0.015  # interrupted mid check-in
    holidays: tuple[float, float, float] = (0.5, 0.35, 0.15)  # P(0, 1, 2 holidays) in 20 weeks;
    # a holiday never falls on an episode: no session, so no rupture to report
    holiday_weeks: tuple[int, int] = (1, 3)  # a holiday is 1-3 missed check-ins in a row
    silent_commenters: float = 0.35  # clients who never write an everyday comment
    comment_rate: tuple[float, float] = (0.05, 0.4)  # the others, per completed check-in
    risk_rate: float = 0.001  # rare in alliance check-ins, but the stream is never risk-free
    # Wellbeing (WHO-5, raw 0-25) and life events:
    who5_every: int = 2  # WHO-5 asks about the last two weeks
    who5_mean: float = 12.0  # clients in therapy often start near the cutoff of 13
    who5_sd: float = 4.5  # spread between clients
    who5_rise: tuple[float, float] = (-1.0, 5.0)  # wellbeing tends to improve over therapy
    who5_item_sd: float = 0.6  # item noise, item points (0-5)
    life_events: float = 0.5  # mean count per client over 20 weeks (Poisson)
    life_weeks: tuple[int, int] = (2, 5)  # a dip lasts a few weeks, easing off
    life_dip: tuple[float, float] = (4.0, 10.0)  # raw WHO-5 points at the worst
    life_alliance: tuple[float, float] = (0.0, 1.5)  # alliance points withheld at the worst
    life_missed: float = 0.08  # extra miss probability while it lasts


@dataclass
class _Plan:
    first: int
    length: int
    kind: str
    depth: float
    repaired: bool


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    count, threshold, product = 0, math.exp(-mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _index(rng: random.Random, shares: Sequence[float]) -> int:
    roll, acc = rng.random(), 0.0
    for n, share in enumerate(shares):
        acc += share
        if roll < acc:
            return n
    return len(shares) - 1


def _clip(value: float, top: int) -> int:
    return min(top, max(0, round(value)))


def _depth(rng: random.Random, p: MatchedParams) -> float:
    low, high = p.depth_range
    return min(high, max(low, p.depth_median * math.exp(rng.gauss(0, p.depth_sigma))))


def depth_split(p: MatchedParams | None = None) -> tuple[float, float]:
    """The 30th and 70th percentiles of the depth draw: shallow / moderate / deep in 3:4:3."""
    p = p or MatchedParams()
    z = 0.5244  # standard normal 70th percentile
    return (
        p.depth_median * math.exp(-z * p.depth_sigma),
        p.depth_median * math.exp(z * p.depth_sigma),
    )


def _plans(rng: random.Random, p: MatchedParams) -> list[_Plan]:
    if rng.random() >= p.rupture_share:
        return []
    count = _index(rng, p.counts) + 1
    taken: set[int] = set()
    plans: list[_Plan] = []
    for _ in range(count):
        for _attempt in range(30):
            length = rng.choice(p.lengths)
            first = rng.randint(1, p.weeks - length)
            span = set(range(first - p.gap, first + length + p.gap))
            if not span & taken:
                taken |= span
                kind = _pick(rng, p.kinds)
                repaired = rng.random() < p.repaired_share
                plans.append(_Plan(first, length, kind, _depth(rng, p), repaired))
                break
    plans.sort(key=lambda plan: plan.first)
    return plans


def _shape(rng: random.Random, length: int, p: MatchedParams) -> list[float]:
    """Share of the full drop at each check-in of an episode: a step down, then recovery."""
    shares: list[float] = []
    peak = 1 if length >= 2 and rng.random() < p.partial_onset else 0
    left = 1.0
    for k in range(length):
        if k < peak:
            shares.append(p.onset_step)
        elif k == peak:
            shares.append(1.0)
        else:
            left *= rng.uniform(*p.recovery)
            shares.append(left)
    return shares


def _client(
    index: int, rng: random.Random, p: MatchedParams
) -> tuple[SyntheticClient, list[Episode], str]:
    cid = f"m{index:05d}"
    weeks = p.weeks
    group = _pick(rng, p.groups)
    if group == "ceiling":
        usual_deficit = 0.0
    elif group == "typical":
        usual_deficit = rng.uniform(*p.typical_deficit)
    else:
        usual_deficit = 40 - rng.uniform(*p.lower_total)
    usual_total = 40 - usual_deficit
    cv = rng.uniform(*p.week_cv)
    raw_weights = [math.exp(rng.gauss(0, p.item_spread)) for _ in ALLIANCE_ITEMS]
    weights = [w / sum(raw_weights) for w in raw_weights]  # the usual deficit over the items

    # Extra alliance points withheld per week: ruptures, what they leave, life events.
    extra = [0.0] * weeks
    kind_at: list[str | None] = [None] * weeks
    plans = _plans(rng, p)
    for plan in plans:
        drop = plan.depth * usual_total
        for k, share in enumerate(_shape(rng, plan.length, p)):
            extra[plan.first + k] += drop * share
            kind_at[plan.first + k] = plan.kind
        if not plan.repaired:
            for week in range(plan.first + plan.length, weeks):
                extra[week] += drop * p.lasting
    # A rupture concentrates on one or two items (the bond, or the tasks), as it tends to.
    focus = set(rng.sample(range(len(ALLIANCE_ITEMS)), rng.choice((1, 2))))
    rupture_weights = [
        (0.6 / len(focus) if i in focus else 0.4 / (len(ALLIANCE_ITEMS) - len(focus)))
        for i in range(len(ALLIANCE_ITEMS))
    ]

    life = [0.0] * weeks  # share of the worst of a life event, per week
    life_dip = rng.uniform(*p.life_dip)
    life_pull = 0.0 if group == "ceiling" else rng.uniform(*p.life_alliance)
    for _ in range(_poisson(rng, p.life_events)):
        start, length = rng.randrange(weeks), rng.randint(*p.life_weeks)
        for k in range(length):
            if start + k < weeks:
                life[start + k] = max(life[start + k], 1 - k / (length + 1))

    # Missed check-ins: a personal rate, holidays, life events.
    heavy = rng.random() < p.heavy_missers
    miss_rate = rng.uniform(*(p.heavy_rate if heavy else p.miss_rate))
    holiday: set[int] = set()
    for _ in range(_index(rng, p.holidays)):
        length = rng.randint(*p.holiday_weeks)
        for _attempt in range(10):  # no session on holiday, so no rupture there
            start = rng.randint(1, weeks - length)
            if all(kind_at[week] is None for week in range(start, start + length)):
                holiday.update(range(start, start + length))
                break
    comment_rate = 0.0 if rng.random() < p.silent_commenters else rng.uniform(*p.comment_rate)
    inside_tension = {kind: (yes, little) for kind, yes, little in p.tension_inside}
    who5_level = min(24.0, max(1.0, rng.gauss(p.who5_mean, p.who5_sd)))
    who5_rise = rng.uniform(*p.who5_rise)

    records: list[CheckinRecord] = []
    for week in range(weeks):
        due = START + timedelta(weeks=week, minutes=index)
        kind = kind_at[week]
        onset = kind is not None and (week == 0 or kind_at[week - 1] != kind)
        rate = miss_rate + (p.life_missed if life[week] > 0 else 0.0)
        missed = (
            week in holiday
            or (kind == "withdrawal" and rng.random() < p.missed_in_withdrawal[0 if onset else 1])
            or (kind is None and rng.random() < rate)
        )
        if missed:
            records.append(CheckinRecord(f"{cid}-{week:03d}", due, Status.MISSED))
            continue
        abandoned = rng.random() < (
            p.abandoned_in_withdrawal if kind == "withdrawal" else p.abandoned_rate
        )

        factor = rng.gammavariate(1 / cv**2, cv**2) if usual_deficit else 0.0
        ordinary = usual_deficit * factor + life_pull * life[week]
        values = []
        for i in range(len(ALLIANCE_ITEMS)):
            spread = weights[i] if usual_deficit else 0.25
            mean = ordinary * spread + extra[week] * rupture_weights[i]
            values.append(_clip(10 - _poisson(rng, mean), 10))
        if kind == "withdrawal" and rng.random() < p.flat_in_withdrawal:
            values = [math.floor(sum(values) / len(values))] * len(values)
        answers: dict[tuple[str, str], int] = {
            ("alliance", item): v for item, v in zip(ALLIANCE_ITEMS, values, strict=True)
        }
        yes, little = inside_tension.get(kind or "", (p.benign_yes, p.benign_little))
        roll = rng.random()
        answers[("alliance", "tension")] = 2 if roll < yes else 1 if roll < yes + little else 0
        if week % p.who5_every == 0:
            level = who5_level + who5_rise * week / (weeks - 1) - life_dip * life[week]
            for item in WHO5_ITEMS:
                answers[("who5", item)] = _clip(rng.gauss(max(0.0, level) / 5, p.who5_item_sd), 5)

        comment: str | None = None
        if kind == "confrontation" and rng.random() < p.critical_in_confrontation:
            comment = rng.choice(CRITICAL)
        elif kind == "withdrawal" and rng.random() < p.resigned_in_withdrawal:
            comment = rng.choice(RESIGNED)
        elif rng.random() < p.risk_rate:
            comment = rng.choice(RISK)
        elif rng.random() < comment_rate:
            comment = rng.choice(HARMLESS)

        status = Status.COMPLETED
        if abandoned:
            status = Status.ABANDONED
            keep = rng.randint(1, len(ALLIANCE_ITEMS) - 1)
            answers = dict(list(answers.items())[:keep])
            comment = None
        records.append(CheckinRecord(f"{cid}-{week:03d}", due, status, answers, comment))

    episodes = [
        Episode(
            cid,
            plan.first,
            plan.first + plan.length - 1,
            plan.kind,
            round(plan.depth, 3),
            plan.repaired,
        )
        for plan in plans
    ]
    inside = {i for e in episodes for i in range(e.first, e.last + 1)}
    totals = [
        sum(r.answers[("alliance", item)] for item in ALLIANCE_ITEMS)
        for i, r in enumerate(records)
        if r.status is Status.COMPLETED and i not in inside
    ]
    ceiling = bool(totals) and sum(t == 40 for t in totals) >= len(totals) / 2
    return SyntheticClient(cid, ceiling, tuple(records)), episodes, group


def generate_grouped(
    clients: int = 300, seed: int = 13, params: MatchedParams | None = None
) -> tuple[Cohort, dict[str, str]]:
    """The cohort of `generate` and each client's group (ceiling, typical, lower)."""
    p = params or MatchedParams()
    rng = random.Random(seed)
    made: list[SyntheticClient] = []
    episodes: list[Episode] = []
    groups: dict[str, str] = {}
    for index in range(clients):
        client, found, group = _client(index, random.Random(rng.getrandbits(64)), p)
        made.append(client)
        episodes.extend(found)
        groups[client.id] = group
    return Cohort(tuple(made), tuple(episodes)), groups


def generate(clients: int = 300, seed: int = 13, params: MatchedParams | None = None) -> Cohort:
    """A cohort of `clients` clients x 20 check-ins; the same seed gives the same cohort."""
    return generate_grouped(clients, seed, params)[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    sys.stdout.write(to_csv(generate(args.clients, args.seed)))


if __name__ == "__main__":
    main()
