"""Check-in taps: what a press may change and which language answers it.

The tap path reads the check-in, its owner and its answers in one statement and writes
without ORM objects (docs/performance.md); these are the cases its rewrite had to keep.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.config import load_instruments
from handlers.texts import DEFAULTS
from store import checkins
from store.checkins import TapAction, TapOutcome, TapResult
from store.db import transaction
from store.models import Answer, AuditEvent, CheckIn, CheckInState
from store.vault import Vault
from tests.conftest import Database, practice_rig
from tests.factories import NOW, TAPPED, tap, team
from tests.rig import first_question, join

INSTRUMENTS = load_instruments(None, Path("."))
WINDOW = timedelta(hours=24)


async def _queued(database: Database, client_id: object, state: CheckInState) -> CheckIn:
    """A check-in in `state`: `sending` here means the send was attempted (sending_at set)."""
    async with transaction(database.sessions) as session:
        checkin = await checkins.queue_now(
            session, client_id=client_id, instruments=["alliance"], now=NOW, window=WINDOW
        )
        await session.execute(
            update(CheckIn)
            .where(CheckIn.id == checkin.id)
            .values(
                state=state,
                sending_at=NOW if state != CheckInState.DUE else None,
                lease_until=NOW + timedelta(minutes=5),
            )
        )
    return checkin


async def test_a_tap_that_overtakes_the_record_of_its_send_counts(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queued(database, made.client.id, CheckInState.SENDING)
    outcome = await tap(database.sessions, vault, checkin, 0, 8)
    assert outcome.result == TapResult.NEXT and outcome.language == "en"
    async with database.sessions() as session:
        row = await session.get(CheckIn, checkin.id)
    assert row is not None
    assert (row.state, row.position, row.sent_at, row.started_at, row.lease_until) == (
        CheckInState.IN_PROGRESS,
        1,
        TAPPED,
        TAPPED,
        None,
    )


async def test_a_check_in_never_tried_cannot_be_tapped(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queued(database, made.client.id, CheckInState.DUE)
    outcome = await tap(database.sessions, vault, checkin, 0, 8)
    assert outcome == TapOutcome(TapResult.CLOSED)  # no language: nothing was read as theirs
    async with database.sessions() as session:
        answers = await session.scalar(select(func.count()).select_from(Answer))
    assert answers == 0


async def test_a_press_by_another_enrolled_client_is_refused_and_audited(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    await team(database.sessions, vault, therapist_tg=5002, client_tg=7002)  # enrolled too
    checkin = await _queued(database, made.client.id, CheckInState.SENT)
    outcome = await tap(database.sessions, vault, checkin, 0, 8, user=7002)
    assert outcome == TapOutcome(TapResult.REFUSED)  # the owner's language is not given away
    async with database.sessions() as session:
        row = await session.get(CheckIn, checkin.id)
        answers = await session.scalar(select(func.count()).select_from(Answer))
        audit = await session.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused"))
        refused = audit.all()
    assert row is not None and (row.state, row.position) == (CheckInState.SENT, 0)
    assert answers == 0
    assert [(a.action, a.target_id, a.actor_id, a.detail) for a in refused] == [
        ("checkin.tap", checkin.id, None, "not the owner")
    ]


async def test_back_skip_and_a_new_answer_keep_one_row_per_item(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault)
    checkin = await _queued(database, made.client.id, CheckInState.SENT)
    assert (await tap(database.sessions, vault, checkin, 0, 3)).result == TapResult.NEXT
    back = await tap(database.sessions, vault, checkin, 1, None, action=TapAction.BACK)
    assert back.step is not None and back.step.position == 0 and back.selected == 3
    again = await tap(database.sessions, vault, checkin, 0, 9)  # replaces the first answer
    assert again.step is not None and again.step.position == 1 and again.selected is None
    back = await tap(database.sessions, vault, checkin, 1, None, action=TapAction.BACK)
    assert back.selected == 9
    async with database.sessions() as session:
        row = await session.get(CheckIn, checkin.id)
        assert row is not None
        assert await checkins.answers_of(session, vault, row) == {("alliance", "bond"): 9}


CONFIG = """\
[texts.de]
saved = "Gespeichert."
not_yours = "Diese Schaltfläche gehört zu einer anderen Person."
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_tap_answers_in_the_clients_language_a_refusal_in_the_pressers(
    kind: str, tmp_path: Path
) -> None:
    async with practice_rig(tmp_path, CONFIG, kind=kind) as rig:
        therapist_id, _token = await rig.add_therapist()
        german_id, german_invite = await rig.invite(therapist_id, label="Client Anna")
        _english_id, english_invite = await rig.invite(therapist_id, label="Client Bea")
        _other_id, other_invite = await rig.invite(therapist_id, label="Client Cem")
        german = rig.fake.user(4101, "Anna", language_code="de")
        english = rig.fake.user(4102, "Bea", language_code="en")
        other_german = rig.fake.user(4103, "Cem", language_code="de")
        await join(english, english_invite)
        for user, invite in ((german, german_invite), (other_german, other_invite)):
            user.send_text(f"/start {invite}")
            offer = await user.wait_for_message(contains="Sind Sie einverstanden")
            user.press_button(offer, "Ich bin einverstanden")
            await user.wait_for_message(contains="alles ist eingerichtet")
        await rig.send_checkin(german_id)
        shown = await first_question(rig, german)

        own = german.press_button(shown, "7")
        await rig.fake.wait_for(lambda: rig.fake.presses[own.query_id].answered)
        forged = [
            user.press(shown.message_id, shown.button_data[3]) for user in (english, other_german)
        ]
        for press in forged:
            await rig.fake.wait_for(lambda p=press: rig.fake.presses[p.query_id].answered)

    answers = [rig.fake.presses[p.query_id].answer.get("text") for p in (own, *forged)]
    assert answers == [
        "Gespeichert.",
        DEFAULTS["not_yours"],
        "Diese Schaltfläche gehört zu einer anderen Person.",
    ]


@pytest.mark.parametrize("with_comment", [True, False])
async def test_the_closing_scores_count_the_answers_as_finally_given(
    database: Database, vault: Vault, with_comment: bool
) -> None:
    made = await team(database.sessions, vault)
    async with transaction(database.sessions) as session:
        checkin = await checkins.queue_now(
            session,
            client_id=made.client.id,
            instruments=["alliance"],
            now=NOW,
            window=WINDOW,
            with_comment=with_comment,
        )
        await session.execute(
            update(CheckIn).where(CheckIn.id == checkin.id).values(state=CheckInState.SENT)
        )
    for position, value in enumerate([8, 8, 8, 8]):  # bond, goals, approach, overall
        await tap(database.sessions, vault, checkin, position, value)
    await tap(database.sessions, vault, checkin, 4, None, action=TapAction.BACK)  # overall again
    await tap(database.sessions, vault, checkin, 3, 10)
    last = await tap(database.sessions, vault, checkin, 4, 0)  # tension: "no"
    if with_comment:
        assert last.result == TapResult.ASK_COMMENT
        last = await tap(database.sessions, vault, checkin, 5, None, action=TapAction.NO_COMMENT)
    assert last.result == TapResult.COMPLETED
    assert last.scores == {"alliance": 34}
    async with database.sessions() as session:
        row = await session.get(CheckIn, checkin.id)
    assert row is not None and (row.state, row.completed_at) == (CheckInState.COMPLETED, TAPPED)
