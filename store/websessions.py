"""Signing in to the web dashboard without a password: a one-time link, then a session.

A therapist gets a link through the bot (/web) or from the command line (`rapport web link`);
it works once, for minutes. Opening it starts a session held by a browser cookie. Only the
SHA-256 of the link's token and of the cookie are stored, so a copy of the database signs
nobody in. A session ends after its lifetime, at sign-out, or when the therapist is
deactivated. The CSRF token of a session is derived from the cookie (an HMAC), so it needs no
storage and no one without the cookie can compute it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.models import Therapist, WebLogin, WebSession
from store.people import token_hash

LOGIN_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(hours=12)
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_CSRF_CONTEXT = b"rapport web csrf"


@dataclass(frozen=True)
class IssuedLogin:
    token: str  # shown once, in the link
    expires_at: datetime


@dataclass(frozen=True)
class Started:
    token: str  # the cookie's value: given to the browser once, never stored
    therapist_id: uuid.UUID
    expires_at: datetime


def csrf_token(session_token: str) -> str:
    """The CSRF token of the session whose cookie holds `session_token`."""
    return hmac.new(session_token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_ok(session_token: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(csrf_token(session_token), given)


async def issue_login(
    session: AsyncSession,
    therapist: Therapist,
    now: datetime,
    *,
    actor_kind: str = "therapist",
    ttl: timedelta = LOGIN_TTL,
) -> IssuedLogin:
    """A one-time sign-in link's token for an active therapist."""
    if not therapist.active:
        raise ValueError("this therapist is deactivated and cannot sign in")
    token = secrets.token_urlsafe(32)
    session.add(
        WebLogin(
            id=uuid.uuid4(),
            token_hash=token_hash(token),
            therapist_id=therapist.id,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    audit.record(
        session,
        actor_kind=actor_kind,
        actor_id=therapist.id if actor_kind == "therapist" else None,
        action="web.link",
        target_kind="therapist",
        target_id=therapist.id,
    )
    return IssuedLogin(token, now + ttl)


async def _usable_login(session: AsyncSession, token: str, now: datetime) -> WebLogin | None:
    if not TOKEN_PATTERN.match(token):
        return None
    login = await session.scalar(
        select(WebLogin).where(WebLogin.token_hash == token_hash(token)).with_for_update()
    )
    if login is None or login.used_at is not None or login.expires_at <= now:
        return None
    therapist = await session.get(Therapist, login.therapist_id)
    return login if therapist is not None and therapist.active else None


async def login_usable(session: AsyncSession, token: str, now: datetime) -> bool:
    """Whether the link would sign someone in now (it is not used by asking)."""
    return await _usable_login(session, token, now) is not None


async def redeem_login(
    session: AsyncSession, token: str, now: datetime, ttl: timedelta = SESSION_TTL
) -> Started | None:
    """Use the link once: a new session, or None for a used, expired or unknown link (never
    saying which, so tokens cannot be probed)."""
    login = await _usable_login(session, token, now)
    if login is None:
        audit.record(session, actor_kind="web", action="web.login", outcome="refused")
        return None
    login.used_at = now
    cookie = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id=uuid.uuid4(),
            token_hash=token_hash(cookie),
            therapist_id=login.therapist_id,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    audit.record(
        session,
        actor_kind="therapist",
        actor_id=login.therapist_id,
        action="web.login",
        target_kind="therapist",
        target_id=login.therapist_id,
    )
    return Started(cookie, login.therapist_id, now + ttl)


async def signed_in(session: AsyncSession, cookie: str | None, now: datetime) -> Therapist | None:
    """The active therapist whose live session the cookie holds, or None."""
    if not cookie or not TOKEN_PATTERN.match(cookie):
        return None
    row = await session.scalar(
        select(WebSession).where(WebSession.token_hash == token_hash(cookie))
    )
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    therapist = await session.get(Therapist, row.therapist_id)
    return therapist if therapist is not None and therapist.active else None


async def sign_out(session: AsyncSession, cookie: str, now: datetime) -> None:
    therapist = await signed_in(session, cookie, now)
    await session.execute(
        update(WebSession)
        .where(WebSession.token_hash == token_hash(cookie), WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    if therapist is not None:
        audit.record(
            session,
            actor_kind="therapist",
            actor_id=therapist.id,
            action="web.logout",
            target_kind="therapist",
            target_id=therapist.id,
        )


async def prune(session: AsyncSession, now: datetime) -> None:
    """Forget links and sessions that can no longer be used (a day after they ended)."""
    before = now - timedelta(days=1)
    await session.execute(delete(WebLogin).where(WebLogin.expires_at < before))
    await session.execute(delete(WebSession).where(WebSession.expires_at < before))


def login_link(base_url: str, token: str) -> str:
    """The link that opens the dashboard's sign-in page for this token."""
    return f"{base_url}/login/{token}"
