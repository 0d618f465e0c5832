"""The practice admin's actions on real SQLite and PostgreSQL: export, erasure, retention,
reassignment, deactivation, the audit log and the numbers."""

from __future__ import annotations

import csv
import io
import json
import statistics
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from alliance.backtest import parse_checkins, run_backtest
from bot.config import load_instruments
from review import decide as review
from store import admin, alerts, audit, checkins, notices, people, retention
from store.crypto import DecryptionError
from store.db import transaction
from store.models import (
    Alert,
    AlertState,
    Answer,
    AuditEvent,
    CheckIn,
    Client,
    DataKeyRow,
    Invite,
    Notice,
    Therapist,
)
from store.outbox import SendOutcome
from store.vault import Vault, unseal
from tests.conftest import Database
from tests.factories import NOW, TTL, redeem, tap, team

INSTRUMENTS = load_instruments(None, Path("."))
WINDOW = timedelta(hours=24)
CLIENT_TG = 987654321
LABEL = "Client Rosalind"
COMMENT = "We ran out of time for what mattered to me."
ALLIANCE_ITEMS = ["bond", "goals", "approach", "overall", "tension"]


async def _checkin(
    database: Database,
    vault: Vault,
    client_id: uuid.UUID,
    values: Sequence[int],
    *,
    at: datetime,
    comment: str | None = None,
    close: bool = False,
    user: int = CLIENT_TG,
) -> uuid.UUID:
    """A check-in through the store as the bot runs it: queued, claimed, sent, tapped.

    With all five values it completes (with `comment`, if given); with fewer, or with `close`,
    its window is then closed (missed without answers, expired with some).
    """
    async with transaction(database.sessions) as session:
        queued = await checkins.queue_now(
            session,
            client_id=client_id,
            instruments=["alliance"],
            now=at,
            window=WINDOW,
            with_comment=comment is not None,
        )
        checkin_id = queued.id
    async with transaction(database.sessions) as session:
        claimed = await checkins.claim_due(
            session, vault, known=INSTRUMENTS, now=at, limit=10, lease=timedelta(minutes=5)
        )
        assert [c.checkin_id for c in claimed] == [checkin_id]
        await checkins.record_send(session, vault, checkin_id, SendOutcome.SENT, at, message_id=1)
    for position, value in enumerate(values):
        tapped_at = at + timedelta(minutes=1 + position)
        await tap(database.sessions, vault, checkin_id, position, value, user=user, now=tapped_at)
    if comment is not None and len(values) == len(ALLIANCE_ITEMS):
        async with transaction(database.sessions) as session:
            outcome = await review.comment(
                session,
                vault,
                known=INSTRUMENTS,
                telegram_user_id=user,
                text=comment,
                now=at + timedelta(minutes=10),
            )
            assert outcome.saved
    if close or len(values) < len(ALLIANCE_ITEMS):
        async with transaction(database.sessions) as session:
            await review.close_expired(
                session, vault, at + WINDOW + timedelta(minutes=1), INSTRUMENTS
            )
    return checkin_id


async def _stored(database: Database, vault: Vault, checkin_id: uuid.UUID) -> dict[str, int]:
    async with database.sessions() as session:
        row = await session.get(CheckIn, checkin_id)
        assert row is not None
        answers = await checkins.answers_of(session, vault, row)
    return {f"{inst}/{item}": value for (inst, item), value in answers.items()}


async def _history(database: Database, vault: Vault) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A client with a completed check-in (with comment), a missed one and an expired one."""
    made = await team(database.sessions, vault, client_tg=CLIENT_TG, label=LABEL)
    ids = [
        await _checkin(database, vault, made.client.id, [8, 4, 9, 9, 1], at=NOW, comment=COMMENT),
        await _checkin(database, vault, made.client.id, [], at=NOW + timedelta(days=2)),
        await _checkin(database, vault, made.client.id, [7, 6], at=NOW + timedelta(days=4)),
    ]
    return made.client.id, ids


async def _export(
    database: Database, vault: Vault, client_ids: list[uuid.UUID] | None, **kw: object
) -> list[dict[str, object]]:
    async with transaction(database.sessions) as session:
        return await admin.export_clients(
            session,
            vault,
            client_ids,
            pseudonymise=bool(kw.get("pseudonymise", False)),
            fmt=str(kw.get("fmt", "json")),
        )


async def _audit(database: Database) -> list[AuditEvent]:
    async with database.sessions() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.at))).all())


# --- export --------------------------------------------------------------------------------


async def test_csv_export_round_trips_the_stored_answers_and_replays(
    database: Database, vault: Vault
) -> None:
    client_id, (done, missed, expired) = await _history(database, vault)
    stored = {str(c): await _stored(database, vault, c) for c in (done, missed, expired)}
    assert stored[str(done)] == dict(
        zip([f"alliance/{i}" for i in ALLIANCE_ITEMS], [8, 4, 9, 9, 1], strict=True)
    )

    text = admin.render_csv(await _export(database, vault, [client_id], fmt="csv"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        "client",
        "checkin",
        "due_at",
        "answered_at",
        "instrument",
        "item",
        "value",
    ]
    assert {r["client"] for r in rows} == {str(client_id)}
    exported: dict[str, dict[str, int]] = {}
    for row in rows:
        if row["instrument"]:
            exported.setdefault(row["checkin"], {})[f"{row['instrument']}/{row['item']}"] = int(
                row["value"]
            )
    assert exported == {k: v for k, v in stored.items() if v}
    assert [
        (r["checkin"], r["instrument"], r["value"]) for r in rows if r["item"] == "comment"
    ] == [(str(done), "", COMMENT)]
    blank = [r for r in rows if not r["item"]]
    assert [(r["checkin"], r["answered_at"], r["instrument"], r["value"]) for r in blank] == [
        (str(missed), "", "", "")
    ]
    for row in rows:
        for column in ("due_at", "answered_at"):
            if row[column]:
                assert datetime.fromisoformat(row[column]).utcoffset() is not None

    histories, problems, skipped = parse_checkins(text, INSTRUMENTS)
    assert problems == [] and skipped == 0
    replayed = {r.checkin_id: dict(r.answers) for r in histories[str(client_id)]}
    assert {k: {f"{i}/{t}": v for (i, t), v in a.items()} for k, a in replayed.items()} == stored
    assert run_backtest(text, INSTRUMENTS).summary.statuses == {
        "completed": 1,
        "missed": 1,
        "abandoned": 1,
        "expired": 0,
    }


async def test_json_export_holds_everything_decrypted(database: Database, vault: Vault) -> None:
    client_id, (done, missed, expired) = await _history(database, vault)
    [doc] = await _export(database, vault, [client_id])
    client = doc["client"]
    assert isinstance(client, dict)
    assert client["label"] == LABEL and client["telegram_chat_id"] == CLIENT_TG
    by_id = {c["id"]: c for c in doc["checkins"]}  # type: ignore[attr-defined]
    assert [by_id[str(c)]["state"] for c in (done, missed, expired)] == [
        "completed",
        "missed",
        "expired",
    ]
    assert by_id[str(done)]["comment"] == COMMENT
    for checkin_id in (done, missed, expired):
        answers = {
            f"{a['instrument']}/{a['item']}": a["value"] for a in by_id[str(checkin_id)]["answers"]
        }
        assert answers == await _stored(database, vault, checkin_id)
    json.dumps(doc)  # machine-readable as it is


async def test_pseudonymised_export_has_stable_codes_and_nothing_identifying(
    database: Database, vault: Vault
) -> None:
    client_id, checkin_ids = await _history(database, vault)
    other = await team(
        database.sessions, vault, therapist_tg=5002, client_tg=7002, label="Client Bertrand"
    )
    first = await _export(database, vault, None, pseudonymise=True, fmt="csv")
    second = await _export(database, vault, None, pseudonymise=True, fmt="json")
    text = admin.render_csv(first) + json.dumps(first) + json.dumps(second)
    for secret in (LABEL, "Client Bertrand", str(CLIENT_TG), "7002", COMMENT, "Rosalind"):
        assert secret not in text
    for record_id in (client_id, other.client.id, *checkin_ids):
        assert str(record_id) not in text
    codes = [d["client"]["id"] for d in first]  # type: ignore[index]
    assert codes == [d["client"]["id"] for d in second]  # type: ignore[index]
    assert len(set(codes)) == 2 and all(len(c) == admin.PSEUDONYM_LENGTH for c in codes)
    assert codes[0] == admin.pseudonym(vault.ring, "pseudonym", client_id)
    csv_rows = list(csv.DictReader(io.StringIO(admin.render_csv(first))))
    assert {r["client"] for r in csv_rows} == {codes[0]}  # the other client has no check-ins
    assert not any(r["item"] == "comment" for r in csv_rows)
    assert [c["has_comment"] for c in first[0]["checkins"]] == [True, False, False]  # type: ignore[index]
    # The answers are all there, under the codes: the research export replays.
    histories, _, _ = parse_checkins(admin.render_csv(first), INSTRUMENTS)
    assert sum(len(dict(r.answers)) for r in histories[codes[0]]) == 7


# --- erasure -------------------------------------------------------------------------------


async def test_erase_leaves_nothing_readable_and_keeps_the_audit_row(
    database: Database, vault: Vault
) -> None:
    client_id, (done, _, _) = await _history(database, vault)
    async with database.sessions() as session:
        answer = (await session.scalars(select(Answer).where(Answer.checkin_id == done))).first()
        assert answer is not None
        key = await vault.key(session, client_id)
        assert unseal(key, answer, "value_enc") == "8"
        client = await session.get(Client, client_id)
        assert client is not None
        therapist_id = client.therapist_id
        old_label, old_answer = client.label_enc, answer.value_enc
    async with transaction(database.sessions) as session:
        await admin.erase_client(session, vault, client_id, NOW + timedelta(days=10))
    async with database.sessions() as session:
        for model in (Answer, CheckIn, Alert):
            left = await session.scalar(
                select(func.count()).select_from(model).where(model.client_id == client_id)
            )
            assert left == 0, model.__tablename__
        assert await session.get(Client, client_id) is None
        assert (
            await session.scalar(
                select(func.count()).select_from(Invite).where(Invite.client_id == client_id)
            )
            == 0
        )
        assert (
            await session.scalar(select(DataKeyRow).where(DataKeyRow.owner_id == client_id)) is None
        )
        with pytest.raises(DecryptionError):
            await vault.key(session, client_id)
        kinds = (
            await session.scalars(select(Notice.kind).where(Notice.therapist_id == therapist_id))
        ).all()
    assert "erased" in kinds and "left" not in kinds
    assert old_label and old_answer  # the ciphertexts from a backup exist, but no key opens them
    erasures = [e for e in await _audit(database) if e.action == "client.erase"]
    assert [(e.actor_kind, e.target_id, e.outcome) for e in erasures] == [
        ("admin", client_id, "ok")
    ]
    async with transaction(database.sessions) as session:
        with pytest.raises(people.NotFound):
            await admin.erase_client(session, vault, client_id, NOW)


# --- retention -----------------------------------------------------------------------------


async def _admin(database: Database, vault: Vault, name: str = "Admin Grace") -> Therapist:
    async with transaction(database.sessions) as session:
        therapist, _ = await people.add_therapist(
            session, vault, name=name, is_admin=True, now=NOW, invite_ttl=TTL
        )
    return therapist


async def _retention(database: Database, vault: Vault, now: datetime) -> retention.RetentionReport:
    async with transaction(database.sessions) as session:
        return await retention.run_retention(
            session, vault, now=now, inactive_days=365, warn_days=14
        )


async def _warnings(database: Database, admin_id: uuid.UUID) -> list[Notice]:
    async with database.sessions() as session:
        return list(
            (
                await session.scalars(
                    select(Notice).where(
                        Notice.therapist_id == admin_id, Notice.kind == "retention_warning"
                    )
                )
            ).all()
        )


async def test_retention_warns_the_admin_once_then_erases_only_the_inactive(
    database: Database, vault: Vault
) -> None:
    # Real time: joining writes audit rows by the client at the wall clock, and they count.
    start = datetime.now(UTC)
    keeper = await _admin(database, vault)
    idle = await team(database.sessions, vault, label="Client Idle", now=start)
    busy = await team(
        database.sessions, vault, therapist_tg=5002, client_tg=7002, label="Client Busy", now=start
    )
    await _checkin(
        database, vault, busy.client.id, [9, 9, 9, 9, 0], at=start + timedelta(days=200), user=7002
    )

    early = await _retention(database, vault, start + timedelta(days=350))
    assert early.warned == [] and early.erased == []
    warned = await _retention(database, vault, start + timedelta(days=352))
    assert warned.warned == [idle.client.id] and warned.erased == [] and warned.admins_told == 1
    again = await _retention(database, vault, start + timedelta(days=353))
    assert again.warned == [] and again.waiting == [idle.client.id]
    [notice] = await _warnings(database, keeper.id)
    async with database.sessions() as session:
        values = json.loads(unseal(await vault.key(session, keeper.id), notice, "body_enc"))
    assert values["label"] == "Client Idle" and values["client"] == str(idle.client.id)
    assert values["date"] == f"{start + timedelta(days=366):%Y-%m-%d}"

    done = await _retention(database, vault, start + timedelta(days=366, hours=1))
    assert done.erased == [idle.client.id]
    async with database.sessions() as session:
        assert await session.get(Client, idle.client.id) is None
        assert await session.get(Client, busy.client.id) is not None
        told = (
            await session.scalars(
                select(Notice.kind).where(Notice.therapist_id == idle.therapist.id)
            )
        ).all()
    assert "retention_erased" in told and "left" not in told
    assert len(await _warnings(database, keeper.id)) == 1
    rows = [
        (e.action, e.actor_kind) for e in await _audit(database) if e.target_id == idle.client.id
    ]
    assert rows.count(("retention.warn", "system")) == 1
    assert rows.count(("client.erase", "system")) == 1


async def test_retention_never_erases_without_warning_first(
    database: Database, vault: Vault
) -> None:
    start = datetime.now(UTC)
    keeper = await _admin(database, vault)
    made = await team(database.sessions, vault, now=start)
    late = start + timedelta(days=500)  # far past the date, never warned (e.g. retention was off)
    async with transaction(database.sessions) as session:
        dry = await retention.run_retention(
            session, vault, now=late, inactive_days=365, warn_days=14, dry_run=True
        )
    assert dry.warned == [made.client.id] and await _warnings(database, keeper.id) == []
    first = await _retention(database, vault, late)
    assert first.warned == [made.client.id] and first.erased == []
    assert (await _retention(database, vault, late + timedelta(days=13))).erased == []
    assert (await _retention(database, vault, late + timedelta(days=14))).erased == [made.client.id]


async def test_activity_after_a_warning_keeps_the_client(database: Database, vault: Vault) -> None:
    start = datetime.now(UTC)
    await _admin(database, vault)
    made = await team(database.sessions, vault, client_tg=CLIENT_TG, now=start)
    assert (await _retention(database, vault, start + timedelta(days=355))).warned == [
        made.client.id
    ]
    back = start + timedelta(days=356)
    await _checkin(database, vault, made.client.id, [9, 9, 9, 9, 0], at=back)
    report = await _retention(database, vault, start + timedelta(days=370))
    assert report.candidates == [] and report.erased == []


# --- reassignment and deactivation ---------------------------------------------------------


async def test_reassignment_moves_open_alerts_and_tells_both(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault, client_tg=CLIENT_TG)
    await _checkin(database, vault, made.client.id, [3, 3, 3, 3, 2], at=NOW)  # low: an alert
    async with transaction(database.sessions) as session:
        old_chat = await alerts.due_for_delivery(session, vault, NOW + timedelta(hours=1))
        for pending in old_chat:
            await alerts.record_delivery(
                session, pending.alert_id, SendOutcome.SENT, 99, NOW + timedelta(hours=1)
            )
    assert old_chat and {p.therapist_chat_id for p in old_chat} == {5001}
    async with transaction(database.sessions) as session:
        new, invite = await people.add_therapist(
            session, vault, name="Therapist Bea", is_admin=False, now=NOW, invite_ttl=TTL
        )
    assert await redeem(database.sessions, vault, invite.token, 5003) is not None
    later = NOW + timedelta(hours=2)
    async with transaction(database.sessions) as session:
        moved = await admin.reassign(
            session, vault, client_id=made.client.id, therapist_id=new.id, now=later
        )
    assert moved.alerts_moved == moved.alerts_redelivered == len(old_chat)
    async with transaction(database.sessions) as session:
        resent = await alerts.due_for_delivery(session, vault, later)
        told = await notices.due_for_delivery(session, vault, later)
        client = await session.get(Client, made.client.id)
        assert client is not None and client.therapist_id == new.id
    assert {p.therapist_chat_id for p in resent} == {5003}
    assert {p.alert_id for p in resent} == {p.alert_id for p in old_chat}
    assert sorted((n.chat_id, n.kind, n.values["label"]) for n in told) == [
        (5001, "reassigned_away", LABEL),
        (5003, "reassigned_to", LABEL),
    ]
    async with transaction(database.sessions) as session:
        with pytest.raises(admin.Refused, match="already with"):
            await admin.reassign(
                session, vault, client_id=made.client.id, therapist_id=new.id, now=later
            )


async def test_deactivation_is_refused_while_clients_remain_then_they_get_nothing(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    leaving = made.therapist.id
    async with transaction(database.sessions) as session:
        with pytest.raises(admin.Refused, match=r"still has 1 client.*reassign them first"):
            await admin.deactivate(session, therapist_id=leaving)
    async with transaction(database.sessions) as session:
        other, _ = await people.add_therapist(
            session, vault, name="Therapist Bea", is_admin=False, now=NOW, invite_ttl=TTL
        )
    async with transaction(database.sessions) as session:
        await admin.reassign(
            session, vault, client_id=made.client.id, therapist_id=other.id, now=NOW
        )
    async with transaction(database.sessions) as session:
        done = await admin.deactivate(session, therapist_id=leaving)
    assert done.notices_cancelled == 1  # the reassignment notice: they get nothing now
    async with transaction(database.sessions) as session:
        assert await notices.due_for_delivery(session, vault, NOW + timedelta(days=1)) == []
        therapist = await session.get(Therapist, leaving)
        assert therapist is not None and not therapist.active and therapist.chat_enc is None
        assert await people.find_by_telegram(session, vault, 5001) is None
        with pytest.raises(admin.Refused, match="deactivated"):
            await admin.reassign(
                session, vault, client_id=made.client.id, therapist_id=leaving, now=NOW
            )
        with pytest.raises(people.NotFound):
            await people.invite_client(
                session,
                vault,
                therapist_id=leaving,
                label="x",
                timezone="UTC",
                schedule_template=None,
                now=NOW,
                invite_ttl=TTL,
            )


# --- the audit log and the numbers ---------------------------------------------------------


async def test_each_admin_action_writes_one_audit_row_without_clinical_content(
    database: Database, vault: Vault
) -> None:
    start = datetime.now(UTC)
    await _admin(database, vault)
    client_id, _ = await _history(database, vault)
    async with transaction(database.sessions) as session:
        other, _ = await people.add_therapist(
            session, vault, name="Therapist Bea", is_admin=False, now=NOW, invite_ttl=TTL
        )
    async with database.sessions() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        first_therapist = client.therapist_id
    before = len(await _audit(database))

    async def counted(action: str) -> int:
        return sum(1 for e in await _audit(database) if e.action == action)

    async with transaction(database.sessions) as session:
        await admin.reassign(session, vault, client_id=client_id, therapist_id=other.id, now=NOW)
    assert await counted("client.reassign") == 1
    async with transaction(database.sessions) as session:
        await admin.deactivate(session, therapist_id=first_therapist)
    assert await counted("therapist.deactivate") == 1
    await _export(database, vault, [client_id], fmt="json")
    await _export(database, vault, None, fmt="csv", pseudonymise=True)
    assert await counted("client.export") == 2
    await _retention(database, vault, start + timedelta(days=400))
    assert await counted("retention.warn") == 1
    async with transaction(database.sessions) as session:
        await admin.erase_client(session, vault, client_id, NOW)
    assert await counted("client.erase") == 1
    events = await _audit(database)
    assert len(events) == before + 6

    names = ["Therapist Ada", "Therapist Bea", "Admin Grace"]
    forbidden = [LABEL, "Rosalind", COMMENT, str(CLIENT_TG), *names]
    for event in events:
        for column in ("actor_kind", "action", "target_kind", "outcome", "detail"):
            text = getattr(event, column) or ""
            assert not any(word in text for word in forbidden), (column, text)
        # Details hold ids, formats, dates and counts: no answer values, no free text.
        assert event.detail is None or event.action in {
            "client.reassign",
            "client.export",
            "retention.warn",
            "checkin.tap",
        }, event.detail
    async with database.sessions() as session:
        mine = await admin.audit_log(session, admin.AuditFilter(client_id=client_id))
    assert sorted(e.action for e in mine if e.actor_kind in ("admin", "system")) == [
        "checkin.queue",  # `rapport checkin send`, three times in _history
        "checkin.queue",
        "checkin.queue",
        "client.erase",
        "client.export",
        "client.export",
        "client.invite",
        "client.reassign",
        "retention.warn",
    ]
    assert mine == sorted(mine, key=lambda e: e.at)


async def test_stats_count_clients_checkins_and_alerts(database: Database, vault: Vault) -> None:
    client_id, _ = await _history(database, vault)
    async with database.sessions() as session:
        numbers = await admin.stats(session, now=NOW + timedelta(days=7))
    assert numbers.clients["active"] == 1 and numbers.clients["stopped"] == 0
    assert numbers.checkins == {"sent": 3, "completed": 1, "missed": 1, "expired": 1}
    assert numbers.alerts_by_rule == numbers.open_alerts_by_rule
    assert sum(numbers.alerts_by_rule.values()) >= 2  # low alliance and tension, at least
    assert numbers.median_hours_to_acknowledge is None and numbers.acknowledged == 0
    async with database.sessions() as session:
        later = await admin.stats(session, now=NOW + timedelta(days=60))
    assert later.checkins == {"sent": 0, "completed": 0, "missed": 0, "expired": 0}
    assert later.alerts_by_rule == {} and later.open_alerts_by_rule == numbers.open_alerts_by_rule

    # Acknowledged 2, 4 and 6 hours (and so on) after each alert was raised: median of those.
    async with transaction(database.sessions) as session:
        raised = (
            await session.scalars(
                select(Alert).where(Alert.client_id == client_id).order_by(Alert.rule)
            )
        ).all()
        for hours, alert in zip(range(2, 100, 2), raised, strict=False):
            # As if each were acknowledged on its own (the button acknowledges all at once).
            alert.state = AlertState.ACKNOWLEDGED
            alert.acknowledged_at = alert.created_at + timedelta(hours=hours)
    delays = [2 * (i + 1) for i in range(len(raised))]
    async with database.sessions() as session:
        acked = await admin.stats(session, now=NOW + timedelta(days=7))
    assert acked.acknowledged == len(raised) and acked.open_alerts_by_rule == {}
    assert acked.median_hours_to_acknowledge == statistics.median(delays)


async def test_a_notice_for_a_therapist_not_linked_yet_backs_off(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    async with transaction(database.sessions) as session:
        unlinked, _ = await people.add_therapist(
            session, vault, name="Therapist Bea", is_admin=False, now=NOW, invite_ttl=TTL
        )
    async with transaction(database.sessions) as session:
        await admin.reassign(
            session, vault, client_id=made.client.id, therapist_id=unlinked.id, now=NOW
        )
    waits = []
    at = NOW
    for _ in range(3):
        async with transaction(database.sessions) as session:
            sent = await notices.due_for_delivery(session, vault, at)
            assert all(n.chat_id != 0 for n in sent)  # only the linked therapist's goes
            [kept] = (
                await session.scalars(select(Notice).where(Notice.therapist_id == unlinked.id))
            ).all()
            assert kept.next_delivery_at is not None
            waits.append(kept.next_delivery_at - at)
            at = kept.next_delivery_at
    assert waits == sorted(waits) and waits[0] < waits[-1]  # read less and less often


async def test_the_audit_log_filters_and_pages_in_the_database(database: Database) -> None:
    """The admin's audit page: an action prefix (taken literally, `_` and `%` included), the
    actor, the outcome, a count of all matches and only the newest rows read."""
    made = [
        ("alert.acknowledge", "therapist", "ok"),
        ("alert.snooze", "therapist", "ok"),
        ("alert.acknowledge", "therapist", "refused"),
        ("alertx.other", "admin", "ok"),
        ("client.invite", "admin", "ok"),
        ("client_invite", "admin", "ok"),
    ]
    async with transaction(database.sessions) as session:
        for minute, (action, actor, outcome) in enumerate(made):
            event = audit.record(session, actor_kind=actor, action=action, outcome=outcome)
            event.at = NOW + timedelta(minutes=minute)

    async def read(chosen: admin.AuditFilter, newest: int | None = None) -> list[str]:
        async with database.sessions() as session:
            return [e.action for e in await admin.audit_log(session, chosen, newest=newest)]

    async def count(chosen: admin.AuditFilter) -> int:
        async with database.sessions() as session:
            return await admin.audit_count(session, chosen)

    alerts_ = admin.AuditFilter(action="alert.")
    assert await read(alerts_) == ["alert.acknowledge", "alert.snooze", "alert.acknowledge"]
    assert await count(alerts_) == 3
    assert await read(alerts_, newest=2) == ["alert.acknowledge", "alert.snooze"]  # newest first
    refused = admin.AuditFilter(action="alert.", outcome="refused")
    assert await count(refused) == 1
    assert await read(admin.AuditFilter(action="client_")) == ["client_invite"]
    assert await count(admin.AuditFilter(actor_kind="admin", since=NOW + timedelta(minutes=4))) == 2
    assert await read(admin.AuditFilter(action="%")) == []
