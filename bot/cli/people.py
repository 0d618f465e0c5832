"""Therapists, clients and check-ins: `rapport therapist ...`, `client ...`, `checkin ...`."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.cli.common import CliError, Env, add_json, emit, jsonable, now, uuid_arg, with_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.settings import Settings
    from store.vault import Vault


def register(sub: Any) -> None:
    therapist = sub.add_parser("therapist", help="add and list therapists").add_subparsers(
        title="therapist commands", metavar="COMMAND"
    )
    p = therapist.add_parser("add", help="add a therapist and print their one-time link")
    p.add_argument("--name", required=True, help="the therapist's name (stored encrypted)")
    p.add_argument("--admin", action="store_true", help="make them a practice admin")
    add_json(p)
    p.set_defaults(handler=cmd_therapist_add)
    p = therapist.add_parser("list", help="list therapists")
    add_json(p)
    p.set_defaults(handler=cmd_therapist_list)

    client = sub.add_parser("client", help="invite and list clients").add_subparsers(
        title="client commands", metavar="COMMAND"
    )
    p = client.add_parser("invite", help="invite a client and print their one-time link")
    p.add_argument("--therapist", required=True, type=uuid_arg, help="the therapist's id")
    p.add_argument("--label", default="", help="how the therapist knows the client (encrypted)")
    p.add_argument("--timezone", help="IANA time zone, e.g. Europe/Berlin (default: practice's)")
    p.add_argument("--schedule", metavar="TEMPLATE", help="a schedule template from the config")
    add_json(p)
    p.set_defaults(handler=cmd_client_invite)
    p = client.add_parser("list", help="list clients")
    p.add_argument("--therapist", type=uuid_arg, help="only this therapist's clients")
    add_json(p)
    p.set_defaults(handler=cmd_client_list)

    checkin = sub.add_parser("checkin", help="send a check-in now").add_subparsers(
        title="checkin commands", metavar="COMMAND"
    )
    p = checkin.add_parser("send", help="queue a check-in for now; the running bot sends it")
    p.add_argument("--client", required=True, type=uuid_arg, help="the client's id")
    p.add_argument(
        "--instrument", action="append", help="an instrument id (repeatable; default: config's)"
    )
    add_json(p)
    p.set_defaults(handler=cmd_checkin_send)


async def _link(session: AsyncSession, settings: Settings, token: str) -> str | None:
    from store import people, settings_kv

    username = settings.bot_username or await settings_kv.get(session, settings_kv.BOT_USERNAME)
    return people.invite_link(username, token) if username else None


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
    from store import people

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        therapist, invite = await people.add_therapist(
            session,
            vault,
            name=args.name,
            is_admin=args.admin,
            now=now(),
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

    result = asyncio.run(with_session(env, work))
    lines = [f"Therapist id: {result['therapist_id']}"]
    lines += _link_lines(
        result["link"], result["token"], datetime.fromisoformat(result["expires_at"])
    )
    lines.append("Send the link to the therapist; opening it links their Telegram account.")
    emit(args, result, lines)


def cmd_therapist_list(env: Env, args: argparse.Namespace) -> None:
    from store import people

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        views = await people.list_therapists(session, vault)
        return {"therapists": [jsonable(asdict(v)) for v in views]}

    result = asyncio.run(with_session(env, work))
    lines = [
        f"{t['id']}  {t['name']}{' (admin)' if t['is_admin'] else ''}  "
        f"{'linked' if t['linked'] else 'not linked yet'}  clients: {t['clients']}"
        + ("" if t["active"] else "  [inactive]")
        for t in result["therapists"]
    ] or ["No therapists yet. Add one with: rapport therapist add --name NAME"]
    emit(args, result, lines)


def cmd_client_invite(env: Env, args: argparse.Namespace) -> None:
    from schedules import manage

    name = args.schedule or env.loaded.config.checkins.default_template
    template = env.loaded.templates.get(name) if name else None
    if name and template is None:
        known = ", ".join(sorted(env.loaded.templates)) or "none are defined"
        raise CliError(f"no schedule template named {name!r} in the config; known: {known}")

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        at = now()
        client, invite = await manage.invite(
            session,
            vault,
            therapist_id=args.therapist,
            label=args.label,
            timezone=args.timezone or env.loaded.config.practice.timezone,
            template=template,
            now=at,
            invite_ttl=env.loaded.config.invites.ttl,
        )
        link = await _link(session, env.settings, invite.token)
        return {
            "client_id": str(client.id),
            "therapist_id": str(client.therapist_id),
            "timezone": client.timezone,
            "template": name,
            "link": link,
            "token": invite.token,
            "expires_at": invite.expires_at.isoformat(),
        }

    result = asyncio.run(with_session(env, work))
    lines = [f"Client id: {result['client_id']}"]
    lines += _link_lines(
        result["link"], result["token"], datetime.fromisoformat(result["expires_at"])
    )
    lines.append("Give the link to the client; opening it in Telegram connects them.")
    emit(args, result, lines)


def cmd_client_list(env: Env, args: argparse.Namespace) -> None:
    from store import people

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        views = await people.list_clients(session, vault, args.therapist)
        return {"clients": [jsonable(asdict(v)) for v in views]}

    result = asyncio.run(with_session(env, work))
    lines = [
        f"{c['id']}  {c['label']}  {c['status']}  {c['timezone']}  therapist {c['therapist_id']}"
        for c in result["clients"]
    ] or ["No clients yet. Invite one with: rapport client invite --therapist ID"]
    emit(args, result, lines)


def cmd_checkin_send(env: Env, args: argparse.Namespace) -> None:
    from store import checkins

    instruments = args.instrument or env.loaded.config.checkins.instruments
    unknown = [name for name in instruments if name not in env.loaded.instruments]
    if unknown:
        raise CliError(
            f"unknown instrument {unknown[0]!r}; known: {', '.join(sorted(env.loaded.instruments))}"
        )

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        checkin = await checkins.queue_now(
            session,
            client_id=args.client,
            instruments=instruments,
            now=now(),
            window=env.loaded.config.checkins.window,
        )
        return {
            "checkin_id": str(checkin.id),
            "client_id": str(checkin.client_id),
            "instruments": instruments,
            "due_at": checkin.due_at.isoformat(),
            "expires_at": checkin.expires_at.isoformat(),
        }

    result = asyncio.run(with_session(env, work))
    emit(
        args,
        result,
        [
            f"Check-in {result['checkin_id']} queued; the running bot sends it within seconds.",
            f"It can be answered until {result['expires_at']}.",
        ],
    )
