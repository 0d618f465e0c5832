"""A check-in tap's two replies, the answer to the button and the edit to the next question,
go out together (one round trip to Telegram, not two), each even if the other fails; the
client sees the same texts as before. Through the real bot over HTTP to the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from handlers.texts import DEFAULTS
from tests.botapi import BotMessage, FakeBotAPI, FakeUser
from tests.botapi.records import Call, Press
from tests.rig import Rig, first_question, join, start_rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with (
        FakeBotAPI() as fake,
        start_rig(fake, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'rapport.db'}") as started,
    ):
        yield started


async def _question(rig: Rig) -> tuple[FakeUser, BotMessage]:
    therapist_id, _ = await rig.add_therapist()
    client_id, token = await rig.invite(therapist_id)
    client = rig.fake.user(6101)
    await join(client, token)
    await rig.send_checkin(client_id, "alliance")
    return client, await first_question(rig, client)


async def _answer(rig: Rig, press: Press) -> dict[str, Any]:
    """The bot's answerCallbackQuery for this press, once it has come."""
    await rig.fake.wait_for(lambda: press.answered, timeout=10)
    assert press.answer is not None
    return press.answer


def _calls(rig: Rig, method: str, after: int) -> list[Call]:
    return [call for call in rig.fake.calls[after:] if call.method == method]


async def test_the_answer_and_the_edit_go_out_together(rig: Rig) -> None:
    client, first = await _question(rig)
    assert "1/5" in first.content
    # Hold the answer (unapplied) for 2 s: made one after the other, the edit would wait for
    # the held answer and arrive only once the answer had been answered.
    held = rig.fake.delay("answerCallbackQuery", 2, apply=False)
    before = len(rig.fake.calls)
    press = client.press_button(first, "9")
    edited = await client.wait_for_message(
        predicate=lambda m: m.message_id == first.message_id, timeout=10
    )
    [answer] = _calls(rig, "answerCallbackQuery", before)
    assert answer.status is None, "the edit came only after the answer had been answered"
    assert held.times == 0
    assert "2/5" in edited.content and "1/5" not in edited.content
    assert (await _answer(rig, press)).get("text") == DEFAULTS["saved"]
    [edit] = _calls(rig, "editMessageText", before)
    assert edit.ok and answer.ok
    assert edit.params["message_id"] == first.message_id


async def test_texts_are_unchanged_through_a_whole_checkin(rig: Rig) -> None:
    client, first = await _question(rig)
    rig.fake.latency = 0.05  # every request a round trip away, as on real Telegram
    shown = first
    for value, step in [("9", "2/5"), ("8", "3/5"), ("9", "4/5"), ("10", "5/5")]:
        before = len(rig.fake.calls)
        press = client.press_button(shown, value)
        shown = await client.wait_for_message(predicate=lambda m: m.message_id == first.message_id)
        assert step in shown.content
        assert (await _answer(rig, press)).get("text") == DEFAULTS["saved"]
        assert len(_calls(rig, "answerCallbackQuery", before)) == 1
        assert len(_calls(rig, "editMessageText", before)) == 1
    press = client.press_button(shown, "No")
    prompt = await client.wait_for_message(predicate=lambda m: m.message_id == first.message_id)
    assert "Anything you'd like your therapist to know" in prompt.content
    assert (await _answer(rig, press)).get("text") == DEFAULTS["saved"]
    press = client.press_button(prompt, DEFAULTS["no_comment_button"])
    thanks = await client.wait_for_message(predicate=lambda m: m.message_id == first.message_id)
    assert "Thank you" in thanks.content and thanks.buttons == []
    assert "text" not in await _answer(rig, press)  # no "Saved" for the last tap


async def test_a_failed_answer_does_not_lose_the_edit(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    client, first = await _question(rig)
    rig.fake.fail("answerCallbackQuery", 400, "Bad Request: query is too old")
    before = len(rig.fake.calls)
    client.press_button(first, "9")
    edited = await client.wait_for_message(predicate=lambda m: m.message_id == first.message_id)
    assert "2/5" in edited.content
    # The failure still reaches the error handler, which answers with its apology.
    await rig.fake.wait_for(lambda: len(_calls(rig, "answerCallbackQuery", before)) == 2)
    first_answer, apology = _calls(rig, "answerCallbackQuery", before)
    assert first_answer.status == 400
    assert apology.params.get("text") == DEFAULTS["something_wrong"]
    assert "error while handling an update: BadRequest" in caplog.text


async def test_a_failed_edit_does_not_lose_the_answer(rig: Rig) -> None:
    client, first = await _question(rig)
    rig.fake.fail("editMessageText", 400, "Bad Request: message to edit not found")
    before = len(rig.fake.calls)
    press = client.press_button(first, "9")
    assert (await _answer(rig, press)).get("text") == DEFAULTS["saved"]
    await rig.fake.wait_for(lambda: any(c.status for c in _calls(rig, "editMessageText", before)))
    [edit] = _calls(rig, "editMessageText", before)
    assert edit.status == 400
    assert "1/5" in (rig.fake.find_message(client.id, first.message_id) or first).content
