"""A therapist's own clients: who they are, how each is doing, and the one access check.

Everything a therapist reaches in Telegram goes through `owned` or `find_by_label`, which only
ever return the therapist's own clients; a refusal leaves an audit row (no names, no labels).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.detectors import DetectorSettings
from alliance.history import Status
from alliance.instruments import Instrument
from store import audit
from store.alerts import LIVE
from store.history import CLOSED, client_history
from store.models import Alert, CheckIn, CheckInState, Client, Therapist
from store.vault import Vault, unseal


@dataclass(frozen=True)
class ClientRow:
    """One line of a therapist's caseload."""

    id: uuid.UUID
    label: str
    status: str
    last_checkin_at: datetime | None
    alliance: float | None
    alliance_before: float | None  # the one before the latest, for the trend
    alliance_max: float | None
    wellbeing: float | None
    open_alerts: int
    completed: int  # check-ins answered in the period
    closed: int  # check-ins answered, missed or expired in the period

    @property
    def completion(self) -> float | None:
        return self.completed / self.closed if self.closed else None


def refuse(
    session: AsyncSession,
    therapist: Therapist | None,
    action: str,
    client_id: uuid.UUID | None = None,
) -> None:
    """Audit a refused access: who tried (if known) what on which record, nothing else."""
    audit.record(
        session,
        actor_kind="therapist" if therapist is not None else "telegram",
        actor_id=therapist.id if therapist is not None else None,
        action=action,
        target_kind="client",
        target_id=client_id,
        outcome="refused",
    )


async def owned(
    session: AsyncSession,
    therapist: Therapist,
    client_id: uuid.UUID,
    action: str,
    *,
    admin_may: bool = False,
) -> Client | None:
    """The client if they are this therapist's own (or, with `admin_may`, if the therapist is
    a practice admin: admins receive the alerts of therapists who cannot be reached).

    Anything else is None and an audit row with outcome 'refused'.
    """
    client = await session.get(Client, client_id)
    if client is not None and (
        client.therapist_id == therapist.id or (admin_may and therapist.is_admin)
    ):
        return client
    refuse(session, therapist, action, client_id)
    return None


async def labelled(
    session: AsyncSession, vault: Vault, therapist_id: uuid.UUID
) -> list[tuple[Client, str]]:
    """The therapist's clients with their labels, in the order they were invited."""
    rows = await session.scalars(
        select(Client).where(Client.therapist_id == therapist_id).order_by(Client.created_at)
    )
    out = []
    for client in rows.all():
        out.append((client, unseal(await vault.key(session, client.id), client, "label_enc")))
    return out


def _normal(label: str) -> str:
    return " ".join(label.split()).casefold()


def same_label(a: str, b: str) -> bool:
    """Labels that a therapist could not tell apart when typing them."""
    return _normal(a) == _normal(b)


def match_label(candidates: list[tuple[Client, str]], text: str) -> Client | None:
    """The client whose label is `text` (ignoring case and spaces), or the one client whose
    label starts with it; None when nothing or more than one fits."""
    wanted = _normal(text)
    if not wanted:
        return None
    exact = [c for c, label in candidates if _normal(label) == wanted]
    if len(exact) == 1:
        return exact[0]
    prefix = [c for c, label in candidates if _normal(label).startswith(wanted)]
    return prefix[0] if len(prefix) == 1 and not exact else None


async def find_by_label(
    session: AsyncSession,
    vault: Vault,
    therapist: Therapist,
    words: list[str],
    action: str,
) -> tuple[Client | None, list[str]]:
    """The therapist's own client named by the first words (as many as make a label), and
    the words left over. None, and a refused audit row, when no label fits: another
    therapist's client is not found, exactly as a label nobody has."""
    candidates = await labelled(session, vault, therapist.id)
    for end in range(len(words), 0, -1):
        client = match_label(candidates, " ".join(words[:end]))
        if client is not None:
            return client, words[end:]
    refuse(session, therapist, action)
    return None, words


async def overview(
    session: AsyncSession,
    vault: Vault,
    therapist_id: uuid.UUID,
    known: Mapping[str, Instrument],
    settings: DetectorSettings,
    now: datetime,
    period: timedelta = timedelta(days=28),
) -> list[ClientRow]:
    """Each client's status, last check-in and scores, open alerts and completion rate."""
    clients = await labelled(session, vault, therapist_id)
    ids = [client.id for client, _ in clients]
    if not ids:
        return []
    alerts = Counter(
        dict(
            (
                await session.execute(
                    select(Alert.client_id, func.count())
                    .where(Alert.client_id.in_(ids), Alert.state.in_(LIVE))
                    .group_by(Alert.client_id)
                )
            )
            .tuples()
            .all()
        )
    )
    closed = (
        await session.execute(
            select(CheckIn.client_id, CheckIn.state, func.count())
            .where(
                CheckIn.client_id.in_(ids),
                CheckIn.state.in_(CLOSED),
                CheckIn.due_at >= now - period,
                CheckIn.due_at <= now,
            )
            .group_by(CheckIn.client_id, CheckIn.state)
        )
    ).tuples()
    completed: Counter[uuid.UUID] = Counter()
    ended: Counter[uuid.UUID] = Counter()
    for client_id, state, count in closed:
        ended[client_id] += count
        if state == CheckInState.COMPLETED:
            completed[client_id] += count
    alliance = known.get(settings.alliance_instruments[0])
    wellbeing = known.get(settings.wellbeing_instruments[0])
    rows = []
    for client, label in clients:
        last_at, alliances, wellbeings = await _last_scores(
            session, vault, client.id, alliance, wellbeing
        )
        rows.append(
            ClientRow(
                id=client.id,
                label=label,
                status=client.status,
                last_checkin_at=last_at,
                alliance=alliances[-1] if alliances else None,
                alliance_before=alliances[-2] if len(alliances) > 1 else None,
                alliance_max=alliance.max_total if alliance else None,
                wellbeing=wellbeings[-1] if wellbeings else None,
                open_alerts=alerts[client.id],
                completed=completed[client.id],
                closed=ended[client.id],
            )
        )
    return rows


async def _last_scores(
    session: AsyncSession,
    vault: Vault,
    client_id: uuid.UUID,
    alliance: Instrument | None,
    wellbeing: Instrument | None,
) -> tuple[datetime | None, list[float], list[float]]:
    """When the last check-in was answered, and the recent alliance and wellbeing totals
    (oldest first)."""
    records = await client_history(session, vault, client_id, limit=12)
    answered = [r for r in records if r.status == Status.COMPLETED]
    last_at = answered[-1].due_at if answered else None

    def totals(instrument: Instrument | None) -> list[float]:
        if instrument is None:
            return []
        scores = [instrument.total(r.of(instrument.id)) for r in answered]
        return [score for score in scores if score is not None]

    return last_at, totals(alliance), totals(wellbeing)
