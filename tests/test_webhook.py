"""Webhook mode: Telegram's updates arrive over HTTP with the secret header; others get 403."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot import config as practice_config
from bot.app import build_application, running
from bot.cli.setup import initialise
from bot.webhook import SECRET_HEADER, WEBHOOK_PATH, make_server
from handlers.texts import DEFAULTS
from tests.botapi import FakeBotAPI
from tests.rig import rig_settings

SECRET = "s3cret-Header_value"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def webhook_bot(tmp_path: Path) -> AsyncIterator[tuple[FakeBotAPI, str]]:
    async with FakeBotAPI() as fake:
        settings = rig_settings(fake, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
        await initialise(settings)
        app = build_application(settings, practice_config.load(None))
        port = _free_port()
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        server = make_server(app, SECRET)
        async with running(app):
            server.listen(port, address="127.0.0.1")
            await app.bot.set_webhook(url, secret_token=SECRET)
            try:
                yield fake, url
            finally:
                server.stop()


async def test_updates_with_the_secret_are_handled(webhook_bot: tuple[FakeBotAPI, str]) -> None:
    fake, _url = webhook_bot
    stranger = fake.user(8101)
    stranger.send_text("/start")
    reply = await stranger.wait_for_message()
    assert reply.content == DEFAULTS["invitation_only"]
    assert fake.webhook_deliveries[-1].statuses == [200]


@pytest.mark.parametrize("header", [None, "", "wrong", SECRET + "x", SECRET[:-1]])
async def test_requests_without_the_secret_get_403(
    webhook_bot: tuple[FakeBotAPI, str], header: str | None
) -> None:
    fake, url = webhook_bot
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 0,
            "text": "/start",
            "chat": {"id": 8102, "type": "private", "first_name": "X"},
            "from": {"id": 8102, "is_bot": False, "first_name": "X"},
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }
    headers = {} if header is None else {SECRET_HEADER: header}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=update, headers=headers) as response,
    ):
        assert response.status == 403
    assert fake.count("sendMessage", chat_id=8102) == 0


async def test_health_check_answers(webhook_bot: tuple[FakeBotAPI, str]) -> None:
    _fake, url = webhook_bot
    async with (
        aiohttp.ClientSession() as session,
        session.get(url.replace(WEBHOOK_PATH, "/healthz")) as response,
    ):
        assert response.status == 200 and (await response.json()) == {"ok": True}


async def test_a_get_on_the_webhook_path_is_405_and_a_warning(
    webhook_bot: tuple[FakeBotAPI, str], caplog: pytest.LogCaptureFixture
) -> None:
    _fake, url = webhook_bot
    caplog.set_level(logging.INFO)
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={SECRET_HEADER: SECRET}) as response,
    ):
        assert response.status == 405
    refused = [r for r in caplog.records if r.name == "bot.webhook"]
    assert [r.levelno for r in refused] == [logging.WARNING]
    assert "GET" in refused[0].getMessage() and "405" in refused[0].getMessage()
    assert not any(r.levelno >= logging.ERROR or r.exc_info or r.exc_text for r in caplog.records)


@pytest.mark.parametrize("body", ["[]", "[1, 2]", '"text"', "1", "null", "{not json"])
async def test_a_body_that_is_not_a_json_object_is_400_and_a_warning(
    webhook_bot: tuple[FakeBotAPI, str], caplog: pytest.LogCaptureFixture, body: str
) -> None:
    fake, url = webhook_bot
    caplog.set_level(logging.INFO)
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        assert response.status == 400
    refused = [r for r in caplog.records if r.name == "bot.webhook"]
    assert [r.levelno for r in refused] == [logging.WARNING]
    assert not any(r.levelno >= logging.ERROR or r.exc_info or r.exc_text for r in caplog.records)
    # The bot still works afterwards.
    stranger = fake.user(8103)
    stranger.send_text("/start")
    assert (await stranger.wait_for_message()).content == DEFAULTS["invitation_only"]
