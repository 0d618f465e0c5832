"""A fake Telegram Bot API server for end-to-end tests of the real python-telegram-bot stack.

Start it in the test's event loop, point a real ``telegram.Bot`` / PTB ``Application`` at it
(``base_url=fake.base_url``, ``base_file_url=fake.base_file_url``) and drive it through
``fake.user(...)``. It answers with Telegram's shapes and error texts, long-polls for real,
pushes updates to a webhook when one is set, and lets tests inject faults. State lives on the
FakeBotAPI object; it is safe with respect to asyncio (one loop), not threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from telegram import Bot
from telegram.ext import Application, ApplicationBuilder

from tests.botapi.methods import ChatMethods, Files, MethodImpl, Params
from tests.botapi.records import (
    ApiError,
    BotMessage,
    Call,
    Fault,
    MessageEvent,
    Press,
    UploadedFile,
    WebhookDelivery,
)
from tests.botapi.users import FakeUser

T = TypeVar("T")

DEFAULT_TOKEN = "7100000001:AAFakeTokenForRapportTests_0123456789x"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
# Updates Telegram sends when allowed_updates is unset or empty.
_DEFAULT_ALLOWED_EXCLUDES = {"chat_member", "message_reaction", "message_reaction_count"}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Form and query values arrive as strings (PTB JSON-encodes every non-string value).
_JSON_FIELDS = _words(
    "reply_markup allowed_updates commands scope entities caption_entities link_preview_options"
    " reply_parameters media menu_button rights message_ids"
)
_INT_FIELDS = _words(
    "chat_id message_id offset limit user_id cache_time max_connections reply_to_message_id"
    " from_chat_id message_thread_id"
)
_BOOL_FIELDS = _words(
    "disable_notification protect_content show_alert drop_pending_updates has_spoiler"
    " allow_sending_without_reply disable_content_type_detection"
)
_WAIT_TICK = 0.1  # wait_for also re-checks this often, for predicates on state outside the fake


@dataclass(eq=False)
class _Pending:
    """An unconfirmed update. A replayed copy is only confirmed after being delivered, since
    the bot's offset is already past its update_id."""

    update: dict[str, Any]
    replay: bool = False
    delivered: bool = False

    @property
    def update_id(self) -> int:
        update_id: int = self.update["update_id"]
        return update_id


def _coerce(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            what = "reply keyboard markup" if name == "reply_markup" else name
            raise ApiError(400, f"Bad Request: can't parse {what} JSON object") from None
    if name in _INT_FIELDS and re.fullmatch(r"-?\d+", value):
        return int(value)
    if name == "timeout":
        with contextlib.suppress(ValueError):
            return float(value)
    if name in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


class FakeBotAPI:
    """See the module docstring. Typical use::

    async with FakeBotAPI() as fake:
        app = fake.app_builder().build()
        user = fake.user(first_name="Ada")
        user.send_text("/start")
        reply = await user.wait_for_message(contains="Welcome")
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "rapport_test_bot",
        bot_first_name: str = "Rapport",
        can_join_groups: bool = False,
        can_read_all_group_messages: bool = False,
        supports_inline_queries: bool = False,
        webhook_attempts: int = 3,
        webhook_retry_delay: float = 0.05,
        latency: float = 0.0,
    ) -> None:
        self.token = token
        # Seconds each request is held before the fake applies and answers it: a round trip
        # to Telegram, counted before the change shows (as a client would see it). getUpdates
        # too, before it starts waiting. Tests may change it at any time.
        self.latency = latency
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.get_me_flags = {
            "can_join_groups": can_join_groups,
            "can_read_all_group_messages": can_read_all_group_messages,
            "supports_inline_queries": supports_inline_queries,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.webhook_attempts = webhook_attempts
        self.webhook_retry_delay = webhook_retry_delay
        self.root = ""

        self.calls: list[Call] = []
        self.users: dict[int, FakeUser] = {}
        self.presses: dict[str, Press] = {}
        self.files: dict[str, UploadedFile] = {}
        self.message_events: list[MessageEvent] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}

        self.bot_messages: dict[tuple[int, int], BotMessage] = {}  # by (chat_id, message_id)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._updates: dict[int, dict[str, Any]] = {}
        self._pending: list[_Pending] = []
        self._update_ids = itertools.count(500_000_001)
        self.ids = itertools.count(1)  # for file and callback query ids
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._faults: list[Fault] = []
        self._webhook_error: tuple[int, str] | None = None
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self.methods = ChatMethods(self)
        table = {
            **self.methods.table(),
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
        }
        # Telegram matches method names case-insensitively.
        self._methods = {name.lower(): (name, impl) for name, impl in table.items()}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> FakeBotAPI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._serve_file)
        # handler_cancellation: a client that gives up (timeout, killed process) cancels its
        # request, so an abandoned long poll does not linger and a delayed apply=False call is
        # never applied.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.root = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        self._closing = True
        self._notify()
        await self._stop_webhook_task()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"{self.root}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root}/file/bot"

    def make_bot(self, **kwargs: Any) -> Bot:
        """A ``telegram.Bot`` wired to this fake (kwargs go to ``Bot``)."""
        return Bot(self.token, base_url=self.base_url, base_file_url=self.base_file_url, **kwargs)

    def app_builder(self) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
        """A PTB ``ApplicationBuilder`` with token and URLs already set."""
        builder = Application.builder().token(self.token).base_url(self.base_url)
        return builder.base_file_url(self.base_file_url)

    # -- users and updates --------------------------------------------------------------------

    def user(
        self,
        user_id: int | None = None,
        first_name: str = "Test",
        username: str | None = None,
        *,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> FakeUser:
        """The user with this id (created on first use; a new id if None)."""
        if user_id is None:
            user_id = 1_000_000 + len(self.users) + 1
        if user_id not in self.users:
            self.users[user_id] = FakeUser(
                self, user_id, first_name, username, last_name, language_code
            )
        return self.users[user_id]

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def enqueue_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update ``{"update_id": N, kind: payload}`` and return it."""
        update_id = next(self._update_ids)
        update = {"update_id": update_id, kind: payload}
        self._updates[update_id] = update
        allowed = set(self._allowed_updates)
        if (kind in allowed) if allowed else (kind not in _DEFAULT_ALLOWED_EXCLUDES):
            self._pending.append(_Pending(update))
        self._notify()
        return update

    def replay_update(self, update_id: int) -> dict[str, Any]:
        """Deliver an earlier update again under the same update_id (a duplicate delivery)."""
        if update_id not in self._updates:
            raise AssertionError(f"unknown update_id {update_id}; known: {list(self._updates)}")
        update = copy.deepcopy(self._updates[update_id])
        self._pending.append(_Pending(update, replay=True))
        self._notify()
        return update

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot (via offset or a 2xx webhook answer)."""
        return [p.update for p in self._pending]

    def next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def next_query_id(self) -> str:
        return str(4_382_000_000_000_000_000 + next(self.ids))

    # -- reading state ------------------------------------------------------------------------

    def find_message(self, chat_id: int, message_id: int) -> BotMessage | None:
        return self.bot_messages.get((chat_id, message_id))

    def chat_messages(self, chat_id: int) -> list[BotMessage]:
        return [m for (chat, _), m in self.bot_messages.items() if chat == chat_id]

    @property
    def messages(self) -> list[BotMessage]:
        """Every message the bot sent, in order."""
        return list(self.bot_messages.values())

    def count(self, method: str, chat_id: int | None = None, *, ok: bool | None = None) -> int:
        """Calls of ``method`` (any case), optionally only for ``chat_id`` and only (un)ok."""
        return sum(
            1
            for call in self.calls
            if call.method.lower() == method.lower()
            and (chat_id is None or call.params.get("chat_id") == chat_id)
            and (ok is None or call.ok == ok)
        )

    def commands_for(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """The commands setMyCommands stored for this scope (default scope if None)."""
        key = (json.dumps(scope or {"type": "default"}, sort_keys=True), language_code)
        return self.commands.get(key, [])

    def message_json(self, msg: BotMessage) -> dict[str, Any]:
        """The Message object Telegram would return for ``msg`` in its current state."""
        return self.methods.message_json(msg)

    # -- waiting ------------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake every waiter; each grabbed the then-current event before sleeping."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait_change(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the predicate, not a call
        *,
        message: str | None = None,
    ) -> T:
        """Return ``predicate()``'s first truthy value, re-checked on every bot call/update."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := predicate()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {message or _describe(predicate)}"
                    f"\nrecent bot calls (getUpdates omitted):\n{self.describe_calls()}"
                )
            await self._wait_change(min(remaining, _WAIT_TICK))
        return result

    async def wait_for_updates_consumed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Return once the bot confirmed every update enqueued so far. Confirmation is not
        handling: PTB confirms a batch when it polls again, before its handlers finish."""
        await self.wait_for(
            lambda: not self._pending,
            timeout,
            message=f"the bot to confirm updates {[p.update_id for p in self._pending]}",
        )

    def describe_calls(self, last: int = 15) -> str:
        calls = [c for c in self.calls if c.method != "getUpdates"][-last:]
        lines = []
        for call in calls:
            fault = f" [{call.fault}]" if call.fault else ""
            params = {k: v for k, v in call.params.items() if k != "reply_markup"}
            lines.append(f"  {call.method} -> {call.status}{fault} {params}")
        return "\n".join(lines) or "  (none)"

    # -- fault injection ----------------------------------------------------------------------

    def fail(
        self,
        method: str,
        error_code: int = 400,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching calls with an error, without applying them."""
        if error_code == 429:
            retry_after = 5 if retry_after is None else retry_after
            description = description or f"Too Many Requests: retry after {retry_after}"
        description = description or _DEFAULT_DESCRIPTIONS.get(error_code, "Error")
        error = ApiError(error_code, description, retry_after)
        return self._add_fault(Fault("fail", method, times, chat_id, error=error))

    def delay(
        self,
        method: str,
        seconds: float,
        *,
        times: int = 1,
        apply: bool = True,
        chat_id: int | None = None,
    ) -> Fault:
        """Hold matching calls for ``seconds``. apply=True applies the call first (a client
        timeout then leaves it delivered); apply=False applies it only if the client is still
        connected afterwards (a client timeout means it never arrived)."""
        return self._add_fault(Fault("delay", method, times, chat_id, seconds=seconds, apply=apply))

    def drop_connection(
        self, method: str, *, times: int = 1, apply: bool = False, chat_id: int | None = None
    ) -> Fault:
        """Close the connection without answering (after applying the call if ``apply``)."""
        return self._add_fault(Fault("drop", method, times, chat_id, apply=apply))

    def _add_fault(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def _take_fault(self, method: str, params: Params) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, params):
                fault.times -= 1
                return fault
        return None

    # -- HTTP ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            error = ApiError(404, "Not Found: method not found")
            self.calls.append(Call(request.match_info["method"], {}, status=404))
            return web.json_response(error.body(), status=404)
        name, impl = entry
        try:
            params, files = await self._read_params(request)
        except ApiError as error:
            self.calls.append(Call(name, {}, status=error.code, description=error.description))
            return web.json_response(error.body(), status=error.code)
        call = Call(name, params, files)
        self.calls.append(call)
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            return await self._answer(request, call, impl)
        except asyncio.CancelledError:  # the client disconnected (handler_cancellation)
            call.cancelled = True
            raise
        finally:
            self._notify()

    async def _answer(self, request: web.Request, call: Call, impl: MethodImpl) -> web.Response:
        fault = self._take_fault(call.method, call.params)
        call.fault = fault.kind if fault else None
        if fault and fault.kind == "delay" and not fault.apply:
            await asyncio.sleep(fault.seconds)
        try:
            if fault and fault.error:
                raise fault.error
            if fault and fault.kind == "drop" and not fault.apply:
                return self._drop(request, call)
            result = await impl(call.params, call.files)
            status, body = 200, {"ok": True, "result": result}
            call.result = result
        except ApiError as error:
            status, body = error.code, error.body()
            call.description = error.description
        call.status = status
        if fault and fault.kind == "drop":
            return self._drop(request, call)
        if fault and fault.kind == "delay" and fault.apply:
            self._notify()
            await asyncio.sleep(fault.seconds)
        return web.json_response(body, status=status)

    def _drop(self, request: web.Request, call: Call) -> web.Response:
        call.status = 0
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # never reaches the client

    async def _read_params(self, request: web.Request) -> tuple[Params, Files]:
        raw: dict[str, Any] = dict(request.query)
        files: Files = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: JSON object expected")
                raw.update(body)
            else:  # form-urlencoded or multipart
                for key, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        files[key] = self.methods.new_file(
                            value.file.read(), value.filename, value.content_type
                        )
                    else:
                        raw[key] = value
        return {key: _coerce(key, value) for key, value in raw.items()}, files

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        for file in self.files.values():
            if file.file_path == request.match_info["path"] and file.data is not None:
                return web.Response(body=file.data, content_type="application/octet-stream")
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    # -- webhook delivery ---------------------------------------------------------------------

    async def _webhook_loop(self) -> None:
        while not self._closing:
            if not self._pending:
                await self._wait_change(None)
                continue
            entry = min(self._pending, key=lambda p: p.update_id)
            delivery = WebhookDelivery(entry.update_id, self.webhook_url)
            self.webhook_deliveries.append(delivery)
            for attempt in range(self.webhook_attempts):
                if attempt:
                    await asyncio.sleep(self.webhook_retry_delay)
                status, error = await self._post_update(entry.update)
                delivery.statuses.append(status)
                self._webhook_error = None if error is None else (int(time.time()), error)
                self._notify()
                if delivery.ok:
                    break
            # Telegram would keep retrying for a long time; the fake gives up.
            if entry in self._pending:
                self._pending.remove(entry)
            self._notify()

    async def _post_update(self, update: dict[str, Any]) -> tuple[int, str | None]:
        assert self._session is not None
        headers = {}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        try:
            async with self._session.post(
                self.webhook_url,
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return response.status, None
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
                return response.status, error
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 0, f"Connection failed: {exc!r}"

    async def _stop_webhook_task(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- Bot API methods about updates (the rest are in methods.py) ----------------

    async def _get_updates(self, params: Params, files: Files) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(409, WEBHOOK_CONFLICT)
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # a long poll already waiting must end with 409 (Telegram does this)
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        self._confirm(int(params.get("offset") or 0))
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(params.get("timeout") or 0)
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, WEBHOOK_CONFLICT if self.webhook_url else POLL_CONFLICT)
            batch = sorted(self._pending, key=lambda p: p.update_id)[:limit]
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing:
                break
            await self._wait_change(remaining)
        for entry in batch:
            entry.delivered = True
        return [entry.update for entry in batch]

    def _confirm(self, offset: int) -> None:
        before = len(self._pending)
        if offset < 0:  # "-N": only the last N updates survive
            keep = {p.update_id for p in sorted(self._pending, key=lambda p: p.update_id)[offset:]}
            self._pending = [p for p in self._pending if p.update_id in keep]
        elif offset > 0:
            self._pending = [
                p for p in self._pending if p.update_id >= offset or (p.replay and not p.delivered)
            ]
        if len(self._pending) != before:
            self._notify()

    async def _set_webhook(self, params: Params, files: Files) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params, files)
        if not url.startswith(("https://", "http://")):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("allowed_updates") is not None:
            self._allowed_updates = list(params["allowed_updates"])
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook_url, self.webhook_secret = url, secret
        self._poll_generation += 1  # a waiting long poll gets 409
        if self._webhook_task is None:
            self._webhook_task = asyncio.create_task(self._webhook_loop())
        return True

    async def _delete_webhook(self, params: Params, files: Files) -> bool:
        await self._stop_webhook_task()
        self.webhook_url, self.webhook_secret = "", None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    async def _get_webhook_info(self, params: Params, files: Files) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook_url:
            info["max_connections"] = 40
            info["ip_address"] = "127.0.0.1"
            if self._allowed_updates:
                info["allowed_updates"] = self._allowed_updates
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info


def _describe(predicate: Callable[[], Any]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)
