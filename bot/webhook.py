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
            update = Update.de_json(json.loads(self.request.body), self._app.bot)
        except (ValueError, TypeError, KeyError):
            log.warning("refused a webhook request that is not a Telegram update")
            self.set_status(HTTPStatus.BAD_REQUEST)
            return
        await self._app.update_queue.put(update)
        self.set_status(HTTPStatus.OK)

    def log_exception(self, *args: object) -> None:
        log.error("webhook request failed")


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
