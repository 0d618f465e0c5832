"""store.alerts.raise_flags' policy on real databases: after an acknowledgement the same rule
stays quiet for the cooldown unless it gets worse; a pushed urgent alert never waits, other
pushed alerts wait as the policy says, and brief-tier alerts are never pushed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from alliance.detectors import Flag, Severity
from alliance.triage import Decision, Delivery, Why
from store import alerts
from store.alerts import AlertAction, AlertPolicy
from store.db import transaction
from store.models import Alert, AlertState, Client, Therapist
from store.vault import Vault, unseal
from tests.conftest import Database
from tests.factories import NOW, Team, team

COOLDOWN = timedelta(days=7)
WAIT = timedelta(hours=10)
POLICY = AlertPolicy(cooldown=COOLDOWN, defer=lambda now: now + WAIT)


def _decision(
    severity: Severity, rule: str = "alliance_drop", delivery: str = Delivery.PUSH
) -> Decision:
    return Decision(
        Flag(rule, severity, f"{rule} at {severity}"), Delivery(delivery), Why.STRONG_DROP
    )


async def _raise(
    database: Database, vault: Vault, made: Team, decision: Decision, now: datetime
) -> list[Alert]:
    async with transaction(database.sessions) as session:
        client = await session.get(Client, made.client.id)
        assert client is not None
        key = await vault.key(session, client.id)
        return await alerts.raise_flags(session, key, client, None, [decision], now, POLICY)


async def _acknowledge(database: Database, made: Team, now: datetime) -> None:
    async with transaction(database.sessions) as session:
        therapist = await session.get(Therapist, made.therapist.id)
        assert therapist is not None
        acted = await alerts.act(
            session,
            client_id=made.client.id,
            therapist=therapist,
            action=AlertAction.ACKNOWLEDGE,
            now=now,
        )
    assert [a.state for a in acted] == [AlertState.ACKNOWLEDGED]


async def _live(database: Database, made: Team) -> list[Alert]:
    async with database.sessions() as session:
        return list(
            (
                await session.scalars(
                    select(Alert).where(
                        Alert.client_id == made.client.id, Alert.state == AlertState.OPEN
                    )
                )
            ).all()
        )


@pytest.mark.parametrize(
    ("after", "quiet"),
    [
        (timedelta(minutes=1), True),
        (COOLDOWN - timedelta(minutes=1), True),
        (COOLDOWN, False),  # the cooldown is over at its end
        (COOLDOWN + timedelta(minutes=1), False),
    ],
)
async def test_the_same_reading_stays_quiet_for_the_cooldown_only(
    database: Database, vault: Vault, after: timedelta, quiet: bool
) -> None:
    made = await team(database.sessions, vault)
    assert len(await _raise(database, vault, made, _decision(Severity.WARN), NOW)) == 1
    await _acknowledge(database, made, NOW)
    again = await _raise(database, vault, made, _decision(Severity.WARN), NOW + after)
    assert (again == []) is quiet
    assert (await _live(database, made) == []) is quiet


@pytest.mark.parametrize(
    ("severity", "quiet"),
    [(Severity.INFO, True), (Severity.WARN, True), (Severity.HIGH, False)],
)
async def test_within_the_cooldown_only_a_worse_reading_alerts(
    database: Database, vault: Vault, severity: Severity, quiet: bool
) -> None:
    made = await team(database.sessions, vault)
    await _raise(database, vault, made, _decision(Severity.WARN), NOW)
    await _acknowledge(database, made, NOW)
    again = await _raise(database, vault, made, _decision(severity), NOW + timedelta(days=1))
    assert (again == []) is quiet
    if not quiet:
        [alert] = await _live(database, made)
        assert alert.severity == severity


async def test_a_risk_is_never_cooled_down(database: Database, vault: Vault) -> None:
    """The client who answers or writes a risk is told their therapist hears of it: after an
    acknowledged risk, the next one alerts again."""
    made = await team(database.sessions, vault)
    risk = _decision(Severity.URGENT, rule="risk")
    await _raise(database, vault, made, risk, NOW)
    await _acknowledge(database, made, NOW)
    assert len(await _raise(database, vault, made, risk, NOW + timedelta(hours=1))) == 1


async def test_a_second_risk_while_the_first_is_open_is_pushed_again(
    database: Database, vault: Vault
) -> None:
    """Two risk messages outside a check-in before the therapist acknowledges the first: the
    one open alert is due again with the latest reading, not kept quiet as 'the same'."""
    made = await team(database.sessions, vault)
    first = Decision(Flag("risk", Severity.URGENT, "first message"), Delivery.PUSH, Why.RISK)
    second = Decision(Flag("risk", Severity.URGENT, "second message"), Delivery.PUSH, Why.RISK)
    assert len(await _raise(database, vault, made, first, NOW)) == 1
    later = NOW + timedelta(minutes=5)
    [again] = await _raise(database, vault, made, second, later)
    [alert] = await _live(database, made)
    assert alert.id == again.id
    assert alert.next_delivery_at == later
    async with database.sessions() as session:
        key = await vault.key(session, made.client.id)
    assert unseal(key, alert, "reason_enc") == "second message"
    assert len(await _raise(database, vault, made, first, later)) == 1


async def test_the_cooldown_is_per_rule(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    await _raise(database, vault, made, _decision(Severity.WARN), NOW)
    await _acknowledge(database, made, NOW)
    other = _decision(Severity.WARN, rule="low_alliance")
    assert len(await _raise(database, vault, made, other, NOW + timedelta(days=1))) == 1


@pytest.mark.parametrize(
    ("decision", "due_after"),
    [
        (_decision(Severity.URGENT, rule="risk"), timedelta()),  # never waits
        (_decision(Severity.HIGH), WAIT),  # waits as the policy says (quiet hours, digest)
        (_decision(Severity.WARN), WAIT),
    ],
    ids=["urgent", "high", "warn"],
)
async def test_a_pushed_urgent_alert_is_due_at_once_others_wait(
    database: Database, vault: Vault, decision: Decision, due_after: timedelta
) -> None:
    made = await team(database.sessions, vault)
    [raised] = await _raise(database, vault, made, decision, NOW)
    [alert] = await _live(database, made)
    assert alert.id == raised.id and alert.delivery == Delivery.PUSH
    assert alert.next_delivery_at is not None
    assert alert.next_delivery_at.replace(tzinfo=NOW.tzinfo) == NOW + due_after


async def test_a_brief_alert_is_never_pushed(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    brief = _decision(Severity.URGENT, rule="risk", delivery=Delivery.BRIEF)
    assert await _raise(database, vault, made, brief, NOW) == []
    [alert] = await _live(database, made)
    assert alert.delivery == Delivery.BRIEF and alert.next_delivery_at is None
