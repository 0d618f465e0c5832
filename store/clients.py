"""What a client can do about their own participation: pause, resume, stop, export, erase.

Each change tells the therapist through a notice, in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, lifecycle, notices
from store.db import erased_from
from store.lifecycle import ClientEvent
from store.models import (
    OPEN_CHECKIN_STATES,
    Alert,
    Answer,
    Base,
    CheckIn,
    CheckInState,
    Client,
    ClientStatus,
    Invite,
)
from store.vault import Vault, unseal

PAUSE_MAX_DAYS = 90


def _client_tables() -> frozenset[str]:
    """The client table and every table whose rows refer to a client's, directly or through
    another such table: what an erasure deletes from."""
    found = {Client.__tablename__}
    grown = True
    while grown:
        grown = False
        for table in Base.metadata.sorted_tables:
            if table.name not in found and any(
                key.column.table.name in found for key in table.foreign_keys
            ):
                found.add(table.name)
                grown = True
    return frozenset(found)


CLIENT_TABLES = _client_tables()


async def label(session: AsyncSession, vault: Vault, client: Client) -> str:
    return unseal(await vault.key(session, client.id), client, "label_enc")


async def _tell_therapist(
    session: AsyncSession,
    vault: Vault,
    client: Client,
    kind: str,
    now: datetime,
    actor_kind: str = "client",
    **values: str,
) -> None:
    values["label"] = await label(session, vault, client)
    await notices.notify(
        session, vault, therapist_id=client.therapist_id, kind=kind, values=values, now=now
    )
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=client.id if actor_kind == "client" else None,
        action=f"client.{kind}",
        target_kind="client",
        target_id=client.id,
    )


async def _cancel_pending(session: AsyncSession, client: Client, now: datetime) -> None:
    await session.execute(
        update(CheckIn)
        .where(
            CheckIn.client_id == client.id,
            CheckIn.state.in_((CheckInState.DUE, *OPEN_CHECKIN_STATES)),
        )
        .values(state=CheckInState.CANCELLED, closed_at=now)
    )


async def pause(
    session: AsyncSession,
    vault: Vault,
    client: Client,
    until: datetime,
    now: datetime,
    by_therapist: uuid.UUID | None = None,
) -> bool:
    """No check-ins until `until`; check-ins already on the client's phone stay answerable.
    A pause the therapist made is audited as theirs and needs no notice to them. False (and
    nothing changed, nobody told) when the status allows no pause (stopped, say)."""
    if not lifecycle.move(client, ClientEvent.PAUSE):
        return False
    client.paused_until = until
    if by_therapist is not None:
        _audit_therapist(session, by_therapist, client, "paused")
        return True
    local = until.astimezone(ZoneInfo(client.timezone))
    shown = f"{local:%a} {local.day} {local:%b %H:%M} ({client.timezone} time)"
    await _tell_therapist(session, vault, client, "paused", now, until=shown)
    return True


async def resume(
    session: AsyncSession,
    vault: Vault,
    client: Client,
    now: datetime,
    by_therapist: uuid.UUID | None = None,
) -> bool:
    if not lifecycle.move(client, ClientEvent.RESUME):
        return False
    # Planning restarts now: the paused time leaves no missed check-ins behind.
    client.paused_until, client.planned_until = None, now
    if by_therapist is not None:
        _audit_therapist(session, by_therapist, client, "resumed")
        return True
    await _tell_therapist(session, vault, client, "resumed", now)
    return True


async def restart(
    session: AsyncSession, client: Client, now: datetime, by_therapist: uuid.UUID
) -> bool:
    """Their therapist starts a stopped client's check-ins again, at the client's request:
    planning restarts now. False (nothing changed) unless the client is stopped."""
    if not lifecycle.move(client, ClientEvent.RESTART):
        return False
    client.planned_until = now
    _audit_therapist(session, by_therapist, client, "restarted")
    return True


def _audit_therapist(
    session: AsyncSession, therapist_id: uuid.UUID, client: Client, kind: str
) -> None:
    audit.record(
        session,
        actor_kind="therapist",
        actor_id=therapist_id,
        action=f"client.{kind}",
        target_kind="client",
        target_id=client.id,
    )


async def wake_paused(session: AsyncSession, vault: Vault, now: datetime) -> int:
    """Resume every client whose pause has run out."""
    rows = (
        await session.scalars(
            select(Client).where(Client.status == ClientStatus.PAUSED, Client.paused_until <= now)
        )
    ).all()
    for client in rows:
        await resume(session, vault, client, now)
    return len(rows)


async def stop(session: AsyncSession, vault: Vault, client: Client, now: datetime) -> None:
    """Withdraw: no more messages; the data stays until erased or retention ends. A second
    /stop changes nothing (and tells the therapist nothing)."""
    if not lifecycle.move(client, ClientEvent.STOP):
        return
    client.paused_until = None
    await _cancel_pending(session, client, now)
    await _tell_therapist(session, vault, client, "stopped", now)


async def mark_unreachable(
    session: AsyncSession, vault: Vault, client: Client, now: datetime
) -> None:
    """The client blocked the bot: their check-ins stop and their therapist is told."""
    if not lifecycle.move(client, ClientEvent.BLOCK):
        return
    await _cancel_pending(session, client, now)
    await _tell_therapist(session, vault, client, "unreachable", now, actor_kind="system")


async def mark_reachable(
    session: AsyncSession, vault: Vault, client: Client, now: datetime
) -> bool:
    """The client unblocked the bot: check-ins resume from now on (none for the time between)."""
    if not lifecycle.move(client, ClientEvent.UNBLOCK):
        return False
    client.planned_until = now
    await _tell_therapist(session, vault, client, "reachable", now, actor_kind="system")
    return True


async def export(session: AsyncSession, vault: Vault, client: Client) -> dict[str, Any]:
    """Everything stored about one client, decrypted (GDPR Art. 15 and 20)."""
    key = await vault.key(session, client.id)
    checkins = (
        await session.scalars(
            select(CheckIn).where(CheckIn.client_id == client.id).order_by(CheckIn.due_at)
        )
    ).all()
    answers = (await session.scalars(select(Answer).where(Answer.client_id == client.id))).all()
    by_checkin: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for answer in answers:
        by_checkin.setdefault(answer.checkin_id, []).append(
            {
                "instrument": answer.instrument,
                "item": answer.item,
                "value": int(unseal(key, answer, "value_enc")),
                "answered_at": answer.answered_at.isoformat(),
            }
        )
    alerts = (await session.scalars(select(Alert).where(Alert.client_id == client.id))).all()

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "client": {
            "id": str(client.id),
            "label": unseal(key, client, "label_enc"),
            "status": client.status,
            "timezone": client.timezone,
            "language": client.language,
            "schedule_template": client.schedule_template,
            "consent_version": client.consent_version,
            "consent_at": when(client.consent_at),
            "enrolled_at": when(client.enrolled_at),
            "paused_until": when(client.paused_until),
            "telegram_chat_id": int(unseal(key, client, "chat_enc")) if client.chat_enc else None,
        },
        "checkins": [
            {
                "id": str(c.id),
                "instruments": c.instruments.split(","),
                "state": c.state,
                "due_at": when(c.due_at),
                "sent_at": when(c.sent_at),
                "started_at": when(c.started_at),
                "completed_at": when(c.completed_at),
                "closed_at": when(c.closed_at),
                "expires_at": when(c.expires_at),
                "answers": sorted(by_checkin.get(c.id, []), key=lambda a: a["answered_at"]),
                "comment": unseal(key, c, "comment_enc") if c.comment_enc else None,
            }
            for c in checkins
        ],
        "alerts": [
            {
                "rule": a.rule,
                "severity": a.severity,
                "state": a.state,
                "created_at": when(a.created_at),
                "reason": unseal(key, a, "reason_enc"),
            }
            for a in alerts
        ],
    }


async def erase(
    session: AsyncSession,
    vault: Vault,
    client: Client,
    now: datetime,
    *,
    actor_kind: str,
    actor_id: uuid.UUID | None = None,
) -> None:
    """Crypto-shredding: the therapist is told, then the data key and every row go.

    Backups keep the sealed rows, but without the data key nothing in them opens. The audit
    log keeps only that an erasure of this (now meaningless) id happened. Once the unit of
    work commits, the database is scrubbed (store.db.scrub): no copy of the rows stays in
    SQLite's WAL or free pages, PostgreSQL's tables are vacuumed.
    """
    await notices.notify(
        session,
        vault,
        therapist_id=client.therapist_id,
        kind="left",
        values={"label": await label(session, vault, client)},
        now=now,
    )
    await vault.shred(session, client.id)
    await session.execute(delete(Invite).where(Invite.client_id == client.id))
    await session.execute(delete(Client).where(Client.id == client.id))
    erased_from(session, CLIENT_TABLES)  # scrubbed once this commits (store.db.scrub)
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action="client.erase",
        target_kind="client",
        target_id=client.id,
    )


def record_export(
    session: AsyncSession, client: Client, *, actor_kind: str, actor_id: uuid.UUID | None = None
) -> None:
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=actor_id if actor_kind != "client" else client.id,
        action="client.export",
        target_kind="client",
        target_id=client.id,
    )
