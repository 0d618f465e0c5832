"""Practices, therapists, clients and the one-time invite links that connect them to Telegram."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit, lifecycle
from store.crypto import DecryptionError
from store.lifecycle import ClientEvent
from store.models import Client, ClientStatus, Invite, Practice, Therapist
from store.vault import Vault, seal, unseal

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class NotFound(LookupError):
    """An id given on the command line names no such record."""


LABEL_LIMIT = 64  # characters of a client label a therapist chooses


@dataclass(frozen=True)
class IssuedInvite:
    """A fresh token: shown once to the practice, stored only as its hash."""

    token: str
    expires_at: datetime


@dataclass(frozen=True)
class TherapistView:
    id: uuid.UUID
    name: str
    is_admin: bool
    active: bool
    linked: bool
    clients: int


@dataclass(frozen=True)
class ClientView:
    id: uuid.UUID
    label: str
    therapist_id: uuid.UUID
    status: str
    timezone: str
    schedule_template: str | None
    created_at: datetime


@dataclass(frozen=True)
class Linked:
    """A redeemed invite: who is now linked."""

    role: str  # "therapist" or "client"
    person_id: uuid.UUID
    therapist_id: uuid.UUID


def invite_link(bot_username: str, token: str) -> str:
    """The deep link that opens the bot with the invite token (Telegram's /start payload)."""
    return f"https://t.me/{bot_username}?start={token}"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin"
        ) from None
    return name


async def practice(session: AsyncSession, name: str = "Rapport practice") -> Practice:
    """The practice this installation serves, created on first use."""
    existing = await session.scalar(select(Practice).order_by(Practice.created_at).limit(1))
    if existing is not None:
        return existing
    row = Practice(id=uuid.uuid4(), name=name)
    session.add(row)
    await session.flush()
    return row


async def _issue(
    session: AsyncSession,
    *,
    purpose: str,
    now: datetime,
    ttl: timedelta,
    therapist_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
) -> IssuedInvite:
    token = secrets.token_urlsafe(24)
    expires_at = now + ttl
    session.add(
        Invite(
            id=uuid.uuid4(),
            token_hash=token_hash(token),
            purpose=purpose,
            therapist_id=therapist_id,
            client_id=client_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return IssuedInvite(token, expires_at)


async def add_therapist(
    session: AsyncSession,
    vault: Vault,
    *,
    name: str,
    is_admin: bool,
    now: datetime,
    invite_ttl: timedelta,
    actor_kind: str = "admin",
    actor_id: uuid.UUID | None = None,
) -> tuple[Therapist, IssuedInvite]:
    if not name.strip():
        raise ValueError("the therapist's name must not be empty")
    owner = await practice(session)
    therapist = Therapist(id=uuid.uuid4(), practice_id=owner.id, is_admin=is_admin, created_at=now)
    key = await vault.create_key(session, therapist.id)
    seal(key, therapist, "name_enc", name.strip())
    session.add(therapist)
    await session.flush()
    invite = await _issue(
        session, purpose="therapist", now=now, ttl=invite_ttl, therapist_id=therapist.id
    )
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action="therapist.add",
        target_kind="therapist",
        target_id=therapist.id,
    )
    return therapist, invite


async def invite_client(
    session: AsyncSession,
    vault: Vault,
    *,
    therapist_id: uuid.UUID,
    label: str,
    timezone: str,
    schedule_template: str | None,
    now: datetime,
    invite_ttl: timedelta,
    actor_kind: str = "admin",
    actor_id: uuid.UUID | None = None,
) -> tuple[Client, IssuedInvite]:
    therapist = await session.get(Therapist, therapist_id)
    if therapist is None or not therapist.active:
        raise NotFound(f"no active therapist with id {therapist_id}")
    client = Client(
        id=uuid.uuid4(),
        practice_id=therapist.practice_id,
        therapist_id=therapist.id,
        timezone=validate_timezone(timezone),
        status=ClientStatus.INVITED,
        schedule_template=schedule_template,
        created_at=now,
    )
    key = await vault.create_key(session, client.id)
    seal(key, client, "label_enc", label.strip() or "client")
    session.add(client)
    await session.flush()
    invite = await _issue(session, purpose="client", now=now, ttl=invite_ttl, client_id=client.id)
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=actor_id,
        action="client.invite",
        target_kind="client",
        target_id=client.id,
    )
    return client, invite


async def list_therapists(session: AsyncSession, vault: Vault) -> list[TherapistView]:
    grouped = await session.execute(
        select(Client.therapist_id, func.count()).group_by(Client.therapist_id)
    )
    counts = {therapist_id: count for therapist_id, count in grouped.tuples().all()}
    rows = (await session.scalars(select(Therapist).order_by(Therapist.created_at))).all()
    views = []
    for row in rows:
        key = await vault.key(session, row.id)
        views.append(
            TherapistView(
                id=row.id,
                name=unseal(key, row, "name_enc"),
                is_admin=row.is_admin,
                active=row.active,
                linked=row.telegram_hash is not None,
                clients=counts.get(row.id, 0),
            )
        )
    return views


async def active_admins(session: AsyncSession) -> list[Therapist]:
    """The practice admins who can be told things: therapists with is_admin, still active."""
    rows = await session.scalars(
        select(Therapist)
        .where(Therapist.is_admin.is_(True), Therapist.active.is_(True))
        .order_by(Therapist.created_at)
    )
    return list(rows.all())


async def list_clients(
    session: AsyncSession, vault: Vault, therapist_id: uuid.UUID | None = None
) -> list[ClientView]:
    query = select(Client).order_by(Client.created_at)
    if therapist_id is not None:
        query = query.where(Client.therapist_id == therapist_id)
    views = []
    rows = (await session.scalars(query)).all()
    keys = await vault.keys(session, [row.id for row in rows])  # a few queries, not one each
    for row in rows:
        key = keys.get(row.id)
        if key is None:
            raise DecryptionError(f"no data key for owner {row.id}: it was erased")
        views.append(
            ClientView(
                id=row.id,
                label=unseal(key, row, "label_enc"),
                therapist_id=row.therapist_id,
                status=row.status,
                timezone=row.timezone,
                schedule_template=row.schedule_template,
                created_at=row.created_at,
            )
        )
    return views


async def find_by_telegram(
    session: AsyncSession, vault: Vault, telegram_user_id: int
) -> Therapist | Client | None:
    digest = vault.telegram_hash(telegram_user_id)
    therapist = await session.scalar(select(Therapist).where(Therapist.telegram_hash == digest))
    if therapist is not None:
        return therapist
    client: Client | None = await session.scalar(
        select(Client).where(Client.telegram_hash == digest)
    )
    return client


async def open_invite(
    session: AsyncSession,
    *,
    now: datetime,
    token: str | None = None,
    invite_id: uuid.UUID | None = None,
) -> Invite | None:
    """The unused, unexpired invite for a token (or, once its link was opened, its id).

    Any invite that is not good is simply None: a stranger learns that it did not work,
    never why, so tokens cannot be probed.
    """
    if token is not None:
        if not TOKEN_PATTERN.match(token):
            return None
        query = select(Invite).where(Invite.token_hash == token_hash(token))
    elif invite_id is not None:
        query = select(Invite).where(Invite.id == invite_id)
    else:
        return None
    invite = await session.scalar(query.with_for_update())
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        return None
    return invite


def bind_invite(
    session: AsyncSession, vault: Vault, *, invite: Invite, telegram_user_id: int
) -> bool:
    """Bind a client's invite to the Telegram account that opened its link; False if another
    account opened it first.

    Consent comes a step after the link is opened, in a button whose data (the invite's id) the
    pressing app writes and anyone can forge, so the invite remembers who opened the link, by
    blind index (never the Telegram id itself), and only that account may consent
    (`may_consent`). The first account to open a valid link keeps it until it is used or
    expires: the same account may open it again (the link "still works" after "Not now"); any
    other account that opens it is turned away like a stranger, with an `invite.open_refused`
    audit row, and the invitee needs a new invitation to join from a different account.
    """
    digest = vault.telegram_hash(telegram_user_id)
    if invite.opened_by_hash is None:
        invite.opened_by_hash = digest
        return True
    if hmac.compare_digest(invite.opened_by_hash, digest):
        return True
    _refused(session, invite, "invite.open_refused")
    return False


def may_consent(
    session: AsyncSession, vault: Vault, *, invite: Invite, telegram_user_id: int
) -> bool:
    """Whether this Telegram account opened the invite's link and so may answer its consent
    offer. A press from any other account changes nothing and is audited
    (`invite.consent_refused`); so is one on an invite whose link was never opened (or was
    opened before invites were bound: opening it again binds it)."""
    opener = invite.opened_by_hash
    if opener is not None and hmac.compare_digest(opener, vault.telegram_hash(telegram_user_id)):
        return True
    _refused(session, invite, "invite.consent_refused")
    return False


def _refused(session: AsyncSession, invite: Invite, action: str) -> None:
    """Audit a refused step of joining: which invitation, never who tried."""
    audit.record(
        session,
        actor_kind="telegram",
        action=action,
        target_kind="client",
        target_id=invite.client_id,
        outcome="refused",
        detail="not the account that opened the invitation link",
    )


async def redeem_invite(
    session: AsyncSession,
    vault: Vault,
    *,
    invite: Invite,
    telegram_user_id: int,
    chat_id: int,
    now: datetime,
    consent_version: str | None = None,
    language: str | None = None,
) -> Linked | None:
    """Link a Telegram account through an open invite; a client's consent is recorded with it.

    Returns None when this Telegram account is already linked to someone in Rapport.
    """
    if await find_by_telegram(session, vault, telegram_user_id) is not None:
        return None
    person: Therapist | Client | None
    if invite.purpose == "therapist" and invite.therapist_id is not None:
        person = await session.get(Therapist, invite.therapist_id)
    elif invite.purpose == "client" and invite.client_id is not None:
        person = await session.get(Client, invite.client_id)
    else:
        person = None
    if person is None:
        return None
    if isinstance(person, Client) and not lifecycle.allowed(person, ClientEvent.JOIN):
        return None  # an invite starts a client once
    key = await vault.key(session, person.id)
    person.telegram_hash = vault.telegram_hash(telegram_user_id)
    seal(key, person, "chat_enc", str(chat_id))
    invite.used_at = now
    if isinstance(person, Therapist):
        person.linked_at = now
        linked = Linked("therapist", person.id, person.id)
    else:
        lifecycle.move(person, ClientEvent.JOIN)
        person.enrolled_at = now
        person.planned_until = now  # the schedule starts now, not at the invitation
        person.consent_version, person.consent_at = consent_version, now
        person.language = language or person.language
        linked = Linked("client", person.id, person.therapist_id)
    audit.record(
        session,
        actor_kind=linked.role,
        actor_id=person.id,
        action=f"{linked.role}.link",
        target_kind=linked.role,
        target_id=person.id,
    )
    return linked


async def therapist_chats(session: AsyncSession, vault: Vault) -> list[tuple[int, bool]]:
    """(chat, active) for every therapist who linked Telegram."""
    rows = await session.scalars(select(Therapist).where(Therapist.chat_enc.is_not(None)))
    out = []
    for therapist in rows.all():
        chat = await chat_id(session, vault, therapist)
        if chat is not None:
            out.append((chat, therapist.active))
    return out


async def chat_id(session: AsyncSession, vault: Vault, person: Therapist | Client) -> int | None:
    """The Telegram chat to write to, or None when the person never linked an account."""
    if person.chat_enc is None:
        return None
    return int(unseal(await vault.key(session, person.id), person, "chat_enc"))
