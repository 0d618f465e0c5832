"""The web dashboard in `rapport run`: built and started by post_init, stopped by
post_shutdown, in the bot's own event loop and on its database (web/ is the adapter)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from telegram import Bot

from bot import config as practice_config
from bot.settings import Settings
from handlers.context import Services
from web import server
from web.app import ConfigReport, Web, build

log = logging.getLogger(__name__)


def config_check(path: Path | None) -> ConfigReport:
    """What `rapport config check` says about the config file as it is now on disk."""
    try:
        loaded = practice_config.load(path)
    except practice_config.ConfigError as exc:
        return ConfigReport(str(path), False, list(exc.problems), [])
    config = loaded.config
    return ConfigReport(
        loaded.source,
        True,
        [],
        [
            f"instruments: {', '.join(sorted(loaded.instruments))}",
            f"templates: {', '.join(sorted(loaded.templates)) or 'none'}",
            f"languages: {', '.join(sorted(config.make_texts().languages))}",
            "clients invited without a schedule get: "
            + (config.checkins.default_template or "no schedule"),
            f"alert detail in Telegram (and here): {config.alerts.detail}",
            f"retention: {config.retention.inactive_days} days"
            if config.retention.inactive_days
            else "retention: off",
        ],
    )


def make(bot: Bot, settings: Settings, services: Services) -> Web | None:
    base = settings.web_base_url
    if base is None or not settings.web_port:
        return None
    path = settings.resolved_config
    return Web(
        services=services,
        bot=bot,
        base_url=base,
        check_config=lambda: config_check(path),
        secure=base.startswith("https://"),
    )


async def serve(
    bot: Bot, settings: Settings, services: Services
) -> Callable[[], Awaitable[None]] | None:
    """Start serving; returns the coroutine function that stops it, or None when the
    dashboard is off or cannot listen (the bot runs on without it: alerts matter more)."""
    web = make(bot, settings, services)
    if web is None:
        log.info("the web dashboard is off (RAPPORT_WEB_PORT=0)")
        return None
    try:
        sock = server.bind(settings.web_listen, settings.web_port)
    except OSError as exc:
        log.error(
            "the web dashboard cannot listen on %s:%d (%s); the bot runs without it: set "
            "RAPPORT_WEB_LISTEN and RAPPORT_WEB_PORT, or RAPPORT_WEB_PORT=0 to turn it off",
            settings.web_listen,
            settings.web_port,
            exc.strerror or type(exc).__name__,
        )
        return None
    stop = server.start(build(web), sock)
    log.info("web dashboard on %s:%d (links point to %s)", *sock.getsockname()[:2], web.base_url)
    return stop
