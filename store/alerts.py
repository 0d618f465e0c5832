"""Alert rows: raised from detector flags, delivered at least once to the assigned therapist."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.detectors import Flag
from store.crypto import DataKey
from store.models import Alert, AlertState, Client, Therapist
from store.outbox import CLAIM_LEASE, RETRY_BACKOFF, retry_at
from store.people import chat_id
from store.vault import Vault, seal, unseal


@dataclass(frozen=True)
class PendingAlert:
    """An alert ready to send: to whom, about whom, and why (decrypted for this send only)."""

    alert_id: uuid.UUID
    therapist_chat_id: int
    client_label: str
    rule: str
    severity: str
    reason: str


async def raise_flags(
    session: AsyncSession,
    key: DataKey,
    client: Client,
    checkin_id: uuid.UUID | None,
    flags: Sequence[Flag],
    now: datetime,
) -> list[Alert]:
    """One open alert per client and rule: a new flag updates the open one instead of adding."""
    raised = []
    for flag in flags:
        alert = await session.scalar(
            select(Alert).where(
                Alert.client_id == client.id,
                Alert.rule == flag.rule,
                Alert.state == AlertState.OPEN,
            )
        )
        if alert is None:
            alert = Alert(
                id=uuid.uuid4(),
                client_id=client.id,
                therapist_id=client.therapist_id,
                rule=flag.rule,
                created_at=now,
            )
            session.add(alert)
        alert.checkin_id, alert.severity, alert.updated_at = checkin_id, flag.severity, now
        alert.next_delivery_at = now
        seal(key, alert, "reason_enc", flag.reason)
        raised.append(alert)
    return raised


async def due_for_delivery(
    session: AsyncSession, vault: Vault, now: datetime, limit: int = 50
) -> list[PendingAlert]:
    """Claim alerts to send; a claim lapses after CLAIM_LEASE, so a crash means a resend."""
    rows = (
        await session.scalars(
            select(Alert)
            .where(Alert.next_delivery_at <= now)
            .order_by(Alert.next_delivery_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    pending = []
    for alert in rows:
        client = await session.get(Client, alert.client_id)
        therapist = await session.get(Therapist, alert.therapist_id)
        target = None if therapist is None else await chat_id(session, vault, therapist)
        if client is None or target is None:
            alert.next_delivery_at = retry_at(len(RETRY_BACKOFF), now)
            continue
        key = await vault.key(session, client.id)
        alert.next_delivery_at = now + CLAIM_LEASE
        pending.append(
            PendingAlert(
                alert_id=alert.id,
                therapist_chat_id=target,
                client_label=unseal(key, client, "label_enc"),
                rule=alert.rule,
                severity=alert.severity,
                reason=unseal(key, alert, "reason_enc"),
            )
        )
    return pending


async def mark_delivered(
    session: AsyncSession, alert_id: uuid.UUID, message_id: int, now: datetime
) -> None:
    alert = await session.get(Alert, alert_id)
    if alert is not None:
        alert.delivered_at, alert.message_id, alert.next_delivery_at = now, message_id, None
        alert.delivery_attempts += 1


async def mark_failed(session: AsyncSession, alert_id: uuid.UUID, now: datetime) -> None:
    alert = await session.get(Alert, alert_id)
    if alert is not None:
        alert.next_delivery_at = retry_at(alert.delivery_attempts, now)
        alert.delivery_attempts += 1
