"""`rapport init` and `rapport run`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from bot.cli.common import CliError, Env, add_json, emit

if TYPE_CHECKING:
    from bot.settings import Settings
    from handlers.context import RapportApp


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create or upgrade the database and the key file")
    add_json(p)
    p.set_defaults(handler=cmd_init)
    p = sub.add_parser("run", help="run the bot (polling, or webhook mode when configured)")
    p.set_defaults(handler=cmd_run)


async def initialise(settings: Settings) -> dict[str, Any]:
    """Create or upgrade the database and create the key file if needed; idempotent."""
    from sqlalchemy import func, select

    from store import people
    from store.crypto import KeyRing, load_keyring, write_key_file
    from store.db import create_engine, migrate, session_factory, transaction
    from store.models import DataKeyRow

    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # for its owner only
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
        async with transaction(session_factory(engine)) as session:
            wrapped_keys = await session.scalar(select(func.count()).select_from(DataKeyRow))
            await people.practice(session)
        key_file = settings.resolved_key_file
        created = False
        if settings.master_keys is None and not key_file.exists():
            if wrapped_keys:
                raise CliError(
                    f"the key file {key_file} is missing, but the database holds encrypted "
                    "data: restore the key file from your backup (a new key could not "
                    "decrypt anything)"
                )
            write_key_file(key_file, KeyRing.generate(), create=True)
            created = True
        master = settings.master_keys.get_secret_value() if settings.master_keys else None
        load_keyring(key_file, master)
    finally:
        await engine.dispose()
    return {"database": "ready", "key_file": str(key_file), "key_file_created": created}


def cmd_init(env: Env, args: argparse.Namespace) -> None:
    result = asyncio.run(initialise(env.settings))
    lines = ["Database ready."]
    if result["key_file_created"]:
        lines.append(
            f"Created the key file {result['key_file']} (mode 0600). Back it up now, "
            "separately from database backups: without it nothing can be decrypted."
        )
    emit(args, result, lines)


def cmd_run(env: Env, args: argparse.Namespace) -> None:
    from bot import logs

    settings = env.settings
    setup = asyncio.run(initialise(settings))
    if setup["key_file_created"]:
        print(f"Created the key file {setup['key_file']}: back it up now.", file=sys.stderr)
    token = settings.token()
    logs.configure(settings.log_level, secrets=[token])
    from telegram.error import InvalidToken, NetworkError

    from bot.app import build_application

    app = build_application(settings, env.loaded)
    try:
        _serve(app, settings)
    except InvalidToken:
        raise CliError(
            "Telegram refused the bot token: check RAPPORT_BOT_TOKEN (BotFather's /token "
            "shows it again)"
        ) from None
    except NetworkError as exc:
        # The URL printed is the API's root: the request URLs carry the token.
        raise CliError(
            f"cannot reach the Telegram Bot API at {settings.telegram_api_url}: "
            f"{logs.redact(str(exc), token)}; check the network connection (a proxy, firewall "
            "or DNS in the way) and RAPPORT_TELEGRAM_API_URL"
        ) from None


async def _check_bot_api(app: RapportApp) -> None:
    """Ask the Bot API who the bot is, once, before anything starts: a wrong token or an
    unreachable API then ends in one line (cmd_run), not in PTB's logged traceback."""
    async with app.bot:  # getMe, then closes its connections (the start opens new ones)
        pass


def _serve(app: RapportApp, settings: Settings) -> None:
    from telegram import Update

    from bot import webhook

    asyncio.run(_check_bot_api(app))
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        if not secret:
            raise CliError("webhook mode needs RAPPORT_WEBHOOK_SECRET (1-256 of A-Z a-z 0-9 _ -)")
        asyncio.run(
            webhook.serve(
                app,
                url=settings.webhook_url,
                secret=secret,
                listen=settings.webhook_listen,
                port=settings.webhook_port,
            )
        )
    else:
        app.run_polling(allowed_updates=Update.ALL_TYPES)
