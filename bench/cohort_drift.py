"""A second synthetic cohort, from a different client model than bench/synthetic.py (seeded).

bench/synthetic.py gives each client a fixed level plus independent normal noise, which is what
`alliance_drop` assumes. This generator breaks that assumption on purpose, so that settings
tuned on one cohort can be checked on the other:

- a latent alliance per client, on the 0-10 item scale, that drifts: a random walk with a slow
  trend and occasional level shifts, plus AR(1) autocorrelated week-to-week noise;
- answers made from the latent level item by item through a response style: *always-10*
  (10 on everything unless the latent falls a lot), *acquiescent* (shifted up, compressed),
  *extreme* (pushed to the ends), *mid-point* (clustered at 5-7) and *ordinary*;
- rupture episodes of 1-4 check-ins, V-shaped on the latent scale and then filtered through
  the style (an always-10 client may show a deep rupture as a one-point dip, or not at all):
  confrontation (tension, critical or hedged comments), withdrawal (missed and abandoned
  check-ins, flat answers, minimal comments, sometimes dropout) and silent (scores only);
- benign look-alikes: harmless "a little" tension in ordinary weeks, one-week dips of the
  latent level, life events that pull WHO-5 down (and the alliance a little), holidays of 1-3
  weeks, clustered misses, clients who miss a lot, fewer answers late in therapy, everyday
  comments with marker words in another sense, negated markers, criticism of other people;
- WHO-5 every other week, with its own drift and life-event dips.

Labels (client, first and last check-in index, kind, depth) use bench.synthetic's dataclasses,
so bench/tier_quality.py and the CSV backtest read both cohorts alike. A client counts as at the
ceiling when at least half of its completed check-ins outside episodes total 40.

Run `python -m bench.cohort_drift --clients 50 > sample.csv` to write the backtest CSV format.
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

STYLES = ("always10", "acquiescent", "extreme", "midpoint", "ordinary")
KINDS = ("confrontation", "withdrawal", "silent")

# --- comments (written for this generator; not the lists of bench/synthetic.py) -------------

# Direct criticism of the therapist or the therapy, or wanting to stop.
CRITICISM = (
    "You talked over me again and I lost my train of thought.",
    "I came in upset and we spent the hour on paperwork. Not great.",
    "It felt like you had already decided what my problem was.",
    "Honestly I don't see what these sessions are doing for me.",
    "You didn't listen when I said the exercise made things worse.",
    "I'm thinking of taking a break from therapy.",
    "The last two sessions were a waste of time for me.",
    "I felt like a case, not a person.",
    "Please stop telling me to journal, it doesn't work for me.",
    "I left angry and I'm still angry.",
    "Why do we always end up talking about my mother?",
    "I don't feel you take my anxiety seriously.",
    "I want to find someone else to work with.",
    "You seemed distracted the whole time.",
)
# Hedged complaints: the complaint is there, softened.
HEDGED = (
    "Maybe it's me, but I felt a bit brushed off.",
    "Not sure we're on the same page about what I need.",
    "I guess I expected more from the session.",
    "It was ok I suppose, though the homework felt a bit pointless.",
    "Hard to say, I didn't really feel understood today.",
    "Kind of lost track of why we're doing this.",
    "I don't want to complain but it felt rushed.",
    "It's probably fine, I just wasn't sure where we were going.",
)
# Withdrawal: minimal, resigned, deferring.
WITHDRAWN = (
    "fine",
    "ok",
    "-",
    "idk",
    "nothing",
    "no comment",
    "same as last week",
    "whatever you think",
    "doesn't really matter",
    "not in the mood to write",
    "nothing to say really",
    "it is what it is",
    "I'll just go along with it.",
)
# Everyday text, including marker words in another sense, negations and criticism of others.
BENIGN = (
    "Thanks, good to talk it through.",
    "The grounding exercise worked on the train.",
    "Slept badly, otherwise ok.",
    "Busy week with the kids.",
    "We made a plan for the exam, feeling better about it.",
    "Still thinking about what you said about boundaries.",
    "My manager didn't listen to a word I said in the review.",
    "My partner keeps interrupting me, we talked about that.",
    "The bus was late so I felt rushed getting there.",
    "I'm not thinking of stopping, just tired this week.",
    "It wasn't a waste of time at all.",
    "My sister thinks therapy is pointless but I don't.",
    "Whatever happens at work I feel steadier.",
    "Doctors never listen to me, but you do.",
    "Nothing new, a quiet week.",
    "Gave up caffeine, day 5!",
    "I want to stop procrastinating, that's the goal.",
    "The waiting room was cold.",
    "Good session, a lot to think about.",
    "My dad is a waste of space, sorry, had to say it.",
    "Hard one today but useful.",
    "Looking forward to the next one.",
    "No point going into the details here, we'll talk Thursday.",
    "Can't complain.",
)
RISK = ("Last night I thought about ending my life.", "I hurt myself again on Sunday.")


@dataclass(frozen=True)
class DriftParams:
    """Knobs of the drift model; each with the reason for its value."""

    weeks_min: int = 10  # brief-to-medium therapies seen weekly; short enough to vary lengths
    weeks_max: int = 30  # and long enough for the late-therapy thinning to show
    # Response styles: always-10 plus acquiescent make the ceiling share near ACORN's 54%.
    styles: tuple[tuple[str, float], ...] = (
        ("always10", 0.34),
        ("acquiescent", 0.16),
        ("extreme", 0.08),
        ("midpoint", 0.10),
        ("ordinary", 0.32),
    )
    latent_mean: float = 8.3  # item scale: ordinary totals around 33, as SRS-like totals in the 30s
    latent_sd: float = 0.8  # spread of clients' starting levels
    walk_sd: float = 0.10  # weekly random-walk step of the baseline: slow drift, not noise
    trend_max: float = 0.03  # up to ~0.8 item points of rise over 25 weeks (alliance grows)
    shift_rate: float = 0.02  # a level shift every ~50 weeks (a new topic, a new life phase)
    shift_sd: float = 0.5  # size of a level shift, item points
    phi_min: float = 0.3  # AR(1) autocorrelation of the weekly noise: a good or bad stretch
    phi_max: float = 0.6  # carries over to the next week, as in repeated self-report
    noise_min: float = 0.2  # stationary SD of the latent weekly noise, item points
    noise_max: float = 0.6
    item_sd: float = 0.4  # item-specific noise on top of the latent level, per item and week
    always10_slack: tuple[float, float] = (0.8, 1.8)  # latent fall an always-10 client absorbs
    acquiescent_gain: float = 0.5  # compression toward the top
    acquiescent_shift: float = 0.4  # and a shift up: mostly 9s and 10s
    extreme_gain: float = 2.2  # stretch away from the middle, clipped at 0 and 10
    midpoint_gain: float = 0.5  # compression around 6 (answers 5-7)
    rupture_share: float = 0.5  # Stevens et al. 2007: 50%; McLaughlin et al. 2014: 46%
    second_rupture: float = 0.3  # of those with >= 14 weeks, share with a second episode
    kinds: tuple[tuple[str, float], ...] = (
        ("confrontation", 0.35),  # 3RS: moving against
        ("withdrawal", 0.35),  # 3RS: moving away
        ("silent", 0.30),  # seen only in the scores
    )
    lengths: tuple[int, ...] = (1, 1, 2, 2, 3, 4)  # check-ins per episode, mostly short
    # Depth on the latent item scale: shallow, moderate, deep in about 3:4:3.
    depths: tuple[tuple[float, float, float], ...] = (
        (0.3, 0.5, 1.0),
        (0.4, 1.0, 2.0),
        (0.3, 2.0, 4.0),
    )
    repaired_share: float = 0.7  # most ruptures in completed therapies are repaired
    lasting_share: float = 0.4  # an unrepaired rupture leaves the level this much lower
    dropout_if_unrepaired: float = 0.3  # unrepaired ruptures predict dropout
    tension_little: float = 0.12  # mean share of ordinary weeks with harmless "a little"
    tension_yes: float = 0.004  # "yes" outside any episode: rare
    tension_inside: tuple[tuple[str, float, float], ...] = (
        ("confrontation", 0.35, 0.30),  # (kind, P(yes), P(a little)) inside an episode
        ("withdrawal", 0.08, 0.22),
        ("silent", 0.02, 0.15),
    )
    critical_in_confrontation: float = 0.40  # a critical or hedged comment, per check-in
    hedged_share: float = 0.4  # of those, softened complaints
    minimal_in_withdrawal: float = 0.35  # a minimal or resigned comment, per check-in
    missed_in_withdrawal: float = 0.30  # per episode check-in
    abandoned_in_withdrawal: float = 0.15
    flat_in_withdrawal: float = 0.3  # the same value on every item
    silent_commenters: float = 0.4  # clients who never write a benign comment
    comment_rate_max: float = 0.5  # others comment on up to half of their check-ins
    risk_comment_rate: float = 0.002
    benign_dip_rate: float = 0.03  # weekly chance of a one-week latent dip (a bad day)
    benign_dip: tuple[float, float] = (0.4, 1.0)  # its size, item points
    missed_base: tuple[float, float] = (0.01, 0.07)  # most clients miss a few
    heavy_missers: float = 0.08  # a few clients miss a lot
    heavy_missed: tuple[float, float] = (0.15, 0.35)
    clustered: float = 3.0  # a miss makes the next one this many times likelier
    abandoned_rate: float = 0.02
    holidays: tuple[float, float, float] = (0.45, 0.40, 0.15)  # P(0, 1, 2 holidays)
    late_thinning: float = 0.10  # extra miss probability by the end of therapy
    who5_mean: float = 13.0  # raw; clients in therapy often start near the cutoff
    who5_sd: float = 4.0
    who5_walk_sd: float = 0.8  # raw points per WHO-5 (every other week)
    who5_item_sd: float = 0.6
    life_events: float = 0.6  # mean count per client (Poisson)
    life_event_dip: tuple[float, float] = (4.0, 10.0)  # raw WHO-5 points
    life_event_alliance: float = 0.3  # at most this much latent alliance dip during one
    life_event_missed: float = 0.08  # extra miss probability during one


@dataclass
class _Plan:
    first: int
    length: int
    kind: str
    depth: float
    repaired: bool
    dropout: bool


def _depth(rng: random.Random, p: DriftParams) -> float:
    roll, acc = rng.random(), 0.0
    for share, low, high in p.depths:
        acc += share
        if roll < acc:
            return rng.uniform(low, high)
    return rng.uniform(p.depths[-1][1], p.depths[-1][2])


def _respond(style: str, x: float, ref: float, slack: float, p: DriftParams) -> float:
    """One item's answer (before rounding) from its latent value `x` through a response style;
    `ref` is the client's starting latent level."""
    if style == "always10":
        return 10 - max(0.0, ref - slack - x)
    if style == "acquiescent":
        return 10 - (10 - x) * p.acquiescent_gain + p.acquiescent_shift
    if style == "extreme":
        return 5 + (x - 5) * p.extreme_gain
    if style == "midpoint":
        return 6 + (x - ref) * p.midpoint_gain
    return x


def _clip(value: float, top: int) -> int:
    return min(top, max(0, round(value)))


def _plans(rng: random.Random, weeks: int, p: DriftParams) -> list[_Plan]:
    if rng.random() >= p.rupture_share or weeks < 5:
        return []
    count = 2 if weeks >= 14 and rng.random() < p.second_rupture else 1
    taken: set[int] = set()
    plans = []
    for _ in range(count):
        for _attempt in range(20):
            first = rng.randint(1, weeks - 2)
            length = min(rng.choice(p.lengths), weeks - first)
            span = set(range(first - 2, first + length + 2))
            if not span & taken:
                taken |= span
                kind = _pick(rng, p.kinds)
                repaired = rng.random() < p.repaired_share
                dropout = not repaired and rng.random() < p.dropout_if_unrepaired
                plans.append(_Plan(first, length, kind, _depth(rng, p), repaired, dropout))
                break
    plans.sort(key=lambda plan: plan.first)
    return plans


def _client(
    index: int, rng: random.Random, p: DriftParams
) -> tuple[SyntheticClient, list[Episode], str]:
    cid = f"d{index:05d}"
    weeks = rng.randint(p.weeks_min, p.weeks_max)
    style = _pick(rng, p.styles)
    ref = min(9.6, max(5.0, rng.gauss(p.latent_mean, p.latent_sd)))
    slack = rng.uniform(*p.always10_slack)
    phi = rng.uniform(p.phi_min, p.phi_max)
    noise = rng.uniform(p.noise_min, p.noise_max)
    trend = rng.uniform(-0.3 * p.trend_max, p.trend_max)
    offsets = [rng.gauss(0, 0.3) for _ in ALLIANCE_ITEMS]
    focus = set(rng.sample(range(len(ALLIANCE_ITEMS)), rng.choice((1, 2, 4))))

    # Benign latent course: drifting baseline plus AR(1) noise.
    base, ar = ref, rng.gauss(0, noise)
    latent: list[float] = []
    for _ in range(weeks):
        latent.append(base + ar)
        base += trend + rng.gauss(0, p.walk_sd)
        if rng.random() < p.shift_rate:
            base += rng.gauss(0, p.shift_sd)
        base = min(10.5, max(2.0, base))
        ar = phi * ar + math.sqrt(1 - phi * phi) * rng.gauss(0, noise)
    for week in range(weeks):
        if rng.random() < p.benign_dip_rate:
            latent[week] -= rng.uniform(*p.benign_dip)

    # Life events: WHO-5 dips (benign for the alliance), a little alliance and more misses.
    life = [0.0] * weeks
    for _ in range(_poisson(rng, p.life_events)):
        start, length = rng.randrange(weeks), rng.randint(2, 6)
        dip = rng.uniform(*p.life_event_dip)
        for k in range(length):
            if start + k < weeks:
                life[start + k] = max(life[start + k], dip * (1 - k / (length + 1)))
    pull = rng.uniform(0, p.life_event_alliance)
    for week in range(weeks):
        latent[week] -= pull * life[week] / 10

    # Ruptures: V-shaped on the latent scale.
    kind_at: list[str | None] = [None] * weeks
    ended = weeks
    episodes: list[tuple[int, int, _Plan]] = []
    for plan in _plans(rng, weeks, p):
        if plan.first >= ended:
            continue
        peak = rng.randint(0, (plan.length - 1) // 2)
        last = min(plan.first + plan.length, ended) - 1
        for k, week in enumerate(range(plan.first, last + 1)):
            share = 1 - abs(k - peak) / plan.length
            if not plan.repaired:
                share = max(share, p.lasting_share)
            latent[week] -= plan.depth * share
            kind_at[week] = plan.kind
        if not plan.repaired:
            for week in range(last + 1, weeks):
                latent[week] -= plan.depth * p.lasting_share
        if plan.dropout:
            stop = min(weeks, last + 1 + rng.randint(0, 1))
            ended = min(weeks, stop + rng.randint(2, 3))  # a few missed, then no more
            for week in range(stop, ended):
                kind_at[week] = "dropout"
            last = max(last, ended - 1)
        episodes.append((plan.first, last, plan))
    weeks = ended

    # Missed check-ins: a personal rate, clustering, holidays, life events, late thinning.
    heavy = rng.random() < p.heavy_missers
    miss_rate = rng.uniform(*(p.heavy_missed if heavy else p.missed_base))
    holiday: set[int] = set()
    for _ in range(_index(rng, p.holidays)):
        start, length = rng.randint(1, max(1, weeks - 2)), rng.randint(1, 3)
        holiday.update(range(start, start + length))
    tension_little = min(0.4, rng.expovariate(1 / p.tension_little))
    comment_rate = (
        0.0 if rng.random() < p.silent_commenters else rng.uniform(0.05, p.comment_rate_max)
    )
    inside_tension = {kind: (yes, little) for kind, yes, little in p.tension_inside}

    who5_base = min(24.0, max(2.0, rng.gauss(p.who5_mean, p.who5_sd)))
    records: list[CheckinRecord] = []
    missed_last = False
    for week in range(weeks):
        due = START + timedelta(weeks=week, minutes=index)
        kind = kind_at[week]
        if week % 2 == 0 and week:
            who5_base = min(25.0, max(0.0, who5_base + rng.gauss(0, p.who5_walk_sd)))
        rate = miss_rate + p.late_thinning * max(0.0, week / weeks - 2 / 3) * 3
        rate += p.life_event_missed if life[week] > 0 else 0.0
        if missed_last:
            rate = min(0.8, rate * p.clustered)
        missed = (
            kind == "dropout"
            or week in holiday
            or (kind == "withdrawal" and rng.random() < p.missed_in_withdrawal)
            or (kind is None and rng.random() < rate)
        )
        missed_last = missed
        if missed:
            records.append(CheckinRecord(f"{cid}-{week:03d}", due, Status.MISSED))
            continue
        abandoned = (kind == "withdrawal" and rng.random() < p.abandoned_in_withdrawal) or (
            kind is None and rng.random() < p.abandoned_rate
        )

        x = latent[week]
        values = []
        for i, offset in enumerate(offsets):
            # A fall below the client's own course concentrates on the focus items.
            extra = (x - ref) * (0.4 if i not in focus and len(focus) < 4 else 0.0)
            item_x = x - extra + offset + rng.gauss(0, p.item_sd)
            if style == "always10":
                item_x = x - extra + rng.gauss(0, p.item_sd / 2)
            values.append(_clip(_respond(style, item_x, ref, slack, p), 10))
        if kind == "withdrawal" and rng.random() < p.flat_in_withdrawal:
            values = [_clip(sum(values) / len(values), 10)] * len(values)
        answers: dict[tuple[str, str], int] = {
            ("alliance", item): v for item, v in zip(ALLIANCE_ITEMS, values, strict=True)
        }
        yes, little = inside_tension.get(kind or "", (p.tension_yes, tension_little))
        roll = rng.random()
        answers[("alliance", "tension")] = 2 if roll < yes else 1 if roll < yes + little else 0
        if week % 2 == 0:
            mean = max(0.0, who5_base - life[week]) / 5
            for item in WHO5_ITEMS:
                answers[("who5", item)] = _clip(rng.gauss(mean, p.who5_item_sd), 5)

        comment: str | None = None
        if kind == "confrontation" and rng.random() < p.critical_in_confrontation:
            comment = rng.choice(HEDGED if rng.random() < p.hedged_share else CRITICISM)
        elif kind == "withdrawal" and rng.random() < p.minimal_in_withdrawal:
            comment = rng.choice(WITHDRAWN)
        elif rng.random() < p.risk_comment_rate:
            comment = rng.choice(RISK)
        elif rng.random() < comment_rate:
            comment = rng.choice(BENIGN)

        status = Status.COMPLETED
        if abandoned:
            status = Status.ABANDONED
            keep = rng.randint(1, len(ALLIANCE_ITEMS) - 1)
            answers = dict(list(answers.items())[:keep])
            comment = None
        records.append(CheckinRecord(f"{cid}-{week:03d}", due, status, answers, comment))

    labelled = [
        Episode(cid, first, last, plan.kind, round(plan.depth, 2), plan.repaired)
        for first, last, plan in episodes
    ]
    inside = {i for e in labelled for i in range(e.first, e.last + 1)}
    totals = [
        sum(r.answers[("alliance", item)] for item in ALLIANCE_ITEMS)
        for i, r in enumerate(records)
        if r.status is Status.COMPLETED and i not in inside
    ]
    ceiling = bool(totals) and sum(t == 40 for t in totals) >= len(totals) / 2
    return SyntheticClient(cid, ceiling, tuple(records)), labelled, style


def _poisson(rng: random.Random, mean: float) -> int:
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


def generate_styled(
    clients: int, seed: int = 11, params: DriftParams | None = None
) -> tuple[Cohort, dict[str, str]]:
    """The cohort of `generate` and each client's response style (for tests and tables)."""
    p = params or DriftParams()
    rng = random.Random(seed)
    made: list[SyntheticClient] = []
    episodes: list[Episode] = []
    styles: dict[str, str] = {}
    for index in range(clients):
        client, found, style = _client(index, random.Random(rng.getrandbits(64)), p)
        made.append(client)
        episodes.extend(found)
        styles[client.id] = style
    return Cohort(tuple(made), tuple(episodes)), styles


def generate(clients: int, seed: int = 11, params: DriftParams | None = None) -> Cohort:
    """A cohort of `clients` trajectories; the same seed gives the same cohort."""
    return generate_styled(clients, seed, params)[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    sys.stdout.write(to_csv(generate(args.clients, args.seed)))


if __name__ == "__main__":
    main()
