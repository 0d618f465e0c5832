"""The weekly digest a therapist can ask for: when it is due, and what it says."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Alert, Client, Therapist

WEEK = timedelta(days=7)
# A digest is sent at most once in this long, so a restart on digest day sends no second one.
MIN_GAP = timedelta(days=6)


@dataclass(frozen=True)
class DigestTime:
    weekday: int  # 0 = Monday
    at: time


@dataclass(frozen=True)
class Claim:
    """A therapist whose digest this process is sending, and when they last had one."""

    therapist: Therapist
    previous: datetime | None


def current(therapist: Therapist) -> DigestTime | None:
    if therapist.digest_weekday is None or therapist.digest_time is None:
        return None
    return DigestTime(therapist.digest_weekday, time.fromisoformat(therapist.digest_time))


def choose(therapist: Therapist, when: DigestTime | None) -> None:
    """Turn the digest on at `when`, or off with None."""
    therapist.digest_weekday = when.weekday if when else None
    therapist.digest_time = f"{when.at:%H:%M}" if when else None


async def claim_due(session: AsyncSession, now: datetime, zone: str) -> list[Claim]:
    """Linked, active therapists whose digest time has come this week and who have not had
    one since; each is marked sent here, so a digest goes out at most once."""
    local = now.astimezone(ZoneInfo(zone))
    rows = await session.scalars(
        select(Therapist)
        .where(
            Therapist.digest_weekday == local.weekday(),
            Therapist.active.is_(True),
            Therapist.chat_enc.is_not(None),
        )
        .with_for_update(skip_locked=True)
    )
    due = []
    for therapist in rows.all():
        chosen = current(therapist)
        if chosen is None or local.time() < chosen.at:
            continue
        if therapist.digest_sent_at is not None and now - therapist.digest_sent_at < MIN_GAP:
            continue
        due.append(Claim(therapist, previous=therapist.digest_sent_at))
        therapist.digest_sent_at = now
    return due


async def release(session: AsyncSession, claim: Claim, claimed_at: datetime) -> None:
    """Give back a claim whose digest surely did not reach Telegram, so the next run (on the
    same day) tries again; a claim that another run has taken since is left alone."""
    await session.execute(
        update(Therapist)
        .where(Therapist.id == claim.therapist.id, Therapist.digest_sent_at == claimed_at)
        .values(digest_sent_at=claim.previous)
    )


async def alerts_raised(session: AsyncSession, therapist_id: uuid.UUID, since: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Alert)
        .join(Client, Client.id == Alert.client_id)
        .where(Client.therapist_id == therapist_id, Alert.created_at >= since)
    )
    return int(count or 0)
