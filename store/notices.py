"""Notices to a therapist about a client's status, delivered at least once."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Notice, Therapist
from store.outbox import Guarantee, SendOutcome, lease, settle
from store.people import chat_id
from store.vault import Vault, seal, unseal


@dataclass(frozen=True)
class PendingNotice:
    """A notice ready to send; the messenger turns kind and values into words."""

    notice_id: uuid.UUID
    chat_id: int
    kind: str
    values: dict[str, str]


async def notify(
    session: AsyncSession,
    vault: Vault,
    *,
    therapist_id: uuid.UUID,
    kind: str,
    values: dict[str, str],
    now: datetime,
) -> Notice:
    notice = Notice(id=uuid.uuid4(), therapist_id=therapist_id, kind=kind, created_at=now)
    notice.next_delivery_at = now
    seal(await vault.key(session, therapist_id), notice, "body_enc", json.dumps(values))
    session.add(notice)
    return notice


async def due_for_delivery(
    session: AsyncSession, vault: Vault, now: datetime, limit: int = 50
) -> list[PendingNotice]:
    rows = (
        await session.scalars(
            select(Notice)
            .where(Notice.next_delivery_at <= now)
            .order_by(Notice.next_delivery_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    pending = []
    for notice in rows:
        therapist = await session.get(Therapist, notice.therapist_id)
        target = None if therapist is None else await chat_id(session, vault, therapist)
        if target is None:  # not linked yet: keep it for when they are, backing off
            settle(notice, SendOutcome.NOT_SENT, None, now, Guarantee.AT_LEAST_ONCE)
            continue
        lease(notice, now)
        key = await vault.key(session, notice.therapist_id)
        values = json.loads(unseal(key, notice, "body_enc"))
        pending.append(PendingNotice(notice.id, target, notice.kind, values))
    return pending


async def record_delivery(
    session: AsyncSession,
    notice_id: uuid.UUID,
    outcome: SendOutcome,
    message_id: int | None,
    now: datetime,
) -> None:
    """A delivered notice is not kept (one about an erased client names them); any other is
    tried again later, with back-off (at least once)."""
    notice = await session.get(Notice, notice_id)
    if notice is not None and settle(notice, outcome, message_id, now, Guarantee.AT_LEAST_ONCE):
        await session.delete(notice)
