"""bench/cohort_matched.py: deterministic, well-formed, and calibrated to the held-out figure."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from itertools import pairwise

import pytest

from alliance.history import Status
from bench import cohort_matched
from bench.synthetic import ALLIANCE_ITEMS, Cohort, to_csv


@pytest.fixture(scope="module")
def seed1() -> Cohort:
    return cohort_matched.generate(3000, seed=1)


def _total(answers: Mapping[tuple[str, str], int]) -> int:
    return sum(answers[("alliance", item)] for item in ALLIANCE_ITEMS)


def test_same_seed_same_cohort() -> None:
    one = cohort_matched.generate(40, seed=3)
    assert to_csv(one) == to_csv(cohort_matched.generate(40, seed=3))
    assert one.episodes == cohort_matched.generate(40, seed=3).episodes
    assert to_csv(one) != to_csv(cohort_matched.generate(40, seed=4))


def test_shape(seed1: Cohort) -> None:
    assert len(seed1.clients) == 3000
    assert all(len(client.records) == 20 for client in seed1.clients)
    assert len(cohort_matched.generate(300, seed=13).clients) == 300
    assert len({client.id for client in seed1.clients}) == 3000


def test_episodes_within_history_and_apart(seed1: Cohort) -> None:
    lengths = {client.id: len(client.records) for client in seed1.clients}
    by_client = defaultdict(list)
    for episode in seed1.episodes:
        assert 0 <= episode.first <= episode.last < lengths[episode.client]
        assert episode.last - episode.first + 1 <= 3
        assert episode.kind in cohort_matched.KINDS
        by_client[episode.client].append(episode)
    for episodes in by_client.values():
        episodes.sort(key=lambda e: e.first)
        for before, after in pairwise(episodes):
            assert before.last < after.first
    # Roughly half of the clients have at least one episode; all three kinds occur.
    assert 0.4 < len(by_client) / len(seed1.clients) < 0.6
    assert set(Counter(e.kind for e in seed1.episodes)) == set(cohort_matched.KINDS)


def test_ceiling_lower_and_who5(seed1: Cohort) -> None:
    ceiling = [client for client in seed1.clients if client.ceiling]
    assert 0.4 < len(ceiling) / len(seed1.clients) < 0.6
    # A ceiling client outside its episodes: 40 every completed week.
    inside = {(e.client, i) for e in seed1.episodes for i in range(e.first, e.last + 1)}
    steady = [
        c
        for c in ceiling
        if all(
            _total(r.answers) == 40
            for i, r in enumerate(c.records)
            if r.status is Status.COMPLETED and (c.id, i) not in inside
        )
    ]
    assert len(steady) > len(ceiling) / 2
    records = [r for c in seed1.clients for r in c.records]
    assert any(r.of("who5") for r in records)
    assert any(r.status is Status.MISSED for r in records)
    assert any(r.status is Status.ABANDONED for r in records)


def test_depth_classes_split_about_3_4_3(seed1: Cohort) -> None:
    moderate, deep = cohort_matched.depth_split()
    shares = Counter(
        "shallow" if e.depth < moderate else "moderate" if e.depth < deep else "deep"
        for e in seed1.episodes
    )
    count = len(seed1.episodes)
    assert abs(shares["shallow"] / count - 0.3) < 0.05
    assert abs(shares["moderate"] / count - 0.4) < 0.05
    assert abs(shares["deep"] / count - 0.3) < 0.05


def test_total_at_or_below_36_matches_the_held_out_figure(seed1: Cohort) -> None:
    """The only calibration: recall near 0.95, 6.5-8 false events per 100 client-weeks."""
    by_client = defaultdict(list)
    for episode in seed1.episodes:
        by_client[episode.client].append(episode)
    found = false = weeks = 0
    for client in seed1.clients:
        episodes = by_client[client.id]
        weeks += len(client.records)
        low = [r.status is Status.COMPLETED and _total(r.answers) <= 36 for r in client.records]
        for index, hit in enumerate(low):
            if hit and not any(e.first <= index <= e.last for e in episodes):
                false += 1
        for e in episodes:
            found += any(low[e.first : e.last + 1])
    recall = found / len(seed1.episodes)
    assert 0.93 <= recall <= 0.97
    assert 6.0 <= 100 * false / weeks <= 8.5
