"""Small builders for tests: a therapist and clients, linked as the real invite flow links them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import load_instruments
from review import decide as review
from store import people
from store.checkins import TapAction, TapOutcome
from store.db import transaction
from store.models import CheckIn, Client, Therapist
from store.vault import Vault

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TAPPED = NOW + timedelta(minutes=1)
TTL = timedelta(days=14)
INSTRUMENTS = load_instruments(None, Path("."))


@dataclass(frozen=True)
class Team:
    therapist: Therapist
    therapist_token: str
    client: Client
    client_token: str


async def team(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    *,
    therapist_tg: int | None = 5001,
    client_tg: int | None = 7001,
    label: str = "Client Rosalind",
    name: str = "Therapist Ada",
    now: datetime = NOW,
) -> Team:
    """A therapist with one client; each is linked to Telegram when given an id."""
    async with transaction(sessions) as session:
        therapist, t_invite = await people.add_therapist(
            session, vault, name=name, is_admin=False, now=now, invite_ttl=TTL
        )
        client, c_invite = await people.invite_client(
            session,
            vault,
            therapist_id=therapist.id,
            label=label,
            timezone="Europe/Berlin",
            schedule_template=None,
            now=now,
            invite_ttl=TTL,
        )
    for token, tg in ((t_invite.token, therapist_tg), (c_invite.token, client_tg)):
        if tg is not None:
            assert await redeem(sessions, vault, token, tg, now) is not None
    async with sessions() as session:
        therapist_row = await session.get(Therapist, therapist.id)
        client_row = await session.get(Client, client.id)
    assert therapist_row is not None and client_row is not None
    return Team(therapist_row, t_invite.token, client_row, c_invite.token)


async def redeem(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    token: str,
    telegram_id: int,
    now: datetime = NOW,
) -> people.Linked | None:
    """Open the invite link as the user with `telegram_id` would, and agree."""
    async with transaction(sessions) as session:
        invite = await people.open_invite(session, token=token, now=now)
        if invite is None:
            return None
        return await people.redeem_invite(
            session,
            vault,
            invite=invite,
            telegram_user_id=telegram_id,
            chat_id=telegram_id,
            now=now,
            consent_version="v1",
        )


async def tap(
    sessions: async_sessionmaker[AsyncSession],
    vault: Vault,
    checkin: CheckIn | uuid.UUID,
    position: int,
    value: int | None,
    user: int = 7001,
    action: TapAction | None = None,
    now: datetime = TAPPED,
) -> TapOutcome:
    """One button press on `checkin` (or the check-in with that id) by Telegram user `user`,
    at `now` (a minute after NOW): an answer when there is a value, else "No comment", unless
    `action` says otherwise."""
    async with transaction(sessions) as session:
        return await review.tap(
            session,
            vault,
            known=INSTRUMENTS,
            checkin_id=checkin if isinstance(checkin, uuid.UUID) else checkin.id,
            action=action or (TapAction.ANSWER if value is not None else TapAction.NO_COMMENT),
            position=position,
            value=value,
            telegram_user_id=user,
            now=now,
        )
