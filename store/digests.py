"""The weekly digest a therapist can ask for: when it is due, and what it says."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Alert, Client, Digest, Therapist
from store.outbox import Guarantee, SendOutcome, claim_new, lease, settle

WEEK = timedelta(days=7)
# A digest is sent at most once in this long, so a restart on digest day sends no second one.
MIN_GAP = timedelta(days=6)


@dataclass(frozen=True)
class DigestTime:
    weekday: int  # 0 = Monday
    at: time


@dataclass(frozen=True)
class Claim:
    """A therapist whose digest this process is sending (the claimed digest row)."""

    therapist: Therapist
    digest: Digest


def current(therapist: Therapist) -> DigestTime | None:
    if therapist.digest_weekday is None or therapist.digest_time is None:
        return None
    return DigestTime(therapist.digest_weekday, time.fromisoformat(therapist.digest_time))


def choose(therapist: Therapist, when: DigestTime | None) -> None:
    """Turn the digest on at `when`, or off with None."""
    therapist.digest_weekday = when.weekday if when else None
    therapist.digest_time = f"{when.at:%H:%M}" if when else None


async def claim_due(session: AsyncSession, now: datetime, zone: str) -> list[Claim]:
    """Linked, active therapists whose digest time has come today, each claimed once a day
    (a digest row per therapist and local day; the unique pair is the claim), and none within
    MIN_GAP of the last one delivered; a digest that surely did not reach Telegram earlier
    today is claimed again when its retry is due (store.outbox)."""
    local = now.astimezone(ZoneInfo(zone))
    rows = await session.scalars(
        select(Therapist).where(
            Therapist.digest_weekday == local.weekday(),
            Therapist.active.is_(True),
            Therapist.chat_enc.is_not(None),
        )
    )
    due = []
    for therapist in rows.all():
        chosen = current(therapist)
        if chosen is None or local.time() < chosen.at:
            continue
        digest = await _claim(session, therapist.id, local.date(), now)
        if digest is not None:
            due.append(Claim(therapist, digest))
    return due


async def _claim(
    session: AsyncSession, therapist_id: uuid.UUID, day: date, now: datetime
) -> Digest | None:
    digest = await session.scalar(
        select(Digest)
        .where(Digest.therapist_id == therapist_id, Digest.day == day)
        .with_for_update(skip_locked=True)
    )
    if digest is not None:
        if digest.next_delivery_at is None or digest.next_delivery_at > now:
            return None  # delivered, given up, or held by another sender
        lease(digest, now)
        return digest
    last = await session.scalar(
        select(func.max(Digest.delivered_at)).where(Digest.therapist_id == therapist_id)
    )
    if last is not None and now - last < MIN_GAP:
        return None  # the weekday was changed after this week's digest went out
    digest = Digest(id=uuid.uuid4(), therapist_id=therapist_id, day=day, claimed_at=now)
    return digest if await claim_new(session, digest, now) else None


async def record(
    session: AsyncSession,
    digest_id: uuid.UUID,
    outcome: SendOutcome,
    message_id: int | None,
    now: datetime,
) -> None:
    """What the send did (store.outbox's rules: at most once from an unclear answer)."""
    digest = await session.get(Digest, digest_id)
    if digest is not None:
        settle(digest, outcome, message_id, now, Guarantee.AT_MOST_ONCE)


async def alerts_raised(session: AsyncSession, therapist_id: uuid.UUID, since: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Alert)
        .join(Client, Client.id == Alert.client_id)
        .where(Client.therapist_id == therapist_id, Alert.created_at >= since)
    )
    return int(count or 0)
