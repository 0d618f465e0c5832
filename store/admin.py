"""What a practice admin does from the command line: move a client to another therapist,
deactivate a therapist, export and erase a client's data, read the audit log and the
practice's numbers.

Every function runs in the caller's transaction and commits nothing itself. Each action
writes exactly one audit row in that transaction, holding ids and outcomes only: never a
label, a name, a Telegram id, an answer or a comment.
"""

from __future__ import annotations

import base64
import csv
import io
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.backtest import COLUMNS as CSV_COLUMNS
from alliance.backtest import COMMENT as CSV_COMMENT
from store import audit, clients, notices
from store.crypto import KeyRing
from store.models import (
    Alert,
    AlertState,
    AuditEvent,
    CheckIn,
    CheckInState,
    Client,
    ClientStatus,
    Invite,
    Notice,
    Therapist,
)
from store.people import NotFound, active_admins
from store.vault import Vault

# Alerts that still ask something of a therapist; they follow the client to a new therapist.
UNRESOLVED_ALERT_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.SNOOZED)
# A check-in that closed without a single answer is one "missed" row in the CSV export.
UNANSWERED_STATES = (CheckInState.MISSED, CheckInState.EXPIRED)
STATS_PERIOD = timedelta(weeks=4)
PSEUDONYM_LENGTH = 12


class Refused(ValueError):
    """An action that cannot be done now; the message says why and what to do instead."""


# --- reassignment and deactivation ---------------------------------------------------------


@dataclass(frozen=True)
class Reassigned:
    client_id: uuid.UUID
    from_therapist: uuid.UUID
    to_therapist: uuid.UUID
    alerts_moved: int  # unresolved alerts now with the new therapist
    alerts_redelivered: int  # open ones among them, sent to the new therapist


async def reassign(
    session: AsyncSession,
    vault: Vault,
    *,
    client_id: uuid.UUID,
    therapist_id: uuid.UUID,
    now: datetime,
) -> Reassigned:
    """Give a client to another therapist: their history and unresolved alerts go with them.

    Open alerts are delivered again, to the new therapist; both therapists get a notice.
    """
    client = await session.get(Client, client_id, with_for_update=True)
    if client is None:
        raise NotFound(f"no client with id {client_id}")
    target = await session.get(Therapist, therapist_id)
    if target is None:
        raise NotFound(f"no therapist with id {therapist_id}")
    if not target.active:
        raise Refused(
            f"therapist {therapist_id} is deactivated and cannot take clients; choose an active "
            "therapist (rapport therapist list)"
        )
    if client.therapist_id == target.id:
        raise Refused(f"client {client_id} is already with therapist {therapist_id}")
    previous = client.therapist_id
    label = await clients.label(session, vault, client)
    client.therapist_id = target.id
    moving = (
        await session.scalars(
            select(Alert).where(
                Alert.client_id == client.id, Alert.state.in_(UNRESOLVED_ALERT_STATES)
            )
        )
    ).all()
    redelivered = 0
    for alert in moving:
        alert.therapist_id = target.id
        if alert.state == AlertState.OPEN:
            # The new therapist has never seen it: deliver it afresh, at least once.
            alert.next_delivery_at, alert.delivered_at, alert.message_id = now, None, None
            alert.delivery_attempts = 0
            redelivered += 1
    await notices.notify(
        session,
        vault,
        therapist_id=previous,
        kind="reassigned_away",
        values={"label": label},
        now=now,
    )
    await notices.notify(
        session,
        vault,
        therapist_id=target.id,
        kind="reassigned_to",
        values={"label": label, "alerts": str(len(moving))},
        now=now,
    )
    audit.record(
        session,
        actor_kind="admin",
        action="client.reassign",
        target_kind="client",
        target_id=client.id,
        detail=f"from therapist {previous} to therapist {target.id}",
    )
    return Reassigned(client.id, previous, target.id, len(moving), redelivered)


@dataclass(frozen=True)
class Deactivated:
    therapist_id: uuid.UUID
    notices_cancelled: int
    active_admins_left: int


async def deactivate(session: AsyncSession, *, therapist_id: uuid.UUID) -> Deactivated:
    """A therapist who leaves: refused while any client of theirs is not erased.

    Afterwards they get nothing: their Telegram account is unlinked (the bot treats them as a
    stranger), notices not yet delivered are dropped, unused invite links stop working, and
    no client can be invited to or reassigned to them.
    """
    therapist = await session.get(Therapist, therapist_id, with_for_update=True)
    if therapist is None:
        raise NotFound(f"no therapist with id {therapist_id}")
    if not therapist.active:
        raise Refused(f"therapist {therapist_id} is already deactivated")
    remaining = await session.scalar(
        select(func.count()).select_from(Client).where(Client.therapist_id == therapist.id)
    )
    if remaining:
        raise Refused(
            f"therapist {therapist_id} still has {remaining} client(s) whose data is not "
            "erased; reassign them first: rapport client list --therapist "
            f"{therapist_id}, then rapport client reassign --client ID --therapist OTHER_ID"
        )
    therapist.active = False
    therapist.telegram_hash, therapist.chat_enc = None, None
    cancelled = await session.execute(
        update(Notice)
        .where(
            Notice.therapist_id == therapist.id,
            Notice.delivered_at.is_(None),
            Notice.next_delivery_at.is_not(None),
        )
        .values(next_delivery_at=None)
    )
    await session.execute(
        update(Alert)
        .where(Alert.therapist_id == therapist.id, Alert.next_delivery_at.is_not(None))
        .values(next_delivery_at=None)
    )
    await session.execute(
        delete(Invite).where(Invite.therapist_id == therapist.id, Invite.used_at.is_(None))
    )
    audit.record(
        session,
        actor_kind="admin",
        action="therapist.deactivate",
        target_kind="therapist",
        target_id=therapist.id,
    )
    await session.flush()
    admins = len(await active_admins(session))
    return Deactivated(therapist.id, int(getattr(cancelled, "rowcount", 0) or 0), admins)


# --- export --------------------------------------------------------------------------------


def pseudonym(ring: KeyRing, namespace: str, record_id: uuid.UUID | str) -> str:
    """A stable random-looking code for an id: a keyed hash under the blind-index key.

    The same id gives the same code in every export (the index key is never rotated); without
    the key file nobody can link a code back to an id.
    """
    digest = ring.blind_index(namespace, str(record_id))
    return base64.b32encode(digest).decode().lower()[:PSEUDONYM_LENGTH]


def pseudonymised(doc: dict[str, Any], ring: KeyRing) -> dict[str, Any]:
    """A research copy of an export document, built from an allow-list of fields.

    Ids become codes; the label, the Telegram chat, comment texts and alert reasons (which
    quote answers and phrases) are left out. What remains: status, time zone, language,
    schedule template, consent version, times, instruments, answers, whether there was a
    comment, and alert rules, severities and states.
    """
    client = doc["client"]
    return {
        "pseudonymised": True,
        "client": {
            "id": pseudonym(ring, "pseudonym", client["id"]),
            **{
                k: client[k]
                for k in (
                    "status",
                    "timezone",
                    "language",
                    "schedule_template",
                    "consent_version",
                    "consent_at",
                    "enrolled_at",
                    "paused_until",
                )
            },
        },
        "checkins": [
            {
                "id": pseudonym(ring, "pseudonym-checkin", c["id"]),
                **{
                    k: c[k]
                    for k in (
                        "instruments",
                        "state",
                        "due_at",
                        "sent_at",
                        "started_at",
                        "completed_at",
                        "closed_at",
                        "expires_at",
                        "answers",
                    )
                },
                "has_comment": c["comment"] is not None,
            }
            for c in doc["checkins"]
        ],
        "alerts": [
            {k: a[k] for k in ("rule", "severity", "state", "created_at")} for a in doc["alerts"]
        ],
    }


async def export_clients(
    session: AsyncSession,
    vault: Vault,
    client_ids: Sequence[uuid.UUID] | None,
    *,
    pseudonymise: bool,
    fmt: str,
) -> list[dict[str, Any]]:
    """Export documents (store.clients.export's shape) for the given clients, or for all.

    One audit row per client exported, with the format and nothing of the content.
    """
    if client_ids is None:
        rows = list((await session.scalars(select(Client).order_by(Client.created_at))).all())
    else:
        rows = []
        for client_id in client_ids:
            client = await session.get(Client, client_id)
            if client is None:
                raise NotFound(f"no client with id {client_id}")
            rows.append(client)
    documents = []
    for client in rows:
        doc = await clients.export(session, vault, client)
        documents.append(pseudonymised(doc, vault.ring) if pseudonymise else doc)
        audit.record(
            session,
            actor_kind="admin",
            action="client.export",
            target_kind="client",
            target_id=client.id,
            detail=f"format={fmt}" + (" pseudonymised" if pseudonymise else ""),
        )
    return documents


def csv_rows(doc: dict[str, Any]) -> list[dict[str, str]]:
    """One document as rows of the backtest format (see alliance/backtest.py).

    One row per answered item; a comment is a row with item `comment`, no instrument and the
    text as value (a pseudonymised document has none); a check-in that closed without any
    answer (missed, or expired) is one row with answered_at, instrument, item and value empty.
    Check-ins not closed yet, or cancelled without answers, have no rows.
    """
    client = doc["client"]["id"]
    rows = []
    for checkin in doc["checkins"]:
        base = {"client": client, "checkin": checkin["id"], "due_at": checkin["due_at"]}
        answers = checkin["answers"]
        comment = checkin.get("comment")
        for answer in answers:
            rows.append(
                base
                | {
                    "answered_at": answer["answered_at"],
                    "instrument": answer["instrument"],
                    "item": answer["item"],
                    "value": str(answer["value"]),
                }
            )
        if comment is not None:
            rows.append(
                base
                | {
                    "answered_at": checkin["completed_at"] or "",
                    "instrument": "",
                    "item": CSV_COMMENT,
                    "value": comment,
                }
            )
        if not answers and comment is None and checkin["state"] in UNANSWERED_STATES:
            rows.append(base | {"answered_at": "", "instrument": "", "item": "", "value": ""})
    return rows


def render_csv(documents: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for doc in documents:
        writer.writerows(csv_rows(doc))
    return out.getvalue()


# --- erasure -------------------------------------------------------------------------------


async def erase_with_notice(
    session: AsyncSession,
    vault: Vault,
    client: Client,
    now: datetime,
    *,
    actor_kind: str,
    notice_kind: str,
) -> None:
    """store.clients.erase (crypto-shredding, one audit row), with the therapist's notice
    telling what really happened instead of "left Rapport and erased their data".

    clients.erase always writes a `left` notice; the one it adds here is found and renamed.
    (Interim: a `notice_kind` argument on clients.erase would make this a plain call.)
    """
    therapist_id = client.therapist_id
    pending_left = select(Notice.id).where(
        Notice.therapist_id == therapist_id,
        Notice.kind == "left",
        Notice.delivered_at.is_(None),
    )
    before = set((await session.scalars(pending_left)).all())
    await clients.erase(session, vault, client, now, actor_kind=actor_kind)
    await session.flush()
    added = set((await session.scalars(pending_left)).all()) - before
    if added:
        await session.execute(update(Notice).where(Notice.id.in_(added)).values(kind=notice_kind))


async def erase_client(
    session: AsyncSession, vault: Vault, client_id: uuid.UUID, now: datetime
) -> None:
    """Erase a client on the practice's behalf (e.g. on a written request, GDPR Art. 17)."""
    client = await session.get(Client, client_id, with_for_update=True)
    if client is None:
        raise NotFound(f"no client with id {client_id} (already erased?)")
    await erase_with_notice(session, vault, client, now, actor_kind="admin", notice_kind="erased")


@dataclass(frozen=True)
class ClientSummary:
    """What the admin sees before confirming an erasure."""

    id: uuid.UUID
    label: str
    status: str
    therapist_id: uuid.UUID
    checkins: int


async def client_summary(
    session: AsyncSession, vault: Vault, client_id: uuid.UUID
) -> ClientSummary:
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFound(f"no client with id {client_id} (already erased?)")
    count = await session.scalar(
        select(func.count()).select_from(CheckIn).where(CheckIn.client_id == client.id)
    )
    return ClientSummary(
        client.id,
        await clients.label(session, vault, client),
        client.status,
        client.therapist_id,
        int(count or 0),
    )


# --- the audit log -------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor_kind: str
    actor_id: uuid.UUID | None
    action: str
    target_kind: str | None
    target_id: uuid.UUID | None
    outcome: str
    detail: str | None


@dataclass(frozen=True)
class AuditFilter:
    """Which audit rows to read. For a client: rows about them, by them, or about one of their
    check-ins or alerts (while the client exists; after erasure only the id remains)."""

    client_id: uuid.UUID | None = None
    since: datetime | None = None
    action: str = ""  # a prefix: "alert." is every alert action
    actor_kind: str = ""
    outcome: str = ""

    def where(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.client_id is not None:
            about = self.client_id
            found.append(
                or_(
                    AuditEvent.target_id == about,
                    AuditEvent.actor_id == about,
                    AuditEvent.target_id.in_(select(CheckIn.id).where(CheckIn.client_id == about)),
                    AuditEvent.target_id.in_(select(Alert.id).where(Alert.client_id == about)),
                )
            )
        if self.since is not None:
            found.append(AuditEvent.at >= self.since)
        if self.action:
            found.append(AuditEvent.action.startswith(self.action, autoescape=True))
        if self.actor_kind:
            found.append(AuditEvent.actor_kind == self.actor_kind)
        if self.outcome:
            found.append(AuditEvent.outcome == self.outcome)
        return found


async def audit_count(session: AsyncSession, chosen: AuditFilter) -> int:
    return await session.scalar(select(func.count(AuditEvent.id)).where(*chosen.where())) or 0


async def audit_log(
    session: AsyncSession,
    chosen: AuditFilter = AuditFilter(),
    *,
    newest: int | None = None,
) -> list[AuditView]:
    """Audit rows, oldest first; with `newest`, only that many of the latest, newest first."""
    query = select(AuditEvent).where(*chosen.where())
    if newest is None:
        query = query.order_by(AuditEvent.at, AuditEvent.id)
    else:
        query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(newest)
    return [
        AuditView(
            e.at,
            e.actor_kind,
            e.actor_id,
            e.action,
            e.target_kind,
            e.target_id,
            e.outcome,
            e.detail,
        )
        for e in (await session.scalars(query)).all()
    ]


# --- numbers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    since: datetime
    until: datetime
    clients: dict[str, int]
    therapists: dict[str, int]
    checkins: dict[str, int]
    alerts_by_rule: dict[str, int]
    open_alerts_by_rule: dict[str, int]
    # From an alert's creation to its acknowledgement, over the alerts acknowledged in the
    # period (None when there were none).
    acknowledged: int = 0
    median_hours_to_acknowledge: float | None = None


async def stats(session: AsyncSession, *, now: datetime) -> Stats:
    """Clients per status; check-ins and alerts of the last four weeks; open alerts."""
    since = now - STATS_PERIOD

    async def grouped(column: Any, *where: Any, table: Any) -> dict[str, int]:
        query = select(column, func.count()).select_from(table).where(*where).group_by(column)
        return {str(k): int(v) for k, v in (await session.execute(query)).tuples().all()}

    async def count(*where: Any) -> int:
        return int(
            await session.scalar(select(func.count()).select_from(CheckIn).where(*where)) or 0
        )

    by_status = {status.value: 0 for status in ClientStatus}
    by_status.update(await grouped(Client.status, table=Client))
    active = int(
        await session.scalar(
            select(func.count()).select_from(Therapist).where(Therapist.active.is_(True))
        )
        or 0
    )
    everyone = int(await session.scalar(select(func.count()).select_from(Therapist)) or 0)
    therapists = {"active": active, "deactivated": everyone - active}
    checkins = {
        "sent": await count(CheckIn.sent_at >= since, CheckIn.sent_at <= now),
        "completed": await count(CheckIn.completed_at >= since, CheckIn.completed_at <= now),
        "missed": await count(CheckIn.state == CheckInState.MISSED, CheckIn.closed_at >= since),
        "expired": await count(CheckIn.state == CheckInState.EXPIRED, CheckIn.closed_at >= since),
    }
    alerts = await grouped(Alert.rule, Alert.created_at >= since, table=Alert)
    open_alerts = await grouped(Alert.rule, Alert.state == AlertState.OPEN, table=Alert)
    acknowledged = (
        await session.execute(
            select(Alert.created_at, Alert.acknowledged_at).where(
                Alert.acknowledged_at >= since, Alert.acknowledged_at <= now
            )
        )
    ).tuples()
    waits = [(done - raised).total_seconds() / 3600 for raised, done in acknowledged if done]
    return Stats(
        since=since,
        until=now,
        clients=by_status,
        therapists=therapists,
        checkins=checkins,
        alerts_by_rule=dict(sorted(alerts.items())),
        open_alerts_by_rule=dict(sorted(open_alerts.items())),
        acknowledged=len(waits),
        median_hours_to_acknowledge=round(statistics.median(waits), 1) if waits else None,
    )
