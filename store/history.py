"""A client's recent check-ins, decrypted, as the detectors and the trend chart read them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from alliance.detectors import DEFAULTS, DetectorSettings, usual_range
from alliance.history import CheckinRecord, Status
from alliance.instruments import Instrument
from store.crypto import DataKey
from store.models import Answer, CheckIn, CheckInState
from store.vault import Vault, unseal_column

CLOSED = (CheckInState.COMPLETED, CheckInState.MISSED, CheckInState.EXPIRED)
TREND_CHECKINS = 12  # the check-ins a trend shows


async def client_history(
    session: AsyncSession,
    vault: Vault,
    client_id: uuid.UUID,
    limit: int = 24,
    skip: int = 0,
    key: DataKey | None = None,
) -> list[CheckinRecord]:
    """The client's last `limit` closed check-ins (before the latest `skip`), oldest first.

    Core statements, not ORM loads: this runs at the end of every check-in, where loading a
    few dozen check-ins and their answers as objects cost more than the rest of the tap
    (docs/performance.md). `key` is the client's data key, when the caller has it already.
    """
    checkins = list(
        (
            await session.execute(
                _CLOSED_CHECKINS, {"client_id": client_id, "skip": skip, "limit": limit}
            )
        ).all()
    )
    if not checkins:
        return []
    checkins.reverse()
    key = key or await vault.key(session, client_id)
    answers: dict[uuid.UUID, dict[tuple[str, str], int]] = defaultdict(dict)
    ids = [row.id for row in checkins]
    for answer in (await session.execute(_ANSWERS_OF, {"ids": ids})).all():
        value = unseal_column(key, Answer, "value_enc", answer.id, answer.value_enc)
        answers[answer.checkin_id][(answer.instrument, answer.item)] = int(value)
    return [
        CheckinRecord(
            checkin_id=str(row.id),
            due_at=row.due_at,
            status=Status(row.state),
            answers=answers.get(row.id, {}),
            comment=unseal_column(key, CheckIn, "comment_enc", row.id, row.comment_enc)
            if row.comment_enc
            else None,
        )
        for row in checkins
    ]


_CLOSED_CHECKINS = (
    select(CheckIn.id, CheckIn.due_at, CheckIn.state, CheckIn.comment_enc)
    .where(CheckIn.client_id == bindparam("client_id"), CheckIn.state.in_(CLOSED))
    .order_by(CheckIn.due_at.desc(), CheckIn.id)
    .offset(bindparam("skip"))
    .limit(bindparam("limit"))
)
_ANSWERS_OF = select(
    Answer.id, Answer.checkin_id, Answer.instrument, Answer.item, Answer.value_enc
).where(Answer.checkin_id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class Point:
    """One check-in on a trend: both scores None and `missed` for one never answered."""

    at: datetime
    alliance: float | None = None
    wellbeing: float | None = None
    missed: bool = False


@dataclass(frozen=True)
class Trend:
    points: Sequence[Point]
    alliance_max: float = 40
    cutoff: float | None = 36
    baseline: float | None = None  # the client's usual alliance total before the latest
    band: float | None = None  # one SD (or its floor) around it
    wellbeing_cutoff: float | None = 52  # WHO-5 percent (raw 13 x 4)


async def trend(
    session: AsyncSession,
    vault: Vault,
    client_id: uuid.UUID,
    known: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
    last: int = TREND_CHECKINS,
) -> Trend:
    """The last check-ins' alliance and wellbeing scores, with the client's usual range."""
    return trend_of(await client_history(session, vault, client_id, limit=last), known, settings)


def trend_of(
    records: Sequence[CheckinRecord],
    known: Mapping[str, Instrument],
    settings: DetectorSettings = DEFAULTS,
) -> Trend:
    """`trend` of check-ins read already (oldest first, as `client_history` gives them)."""
    alliance = known.get(settings.alliance_instruments[0])
    wellbeing = known.get(settings.wellbeing_instruments[0])
    points = [
        Point(
            at=record.due_at,
            alliance=alliance.total(record.of(alliance.id)) if alliance else None,
            wellbeing=wellbeing.total(record.of(wellbeing.id)) if wellbeing else None,
            missed=record.status != Status.COMPLETED,
        )
        for record in records
    ]
    totals = [p.alliance for p in points if p.alliance is not None]
    usual = usual_range(totals[:-1], alliance, settings) if alliance and totals else None
    return Trend(
        points=points,
        alliance_max=alliance.max_total if alliance else 40,
        cutoff=alliance.cutoff if alliance else None,
        baseline=usual[0] if usual else None,
        band=usual[1] if usual else None,
        wellbeing_cutoff=(wellbeing.cutoff + 1) * wellbeing.scale_factor
        if wellbeing and wellbeing.cutoff is not None
        else None,
    )
