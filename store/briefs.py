"""The brief before a client's session: claimed once per client and session, what it carries,
and what was sent.

Feedback works when it is discussed in session (PCOMS asks at every session; OQ-Analyst shows
its signals before it), so the signals that need no message tonight wait here: the alerts
decided `brief` (alliance.triage), the missed check-ins and the comments since the last
session, and the trend. Sessions come from the session log (/session) and the client's
recurring session time; finding the next one is schedules/briefs.py's work.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.detectors import DEFAULTS, DetectorSettings
from alliance.history import CheckinRecord, Status
from alliance.instruments import Instrument
from store import audit
from store.alerts import LIVE, PendingAlert, live_alerts_of
from store.history import TREND_CHECKINS, Trend, client_history, trend_of
from store.models import Alert, Brief, Client, ClientStatus, SessionLog, Therapist
from store.outbox import Guarantee, SendOutcome, claim_new, lease, settle
from store.people import chat_id
from store.vault import Vault, unseal

# Clients whose briefs are looked for: those who may still answer check-ins.
BRIEFED = (ClientStatus.ACTIVE, ClientStatus.PAUSED)


@dataclass(frozen=True)
class Candidate:
    """A client and what is known of their sessions: logged ones ahead, the recurring rule."""

    client_id: uuid.UUID
    timezone: str
    session_rule: str | None
    logged: tuple[datetime, ...]


@dataclass(frozen=True)
class BriefContent:
    """What one brief says (decrypted for this send only)."""

    brief_id: uuid.UUID
    client_id: uuid.UUID
    therapist_chat_id: int
    client_label: str
    session_at: datetime
    timezone: str
    since: datetime | None  # the last session before this one, if logged
    alerts: tuple[PendingAlert, ...]
    records: tuple[CheckinRecord, ...]  # the check-ins closed since the last session
    trend: Trend | None

    @property
    def missed(self) -> int:
        return sum(1 for r in self.records if r.status is not Status.COMPLETED)

    @property
    def comments(self) -> tuple[str, ...]:
        return tuple(r.comment for r in self.records if r.comment)


async def candidates(session: AsyncSession, now: datetime, until: datetime) -> list[Candidate]:
    """Clients with a session logged in [now, until) or a recurring session time, whose
    therapist is active and linked."""
    logged: dict[uuid.UUID, list[datetime]] = {}
    rows = await session.execute(
        select(SessionLog.client_id, SessionLog.at).where(
            SessionLog.at >= now, SessionLog.at < until
        )
    )
    for client_id, at in rows.tuples():
        logged.setdefault(client_id, []).append(at)
    query = (
        select(Client.id, Client.timezone, Client.session_rule)
        .join(Therapist, Therapist.id == Client.therapist_id)
        .where(
            Client.status.in_(BRIEFED),
            Therapist.active.is_(True),
            Therapist.chat_enc.is_not(None),
            (Client.session_rule.is_not(None)) | Client.id.in_(list(logged) or [uuid.UUID(int=0)]),
        )
    )
    return [
        Candidate(client_id, zone, rule, tuple(sorted(logged.get(client_id, ()))))
        for client_id, zone, rule in (await session.execute(query)).tuples()
    ]


async def claim(
    session: AsyncSession, client_id: uuid.UUID, session_at: datetime, now: datetime
) -> uuid.UUID | None:
    """Claim the brief for this client and session; None when it was claimed before (by this
    process or another): each brief goes out at most once (a retry is `retries`' to claim)."""
    found = await session.scalar(
        select(Brief.id).where(Brief.client_id == client_id, Brief.session_at == session_at)
    )
    if found is not None:
        return None
    brief = Brief(id=uuid.uuid4(), client_id=client_id, session_at=session_at, claimed_at=now)
    return brief.id if await claim_new(session, brief, now) else None


async def retries(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Claim the briefs that surely did not reach Telegram and are due to be tried again,
    while their session has not begun."""
    rows = await session.scalars(
        select(Brief)
        .where(
            Brief.next_delivery_at <= now,
            Brief.delivered_at.is_(None),
            Brief.session_at > now,
        )
        .with_for_update(skip_locked=True)
    )
    claimed = []
    for brief in rows.all():
        lease(brief, now)
        claimed.append(brief.id)
    return claimed


async def contents(
    session: AsyncSession,
    vault: Vault,
    brief_id: uuid.UUID,
    known: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
) -> BriefContent | None:
    """What the claimed brief says; None when its client or therapist can no longer get it."""
    brief = await session.get(Brief, brief_id)
    client = None if brief is None else await session.get(Client, brief.client_id)
    therapist = None if client is None else await session.get(Therapist, client.therapist_id)
    if brief is None or client is None or therapist is None or not therapist.active:
        return None
    target = await chat_id(session, vault, therapist)
    if target is None:
        return None
    return await _content(
        session,
        vault,
        client,
        brief.id,
        target,
        brief.session_at,
        brief.claimed_at,
        known,
        settings,
    )


async def preview(
    session: AsyncSession,
    vault: Vault,
    client: Client,
    session_at: datetime,
    now: datetime,
    known: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
) -> BriefContent:
    """What the brief for the session at `session_at` would say if it went now (the web
    dashboard shows it); nothing is claimed or marked."""
    return await _content(
        session, vault, client, uuid.UUID(int=0), 0, session_at, now, known, settings
    )


async def _content(
    session: AsyncSession,
    vault: Vault,
    client: Client,
    brief_id: uuid.UUID,
    target: int,
    session_at: datetime,
    claimed_at: datetime,
    known: Mapping[str, Instrument],
    settings: DetectorSettings,
) -> BriefContent:
    since = await session.scalar(
        select(SessionLog.at)
        .where(SessionLog.client_id == client.id, SessionLog.at < session_at)
        .where(SessionLog.at < claimed_at)
        .order_by(SessionLog.at.desc())
        .limit(1)
    )
    key = await vault.key(session, client.id)
    history = await client_history(session, vault, client.id, key=key)  # the trend's too
    records = tuple(r for r in history if since is None or r.due_at >= since)
    if since is None:
        records = records[-4:]  # no session known before: the last few check-ins
    alerts = await live_alerts_of(session, vault, client, target, since)
    return BriefContent(
        brief_id=brief_id,
        client_id=client.id,
        therapist_chat_id=target,
        client_label=unseal(key, client, "label_enc"),
        session_at=session_at,
        timezone=client.timezone,
        since=since,
        alerts=tuple(alerts),
        records=records,
        trend=trend_of(history[-TREND_CHECKINS:], known, settings) if known else None,
    )


async def waiting_without_session(
    session: AsyncSession, vault: Vault, therapist_id: uuid.UUID, chat: int, now: datetime
) -> list[tuple[str, list[PendingAlert]]]:
    """The therapist's clients with no next session known (no recurring time, none logged
    ahead) whose brief-tier alerts no brief has carried yet: (label, alerts), for the weekly
    digest, which is where their signals go instead."""
    ahead = select(SessionLog.client_id).where(SessionLog.at > now)
    rows = await session.scalars(
        select(Client)
        .join(Alert, Alert.client_id == Client.id)
        .where(
            Client.therapist_id == therapist_id,
            Client.session_rule.is_(None),
            Client.id.not_in(ahead),
            Alert.delivery == "brief",
            Alert.briefed_at.is_(None),
            Alert.state.in_(LIVE),
        )
        .distinct()
    )
    found = []
    for client in rows.all():
        key = await vault.key(session, client.id)
        alerts = [
            alert
            for alert in await live_alerts_of(session, vault, client, chat, None)
            if alert.delivery == "brief"
        ]
        found.append((unseal(key, client, "label_enc"), alerts))
    return sorted(found, key=lambda pair: pair[0])


async def mark_briefed(
    session: AsyncSession, alert_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """The alerts reached the therapist in a digest."""
    if alert_ids:
        await session.execute(
            update(Alert)
            .where(Alert.id.in_(list(alert_ids)), Alert.briefed_at.is_(None))
            .values(briefed_at=now, delivered_at=func.coalesce(Alert.delivered_at, now))
        )


async def record_sent(
    session: AsyncSession,
    content: BriefContent,
    outcome: SendOutcome,
    message_id: int | None,
    now: datetime,
) -> bool:
    """What the send did (store.outbox's rules: at most once from an unclear answer); once it
    reached Telegram (or may have), its alerts count as delivered. True when it went."""
    brief = await session.get(Brief, content.brief_id)
    if brief is None:
        return False
    settle(brief, outcome, message_id, now, Guarantee.AT_MOST_ONCE)
    if brief.delivered_at is None:
        return False
    ids = [alert.alert_id for alert in content.alerts]
    if ids:
        await session.execute(
            update(Alert).where(Alert.id.in_(ids), Alert.state.in_(LIVE)).values(briefed_at=now)
        )
        await session.execute(
            update(Alert)
            .where(Alert.id.in_(ids), Alert.delivered_at.is_(None))
            .values(delivered_at=now, message_id=message_id)
        )
    audit.record(
        session,
        actor_kind="system",
        action="brief.sent",
        target_kind="client",
        target_id=content.client_id,
        detail=f"{len(ids)} alerts",
    )
    return outcome is SendOutcome.SENT
