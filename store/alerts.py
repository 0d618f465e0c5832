"""Alert rows: raised from detector flags, delivered at least once to the client's own
therapist (a practice admin when the therapist cannot be reached), acknowledged or snoozed
by them.

Few, meaningful alerts: one open alert per client and rule, updated by a worse reading rather
than repeated; after an acknowledgement, the same rule stays quiet for a cooldown unless it
gets worse (an urgent one, a risk, never does); non-urgent alerts wait for the end of quiet
hours, urgent ones never wait.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.detectors import DEFAULTS, DetectorSettings, Flag, Severity
from alliance.instruments import Instrument
from alliance.triage import Decision, Delivery
from store import audit
from store.crypto import DataKey
from store.history import Trend, trend
from store.models import Alert, AlertState, Client, Therapist
from store.outbox import Guarantee, SendOutcome, lease, settle
from store.people import chat_id
from store.vault import Vault, seal, unseal

FALLBACK_AFTER_ATTEMPTS = 3
LIVE = (AlertState.OPEN, AlertState.SNOOZED)


@dataclass(frozen=True)
class AlertPolicy:
    cooldown: timedelta = timedelta(days=7)
    # When a non-urgent alert may be delivered (e.g. after the therapist's quiet hours).
    defer: Callable[[datetime], datetime] = field(default=lambda now: now)


@dataclass(frozen=True)
class PendingAlert:
    """An alert ready to send: to whom, about whom, and why (decrypted for this send only)."""

    alert_id: uuid.UUID
    client_id: uuid.UUID
    therapist_chat_id: int
    client_label: str
    rule: str
    severity: str
    reason: str
    rupture_type: str | None = None
    repair: tuple[str, ...] = ()
    to_admin: bool = False  # the therapist could not be reached
    trend: Trend | None = None
    # The numbers behind the reason (alliance.detectors.Flag.evidence) and why it was pushed
    # or kept for the brief (alliance.triage.Why).
    evidence: Mapping[str, float | str] = field(default_factory=dict)
    why: str | None = None
    delivery: str = Delivery.PUSH


class AlertAction(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    SNOOZE = "snooze"


def _rank(severity: str) -> int:
    return Severity(severity).rank


async def raise_flags(
    session: AsyncSession,
    key: DataKey,
    client: Client,
    checkin_id: uuid.UUID | None,
    decisions: Sequence[Decision],
    now: datetime,
    policy: AlertPolicy | None = None,
) -> list[Alert]:
    """Turn decided flags into alerts; returns the alerts that will be pushed (again).

    A flag decided `brief` becomes an alert that waits for the brief before the client's next
    session (no push); one decided `none` is dropped.
    """
    policy = policy or AlertPolicy()
    raised = []
    for decision in decisions:
        flag = decision.flag
        if decision.delivery == Delivery.NONE:
            continue
        live = await session.scalar(
            select(Alert).where(
                Alert.client_id == client.id, Alert.rule == flag.rule, Alert.state.in_(LIVE)
            )
        )
        if live is not None and _unchanged(key, live, flag, checkin_id):
            continue
        if live is None:
            if await _cooling_down(session, client.id, flag, now, policy):
                continue
            live = Alert(
                id=uuid.uuid4(),
                client_id=client.id,
                therapist_id=client.therapist_id,
                rule=flag.rule,
                created_at=now,
            )
            session.add(live)
        live.checkin_id, live.severity, live.updated_at = checkin_id, flag.severity, now
        live.state, live.snoozed_until = AlertState.OPEN, None
        live.delivery, live.briefed_at = decision.delivery, None
        if decision.delivery == Delivery.PUSH:
            urgent = flag.severity == Severity.URGENT
            live.next_delivery_at = now if urgent else policy.defer(now)
            raised.append(live)
        else:
            live.next_delivery_at = None
        seal(key, live, "reason_enc", flag.reason)
        context = {
            "rupture_type": flag.rupture_type,
            "repair": list(flag.repair),
            "evidence": dict(flag.evidence),
            "why": str(decision.why),
        }
        seal(key, live, "context_enc", json.dumps(context))
    return raised


def _unchanged(key: DataKey, live: Alert, flag: Flag, checkin_id: uuid.UUID | None) -> bool:
    """Whether a flag leaves an open alert as it is: a milder reading, or the same one again.

    A risk is the same again only when it is the same reason about the same check-in: a second
    risk message outside a check-in, or a risk phrase after a risk answer, reaches the
    therapist again, since the client is told each one does.
    """
    if _rank(flag.severity) != _rank(live.severity):
        return _rank(flag.severity) < _rank(live.severity)
    if flag.severity == Severity.URGENT:
        return (
            checkin_id is not None
            and live.checkin_id == checkin_id
            and unseal(key, live, "reason_enc") == flag.reason
        )
    return live.checkin_id == checkin_id


async def _cooling_down(
    session: AsyncSession,
    client_id: uuid.UUID,
    flag: Flag,
    now: datetime,
    policy: AlertPolicy,
) -> bool:
    if flag.severity == Severity.URGENT:
        return False  # each risk reading reaches the therapist: the client is told it does
    recent = await session.scalar(
        select(Alert)
        .where(
            Alert.client_id == client_id,
            Alert.rule == flag.rule,
            Alert.state == AlertState.ACKNOWLEDGED,
            Alert.acknowledged_at > now - policy.cooldown,
        )
        .order_by(Alert.acknowledged_at.desc())
        .limit(1)
    )
    return recent is not None and _rank(flag.severity) <= _rank(recent.severity)


async def _admin_chat(session: AsyncSession, vault: Vault) -> int | None:
    admins = await session.scalars(
        select(Therapist).where(
            Therapist.is_admin.is_(True),
            Therapist.active.is_(True),
            Therapist.chat_enc.is_not(None),
        )
    )
    for admin in admins:
        return await chat_id(session, vault, admin)
    return None


async def due_for_delivery(
    session: AsyncSession,
    vault: Vault,
    now: datetime,
    limit: int = 50,
    known: Mapping[str, Instrument] | None = None,
    settings: DetectorSettings = DEFAULTS,
) -> list[PendingAlert]:
    """Claim alerts to send; a claim lapses after CLAIM_LEASE, so a crash means a resend."""
    rows = (
        await session.scalars(
            select(Alert)
            .where(Alert.next_delivery_at <= now, Alert.state.in_(LIVE))
            .order_by(Alert.next_delivery_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    pending = []
    for alert in rows:
        client = await session.get(Client, alert.client_id)
        therapist = await session.get(Therapist, alert.therapist_id)
        target = None
        if therapist is not None and therapist.active:
            target = await chat_id(session, vault, therapist)
        to_admin = target is None or alert.delivery_attempts >= FALLBACK_AFTER_ATTEMPTS
        if to_admin:
            target = await _admin_chat(session, vault) or target
        if client is None or target is None:  # nobody to send it to yet: back off
            settle(alert, SendOutcome.NOT_SENT, None, now, Guarantee.AT_LEAST_ONCE)
            continue
        lease(alert, now)
        alert.state = AlertState.OPEN
        shown = await trend(session, vault, client.id, known, settings) if known else None
        pending.append(await _pending(session, vault, alert, client, target, to_admin, shown))
    return pending


async def _pending(
    session: AsyncSession,
    vault: Vault,
    alert: Alert,
    client: Client,
    target: int,
    to_admin: bool,
    shown: Trend | None,
) -> PendingAlert:
    key = await vault.key(session, client.id)
    context = json.loads(unseal(key, alert, "context_enc")) if alert.context_enc else {}
    return PendingAlert(
        alert_id=alert.id,
        client_id=client.id,
        therapist_chat_id=target,
        client_label=unseal(key, client, "label_enc"),
        rule=alert.rule,
        severity=alert.severity,
        reason=unseal(key, alert, "reason_enc"),
        rupture_type=context.get("rupture_type"),
        repair=tuple(context.get("repair", ())),
        to_admin=to_admin,
        trend=shown,
        evidence=context.get("evidence", {}),
        why=context.get("why"),
        delivery=alert.delivery,
    )


async def live_for(
    session: AsyncSession, vault: Vault, therapist: Therapist, chat: int
) -> list[PendingAlert]:
    """The open and snoozed alerts about the therapist's own clients, oldest first, as they
    would be delivered to `chat` (without charts)."""
    rows = await session.execute(
        select(Alert, Client)
        .join(Client, Client.id == Alert.client_id)
        .where(Client.therapist_id == therapist.id, Alert.state.in_(LIVE))
        .order_by(Alert.created_at, Alert.id)
    )
    return [
        await _pending(session, vault, alert, client, chat, False, None)
        for alert, client in rows.tuples().all()
    ]


async def live_alerts_of(
    session: AsyncSession,
    vault: Vault,
    client: Client,
    chat: int,
    since: datetime | None,
) -> list[PendingAlert]:
    """One client's alerts for a brief: the open and snoozed ones, and those raised or updated
    since `since` (the last session) whatever became of them; pushed ones first."""
    changed: ColumnElement[bool] = Alert.state.in_(LIVE)
    if since is not None:
        changed = changed | (Alert.updated_at >= since)
    rows = await session.scalars(
        select(Alert)
        .where(Alert.client_id == client.id, changed)
        .order_by(Alert.delivery.desc(), Alert.updated_at)
    )
    return [await _pending(session, vault, alert, client, chat, False, None) for alert in rows]


async def record_delivery(
    session: AsyncSession,
    alert_id: uuid.UUID,
    outcome: SendOutcome,
    message_id: int | None,
    now: datetime,
) -> None:
    """A delivered alert waits for the therapist; any other is tried again later (at least
    once; after FALLBACK_AFTER_ATTEMPTS a practice admin gets it)."""
    alert = await session.get(Alert, alert_id)
    if alert is not None:
        settle(alert, outcome, message_id, now, Guarantee.AT_LEAST_ONCE)


async def act(
    session: AsyncSession,
    *,
    client_id: uuid.UUID,
    therapist: Therapist,
    action: AlertAction,
    now: datetime,
    snooze: timedelta = timedelta(days=1),
) -> list[Alert]:
    """Acknowledge or snooze a client's open alerts (one message carries them all). The caller
    has checked that the therapist may (store.caseload.owned)."""
    live = (
        await session.scalars(
            select(Alert)
            .where(Alert.client_id == client_id, Alert.state.in_(LIVE))
            .with_for_update()
        )
    ).all()
    for alert in live:
        if action == AlertAction.ACKNOWLEDGE:
            alert.state, alert.acknowledged_at = AlertState.ACKNOWLEDGED, now
            alert.next_delivery_at = None
        else:
            alert.state, alert.snoozed_until = AlertState.SNOOZED, now + snooze
            alert.next_delivery_at = now + snooze
    audit.record(
        session,
        actor_kind="therapist",
        actor_id=therapist.id,
        action=f"alert.{action}",
        target_kind="client",
        target_id=client_id,
        detail=f"{len(live)} alerts",
    )
    return list(live)


async def snoozed_until(
    session: AsyncSession, alert_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """Until when each of these alerts is snoozed (those that are)."""
    if not alert_ids:
        return {}
    rows = await session.execute(
        select(Alert.id, Alert.snoozed_until).where(
            Alert.id.in_(list(alert_ids)), Alert.state == AlertState.SNOOZED
        )
    )
    return {alert_id: until for alert_id, until in rows.tuples() if until is not None}
