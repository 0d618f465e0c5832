"""Webhook mode: a small HTTP server that feeds Telegram's updates into the Application.

PTB's built-in webhook server compares the secret header with `!=` and logs a wrong secret;
this one compares in constant time, logs nothing of the request, and adds a health check for
the reverse proxy.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from http import HTTPStatus
from types import TracebackType
from typing import Any

import tornado.web
from telegram import Update
from tornado.httpserver import HTTPServer

from bot.app import running
from handlers.context import RapportApp

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/telegram"


class _UpdateHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("POST",)  # anything else: 405, logged as a warning (log_exception)

    def initialize(self, app: RapportApp, secret: str) -> None:
        self._app = app
        self._secret = secret.encode()

    async def post(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            log.warning("refused a webhook request without the right secret")
            self.set_status(HTTPStatus.FORBIDDEN)
            return
        try:
            data = json.loads(self.request.body)
            update = Update.de_json(data, self._app.bot) if isinstance(data, dict) else None
        except (ValueError, TypeError, KeyError):
            update = None
        if update is None:
            log.warning("refused a webhook request that is not a Telegram update (400)")
            self.set_status(HTTPStatus.BAD_REQUEST)
            return
        await self._app.update_queue.put(update)
        self.set_status(HTTPStatus.OK)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A request refused by tornado itself (a wrong method, say) is the client's mistake:
        a warning. Anything else failed on our side: an error, with the cause's type (never
        the request, which carries the update)."""
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            log.warning("refused a webhook %s request (%d)", self.request.method, value.status_code)
            return
        log.error("webhook request failed: %s", typ.__name__ if typ else "unknown error")


class _HealthHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"ok": True})


def make_server(app: RapportApp, secret: str) -> HTTPServer:
    routes: list[tuple[str, Any] | tuple[str, Any, dict[str, Any]]] = [
        (WEBHOOK_PATH, _UpdateHandler, {"app": app, "secret": secret}),
        ("/healthz", _HealthHandler),
    ]
    return HTTPServer(tornado.web.Application(routes, log_function=lambda _handler: None))


async def serve(app: RapportApp, *, url: str, secret: str, listen: str, port: int) -> None:
    """Run until SIGINT or SIGTERM: start the bot, register the webhook, serve updates."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = make_server(app, secret)
    async with running(app):
        await app.bot.set_webhook(url, secret_token=secret, allowed_updates=Update.ALL_TYPES)
        server.listen(port, address=listen)
        log.info("webhook mode: listening on %s:%d%s", listen, port, WEBHOOK_PATH)
        try:
            await stop.wait()
        finally:
            server.stop()
