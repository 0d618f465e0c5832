"""A check-in's life in the database: queued, claimed, sent, answered tap by tap, completed.

Every function here runs inside the caller's transaction and commits nothing itself.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Integer,
    Row,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from alliance.checkin import Step, scores, steps
from alliance.instruments import Instrument
from alliance.safety import RiskAnswer, risky_answer
from store import audit, clients
from store.crypto import DataKey, DecryptionError
from store.models import (
    OPEN_CHECKIN_STATES,
    OPEN_EXPIRY,
    Answer,
    Base,
    CheckIn,
    CheckInState,
    Client,
    ClientStatus,
    DataKeyRow,
    SessionLog,
)
from store.outbox import SendOutcome
from store.people import NotFound
from store.vault import Vault, seal, seal_column, unseal, unseal_column

log = logging.getLogger(__name__)

COMMENT_LIMIT = 1000


@dataclass(frozen=True)
class Changed:
    """A check-in that a call changed in a way the practice may need to hear about: it closed,
    a risk item was answered, or a comment came. The decision about it (detectors, tiers,
    alerts) is review/'s; the store only says what happened."""

    client: Client
    checkin_id: uuid.UUID
    key: DataKey  # the client's data key, read already
    closed: bool = False
    risk_answer: RiskAnswer | None = None  # which risk item was answered how
    comment: str | None = None  # the comment as saved, to scan for risk


class ClientUnavailable(Exception):
    """The client cannot receive check-ins now (not joined, paused, stopped, unreachable)."""


class TapAction(enum.StrEnum):
    ANSWER = "answer"
    SKIP = "skip"
    BACK = "back"
    NO_COMMENT = "no_comment"


class TapResult(enum.StrEnum):
    NEXT = "next"  # answer stored (or skipped, or stepped back); show `step`
    ASK_COMMENT = "ask_comment"  # last answer stored; the optional comment comes next
    COMPLETED = "completed"  # last answer stored
    REPEATED = "repeated"  # a double tap or a stale button: nothing changed
    CLOSED = "closed"  # expired, completed, cancelled or unknown check-in
    REFUSED = "refused"  # not the owner, or a value the button could not carry


@dataclass(frozen=True)
class TapOutcome:
    result: TapResult
    step: Step | None = None
    selected: int | None = None  # the answer already given to `step`, after Back
    alert_ids: list[uuid.UUID] = field(default_factory=list)  # raised: review.decide's
    risk: bool = False  # a risk item crossed its threshold: show crisis resources now
    comment_position: int | None = None  # set when the comment prompt is what to show
    scores: dict[str, float | None] = field(default_factory=dict)  # once completed
    language: str | None = None  # the client's, once the press is known to be theirs
    session_known: bool = False  # once completed: a next session is known (for the thanks)
    changed: Changed | None = None  # for the decision that follows


@dataclass(frozen=True)
class Outgoing:
    """A claimed check-in, ready for the messenger: where to send it and its first step.

    With `renew_consent`, the consent text changed since the client agreed: the message asks
    again first, and the check-in starts only after they agree.
    """

    checkin_id: uuid.UUID
    client_id: uuid.UUID
    chat_id: int
    language: str
    step: Step
    renew_consent: bool = False
    timezone: str = "UTC"
    quiet_hours: str | None = None  # the client's own; None means the practice's
    expires_at: datetime | None = None


def instruments_of(
    checkin: CheckIn | _OpenCheckin, known: Mapping[str, Instrument]
) -> list[Instrument]:
    return [known[name] for name in checkin.instruments.split(",") if name]


async def queue_now(
    session: AsyncSession,
    *,
    client_id: uuid.UUID,
    instruments: Sequence[str],
    now: datetime,
    window: timedelta,
    with_comment: bool = True,
) -> CheckIn:
    """A check-in due at once (for `rapport checkin send`); the running bot delivers it."""
    client = await session.get(Client, client_id)
    if client is None:
        raise NotFound(f"no client with id {client_id}")
    if client.status != ClientStatus.ACTIVE:
        raise ClientUnavailable(
            f"client {client_id} is {client.status}: only clients who joined and are active "
            "receive check-ins"
        )
    checkin = CheckIn(
        id=uuid.uuid4(),
        client_id=client.id,
        slot_at=now,
        instruments=",".join(instruments),
        with_comment=with_comment,
        state=CheckInState.DUE,
        created_at=now,
        due_at=now,
        expires_at=now + window,
    )
    session.add(checkin)
    audit.record(
        session,
        actor_kind="admin",
        action="checkin.queue",
        target_kind="client",
        target_id=client.id,
    )
    return checkin


async def claim_due(
    session: AsyncSession,
    vault: Vault,
    *,
    known: Mapping[str, Instrument],
    now: datetime,
    limit: int,
    lease: timedelta,
    claim: uuid.UUID | None = None,
    consent_version: Callable[[str], str] | None = None,
) -> list[Outgoing]:
    """Claim due check-ins for sending; cancel those whose client can no longer receive them.

    A claim is state `sending` with a lease and no `sending_at` yet; `mark_attempting` sets
    that just before the send. Both commit before anything is sent, so after a crash `reap`
    can tell a check-in that was never tried (due again) from one that may have arrived
    (never sent twice). Check-ins past their window are left to `close_expired` (missed,
    never sent).

    A fan-out claims thousands of rows, so this reads each check-in with its owner's columns
    and data key in one statement and writes the claim as one UPDATE, with no ORM objects;
    each owner's key is unwrapped and chat id decrypted once per batch.
    """
    rows = (await session.execute(_DUE, {"now": now, "limit": limit})).all()
    if not rows:
        return []
    first_steps: dict[str, Step] = {}  # a fan-out uses few instrument lists and languages
    versions: dict[str, str] = {}
    chats: dict[uuid.UUID, int | None] = {}  # per owner: None when it cannot receive
    held, cancelled, claimed = [], [], []
    for row in rows:
        owner = row.client_id
        if owner not in chats:
            chats[owner] = _chat_of(vault, row)
        chat = chats[owner]
        if chat is None:
            cancelled.append(row.id)
            continue
        step = first_steps.get(row.instruments)
        if step is None:
            names = [name for name in row.instruments.split(",") if name]
            step = first_steps[row.instruments] = steps([known[n] for n in names])[0]
        renew = False
        if consent_version is not None:
            if row.language not in versions:
                versions[row.language] = consent_version(row.language)
            renew = row.consent_version != versions[row.language]
        held.append(row.id)
        claimed.append(
            Outgoing(
                checkin_id=row.id,
                client_id=owner,
                chat_id=chat,
                language=row.language,
                step=step,
                renew_consent=renew,
                timezone=row.timezone,
                quiet_hours=row.quiet_hours,
                expires_at=row.expires_at,
            )
        )
    if cancelled:
        await _set(session, cancelled, state=CheckInState.CANCELLED, closed_at=now)
    if held:
        await _set(
            session,
            held,
            state=CheckInState.SENDING,
            sending_at=None,
            lease_until=now + lease,
            claim=claim,
        )
    return claimed


def _chat_of(vault: Vault, row: Row[Any]) -> int | None:
    """The chat id of a due check-in's owner (a row of `_DUE`), or None when the owner cannot
    receive check-ins: gone, erased (no data key), not active, or without a chat."""
    if row.status != ClientStatus.ACTIVE or not row.chat_enc or row.key_id is None:
        return None
    key = vault.unwrap(row.client_id, row.key_id, row.kek_id, row.wrapped)
    return int(unseal_column(key, Client, "chat_enc", row.client_id, row.chat_enc))


async def _set(session: AsyncSession, ids: Sequence[uuid.UUID], **values: object) -> None:
    """One UPDATE of these check-ins (no ORM objects are loaded or synchronised)."""
    await session.execute(update(_CHECKINS).where(_checkin.id.in_(ids)).values(**values))


async def mark_attempting(
    session: AsyncSession, checkin_ids: Sequence[uuid.UUID], claim: uuid.UUID | None, now: datetime
) -> set[uuid.UUID]:
    """Record that these sends are about to happen; commit this before sending.

    Returns the ids still held by `claim`: a claim whose lease ran out may have been freed and
    taken by another process meanwhile, and those must not be sent from here.
    """
    statement = _MARK_ATTEMPTING if claim is not None else _MARK_ATTEMPTING_UNCLAIMED
    result = await session.execute(statement, {"ids": checkin_ids, "b_claim": claim, "now": now})
    return set(result.scalars().all())


async def reap(session: AsyncSession, now: datetime) -> tuple[int, int]:
    """Free claims whose process died: never tried goes back to due; tried but unconfirmed
    counts as sent without a message id (it may have arrived, so it is never sent again) and
    is reminded now: a reminder of a check-in without a message id carries its first
    question (see `due_reminders`), so the check-in reaches the client even if its own
    message never did.

    Tried means recorded by `mark_attempting` right before the request went on the wire, so
    after a crash only the requests that were in flight are in doubt."""
    stuck = (
        await session.scalars(
            select(CheckIn)
            .where(CheckIn.state == CheckInState.SENDING, CheckIn.lease_until < now)
            .with_for_update(skip_locked=True)
        )
    ).all()
    retried = unconfirmed = 0
    for checkin in stuck:
        checkin.lease_until, checkin.claim = None, None
        if checkin.sending_at is None:
            checkin.state = CheckInState.DUE
            retried += 1
        else:
            checkin.state, checkin.sent_at = CheckInState.SENT, checkin.sending_at
            if checkin.message_id is None and checkin.reminded_at is None:
                checkin.reminder_at = now
            unconfirmed += 1
    if unconfirmed:
        log.warning(
            "%d check-in sends were interrupted; recorded as unconfirmed, their reminders "
            "carry them",
            unconfirmed,
        )
    return retried, unconfirmed


@dataclass(frozen=True)
class SendResult:
    """What one send of a claimed check-in came to, for `record_sends`."""

    checkin_id: uuid.UUID
    outcome: SendOutcome
    message_id: int | None = None
    reminder_at: datetime | None = None
    claim: uuid.UUID | None = None  # NOT_SENT frees the check-in only if this claim holds it


async def record_send(
    session: AsyncSession,
    vault: Vault,
    checkin_id: uuid.UUID,
    outcome: SendOutcome,
    now: datetime,
    message_id: int | None = None,
    reminder_at: datetime | None = None,
) -> None:
    """`record_sends` for one check-in."""
    result = SendResult(checkin_id, outcome, message_id, reminder_at)
    await record_sends(session, vault, [result], now)


async def record_sends(
    session: AsyncSession, vault: Vault, results: Sequence[SendResult], now: datetime
) -> None:
    """Record what Telegram answered for a chunk of sends, in a few statements for the lot.

    Sent, and unconfirmed (it may have arrived, so its buttons must work and it is never
    sent again; unanswered, it expires as missed), become `sent`. A check-in that is no
    longer `sending` was tapped before this record (the button proves it arrived): only its
    message id is filled in. Surely not sent is due again (if the result names its claim,
    only while that claim still holds the check-in: after a lease ran out another process may
    be sending it); blocked and refused close it.
    """
    sent = [r for r in results if r.outcome in (SendOutcome.SENT, SendOutcome.UNKNOWN)]
    if sent:
        # One executemany on the table (an ORM update with a list would be the ORM's bulk
        # update by primary key, which allows no condition on the row's state).
        await session.execute(_RECORD_SENT, _sent_parameters(sent, now))
    retries: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for r in results:
        if r.outcome == SendOutcome.NOT_SENT:
            retries.setdefault(r.claim, []).append(r.checkin_id)
    for claim, retry in retries.items():
        held = [CheckIn.id.in_(retry), CheckIn.state == CheckInState.SENDING]
        if claim is not None:
            held.append(CheckIn.claim == claim)
        await session.execute(
            update(CheckIn)
            .where(*held)
            .values(state=CheckInState.DUE, sending_at=None, lease_until=None, claim=None)
            .execution_options(synchronize_session=False)
        )
    for result in results:
        if result.outcome in (SendOutcome.BLOCKED, SendOutcome.REJECTED):
            await _record_refusal(session, vault, result, now)


def _sent_parameters(sent: Sequence[SendResult], now: datetime) -> list[dict[str, Any]]:
    return [
        {"b_id": r.checkin_id, "b_message": r.message_id, "b_reminder": r.reminder_at, "b_now": now}
        for r in sent
    ]


async def _record_refusal(
    session: AsyncSession, vault: Vault, result: SendResult, now: datetime
) -> None:
    """Refused for good: the check-in is closed; a client who blocked the bot is unreachable."""
    checkin = await session.get(CheckIn, result.checkin_id)
    if checkin is None or checkin.state != CheckInState.SENDING:
        return
    checkin.lease_until = None
    checkin.state, checkin.closed_at = CheckInState.CANCELLED, now
    client = await session.get(Client, checkin.client_id)
    if result.outcome == SendOutcome.BLOCKED and client is not None:
        await clients.mark_unreachable(session, vault, client, now)


async def record_and_attempt(
    connection: AsyncConnection,
    sent: Sequence[SendResult],
    attempts: Sequence[tuple[uuid.UUID, uuid.UUID | None]],
    now: datetime,
) -> set[uuid.UUID]:
    """The send ledger's usual write: `record_sends` for sends answered sent or unconfirmed
    (and only those), and `mark_attempting` for (check-in, claim) pairs about to be sent;
    the check-ins that no other id in the same call names. Returns the attempts still held
    by their claims.

    On PostgreSQL it is one statement (an UPDATE for each part, as data-modifying CTEs over
    arrays): on a connection in autocommit it commits on its own, so a fan-out's write costs
    one round trip instead of BEGIN, the statements and COMMIT (a fan-out makes one such
    write per window of sends). Elsewhere it is their statements, in the caller's
    transaction."""
    if connection.dialect.name == "postgresql":
        rows = await connection.execute(
            _RECORD_AND_ATTEMPT,
            {
                "sent_ids": [r.checkin_id for r in sent],
                "sent_messages": [r.message_id for r in sent],
                "sent_reminders": [r.reminder_at for r in sent],
                "attempt_ids": [checkin_id for checkin_id, _ in attempts],
                "attempt_claims": [claim for _, claim in attempts],
                "now": now,
            },
        )
        return set(rows.scalars().all())
    if sent:
        await connection.execute(_RECORD_SENT, _sent_parameters(sent, now))
    claims: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for checkin_id, claim in attempts:
        claims.setdefault(claim, []).append(checkin_id)
    held: set[uuid.UUID] = set()
    for claim, ids in claims.items():
        statement = _MARK_ATTEMPTING if claim is not None else _MARK_ATTEMPTING_UNCLAIMED
        rows = await connection.execute(statement, {"ids": ids, "b_claim": claim, "now": now})
        held |= set(rows.scalars().all())
    return held


@dataclass(frozen=True)
class Reminder:
    checkin_id: uuid.UUID
    chat_id: int
    message_id: int | None
    language: str
    timezone: str
    expires_at: datetime
    carries: Step | None = None  # the check-in's own send is in doubt: its first question
    now: datetime | None = None  # when it is sent (its "until" is said from this day)


async def due_reminders(
    session: AsyncSession,
    vault: Vault,
    now: datetime,
    limit: int = 200,
    known: Mapping[str, Instrument] | None = None,
) -> list[Reminder]:
    """Check-ins sent but not started whose reminder time has come. Each is reminded once:
    `mark_reminded`, right before its request goes on the wire, decides who sends it (a lost
    reminder is better than a doubled one). A check-in without a message id may never have
    arrived (its send was in flight at a crash, or timed out): its reminder carries its first
    question (with `known`, the practice's instruments)."""
    rows = (
        await session.scalars(
            select(CheckIn)
            .where(
                CheckIn.state == CheckInState.SENT,
                CheckIn.reminder_at <= now,
                CheckIn.reminded_at.is_(None),
                CheckIn.expires_at > now,
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return []
    owners = {row.client_id for row in rows}
    people = {c.id: c for c in (await session.scalars(select(Client).where(Client.id.in_(owners))))}
    keys = await vault.keys(session, owners)
    due = []
    for checkin in rows:
        client, key = people.get(checkin.client_id), keys.get(checkin.client_id)
        if (
            client is None
            or key is None
            or client.status != ClientStatus.ACTIVE
            or not client.chat_enc
        ):
            checkin.reminded_at = now  # never sent: not asked again
            continue
        carries = None
        if checkin.message_id is None and known is not None:
            carries = steps(instruments_of(checkin, known))[0]
        due.append(
            Reminder(
                checkin.id,
                int(unseal(key, client, "chat_enc")),
                checkin.message_id,
                client.language,
                client.timezone,
                checkin.expires_at,
                carries,
                now,
            )
        )
    return due


async def mark_reminded(session: AsyncSession, checkin_id: uuid.UUID, now: datetime) -> bool:
    """Record that this check-in's reminder is about to go on the wire; commit this before
    sending. False: it was reminded already (by another process, or another tick), or it is
    no longer waiting for an answer: do not send it."""
    result = await session.execute(
        update(CheckIn)
        .where(
            CheckIn.id == checkin_id,
            CheckIn.state == CheckInState.SENT,
            CheckIn.reminded_at.is_(None),
        )
        .values(reminded_at=now)
        .returning(CheckIn.id)
    )
    return result.scalar_one_or_none() is not None


async def unmark_reminded(session: AsyncSession, checkin_id: uuid.UUID) -> None:
    """The reminder surely did not reach Telegram: it may go at a later tick."""
    await session.execute(
        update(CheckIn)
        .where(CheckIn.id == checkin_id, CheckIn.state == CheckInState.SENT)
        .values(reminded_at=None)
        .execution_options(synchronize_session=False)
    )


async def renew_consent(
    session: AsyncSession,
    vault: Vault,
    *,
    known: Mapping[str, Instrument],
    checkin_id: uuid.UUID,
    agree: bool,
    version: str,
    telegram_user_id: int,
    now: datetime,
) -> TapOutcome:
    """The client's answer to a changed consent text shown before a check-in."""
    checkin, client, refusal = await _owned_open_checkin(
        session, vault, checkin_id, telegram_user_id, now
    )
    if checkin is None or client is None:
        return TapOutcome(refusal or TapResult.CLOSED)
    if not agree:
        checkin.state, checkin.closed_at = CheckInState.CANCELLED, now
        return TapOutcome(TapResult.CLOSED)
    client.consent_version, client.consent_at = version, now
    audit.record(
        session,
        actor_kind="client",
        actor_id=client.id,
        action="client.consent",
        target_kind="client",
        target_id=client.id,
    )
    first = steps(instruments_of(checkin, known))[checkin.position]
    return TapOutcome(TapResult.NEXT, first)


@dataclass(frozen=True)
class _OpenCheckin:
    """An open check-in as a tap sees it, with its owner's data key and its answers."""

    id: uuid.UUID
    client_id: uuid.UUID
    instruments: str
    with_comment: bool
    position: int
    started_at: datetime | None
    language: str
    key: DataKey
    answers: Mapping[tuple[str, str], tuple[uuid.UUID, bytes]]  # (instrument, item): id, blob

    def plan(self, known: Mapping[str, Instrument]) -> list[Step]:
        return steps(instruments_of(self, known))

    def answer_id(self, step: Step) -> uuid.UUID | None:
        stored = self.answers.get((step.instrument.id, step.item.id))
        return stored[0] if stored else None

    def values(self) -> dict[tuple[str, str], int]:
        """Every answer given so far, by (instrument, item)."""
        return {
            item: int(unseal_column(self.key, Answer, "value_enc", *stored))
            for item, stored in self.answers.items()
        }

    def value(self, step: Step) -> int | None:
        """The answer already given to `step`, if any (shown as selected after Back)."""
        stored = self.answers.get((step.instrument.id, step.item.id))
        if stored is None:
            return None
        return int(unseal_column(self.key, Answer, "value_enc", *stored))


_CHECKINS, _CLIENTS, _KEYS, _ANSWERS = (
    Base.metadata.tables[m.__tablename__] for m in (CheckIn, Client, DataKeyRow, Answer)
)
_checkin, _client, _key, _answer = _CHECKINS.c, _CLIENTS.c, _KEYS.c, _ANSWERS.c
_OPEN_CHECKIN = (
    select(
        _checkin.client_id,
        _checkin.instruments,
        _checkin.with_comment,
        _checkin.state,
        _checkin.position,
        _checkin.sending_at,
        _checkin.expires_at,
        _checkin.started_at,
        _client.telegram_hash,
        _client.language,
        _key.id.label("key_id"),
        _key.kek_id,
        _key.wrapped,
        _answer.id.label("answer_id"),
        _answer.instrument,
        _answer.item,
        _answer.value_enc,
    )
    .select_from(
        _CHECKINS.join(_CLIENTS, _client.id == _checkin.client_id)
        .outerjoin(_KEYS, _key.owner_id == _checkin.client_id)
        .outerjoin(_ANSWERS, _answer.checkin_id == _checkin.id)
    )
    .where(_checkin.id == bindparam("checkin_id"))
    .with_for_update(of=_CHECKINS)
)
"""A check-in (locked on PostgreSQL) with its owner's blind index, language and data key,
and its answers: one row per answer, or one row with no answer before the first."""

_UPDATE_CHECKIN = update(_CHECKINS).where(_checkin.id == bindparam("checkin_id"))
_INSERT_ANSWER = insert(_ANSWERS)
_UPDATE_ANSWER = update(_ANSWERS).where(_answer.id == bindparam("answer_id"))
_DELETE_ANSWER = delete(_ANSWERS).where(_answer.id == bindparam("answer_id"))

# The dispatch fan-out's statements, built once: a fan-out runs them thousands of times.
_now = bindparam("now", type_=_checkin.due_at.type)  # the column's type: UTC on SQLite
_DUE = (
    select(
        _checkin.id,
        _checkin.client_id,
        _checkin.instruments,
        _checkin.expires_at,
        _client.status,
        _client.chat_enc,
        _client.language,
        _client.consent_version,
        _client.timezone,
        _client.quiet_hours,
        _key.id.label("key_id"),
        _key.kek_id,
        _key.wrapped,
    )
    .select_from(
        _CHECKINS.outerjoin(_CLIENTS, _client.id == _checkin.client_id).outerjoin(
            _KEYS, _key.owner_id == _checkin.client_id
        )
    )
    .where(_checkin.state == CheckInState.DUE, _checkin.due_at <= _now, _checkin.expires_at > _now)
    .order_by(_checkin.due_at)
    .limit(bindparam("limit", type_=Integer()))
    .with_for_update(skip_locked=True, of=_CHECKINS)
)
"""Due check-ins (locked, skipping those another process holds, on PostgreSQL), each with its
owner's status, language, consent, zone, sealed chat id and data key (None when gone)."""

_MARK_ATTEMPTING, _MARK_ATTEMPTING_UNCLAIMED = (
    update(_CHECKINS)
    .where(
        _checkin.id.in_(bindparam("ids", expanding=True, type_=_checkin.id.type)),
        _checkin.state == CheckInState.SENDING,
        _checkin.sending_at.is_(None),
        held,
    )
    .values(sending_at=_now)
    .returning(_checkin.id)
    for held in (
        _checkin.claim == bindparam("b_claim", type_=_checkin.claim.type),
        _checkin.claim.is_(None),
    )
)


def _sent(
    now: ColumnElement[datetime],
    message: ColumnElement[int | None],
    reminder: ColumnElement[datetime | None],
) -> dict[str, ColumnElement[Any]]:
    """The SET of a send recorded as sent or unconfirmed: `sent`, unless a tap moved the
    check-in on already (the button proves it arrived): then only its message id."""
    sending = _checkin.state == CheckInState.SENDING
    return {
        "state": case((sending, CheckInState.SENT.value), else_=_checkin.state),
        "sent_at": case((sending, now), else_=_checkin.sent_at),
        "lease_until": case((sending, null()), else_=_checkin.lease_until),
        "reminder_at": case((sending, reminder), else_=_checkin.reminder_at),
        "message_id": func.coalesce(_checkin.message_id, message),
    }


_when = _checkin.sent_at.type
_RECORD_SENT = (
    update(_CHECKINS)
    .where(_checkin.id == bindparam("b_id", type_=_checkin.id.type))
    .values(
        _sent(
            bindparam("b_now", type_=_when),
            bindparam("b_message", type_=_checkin.message_id.type),
            bindparam("b_reminder", type_=_when),
        )
    )
)
"""Sent or unconfirmed, one check-in per parameter set (an executemany)."""

_answered = (
    func.unnest(
        bindparam("sent_ids", type_=ARRAY(_checkin.id.type)),
        bindparam("sent_messages", type_=ARRAY(BigInteger())),
        bindparam("sent_reminders", type_=ARRAY(_when)),
    )
    .table_valued("id", "message_id", "reminder_at")
    .render_derived(name="answered")
)
_attempts = (
    func.unnest(
        bindparam("attempt_ids", type_=ARRAY(_checkin.id.type)),
        bindparam("attempt_claims", type_=ARRAY(_checkin.claim.type)),
    )
    .table_valued("id", "claim")
    .render_derived(name="attempts")
)
_RECORD_AND_ATTEMPT = select(
    (
        update(_CHECKINS)
        .where(
            _checkin.id == _attempts.c.id,
            _checkin.state == CheckInState.SENDING,
            _checkin.sending_at.is_(None),
            _checkin.claim.is_not_distinct_from(_attempts.c.claim),
        )
        .values(sending_at=_now)
        .returning(_checkin.id)
        .cte("attempted")
    ).c.id
).add_cte(
    update(_CHECKINS)
    .where(_checkin.id == _answered.c.id)
    .values(_sent(_now, _answered.c.message_id, _answered.c.reminder_at))
    .cte("recorded")
)
"""PostgreSQL: `record_and_attempt` in one statement, arrays in and the ids attempted out."""


async def _open_checkin(
    session: AsyncSession,
    vault: Vault,
    checkin_id: uuid.UUID,
    telegram_user_id: int,
    now: datetime,
) -> _OpenCheckin | TapResult:
    """The check-in if this user may act on it now, else why not.

    One Core statement rather than ORM loads of the check-in, client, key and answers: this
    runs on every tap, and each statement costs more than all the rest of a tap's work
    (docs/performance.md).
    """
    rows = (await session.execute(_OPEN_CHECKIN, {"checkin_id": checkin_id})).all()
    if not rows:
        return TapResult.CLOSED
    row = rows[0]
    if row.telegram_hash != vault.telegram_hash(telegram_user_id):
        log.warning("refused a check-in button pressed by someone who does not own it")
        audit.record(
            session,
            actor_kind="telegram",
            action="checkin.tap",
            target_kind="checkin",
            target_id=checkin_id,
            outcome="refused",
            detail="not the owner",
        )
        return TapResult.REFUSED
    # A tap can overtake the record of its own send: the button proves the message arrived.
    arrived = row.state == CheckInState.SENDING and row.sending_at is not None
    if (row.state not in OPEN_CHECKIN_STATES and not arrived) or row.expires_at <= now:
        return TapResult.CLOSED
    if row.key_id is None:
        raise DecryptionError(f"no data key for owner {row.client_id}: it was erased")
    if arrived:
        await _set_checkin(
            session, checkin_id, state=CheckInState.SENT, sent_at=now, lease_until=None
        )
    return _OpenCheckin(
        id=checkin_id,
        client_id=row.client_id,
        instruments=row.instruments,
        with_comment=row.with_comment,
        position=row.position,
        started_at=row.started_at,
        language=row.language,
        key=vault.unwrap(row.client_id, row.key_id, row.kek_id, row.wrapped),
        answers={(r.instrument, r.item): (r.answer_id, r.value_enc) for r in rows if r.answer_id},
    )


async def _owned_open_checkin(
    session: AsyncSession,
    vault: Vault,
    checkin_id: uuid.UUID,
    telegram_user_id: int,
    now: datetime,
) -> tuple[CheckIn | None, Client | None, TapResult | None]:
    """The check-in and its client as ORM objects if this user may act on it now, else why
    not: for the rarer paths that change more than a tap does (consent, completion)."""
    opened = await _open_checkin(session, vault, checkin_id, telegram_user_id, now)
    if isinstance(opened, TapResult):
        return None, None, opened
    checkin, client = await _loaded(session, opened)
    return checkin, client, None


async def _loaded(session: AsyncSession, opened: _OpenCheckin) -> tuple[CheckIn, Client]:
    checkin = await session.get(CheckIn, opened.id)
    client = await session.get(Client, opened.client_id)
    if checkin is None or client is None:  # locked and just read: cannot happen
        raise RuntimeError("an open check-in vanished inside its own transaction")
    return checkin, client


async def _set_checkin(session: AsyncSession, checkin_id: uuid.UUID, **values: object) -> None:
    await session.execute(_UPDATE_CHECKIN, {"checkin_id": checkin_id, **values})


async def _finish(
    session: AsyncSession,
    vault: Vault,
    known: Mapping[str, Instrument],
    opened: _OpenCheckin,
    answers: Mapping[tuple[str, str], int],
    now: datetime,
) -> TapOutcome:
    """The tap that completes a check-in, whose answers the tap has read already."""
    await _set_checkin(session, opened.id, state=CheckInState.COMPLETED, completed_at=now)
    client = await session.get(Client, opened.client_id)
    assert client is not None  # its check-in is locked
    used = instruments_of(opened, known)
    return await _complete(session, known, client, opened.id, opened.key, used, answers, now)


async def record_tap(
    session: AsyncSession,
    vault: Vault,
    *,
    known: Mapping[str, Instrument],
    checkin_id: uuid.UUID,
    action: TapAction,
    position: int,
    value: int | None,
    telegram_user_id: int,
    now: datetime,
) -> TapOutcome:
    """Apply one button press, after checking that it is the owner's, for the step now shown,
    and allowed there. Each answer is stored at once, so a check-in survives a restart.

    The outcome carries the client's language once the press is known to be theirs, and what
    changed (a risk answer, a completed check-in) for review.decide.
    """
    opened = await _open_checkin(session, vault, checkin_id, telegram_user_id, now)
    if isinstance(opened, TapResult):
        return TapOutcome(opened)
    language = opened.language
    plan = opened.plan(known)
    if position != opened.position:
        if opened.position >= len(plan):
            return TapOutcome(
                TapResult.REPEATED, comment_position=opened.position, language=language
            )
        current = plan[opened.position]
        return TapOutcome(TapResult.REPEATED, current, opened.value(current), language=language)
    commenting = position == len(plan)
    if action == TapAction.BACK and position > 0:
        step = plan[position - 1]
        await _set_checkin(session, checkin_id, position=step.position)
        return TapOutcome(TapResult.NEXT, step, opened.value(step), language=language)
    if commenting and action == TapAction.NO_COMMENT:
        return await _finish(session, vault, known, opened, opened.values(), now)
    if commenting or action not in (TapAction.ANSWER, TapAction.SKIP):
        return TapOutcome(TapResult.REFUSED, language=language)
    step = plan[position]
    risk = False
    if action == TapAction.SKIP:
        if not step.item.skippable:
            return TapOutcome(TapResult.REFUSED, language=language)
        await _forget_answer(session, opened, step)
    else:
        if value is None or value not in step.item.values:
            log.warning("refused a check-in button with a value outside the item's scale")
            return TapOutcome(TapResult.REFUSED, language=language)
        await _store_answer(session, opened, step, value, now)
        risk = risky_answer(step.item, value)
    await _set_checkin(
        session,
        checkin_id,
        position=position + 1,
        state=CheckInState.IN_PROGRESS,
        started_at=opened.started_at or now,
    )
    changed = None
    if risk and value is not None:
        owner = await session.get(Client, opened.client_id)
        assert owner is not None  # its check-in is locked
        answered = RiskAnswer(step.instrument.id, step.item.id, value)
        changed = Changed(owner, checkin_id, opened.key, risk_answer=answered)
    if position + 1 < len(plan):
        nxt = plan[position + 1]
        return TapOutcome(
            TapResult.NEXT, nxt, opened.value(nxt), risk=risk, language=language, changed=changed
        )
    if opened.with_comment:
        return TapOutcome(
            TapResult.ASK_COMMENT,
            risk=risk,
            comment_position=len(plan),
            language=language,
            changed=changed,
        )
    answers = opened.values()  # as stored now: this step's answer replaced, or skipped
    answers.pop((step.instrument.id, step.item.id), None)
    if action == TapAction.ANSWER and value is not None:
        answers[(step.instrument.id, step.item.id)] = value
    done = await _finish(session, vault, known, opened, answers, now)
    if done.changed is not None and changed is not None:
        done = replace(done, changed=replace(done.changed, risk_answer=changed.risk_answer))
    return replace(done, risk=risk)


async def _store_answer(
    session: AsyncSession, opened: _OpenCheckin, step: Step, value: int, now: datetime
) -> None:
    """Insert the answer, or replace it when the client went back and answered again."""
    answer_id = opened.answer_id(step)
    if answer_id is not None:
        blob = seal_column(opened.key, Answer, "value_enc", answer_id, str(value))
        await session.execute(
            _UPDATE_ANSWER, {"answer_id": answer_id, "value_enc": blob, "answered_at": now}
        )
        return
    answer_id = uuid.uuid4()
    await session.execute(
        _INSERT_ANSWER,
        {
            "id": answer_id,
            "checkin_id": opened.id,
            "client_id": opened.client_id,
            "instrument": step.instrument.id,
            "item": step.item.id,
            "value_enc": seal_column(opened.key, Answer, "value_enc", answer_id, str(value)),
            "answered_at": now,
        },
    )


async def _forget_answer(session: AsyncSession, opened: _OpenCheckin, step: Step) -> None:
    answer_id = opened.answer_id(step)
    if answer_id is not None:
        await session.execute(_DELETE_ANSWER, {"answer_id": answer_id})


@dataclass(frozen=True)
class CommentOutcome:
    saved: bool
    truncated: bool = False
    risk: bool = False
    message_id: int | None = None  # the check-in message, whose "No comment" button goes
    alert_ids: list[uuid.UUID] = field(default_factory=list)  # raised: review.decide's
    scores: dict[str, float | None] = field(default_factory=dict)
    session_known: bool = False
    changed: Changed | None = None  # for the decision that follows


async def record_comment(
    session: AsyncSession,
    vault: Vault,
    *,
    known: Mapping[str, Instrument],
    telegram_user_id: int,
    text: str,
    now: datetime,
) -> CommentOutcome:
    """Text from a client is the comment of their check-in that is waiting for one, if any:
    saved, and the check-in completed. Scanning it for risk is review.decide's."""
    client = await session.scalar(
        select(Client).where(Client.telegram_hash == vault.telegram_hash(telegram_user_id))
    )
    if client is None:
        return CommentOutcome(saved=False)
    waiting = (
        await session.scalars(
            select(CheckIn)
            .where(
                CheckIn.client_id == client.id,
                CheckIn.state == CheckInState.IN_PROGRESS,
                CheckIn.with_comment.is_(True),
                CheckIn.expires_at > now,
            )
            .order_by(CheckIn.due_at.desc())
        )
    ).all()
    for checkin in waiting:
        if checkin.position == len(steps(instruments_of(checkin, known))):
            cut = text.strip()[:COMMENT_LIMIT]
            key = await vault.key(session, client.id)
            seal(key, checkin, "comment_enc", cut)
            checkin.state, checkin.completed_at = CheckInState.COMPLETED, now
            answers = await answers_of(session, vault, checkin)  # flushes the above first
            used = instruments_of(checkin, known)
            done = await _complete(session, known, client, checkin.id, key, used, answers, now)
            return CommentOutcome(
                True,
                len(text.strip()) > COMMENT_LIMIT,
                message_id=checkin.message_id,
                scores=done.scores,
                session_known=done.session_known,
                changed=Changed(client, checkin.id, key, closed=True, comment=cut),
            )
    return CommentOutcome(saved=False)


@dataclass(frozen=True)
class Standing:
    """Where a client's check-ins stand, for a reply to text that was no comment."""

    open: bool  # a check-in was sent and waits for its buttons
    queued_at: datetime | None  # when the next check-in planned but not yet sent is due


async def standing(session: AsyncSession, client_id: uuid.UUID, now: datetime) -> Standing:
    """Whether one of the client's check-ins is open and still answerable, and when the next
    one that is waiting to be sent is due (not before now)."""
    opened = await session.scalar(
        select(CheckIn.id)
        .where(
            CheckIn.client_id == client_id,
            CheckIn.state.in_(OPEN_CHECKIN_STATES),
            CheckIn.expires_at > now,
        )
        .limit(1)
    )
    queued = await session.scalar(
        select(func.min(CheckIn.due_at)).where(
            CheckIn.client_id == client_id,
            CheckIn.state.in_((CheckInState.DUE, CheckInState.SENDING)),
            CheckIn.expires_at > now,
        )
    )
    return Standing(opened is not None, max(queued, now) if queued is not None else None)


async def _complete(
    session: AsyncSession,
    known: Mapping[str, Instrument],
    client: Client,
    checkin_id: uuid.UUID,
    key: DataKey,
    used: Sequence[Instrument],
    answers: Mapping[tuple[str, str], int],
    now: datetime,
) -> TapOutcome:
    """A check-in just closed as completed (the caller wrote that): the scores of these
    answers for the closing message, and what closed, for review.decide."""
    return TapOutcome(
        TapResult.COMPLETED,
        scores=scores(used, answers),
        language=client.language,
        session_known=await _next_session_known(session, client, now),
        changed=Changed(client, checkin_id, key, closed=True),
    )


async def _next_session_known(session: AsyncSession, client: Client, now: datetime) -> bool:
    """Whether the therapist will get a brief before a next session (the thank-you says so
    only then)."""
    if client.session_rule is not None:
        return True
    logged = await session.scalar(
        select(SessionLog.id).where(SessionLog.client_id == client.id, SessionLog.at > now).limit(1)
    )
    return logged is not None


async def answers_of(
    session: AsyncSession, vault: Vault, checkin: CheckIn
) -> dict[tuple[str, str], int]:
    key = await vault.key(session, checkin.client_id)
    rows = (await session.scalars(select(Answer).where(Answer.checkin_id == checkin.id))).all()
    return {(row.instrument, row.item): int(unseal(key, row, "value_enc")) for row in rows}


@dataclass(frozen=True)
class Expired:
    count: int  # check-ins closed
    changed: list[Changed]  # per active client concerned: their latest closed check-in


async def close_expired(session: AsyncSession, vault: Vault, now: datetime) -> Expired:
    """Close check-ins past their window: never started is missed, started is expired (also
    one never sent, e.g. after downtime). Missing check-ins can be a sign too: the result
    names, for each active client concerned, their latest closed check-in, for
    review.decide."""
    rows = (
        await session.scalars(
            select(CheckIn)
            .where(literal_column(OPEN_EXPIRY, CheckIn.expires_at.type) <= now)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for checkin in rows:
        started = checkin.state == CheckInState.IN_PROGRESS
        checkin.state = CheckInState.EXPIRED if started else CheckInState.MISSED
        checkin.closed_at = now
    await session.flush()
    changed = []
    latest = {row.client_id: row.id for row in sorted(rows, key=lambda row: row.due_at)}
    for client_id, checkin_id in latest.items():
        client = await session.get(Client, client_id)
        if client is not None and client.status == ClientStatus.ACTIVE:
            key = await vault.key(session, client.id)
            changed.append(Changed(client, checkin_id, key, closed=True))
    return Expired(len(rows), changed)
