"""The decision after a check-in changed: risk at once, and on close the detectors, the tiers
and the alerts. Called from the three ways a check-in changes: a tap (handlers.checkin), a
comment (handlers.checkin) and the end of its window (schedules.dispatcher); and for text a
client writes when no comment is awaited (`free_text`), which only the risk scan reads.

Each function takes the update's one transaction and runs the store's operation and the
decision in it, so an answer and the alert it raises commit together.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from alliance.detectors import DEFAULTS, DetectorSettings, detect, risk_phrase
from alliance.instruments import Instrument
from alliance.safety import outside_checkin_flag, risk_answer_flag, risk_phrase_flag
from alliance.triage import PUSH_DEFAULTS, TriageSettings, triage
from store import alerts, checkins
from store.alerts import AlertPolicy
from store.checkins import Changed, CommentOutcome, TapAction, TapOutcome
from store.history import client_history
from store.models import Client
from store.vault import Vault


@dataclass(frozen=True)
class Detection:
    """How the practice detects and alerts (from its config; defaults from the literature)."""

    settings: DetectorSettings = DEFAULTS
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    push: TriageSettings = PUSH_DEFAULTS  # which flags reach the therapist's phone at once


async def tap(
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
    detection: Detection = Detection(),
) -> TapOutcome:
    """One button press (store.checkins.record_tap), then the decision about what it changed:
    the outcome's `alert_ids` are the alerts to push now."""
    outcome = await checkins.record_tap(
        session,
        vault,
        known=known,
        checkin_id=checkin_id,
        action=action,
        position=position,
        value=value,
        telegram_user_id=telegram_user_id,
        now=now,
    )
    if outcome.changed is None:
        return outcome
    raised, _ = await decide(session, vault, known, outcome.changed, now, detection)
    return dataclasses.replace(outcome, alert_ids=raised)


async def comment(
    session: AsyncSession,
    vault: Vault,
    *,
    known: Mapping[str, Instrument],
    telegram_user_id: int,
    text: str,
    now: datetime,
    detection: Detection = Detection(),
) -> CommentOutcome:
    """A client's text as the comment of their waiting check-in (store.checkins.record_comment),
    then the decision: a risk phrase raises an urgent alert at once (`risk` is set, so the
    client sees the crisis resources), and the completed check-in is reviewed."""
    outcome = await checkins.record_comment(
        session, vault, known=known, telegram_user_id=telegram_user_id, text=text, now=now
    )
    if outcome.changed is None:
        return outcome
    raised, risk = await decide(session, vault, known, outcome.changed, now, detection)
    return dataclasses.replace(outcome, alert_ids=raised, risk=risk)


@dataclass(frozen=True)
class FreeTextOutcome:
    risk: bool = False  # a risk phrase: the client sees the crisis resources at once
    alert_ids: list[uuid.UUID] = field(default_factory=list)  # to push now


async def free_text(
    session: AsyncSession,
    vault: Vault,
    *,
    client: Client,
    text: str,
    now: datetime,
    detection: Detection = Detection(),
) -> FreeTextOutcome:
    """Text from a client when no comment is awaited: read for a risk phrase in their
    language (the same phrases as a comment's) and then dropped, never stored. A risk phrase
    raises the urgent alert for their own therapist through the same path as a comment's;
    its reason says only that a risk phrase was written outside a check-in."""
    if risk_phrase(text, detection.settings, client.language) is None:
        return FreeTextOutcome()
    key = await vault.key(session, client.id)
    raised = await alerts.raise_flags(
        session, key, client, None, triage([outside_checkin_flag()]), now, detection.policy
    )
    return FreeTextOutcome(risk=True, alert_ids=[alert.id for alert in raised])


async def close_expired(
    session: AsyncSession,
    vault: Vault,
    now: datetime,
    known: Mapping[str, Instrument],
    detection: Detection = Detection(),
) -> int:
    """Close the check-ins past their window (store.checkins.close_expired) and review each
    active client concerned: missed check-ins can be a sign too. How many closed."""
    expired = await checkins.close_expired(session, vault, now)
    for changed in expired.changed:
        await decide(session, vault, known, changed, now, detection)
    return expired.count


async def decide(
    session: AsyncSession,
    vault: Vault,
    known: Mapping[str, Instrument],
    changed: Changed,
    now: datetime,
    detection: Detection,
) -> tuple[list[uuid.UUID], bool]:
    """The alerts to push now about what changed, and whether it carried a risk phrase.

    A risk answer or a risk phrase in the comment raises an urgent alert at once; a closed
    check-in runs the detectors over the client's history and the triage of their flags
    (push or brief; "repeated" needs the previous check-in's flags too).
    """
    client, key = changed.client, changed.key
    risks = []
    if changed.risk_answer is not None:
        risks.append(risk_answer_flag(changed.risk_answer))
    phrase = None
    if changed.comment:
        phrase = risk_phrase(changed.comment, detection.settings, client.language)
        if phrase is not None:
            risks.append(risk_phrase_flag(phrase))
    raised = []
    if risks:
        raised += await alerts.raise_flags(
            session, key, client, changed.checkin_id, triage(risks), now, detection.policy
        )
    if changed.closed:
        history = await client_history(session, vault, client.id, key=key)
        flags = detect(history, known, detection.settings, client.language)
        if flags:
            previous = detect(history[:-1], known, detection.settings, client.language)
            decisions = triage(flags, previous, detection.push)
            raised += await alerts.raise_flags(
                session, key, client, changed.checkin_id, decisions, now, detection.policy
            )
    return [alert.id for alert in raised], phrase is not None
