"""The `rapport` command line: set up, run, and manage therapists, clients, check-ins and keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.error import InvalidToken, NetworkError

from bot import config as practice_config
from bot import logs, webhook
from bot.app import build_application, load_vault
from bot.settings import MissingToken, Settings
from handlers.context import RapportApp
from store import checkins, people, settings_kv
from store.crypto import CryptoError, KeyRing, load_keyring, write_key_file
from store.db import create_engine, migrate, session_factory, transaction
from store.models import DataKeyRow
from store.vault import Vault


class CliError(Exception):
    """A problem the admin can fix; printed without a traceback."""


@dataclass(frozen=True)
class Env:
    settings: Settings
    loaded: practice_config.Loaded


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        sys.exit(2)
    try:
        settings = Settings()
        env = Env(settings, practice_config.load(settings.resolved_config))
        logs.configure(settings.log_level)
        args.handler(env, args)
    except ValidationError as exc:
        _fail("settings: " + "; ".join(_setting_problem(e) for e in exc.errors()))
    except practice_config.ConfigError as exc:
        _fail("the practice config has problems:\n" + "\n".join(f"  {p}" for p in exc.problems))
    except (
        CliError,
        CryptoError,
        MissingToken,
        people.NotFound,
        checkins.ClientUnavailable,
        ValueError,
    ) as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    print(f"rapport: {message}", file=sys.stderr)
    sys.exit(1)


def _setting_problem(error: Any) -> str:
    key = "RAPPORT_" + "_".join(str(p) for p in error["loc"]).upper()
    return f"{key}: {error['msg']}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rapport",
        description="Rapport: alliance check-ins between therapy sessions, over Telegram.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("init", help="create or upgrade the database and the key file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("run", help="run the bot (polling, or webhook mode when configured)")
    p.set_defaults(handler=cmd_run)

    therapist = sub.add_parser("therapist", help="add and list therapists").add_subparsers(
        title="therapist commands", metavar="COMMAND"
    )
    p = therapist.add_parser("add", help="add a therapist and print their one-time link")
    p.add_argument("--name", required=True, help="the therapist's name (stored encrypted)")
    p.add_argument("--admin", action="store_true", help="make them a practice admin")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_therapist_add)
    p = therapist.add_parser("list", help="list therapists")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_therapist_list)

    client = sub.add_parser("client", help="invite and list clients").add_subparsers(
        title="client commands", metavar="COMMAND"
    )
    p = client.add_parser("invite", help="invite a client and print their one-time link")
    p.add_argument("--therapist", required=True, type=_uuid, help="the therapist's id")
    p.add_argument("--label", default="", help="how the therapist knows the client (encrypted)")
    p.add_argument("--timezone", help="IANA time zone, e.g. Europe/Berlin (default: practice's)")
    p.add_argument("--schedule", metavar="TEMPLATE", help="a schedule template from the config")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_client_invite)
    p = client.add_parser("list", help="list clients")
    p.add_argument("--therapist", type=_uuid, help="only this therapist's clients")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_client_list)

    checkin = sub.add_parser("checkin", help="send a check-in now").add_subparsers(
        title="checkin commands", metavar="COMMAND"
    )
    p = checkin.add_parser("send", help="queue a check-in for now; the running bot sends it")
    p.add_argument("--client", required=True, type=_uuid, help="the client's id")
    p.add_argument(
        "--instrument", action="append", help="an instrument id (repeatable; default: config's)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_checkin_send)

    keys = sub.add_parser("keys", help="master key rotation and status").add_subparsers(
        title="keys commands", metavar="COMMAND"
    )
    p = keys.add_parser("rotate", help="add a new active master key and re-wrap every data key")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_keys_rotate)
    p = keys.add_parser("status", help="which master keys are still in use")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_keys_status)
    return parser


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an id (ids look like 8-4-4-4-12 hex)"
        ) from None


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, default=str))
    else:
        print("\n".join(lines))


async def _with_session(
    env: Env, work: Callable[[AsyncSession, Vault], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    engine = create_engine(env.settings.resolved_database_url)
    try:
        await migrate(engine)
        vault = load_vault(env.settings)
        async with transaction(session_factory(engine)) as session:
            return await work(session, vault)
    finally:
        await engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


# --- init and run -----------------------------------------------------------------------


async def initialise(settings: Settings) -> dict[str, Any]:
    """Create or upgrade the database and create the key file if needed; idempotent."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
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
    _emit(args, result, lines)


def cmd_run(env: Env, args: argparse.Namespace) -> None:
    settings = env.settings
    setup = asyncio.run(initialise(settings))
    if setup["key_file_created"]:
        print(f"Created the key file {setup['key_file']}: back it up now.", file=sys.stderr)
    token = settings.token()
    logs.configure(settings.log_level, secrets=[token])
    app = build_application(settings, env.loaded)
    try:
        _serve(app, settings)
    except InvalidToken:
        raise CliError(
            "Telegram refused the bot token: check RAPPORT_BOT_TOKEN (BotFather's /token "
            "shows it again)"
        ) from None
    except NetworkError as exc:
        raise CliError(
            f"cannot reach the Telegram Bot API at {settings.telegram_api_url}: "
            f"{logs.redact(str(exc), token)}"
        ) from None


def _serve(app: RapportApp, settings: Settings) -> None:
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


# --- therapists and clients -------------------------------------------------------------


async def _link(session: AsyncSession, settings: Settings, token: str) -> str | None:
    username = settings.bot_username or await settings_kv.get(session, settings_kv.BOT_USERNAME)
    return f"https://t.me/{username}?start={token}" if username else None


def _link_lines(link: str | None, token: str, expires: datetime) -> list[str]:
    if link:
        return [
            f"One-time link: {link}",
            f"Token: {token}",
            f"Valid until: {expires:%Y-%m-%d %H:%M} UTC",
        ]
    return [
        f"Token: {token}",
        f"Valid until: {expires:%Y-%m-%d %H:%M} UTC",
        "The bot's username is not known yet (start the bot once, or set RAPPORT_BOT_USERNAME).",
        "The link is https://t.me/<bot username>?start=<token>.",
    ]


def cmd_therapist_add(env: Env, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        therapist, invite = await people.add_therapist(
            session,
            vault,
            name=args.name,
            is_admin=args.admin,
            now=_now(),
            invite_ttl=env.loaded.config.invites.ttl,
        )
        link = await _link(session, env.settings, invite.token)
        return {
            "therapist_id": str(therapist.id),
            "admin": therapist.is_admin,
            "link": link,
            "token": invite.token,
            "expires_at": invite.expires_at.isoformat(),
        }

    result = asyncio.run(_with_session(env, work))
    lines = [f"Therapist id: {result['therapist_id']}"]
    lines += _link_lines(
        result["link"], result["token"], datetime.fromisoformat(result["expires_at"])
    )
    lines.append("Send the link to the therapist; opening it links their Telegram account.")
    _emit(args, result, lines)


def cmd_therapist_list(env: Env, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        views = await people.list_therapists(session, vault)
        return {"therapists": [_jsonable(asdict(v)) for v in views]}

    result = asyncio.run(_with_session(env, work))
    lines = [
        f"{t['id']}  {t['name']}{' (admin)' if t['is_admin'] else ''}  "
        f"{'linked' if t['linked'] else 'not linked yet'}  clients: {t['clients']}"
        + ("" if t["active"] else "  [inactive]")
        for t in result["therapists"]
    ] or ["No therapists yet. Add one with: rapport therapist add --name NAME"]
    _emit(args, result, lines)


def cmd_client_invite(env: Env, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        client, invite = await people.invite_client(
            session,
            vault,
            therapist_id=args.therapist,
            label=args.label,
            timezone=args.timezone or env.loaded.config.practice.timezone,
            schedule_template=args.schedule,
            now=_now(),
            invite_ttl=env.loaded.config.invites.ttl,
        )
        link = await _link(session, env.settings, invite.token)
        return {
            "client_id": str(client.id),
            "therapist_id": str(client.therapist_id),
            "timezone": client.timezone,
            "link": link,
            "token": invite.token,
            "expires_at": invite.expires_at.isoformat(),
        }

    result = asyncio.run(_with_session(env, work))
    lines = [f"Client id: {result['client_id']}"]
    lines += _link_lines(
        result["link"], result["token"], datetime.fromisoformat(result["expires_at"])
    )
    lines.append("Give the link to the client; opening it in Telegram connects them.")
    _emit(args, result, lines)


def cmd_client_list(env: Env, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        views = await people.list_clients(session, vault, args.therapist)
        return {"clients": [_jsonable(asdict(v)) for v in views]}

    result = asyncio.run(_with_session(env, work))
    lines = [
        f"{c['id']}  {c['label']}  {c['status']}  {c['timezone']}  therapist {c['therapist_id']}"
        for c in result["clients"]
    ] or ["No clients yet. Invite one with: rapport client invite --therapist ID"]
    _emit(args, result, lines)


def cmd_checkin_send(env: Env, args: argparse.Namespace) -> None:
    instruments = args.instrument or env.loaded.config.checkins.instruments
    unknown = [name for name in instruments if name not in env.loaded.instruments]
    if unknown:
        raise CliError(
            f"unknown instrument {unknown[0]!r}; known: {', '.join(sorted(env.loaded.instruments))}"
        )

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        now = _now()
        checkin = await checkins.queue_now(
            session,
            client_id=args.client,
            instruments=instruments,
            now=now,
            window=env.loaded.config.checkins.window,
        )
        return {
            "checkin_id": str(checkin.id),
            "client_id": str(checkin.client_id),
            "instruments": instruments,
            "due_at": checkin.due_at.isoformat(),
            "expires_at": checkin.expires_at.isoformat(),
        }

    result = asyncio.run(_with_session(env, work))
    _emit(
        args,
        result,
        [
            f"Check-in {result['checkin_id']} queued; the running bot sends it within seconds.",
            f"It can be answered until {result['expires_at']}.",
        ],
    )


# --- keys -------------------------------------------------------------------------------


def cmd_keys_rotate(env: Env, args: argparse.Namespace) -> None:
    settings = env.settings
    if settings.master_keys is not None:
        raise CliError(
            "the master keys come from RAPPORT_MASTER_KEYS: add a new key there (see "
            "docs/operations.md), restart, then run `rapport keys rotate` with a key file"
        )
    key_file = settings.resolved_key_file
    ring = load_keyring(key_file).with_new_active_key()
    write_key_file(key_file, ring, create=False)

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        rewrapped = await vault.rewrap_all(session)
        in_use = await vault.keys_in_use(session)
        return {"active_key": ring.active_id, "rewrapped": rewrapped, "in_use": dict(in_use)}

    result = asyncio.run(_with_session(env, work))
    _emit(
        args,
        result,
        [
            f"New active key {result['active_key']}; re-wrapped {result['rewrapped']} data keys.",
            "Back up the key file now. Old keys stay in it until `rapport keys status` shows "
            "them unused.",
        ],
    )


def cmd_keys_status(env: Env, args: argparse.Namespace) -> None:
    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        in_use = await vault.keys_in_use(session)
        keys = [
            {
                "id": key_id,
                "active": key_id == vault.ring.active_id,
                "data_keys": in_use.get(key_id, 0),
            }
            for key_id in vault.ring.key_ids
        ]
        missing = sorted(set(in_use) - set(vault.ring.key_ids))
        return {"keys": keys, "missing": missing}

    result = asyncio.run(_with_session(env, work))
    lines = [
        f"{k['id']}{' (active)' if k['active'] else ''}: wraps {k['data_keys']} data keys"
        + ("" if k["data_keys"] or k["active"] else " - no longer needed")
        for k in result["keys"]
    ]
    if result["missing"]:
        lines.append(f"MISSING from the key file, but used: {', '.join(result['missing'])}")
    _emit(args, result, lines)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, uuid.UUID | datetime | Path) else v) for k, v in data.items()
    }


if __name__ == "__main__":
    main()
