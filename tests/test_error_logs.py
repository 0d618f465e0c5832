"""What the running bot logs when something fails: a failed dispatcher tick is a dispatcher
error with its cause, not an "error while handling an update"."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from bot.app import cause
from bot.logs import REDACTED
from schedules.dispatcher import Dispatcher
from tests.botapi import FakeBotAPI
from tests.conftest import database_url
from tests.rig import eventually, start_rig


async def test_a_failed_tick_is_logged_as_a_dispatcher_error_with_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = ""

    async def failing_tick(self: Dispatcher) -> None:
        # The cause's text carries the bot token, as an HTTP error's URL would.
        raise ConnectionRefusedError(
            f"the database server refused the connection (via /bot{token}/getMe)"
        )

    monkeypatch.setattr(Dispatcher, "tick", failing_tick)
    caplog.set_level(logging.INFO)

    def dispatcher_errors() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "dispatcher" in r.getMessage().lower()]

    async def logged() -> bool:
        return any(r.levelno == logging.ERROR for r in dispatcher_errors())

    async with database_url("sqlite", tmp_path) as url, FakeBotAPI() as fake:
        token = fake.token
        async with start_rig(fake, tmp_path, url):
            await eventually(logged)
    [first, *_] = [r for r in dispatcher_errors() if r.levelno == logging.ERROR]
    message = first.getMessage()
    assert "ConnectionRefusedError" in message and "refused the connection" in message
    assert not any("handling an update" in r.getMessage() for r in caplog.records)
    assert fake.token not in caplog.text and REDACTED in message


def test_a_database_error_is_told_by_the_drivers_message_without_parameters() -> None:
    driver = sqlite3.IntegrityError("UNIQUE constraint failed: checkin.slot")
    error = IntegrityError("INSERT INTO checkin VALUES (?)", ("secret-label",), driver)
    told = cause(error)
    assert told == "IntegrityError: UNIQUE constraint failed: checkin.slot"
    assert "secret-label" not in told and "INSERT" not in told
