"""The database schema. Columns ending in `_enc` hold sealed blobs (see store/crypto.py);
columns ending in `_hash` hold blind indexes. Nothing identifying or clinical is plaintext."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.outbox import Deliverable


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        bytes: LargeBinary(),
    }


class ClientStatus(enum.StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"
    UNREACHABLE = "unreachable"


class CheckInState(enum.StrEnum):
    DUE = "due"
    SENDING = "sending"
    SENT = "sent"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    EXPIRED = "expired"
    MISSED = "missed"
    CANCELLED = "cancelled"


OPEN_CHECKIN_STATES = (CheckInState.SENT, CheckInState.IN_PROGRESS)
# When a check-in that can still pass its answer window (due, sent or in progress) does so; no
# value (NULL) for all others. An index on this expression makes "has anything expired?" a
# lookup among the few open check-ins, not the growing history, on SQLite and PostgreSQL
# alike, and PostgreSQL keeps statistics for it, so its plans stay right. The query that closes
# expired check-ins (store.checkins.close_expired) must use the same expression, with the
# states written out: an index on an expression only serves a query with that expression.
OPEN_EXPIRY = "(CASE WHEN state IN ({}) THEN expires_at END)".format(
    ", ".join(f"'{state.value}'" for state in (CheckInState.DUE, *OPEN_CHECKIN_STATES))
)


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Practice(Base):
    __tablename__ = "practice"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DataKeyRow(Base):
    """One data key per client or therapist, stored only wrapped by a master key."""

    __tablename__ = "data_key"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    kek_id: Mapped[str] = mapped_column(String(64), index=True)
    wrapped: Mapped[bytes]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Therapist(Base):
    __tablename__ = "therapist"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    practice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("practice.id"))
    name_enc: Mapped[bytes]
    telegram_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    chat_enc: Mapped[bytes | None]
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    linked_at: Mapped[datetime | None]
    # The weekly digest: off while digest_weekday is None; local time in the practice's zone.
    digest_weekday: Mapped[int | None]
    digest_time: Mapped[str | None] = mapped_column(String(5))


class Client(Base):
    __tablename__ = "client"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    practice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("practice.id"))
    therapist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("therapist.id"), index=True)
    label_enc: Mapped[bytes]
    telegram_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    chat_enc: Mapped[bytes | None]
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=ClientStatus.INVITED)
    schedule_template: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    quiet_hours: Mapped[str | None] = mapped_column(String(16))  # "HH:MM-HH:MM", own override
    session_rule: Mapped[str | None] = mapped_column(String(200))  # recurring session time, JSON
    planned_until: Mapped[datetime | None] = mapped_column(index=True)
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consent_at: Mapped[datetime | None]
    paused_until: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enrolled_at: Mapped[datetime | None]


class Invite(Base):
    """A one-time deep-link token; only its SHA-256 is stored."""

    __tablename__ = "invite"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    therapist_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE")
    )
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # The blind index of the Telegram account that opened a client's link: only it may consent.
    opened_by_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class Schedule(Base):
    __tablename__ = "schedule"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[str] = mapped_column(String(2000))
    template: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SessionLog(Base):
    """A therapy session took place (drives session-relative check-ins)."""

    __tablename__ = "session_log"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckIn(Base):
    """One check-in and its log: when it was due, sent, started, answered or closed."""

    __tablename__ = "checkin"
    __table_args__ = (
        UniqueConstraint("schedule_id", "slot_at", name="uq_checkin_slot"),
        Index("ix_checkin_state_due", "state", "due_at"),
        Index("ix_checkin_open_expiry", text(OPEN_EXPIRY)),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), index=True
    )
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("schedule.id", ondelete="CASCADE")
    )
    slot_at: Mapped[datetime]
    instruments: Mapped[str] = mapped_column(String(200))
    with_comment: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default=CheckInState.DUE)
    position: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    comment_enc: Mapped[bytes | None]
    lease_until: Mapped[datetime | None]
    claim: Mapped[uuid.UUID | None]  # which dispatch pass holds it while `sending`
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    sending_at: Mapped[datetime | None]  # set just before the send: "attempting"
    sent_at: Mapped[datetime | None]
    reminder_at: Mapped[datetime | None] = mapped_column(index=True)
    reminded_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class Answer(Base):
    __tablename__ = "answer"
    __table_args__ = (UniqueConstraint("checkin_id", "instrument", "item", name="uq_answer_item"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    checkin_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("checkin.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), index=True
    )
    instrument: Mapped[str] = mapped_column(String(64))
    item: Mapped[str] = mapped_column(String(64))
    value_enc: Mapped[bytes]
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Deliverable, Base):
    """A possible rupture for the therapist; the reason is sealed with the client's key."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_brief", "delivery", "briefed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), index=True
    )
    therapist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("therapist.id"), index=True)
    checkin_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("checkin.id", ondelete="SET NULL")
    )
    rule: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=AlertState.OPEN)
    reason_enc: Mapped[bytes]
    context_enc: Mapped[bytes | None]  # sealed JSON: suggested rupture type, repair ideas
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    # "push": a Telegram message now; "brief": waits for the brief before the next session
    # (alliance.triage decides). `briefed_at`: when a brief carried it.
    delivery: Mapped[str] = mapped_column(String(8), default="push", server_default="push")
    briefed_at: Mapped[datetime | None]


class Notice(Deliverable, Base):
    """A message for a therapist about a client (paused, stopped, left, unreachable).

    Sealed with the therapist's key, not the client's: a notice that a client erased their
    data must outlive the client's key.
    """

    __tablename__ = "notice"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    therapist_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    body_enc: Mapped[bytes]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Brief(Deliverable, Base):
    """The brief a therapist gets before one session of one client: sent at most once.

    The unique (client, session) pair is the claim: the process that inserts the row sends
    the brief; one that surely did not reach Telegram is tried again (store.outbox).
    """

    __tablename__ = "brief"
    __table_args__ = (UniqueConstraint("client_id", "session_at", name="uq_brief_session"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    session_at: Mapped[datetime]
    claimed_at: Mapped[datetime]


class Digest(Deliverable, Base):
    """A therapist's weekly digest for one local day: the unique pair is the claim, so a
    digest goes out at most once that day, also with several processes."""

    __tablename__ = "digest"
    __table_args__ = (UniqueConstraint("therapist_id", "day", name="uq_digest_day"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    therapist_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("therapist.id", ondelete="CASCADE"))
    day: Mapped[date]
    claimed_at: Mapped[datetime]


class AuditEvent(Base):
    """Who did what to which record; never the clinical content itself."""

    __tablename__ = "audit_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str | None] = mapped_column(String(16))
    target_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    detail: Mapped[str | None] = mapped_column(String(500))


class ProcessedUpdate(Base):
    """Telegram update ids already handled, so a redelivered update is processed once."""

    __tablename__ = "processed_update"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class BotSetting(Base):
    """Small non-personal facts the bot learns, such as its own username for invite links."""

    __tablename__ = "bot_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


class WebLogin(Base):
    """A one-time link to the web dashboard, sent through the bot; only its SHA-256 is stored."""

    __tablename__ = "web_login"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    therapist_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser: the cookie's value is known only to the browser; its SHA-256 here."""

    __tablename__ = "web_session"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    therapist_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
