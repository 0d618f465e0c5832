"""The audit log, written in the caller's transaction: an action and its record commit together."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditEvent


def record(
    session: AsyncSession,
    *,
    actor_kind: str,
    action: str,
    actor_id: uuid.UUID | None = None,
    target_kind: str | None = None,
    target_id: uuid.UUID | None = None,
    outcome: str = "ok",
    detail: str | None = None,
) -> AuditEvent:
    """Add an audit row. `detail` must never hold names, Telegram ids, answers or comments."""
    event = AuditEvent(
        id=uuid.uuid4(),
        actor_kind=actor_kind,
        actor_id=actor_id,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        outcome=outcome,
        detail=detail,
    )
    session.add(event)
    return event
