"""The fake Bot API, exercised by the real python-telegram-bot client and Application."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.botapi import FakeBotAPI, FakeUser

KEYBOARD = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Yes", callback_data="pick:yes"),
            InlineKeyboardButton("No", callback_data="pick:no"),
        ]
    ]
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def bot(fake: FakeBotAPI) -> AsyncIterator[Bot]:
    async with fake.make_bot() as bot:
        yield bot


@pytest.fixture
def ada(fake: FakeBotAPI) -> FakeUser:
    user = fake.user(user_id=4242, first_name="Ada", username="ada")
    user.open_chat()
    return user


@contextlib.asynccontextmanager
async def polling(app: Application[Any, Any, Any, Any, Any, Any]) -> AsyncIterator[None]:
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def png(width: int = 3, height: int = 2) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


# -- the PTB Application end to end -------------------------------------------------------------


async def test_application_handles_a_button_press_and_edits_the_message(fake: FakeBotAPI) -> None:
    seen_args: list[list[str]] = []
    seen_data: list[str] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        seen_args.append(list(context.args or []))
        await update.message.reply_text("Pick one", reply_markup=KEYBOARD)

    async def picked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        seen_data.append(query.data)
        await query.answer("Noted")
        await query.edit_message_text(f"You chose {query.data.split(':')[1]}")

    app = fake.app_builder().build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(picked, pattern="^pick:"))
    user = fake.user(user_id=77, first_name="Bea")
    async with polling(app):
        user.send_text("/start INVITE123")
        question = await user.wait_for_message(contains="Pick one")
        assert question.buttons == ["Yes", "No"]
        assert question.button_data == ["pick:yes", "pick:no"]

        press = user.press_button(question, "No")
        edited = await user.wait_for_message(contains="You chose no")
        assert edited is question and question.text == "You chose no"
        assert question.reply_markup is None  # editMessageText without markup drops it

        forged = user.press(question, "pick:forged")  # data the bot never issued
        await user.wait_for_message(contains="You chose forged")

    assert seen_args == [["INVITE123"]]
    assert seen_data == ["pick:no", "pick:forged"]
    assert [v.text for v in question.history] == ["Pick one", "You chose no"]
    assert press.answer is not None and press.answer["text"] == "Noted"
    assert forged.answered
    assert fake.count("editMessageText", chat_id=77) == 2
    assert fake.count("editMessageText", chat_id=77, ok=False) == 0
    assert fake.count("answerCallbackQuery") == 2


async def test_replayed_update_is_handled_twice_with_the_same_update_id(fake: FakeBotAPI) -> None:
    seen: list[tuple[int, str]] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        seen.append((update.update_id, update.message.text))

    app = fake.app_builder().build()
    app.add_handler(MessageHandler(filters.TEXT, record))
    user = fake.user(first_name="Cy")
    async with polling(app):
        first = user.send_text("hello")
        await fake.wait_for(lambda: len(seen) == 1)
        fake.replay_update(first["update_id"])
        await fake.wait_for(lambda: len(seen) == 2)
        user.send_text("again")
        await fake.wait_for(lambda: len(seen) == 3)
        await fake.wait_for_updates_consumed()

    assert seen[0] == seen[1] == (first["update_id"], "hello")
    assert seen[2][0] > first["update_id"] and seen[2][1] == "again"
    assert fake.pending_updates == []


# -- a plain telegram.Bot against the fake --------------------------------------------------------


async def test_get_me_reports_the_configured_bot() -> None:
    async with (
        FakeBotAPI("5550001:TOKEN", bot_username="rapport_ci_bot", can_join_groups=True) as fake,
        fake.make_bot() as bot,
    ):
        me = await bot.get_me()
    assert (me.id, me.username, me.is_bot, me.can_join_groups) == (
        5550001,
        "rapport_ci_bot",
        True,
        True,
    )
    assert bot.username == "rapport_ci_bot"


async def test_wrong_token_and_unknown_method(fake: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("5550001:WRONG", base_url=fake.base_url):
            pass
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy")
    assert fake.calls[-1].method == "sendTelepathy" and fake.calls[-1].status == 404


async def test_message_is_not_modified(bot: Bot, ada: FakeUser) -> None:
    sent = await bot.send_message(ada.id, "Same", reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match="Message is not modified: specified new message content"):
        await bot.edit_message_text("Same", ada.id, sent.message_id, reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(ada.id, sent.message_id, reply_markup=KEYBOARD)

    await bot.edit_message_reply_markup(ada.id, sent.message_id, reply_markup=None)
    assert ada.last_message.buttons == [] and ada.last_message.edited
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", ada.id, 9999)


async def test_telegram_rejections(bot: Bot, fake: FakeBotAPI, ada: FakeUser) -> None:
    stranger = fake.user(user_id=31337)  # never wrote to the bot
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(stranger.id, "hi")
    stranger.open_chat()
    await bot.send_message(stranger.id, "hi")

    long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(ada.id, "hi", reply_markup=long_data)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ada.id, "a" * 4097)
    await bot.send_message(ada.id, "a" * 4096)
    with pytest.raises(BadRequest, match='unsupported start tag "name" at byte offset 6'):
        await bot.send_message(ada.id, "Hello <name>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("123")

    press = ada.press(ada.last_message, "anything")
    assert await bot.answer_callback_query(press.query_id, text="ok")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(press.query_id)
    assert [m.content for m in ada.messages] == ["a" * 4096]


async def test_html_is_stored_as_visible_text_with_entities(bot: Bot, ada: FakeUser) -> None:
    sent = await bot.send_message(
        ada.id, "  <b>Hi</b> &lt;Ada&gt; <a href='https://x.org'>link</a> ", parse_mode="HTML"
    )
    assert sent.text == "Hi <Ada> link"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 0, 2),
        ("text_link", 9, 4),
    ]
    assert ada.last_message.source_text is not None and "<b>" in ada.last_message.source_text


async def test_rate_limit_surfaces_retry_after(
    bot: Bot, fake: FakeBotAPI, ada: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake.fail("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ada.id, "hi")
    assert caught.value.retry_after == timedelta(seconds=7)
    assert ada.messages == []
    await bot.send_message(ada.id, "hi")
    assert [(c.status, c.fault) for c in fake.calls if c.method == "sendMessage"] == [
        (429, "fail"),
        (200, None),
    ]


async def test_forbidden_when_blocked_or_injected(
    bot: Bot, fake: FakeBotAPI, ada: FakeUser
) -> None:
    fake.fail("sendMessage", 403, chat_id=ada.id)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ada.id, "hi")

    ada.block()
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ada.id, "hi")
    (update,) = await bot.get_updates()
    assert update.my_chat_member is not None
    old, new = update.my_chat_member.old_chat_member, update.my_chat_member.new_chat_member
    assert (old.status, new.status, new.user.id) == ("member", "kicked", fake.bot_id)

    ada.unblock()
    await bot.send_message(ada.id, "welcome back")
    assert ada.last_message.text == "welcome back"


async def test_server_errors_surface_as_network_errors(
    bot: Bot, fake: FakeBotAPI, ada: FakeUser
) -> None:
    fake.fail("sendMessage", 502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(ada.id, "hi")
    fake.drop_connection("sendMessage")
    with pytest.raises(NetworkError):
        await bot.send_message(ada.id, "hi")
    assert ada.messages == []
    assert [c.status for c in fake.calls if c.method == "sendMessage"] == [502, 0]


async def test_delay_applied_then_client_times_out(
    bot: Bot, fake: FakeBotAPI, ada: FakeUser
) -> None:
    fake.delay("sendMessage", 1.0, apply=True)
    with pytest.raises(TimedOut):
        await bot.send_message(ada.id, "maybe delivered", read_timeout=0.2)
    assert ada.last_message.text == "maybe delivered"

    fake.delay("sendMessage", 1.0, apply=False)
    with pytest.raises(TimedOut):
        await bot.send_message(ada.id, "never delivered", read_timeout=0.2)
    dropped = fake.calls[-1]
    await fake.wait_for(lambda: dropped.cancelled)  # the fake saw the client give up
    assert [m.text for m in ada.messages] == ["maybe delivered"]


async def test_photo_and_document_bytes_arrive_intact(
    bot: Bot, fake: FakeBotAPI, ada: FakeUser
) -> None:
    image = png(3, 2)
    sent = await bot.send_photo(ada.id, image, caption="<b>Chart</b>", parse_mode="HTML")
    assert (sent.photo[-1].width, sent.photo[-1].height) == (3, 2)
    assert ada.last_message.photo == image
    assert ada.last_message.caption == "Chart"

    file = await bot.get_file(sent.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == image

    pdf = b"%PDF-1.4 fake report\x00\xff"
    doc = await bot.send_document(ada.id, pdf, filename="report.pdf")
    assert doc.document is not None and doc.document.file_name == "report.pdf"
    assert (ada.last_message.document, ada.last_message.document_name) == (pdf, "report.pdf")

    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(ada.id, b"not an image")


async def test_long_polling_waits_and_offset_confirms(bot: Bot, fake: FakeBotAPI) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(timeout=timedelta(seconds=0.3)) == ()
    assert loop.time() - started >= 0.29  # really waited

    user = fake.user(first_name="Dee")
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_for(lambda: fake.count("getUpdates") == 2)
    started = loop.time()
    user.send_text("/help")
    (update,) = await poll
    assert loop.time() - started < 1  # answered as soon as the update came
    assert update.message is not None and update.message.text == "/help"
    assert update.message.entities[0].type == "bot_command"

    again = await bot.get_updates()  # not confirmed yet: delivered again
    assert [u.update_id for u in again] == [update.update_id]
    assert await bot.get_updates(offset=update.update_id + 1) == ()
    await fake.wait_for_updates_consumed(timeout=0.1)


async def test_replay_is_delivered_although_the_offset_passed_it(
    bot: Bot, fake: FakeBotAPI
) -> None:
    sent = fake.user(first_name="Fay").send_text("once")
    (first,) = await bot.get_updates()
    assert await bot.get_updates(offset=first.update_id + 1) == ()  # confirmed
    fake.replay_update(sent["update_id"])
    (again,) = await bot.get_updates(offset=first.update_id + 1)
    assert again.update_id == first.update_id
    assert again.message is not None and again.message.text == "once"
    assert await bot.get_updates(offset=first.update_id + 1) == ()  # confirmed once more


async def test_allowed_updates_filters_later_updates(bot: Bot, fake: FakeBotAPI) -> None:
    user = fake.user(first_name="Gus")
    user.block()  # created before the filter: still delivered, like Telegram
    (blocked,) = await bot.get_updates(allowed_updates=["message"])
    assert blocked.my_chat_member is not None
    user.unblock()  # filtered out
    user.send_text("hi")
    updates = await bot.get_updates(offset=blocked.update_id + 1)
    assert [(u.message.text if u.message else None) for u in updates] == ["hi"]
    (last,) = await bot.get_updates(offset=-1)  # "-1": only the newest update survives
    assert last.update_id == updates[-1].update_id


async def test_a_second_poller_terminates_the_first(fake: FakeBotAPI) -> None:
    async with fake.make_bot() as first, fake.make_bot() as second:
        waiting = asyncio.create_task(first.get_updates(timeout=5))
        await fake.wait_for(lambda: fake.count("getUpdates") == 1)
        assert await second.get_updates() == ()
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await waiting


async def test_webhook_delivery_with_secret(fake: FakeBotAPI, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        received.append((secret, await request.json()))
        return web.Response(status=200 if secret == "s3cret" else 403)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        user = fake.user(first_name="Eve")
        assert await bot.set_webhook(url, secret_token="s3cret")
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates()
        sent = user.send_text("via webhook")
        await fake.wait_for_updates_consumed()
        assert received == [("s3cret", sent)]
        assert (await bot.get_webhook_info()).url == url

        await bot.set_webhook(url, secret_token="wrong")
        user.send_text("rejected")
        await fake.wait_for(lambda: len(fake.webhook_deliveries) == 2 and not fake.pending_updates)
        delivery = fake.webhook_deliveries[-1]
        assert delivery.statuses == [403, 403, 403] and not delivery.ok
        info = await bot.get_webhook_info()
        assert info.last_error_message is not None and "403" in info.last_error_message

        assert await bot.delete_webhook()
        user.send_text("polled")
        (update,) = await bot.get_updates()
        assert update.message is not None and update.message.text == "polled"
    finally:
        await runner.cleanup()


async def test_requests_in_every_encoding(fake: FakeBotAPI, ada: FakeUser) -> None:
    url = f"{fake.base_url}{fake.token}/sendMessage"
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"chat_id": str(ada.id), "text": "query"}) as r:
            assert (await r.json())["result"]["text"] == "query"
        body = {"chat_id": ada.id, "text": "json", "reply_markup": markup}
        async with session.post(url, json=body) as r:
            assert (await r.json())["result"]["reply_markup"] == markup
        form = {"chat_id": str(ada.id), "text": "form", "reply_markup": json.dumps(markup)}
        async with session.post(url, data=form) as r:
            assert r.status == 200
        async with session.post(
            f"{fake.base_url}{fake.token}/SENDMESSAGE", data={"chat_id": "1"}
        ) as r:
            assert (r.status, (await r.json())["description"]) == (
                400,
                "Bad Request: chat not found",
            )
        async with session.post(f"{fake.base_url}bad:token/getMe") as r:
            assert (r.status, await r.json()) == (
                401,
                {"ok": False, "error_code": 401, "description": "Unauthorized"},
            )
    assert [m.text for m in ada.messages] == ["query", "json", "form"]
    assert ada.messages[2].reply_markup == markup


async def test_commands_are_stored_per_scope(bot: Bot, fake: FakeBotAPI, ada: FakeUser) -> None:
    await bot.set_my_commands([BotCommand("start", "Begin"), BotCommand("checkin", "Check in")])
    await bot.set_my_commands([BotCommand("alerts", "Alerts")], scope=BotCommandScopeChat(ada.id))
    assert [c.command for c in await bot.get_my_commands()] == ["start", "checkin"]
    scoped = await bot.get_my_commands(scope=BotCommandScopeChat(ada.id))
    assert [c.command for c in scoped] == ["alerts"]
    assert fake.commands_for({"type": "chat", "chat_id": ada.id}) == [
        {"command": "alerts", "description": "Alerts"}
    ]
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "Begin")])


async def test_helpers_fail_with_useful_messages(bot: Bot, fake: FakeBotAPI, ada: FakeUser) -> None:
    await bot.send_message(ada.id, "Choose", reply_markup=KEYBOARD)
    with pytest.raises(AssertionError, match=r"available: \['Yes', 'No'\]"):
        ada.press_button(ada.last_message, "Maybe")
    with pytest.raises(AssertionError, match=r"(?s)containing 'never'.*sendMessage -> 200"):
        await ada.wait_for_message(contains="never", timeout=0.2)
