"""One check-in through the store: claimed, sent, tapped, completed, alerted; and key rotation."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.config import load_instruments
from review import decide as review
from store import alerts, checkins, clients
from store.checkins import TapAction, TapResult
from store.crypto import KeyRing
from store.db import transaction
from store.models import Alert, Answer, CheckIn, CheckInState, Client, ClientStatus
from store.outbox import SendOutcome
from store.vault import Vault, unseal
from tests.conftest import Database
from tests.factories import NOW, tap, team

INSTRUMENTS = load_instruments(None, Path("."))
LEASE = timedelta(minutes=5)
WINDOW = timedelta(hours=24)


async def _queue_and_send(
    database: Database, vault: Vault, client_id: uuid.UUID, *, with_comment: bool = False
) -> CheckIn:
    async with transaction(database.sessions) as session:
        queued = await checkins.queue_now(
            session,
            client_id=client_id,
            instruments=["alliance"],
            now=NOW,
            window=WINDOW,
            with_comment=with_comment,
        )
    async with transaction(database.sessions) as session:
        claimed = await checkins.claim_due(
            session, vault, known=INSTRUMENTS, now=NOW, limit=10, lease=LEASE
        )
    assert [c.checkin_id for c in claimed] == [queued.id]
    assert claimed[0].chat_id == 7001 and claimed[0].step.item.id == "bond"
    async with transaction(database.sessions) as session:
        await checkins.record_send(session, vault, queued.id, SendOutcome.SENT, NOW, message_id=11)
    return queued


async def test_low_alliance_completes_with_one_alert(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queue_and_send(database, vault, made.client.id)
    values = [8, 1, 6, 5, 0]  # bond, goals, approach, overall = 20/40: far below; tension "no"
    results = [await tap(database.sessions, vault, checkin, i, v) for i, v in enumerate(values)]
    assert [r.result for r in results] == [TapResult.NEXT] * 4 + [TapResult.COMPLETED]
    assert len(results[-1].alert_ids) == 1
    async with transaction(database.sessions) as session:
        row = await session.get(CheckIn, checkin.id)
        assert row is not None and row.state == CheckInState.COMPLETED
        assert await checkins.answers_of(session, vault, row) == {
            ("alliance", item): v
            for item, v in zip(
                ["bond", "goals", "approach", "overall", "tension"], values, strict=True
            )
        }
        pending = await alerts.due_for_delivery(session, vault, NOW + timedelta(minutes=2))
    assert [(p.rule, p.therapist_chat_id, p.client_label) for p in pending] == [
        ("low_alliance", 5001, "Client Rosalind")
    ]
    assert "20/40" in pending[0].reason and "'goals' at 1" in pending[0].reason


async def test_high_alliance_raises_nothing(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queue_and_send(database, vault, made.client.id)
    for i, v in enumerate([10, 10, 9, 10, 0]):  # 39/40
        outcome = await tap(database.sessions, vault, checkin, i, v)
    assert outcome.result == TapResult.COMPLETED and outcome.alert_ids == []


async def test_cutoff_edge_is_inclusive(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queue_and_send(database, vault, made.client.id)
    for i, v in enumerate([9, 9, 9, 9, 0]):  # exactly 36: at the cutoff
        outcome = await tap(database.sessions, vault, checkin, i, v)
    assert outcome.alert_ids == []  # a mildly low check-in is not pushed...
    async with database.sessions() as session:
        rows = (await session.scalars(select(Alert))).all()
    # ...it is kept for the brief before the next session
    assert [(a.rule, a.delivery, a.next_delivery_at) for a in rows] == [
        ("low_alliance", "brief", None)
    ]


async def test_double_tap_stale_and_forged_taps_change_nothing(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queue_and_send(database, vault, made.client.id)
    assert (await tap(database.sessions, vault, checkin, 0, 7)).result == TapResult.NEXT
    repeat = await tap(
        database.sessions, vault, checkin, 0, 2
    )  # the same button row, pressed again
    assert repeat.result == TapResult.REPEATED and repeat.step is not None
    assert repeat.step.item.id == "goals"
    assert (await tap(database.sessions, vault, checkin, 1, 11)).result == TapResult.REFUSED
    assert (
        await tap(database.sessions, vault, checkin, 1, 5, user=666)
    ).result == TapResult.REFUSED
    async with transaction(database.sessions) as session:
        row = await session.get(CheckIn, checkin.id)
        assert row is not None
        assert row.position == 1
        assert await checkins.answers_of(session, vault, row) == {("alliance", "bond"): 7}


async def test_expired_checkin_is_missed_and_closed_to_taps(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queue_and_send(database, vault, made.client.id)
    async with transaction(database.sessions) as session:
        assert await review.close_expired(session, vault, NOW + WINDOW, INSTRUMENTS) == 1
    assert (await tap(database.sessions, vault, checkin, 0, 5)).result == TapResult.CLOSED
    async with database.sessions() as session:
        row = await session.get(CheckIn, checkin.id)
    assert row is not None and row.state == CheckInState.MISSED


async def test_stale_due_checkin_is_never_sent(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    async with transaction(database.sessions) as session:
        queued = await checkins.queue_now(
            session, client_id=made.client.id, instruments=["alliance"], now=NOW, window=WINDOW
        )
    async with transaction(database.sessions) as session:
        claimed = await checkins.claim_due(
            session, vault, known=INSTRUMENTS, now=NOW + WINDOW, limit=10, lease=LEASE
        )
        assert claimed == []  # past its window: never sent
        assert await review.close_expired(session, vault, NOW + WINDOW, INSTRUMENTS) == 1
    async with database.sessions() as session:
        row = await session.get(CheckIn, queued.id)
    assert row is not None and row.state == CheckInState.MISSED


async def test_blocked_client_becomes_unreachable(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    async with transaction(database.sessions) as session:
        queued = await checkins.queue_now(
            session, client_id=made.client.id, instruments=["alliance"], now=NOW, window=WINDOW
        )
    async with transaction(database.sessions) as session:
        await checkins.claim_due(session, vault, known=INSTRUMENTS, now=NOW, limit=5, lease=LEASE)
    async with transaction(database.sessions) as session:
        await checkins.record_send(session, vault, queued.id, SendOutcome.BLOCKED, NOW)
    async with database.sessions() as session:
        client = await session.get(Client, made.client.id)
        row = await session.get(CheckIn, queued.id)
    assert client is not None and client.status == ClientStatus.UNREACHABLE
    assert row is not None and row.state == CheckInState.CANCELLED


async def test_rotation_keeps_every_answer_readable(database: Database, keyring: KeyRing) -> None:
    vault = Vault(keyring)
    made = await team(database.sessions, vault)
    checkin = await _queue_and_send(database, vault, made.client.id)
    for i, v in enumerate([3, 4, 5, 6, 1]):
        await tap(database.sessions, vault, checkin, i, v)
    rotated = Vault(keyring.with_new_active_key())
    async with transaction(database.sessions) as session:
        assert await rotated.rewrap_all(session) == 2  # the therapist's and the client's keys
        assert await rotated.keys_in_use(session) == {rotated.ring.active_id: 2}
    # Old master key gone entirely: everything still opens under the new one.
    only_new = Vault(rotated.ring.without_keys({keyring.active_id}))
    async with database.sessions() as session:
        row = await session.get(CheckIn, checkin.id)
        assert row is not None
        answers = await checkins.answers_of(session, only_new, row)
        alert = await session.scalar(select(Alert))
        assert alert is not None
        reason = unseal(await only_new.key(session, made.client.id), alert, "reason_enc")
    assert sorted(answers.values()) == [1, 3, 4, 5, 6]
    assert "18/40" in reason


async def test_running_vault_picks_up_a_rotated_key(database: Database, keyring: KeyRing) -> None:
    rotated = keyring.with_new_active_key()
    running = Vault(keyring, reload=lambda: rotated)
    made = await team(database.sessions, running)
    async with transaction(database.sessions) as session:
        await Vault(rotated).rewrap_all(session)
    async with database.sessions() as session:
        answer_count = len((await session.scalars(select(Answer))).all())
        key = await running.key(session, made.client.id)
    assert answer_count == 0 and key.owner_id == made.client.id
    assert running.ring.active_id == rotated.active_id


async def _comment(database: Database, vault: Vault, text: str) -> checkins.CommentOutcome:
    async with transaction(database.sessions) as session:
        return await review.comment(
            session,
            vault,
            known=INSTRUMENTS,
            telegram_user_id=7001,
            text=text,
            now=NOW + timedelta(minutes=2),
        )


async def test_comment_is_stored_sealed_and_cut_to_the_limit(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    assert (await _comment(database, vault, "too early")).saved is False
    checkin = await _queue_and_send(database, vault, made.client.id, with_comment=True)
    outcomes = [
        await tap(database.sessions, vault, checkin, i, v) for i, v in enumerate([9] * 4 + [0])
    ]
    assert outcomes[-1].result == TapResult.ASK_COMMENT
    long_text = "I felt rushed today. " * 100
    outcome = await _comment(database, vault, long_text)
    assert outcome.saved and outcome.truncated
    async with database.sessions() as session:
        row = await session.get(CheckIn, checkin.id)
        assert row is not None and row.state == CheckInState.COMPLETED
        assert row.comment_enc is not None and b"rushed" not in row.comment_enc
        comment = unseal(await vault.key(session, made.client.id), row, "comment_enc")
    assert comment == long_text.strip()[: checkins.COMMENT_LIMIT]
    assert (await _comment(database, vault, "after the end")).saved is False


async def test_no_comment_button_completes(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queue_and_send(database, vault, made.client.id, with_comment=True)
    for i, v in enumerate([9] * 4 + [0]):
        await tap(database.sessions, vault, checkin, i, v)
    assert (await tap(database.sessions, vault, checkin, 5, 3)).result == TapResult.REFUSED
    assert (await tap(database.sessions, vault, checkin, 5, None)).result == TapResult.COMPLETED
    assert (await tap(database.sessions, vault, checkin, 5, None)).result == TapResult.CLOSED


async def test_back_shows_the_earlier_answer_and_replaces_it(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queue_and_send(database, vault, made.client.id)
    await tap(database.sessions, vault, checkin, 0, 3)
    back = await tap(database.sessions, vault, checkin, 1, None, action=TapAction.BACK)
    assert back.result == TapResult.NEXT and back.step is not None
    assert (back.step.item.id, back.selected) == ("bond", 3)
    assert (await tap(database.sessions, vault, checkin, 0, 8)).step.item.id == "goals"  # type: ignore[union-attr]
    async with database.sessions() as session:
        row = await session.get(CheckIn, checkin.id)
        assert row is not None
        assert await checkins.answers_of(session, vault, row) == {("alliance", "bond"): 8}


async def test_skip_only_where_the_item_allows_it(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queue_and_send(database, vault, made.client.id)
    refused = await tap(database.sessions, vault, checkin, 0, None, action=TapAction.SKIP)
    assert refused.result == TapResult.REFUSED  # the alliance items are not optional


async def test_paused_or_stopped_clients_get_nothing(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    async with transaction(database.sessions) as session:
        queued = await checkins.queue_now(
            session, client_id=made.client.id, instruments=["alliance"], now=NOW, window=WINDOW
        )
        client = await session.get(Client, made.client.id)
        assert client is not None
        await clients.pause(session, vault, client, NOW + timedelta(days=7), NOW)
    async with transaction(database.sessions) as session:
        claimed = await checkins.claim_due(
            session, vault, known=INSTRUMENTS, now=NOW, limit=5, lease=LEASE
        )
    assert claimed == []
    async with database.sessions() as session:
        row = await session.get(CheckIn, queued.id)
    assert row is not None and row.state == CheckInState.CANCELLED
    async with transaction(database.sessions) as session:
        assert await clients.wake_paused(session, vault, NOW + timedelta(days=7)) == 1
        client = await session.get(Client, made.client.id)
        assert client is not None and client.status == ClientStatus.ACTIVE
