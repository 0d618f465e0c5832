"""Retention: the data of clients who have shown no sign of life for too long is erased.

The retention clock of a client starts at their **last activity**, the latest of:

- the invitation (`client.created_at`; what counts for someone who never joined),
- joining (`enrolled_at`) and agreeing to the consent text (`consent_at`),
- any answer given (`answer.answered_at`) and any check-in completed (`completed_at`),
- the end of a pause (`paused_until`; a pause that runs into the future keeps the client),
- anything the client did themselves that the audit log records (joined, agreed, paused,
  resumed, stopped, downloaded their data), so a stopped client's clock starts at the stop.

Nothing the practice or the system does (an invitation resent, a check-in sent, an export by
the admin, a reassignment) restarts the clock: a check-in that is sent and never answered is
not activity. A client is **inactive** when their last activity is more than `inactive_days`
ago; this covers stopped clients (a stop is their last activity) and clients who stay
"active" but no longer answer.

`warn_days` before the erasure date every active practice admin gets a notice, once per
client: the warning is remembered as a `retention.warn` row in the audit log (newer than the
last activity), so new activity after a warning starts a new cycle with a new warning. An
erasure never comes sooner than `warn_days` after the warning: a client already past the
date when retention first runs (or after downtime) is warned now and erased `warn_days`
later. Erasure is store.clients.erase (crypto-shredding), by the actor `system`.

`run_retention` is the single entry point, for the daily job and `rapport retention run`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, clients, notices
from store.admin import erase_with_notice
from store.models import Answer, AuditEvent, CheckIn, Client, Therapist
from store.people import active_admins
from store.vault import Vault

WARN_ACTION = "retention.warn"


@dataclass(frozen=True)
class Candidate:
    """A client inside the warning period or past it, and what retention does about them."""

    client_id: uuid.UUID
    status: str
    last_activity: datetime
    erase_after: datetime  # the earliest moment of erasure (given the warning so far)
    warned_at: datetime | None
    action: str  # "warn" (now), "erase" (now) or "wait" (warned; erasure comes later)


@dataclass
class RetentionReport:
    enabled: bool
    dry_run: bool = False
    warned: list[uuid.UUID] = field(default_factory=list)
    erased: list[uuid.UUID] = field(default_factory=list)
    waiting: list[uuid.UUID] = field(default_factory=list)
    admins_told: int = 0  # active admins who got each warning (0: nobody was told)
    candidates: list[Candidate] = field(default_factory=list)


async def last_activity(session: AsyncSession) -> dict[uuid.UUID, datetime]:
    """Every client's last activity (see the module's description)."""
    latest: dict[uuid.UUID, datetime] = {}

    def keep(pairs: Iterable[tuple[uuid.UUID, datetime | None]]) -> None:
        for client_id, at in pairs:
            if at is not None and client_id in latest and at > latest[client_id]:
                latest[client_id] = at

    rows = await session.execute(
        select(
            Client.id, Client.created_at, Client.enrolled_at, Client.consent_at, Client.paused_until
        )
    )
    for client_id, created_at, *others in rows.tuples().all():
        latest[client_id] = created_at
        keep((client_id, at) for at in others)

    async def grouped(query: Any) -> None:
        keep((await session.execute(query)).tuples().all())

    await grouped(select(Answer.client_id, func.max(Answer.answered_at)).group_by(Answer.client_id))
    await grouped(
        select(CheckIn.client_id, func.max(CheckIn.completed_at)).group_by(CheckIn.client_id)
    )
    await grouped(
        select(AuditEvent.actor_id, func.max(AuditEvent.at))
        .where(AuditEvent.actor_kind == "client", AuditEvent.actor_id.is_not(None))
        .group_by(AuditEvent.actor_id)
    )
    return latest


async def _last_warnings(session: AsyncSession) -> dict[uuid.UUID, datetime]:
    rows = await session.execute(
        select(AuditEvent.target_id, func.max(AuditEvent.at))
        .where(AuditEvent.action == WARN_ACTION, AuditEvent.target_id.is_not(None))
        .group_by(AuditEvent.target_id)
    )
    return {target: at for target, at in rows.tuples().all() if target is not None}


async def plan(
    session: AsyncSession, *, now: datetime, inactive_days: int, warn_days: int
) -> list[Candidate]:
    """Who is to be warned, erased, or is waiting; reads only."""
    inactive = timedelta(days=inactive_days)
    # A warning period as long as the retention period would warn right after each activity.
    warn = timedelta(days=max(1, min(warn_days, inactive_days - 1)))
    statuses = dict((await session.execute(select(Client.id, Client.status))).tuples().all())
    warnings = await _last_warnings(session)
    found = []
    for client_id, last in sorted((await last_activity(session)).items(), key=lambda p: p[1]):
        deadline = last + inactive
        if now < deadline - warn:
            continue
        warned_at = warnings.get(client_id)
        if warned_at is not None and warned_at < last:
            warned_at = None  # a warning from before the latest activity no longer counts
        if warned_at is None:
            action, erase_after = "warn", max(deadline, now + warn)
        else:
            erase_after = max(deadline, warned_at + warn)
            action = "erase" if now >= erase_after else "wait"
        found.append(
            Candidate(client_id, statuses[client_id], last, erase_after, warned_at, action)
        )
    return found


async def run_retention(
    session: AsyncSession,
    vault: Vault,
    *,
    now: datetime,
    inactive_days: int | None,
    warn_days: int,
    dry_run: bool = False,
) -> RetentionReport:
    """Warn the admins about clients nearing erasure and erase those past it.

    One audit row per client warned (`retention.warn`, by `system`) and per client erased
    (`client.erase`, by `system`). With `dry_run`, nothing changes and the report says what
    would happen. `inactive_days=None` turns retention off.
    """
    if inactive_days is None:
        return RetentionReport(enabled=False, dry_run=dry_run)
    candidates = await plan(session, now=now, inactive_days=inactive_days, warn_days=warn_days)
    admins = await active_admins(session)
    report = RetentionReport(
        enabled=True, dry_run=dry_run, admins_told=len(admins), candidates=candidates
    )
    for candidate in candidates:
        if candidate.action == "wait":
            report.waiting.append(candidate.client_id)
            continue
        (report.warned if candidate.action == "warn" else report.erased).append(candidate.client_id)
        if dry_run:
            continue
        client = await session.get(Client, candidate.client_id, with_for_update=True)
        if client is None:  # erased meanwhile
            continue
        if candidate.action == "warn":
            await _warn(session, vault, client, candidate, admins, now)
        else:
            await erase_with_notice(
                session, vault, client, now, actor_kind="system", notice_kind="retention_erased"
            )
    return report


async def _warn(
    session: AsyncSession,
    vault: Vault,
    client: Client,
    candidate: Candidate,
    admins: list[Therapist],
    now: datetime,
) -> None:
    label = await clients.label(session, vault, client)
    for admin in admins:
        await notices.notify(
            session,
            vault,
            therapist_id=admin.id,
            kind="retention_warning",
            values={
                "label": label,
                "client": str(client.id),
                "since": f"{candidate.last_activity:%Y-%m-%d}",
                "date": f"{candidate.erase_after:%Y-%m-%d}",
            },
            now=now,
        )
    event = audit.record(
        session,
        actor_kind="system",
        action=WARN_ACTION,
        target_kind="client",
        target_id=client.id,
        detail=f"erasure on or after {candidate.erase_after:%Y-%m-%d}; {len(admins)} admin(s) told",
    )
    event.at = now  # the warning's time is what later runs compare with
