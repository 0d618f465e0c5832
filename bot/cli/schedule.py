"""Schedules and sessions: `rapport schedule show|set|quiet`, `rapport session add|recurring`."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.cli.common import CliError, Env, add_json, emit, now, uuid_arg, with_session
from schedules.rules import (
    WEEKDAYS,
    QuietHours,
    RuleError,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from store.models import Client
    from store.vault import Vault


def register(sub: Any) -> None:
    schedule = sub.add_parser("schedule", help="show or change a client's schedule").add_subparsers(
        title="schedule commands", metavar="COMMAND"
    )
    p = schedule.add_parser("show", help="the rules and the next five due times")
    p.add_argument("--client", required=True, type=uuid_arg, help="the client's id")
    add_json(p)
    p.set_defaults(handler=cmd_show)
    p = schedule.add_parser("set", help="give the client another template from the config")
    p.add_argument("--client", required=True, type=uuid_arg, help="the client's id")
    p.add_argument("--template", required=True, help="a template name from the config")
    add_json(p)
    p.set_defaults(handler=cmd_set)
    p = schedule.add_parser("quiet", help="the client's own quiet hours, or the practice's")
    p.add_argument("--client", required=True, type=uuid_arg, help="the client's id")
    p.add_argument("--hours", required=True, help="HH:MM-HH:MM in local time, or 'practice'")
    add_json(p)
    p.set_defaults(handler=cmd_quiet)

    session = sub.add_parser("session", help="log therapy sessions").add_subparsers(
        title="session commands", metavar="COMMAND"
    )
    p = session.add_parser("add", help="log a session (session-relative check-ins follow it)")
    p.add_argument("--client", required=True, type=uuid_arg, help="the client's id")
    p.add_argument("--at", help="ISO date-time, in the client's zone unless it has an offset")
    add_json(p)
    p.set_defaults(handler=cmd_session_add)
    p = session.add_parser("recurring", help="a regular session time, e.g. tuesday 10:00")
    p.add_argument("--client", required=True, type=uuid_arg, help="the client's id")
    p.add_argument("--weekday", action="append", choices=WEEKDAYS, help="repeatable")
    p.add_argument("--at", help="HH:MM local time")
    p.add_argument("--clear", action="store_true", help="remove the regular session time")
    add_json(p)
    p.set_defaults(handler=cmd_session_recurring)


async def _client(session: AsyncSession, client_id: Any) -> Client:
    from store.models import Client
    from store.people import NotFound

    client = await session.get(Client, client_id, with_for_update=True)
    if client is None:
        raise NotFound(f"no client with id {client_id}")
    return client


def cmd_show(env: Env, args: argparse.Namespace) -> None:
    from schedules import manage

    async def work(session: AsyncSession, _vault: Vault) -> dict[str, Any]:
        client = await _client(session, args.client)
        plan = await manage.upcoming(session, client, env.loaded.quiet, now())
        zone = ZoneInfo(plan.timezone)
        template = env.loaded.templates.get(plan.template or "")
        return {
            "client_id": str(client.id),
            "timezone": plan.timezone,
            "template": plan.template,
            "template_description": template.description if template else None,
            "quiet_hours": str(plan.quiet) if plan.quiet else None,
            "rules": [{"kind": rule.kind, **rule.to_spec()} for rule in plan.rules],
            "next": [
                {"local": t.astimezone(zone).isoformat(), "utc": t.isoformat()} for t in plan.due
            ],
        }

    result = asyncio.run(with_session(env, work))
    lines = [
        f"Client {result['client_id']} ({result['timezone']}), "
        f"template: {result['template'] or '-'}, quiet hours: {result['quiet_hours'] or 'none'}",
        *([f"  {result['template_description']}"] if result["template_description"] else []),
        "Rules:" if result["rules"] else "No rules: check-ins only from `rapport checkin send`.",
        *[f"  {json.dumps(rule)}" for rule in result["rules"]],
        "Next due:" if result["next"] else "Nothing due: no rules, or no sessions logged yet.",
        *[f"  {t['local']}  (UTC {t['utc']})" for t in result["next"]],
    ]
    emit(args, result, lines)


def cmd_set(env: Env, args: argparse.Namespace) -> None:
    from schedules import manage

    template = env.loaded.templates.get(args.template)
    if template is None:
        known = ", ".join(sorted(env.loaded.templates)) or "none are defined"
        raise CliError(f"no template named {args.template!r} in the config; known: {known}")

    async def work(session: AsyncSession, _vault: Vault) -> dict[str, Any]:
        client = await _client(session, args.client)
        rules = await manage.apply_template(session, client, template, now())
        return {"client_id": str(client.id), "template": template.name, "rules": rules}

    result = asyncio.run(with_session(env, work))
    emit(
        args,
        result,
        [
            f"Client {result['client_id']} now follows {result['template']} "
            f"({result['rules']} rules); what the old schedule planned is cancelled."
        ],
    )


def cmd_quiet(env: Env, args: argparse.Namespace) -> None:
    hours: str | None = None
    if args.hours != "practice":
        try:
            hours = str(QuietHours.parse(args.hours))
        except (RuleError, ValueError) as exc:
            raise CliError(
                f"--hours: {exc}; use HH:MM-HH:MM such as 21:30-08:00, or 'practice'"
            ) from None

    async def work(session: AsyncSession, _vault: Vault) -> dict[str, Any]:
        from schedules import manage

        client = await _client(session, args.client)
        manage.set_quiet_hours(session, client, hours, now())  # re-plans from now; audited
        return {"client_id": str(client.id), "quiet_hours": hours or "practice"}

    result = asyncio.run(with_session(env, work))
    emit(args, result, [f"Quiet hours for {result['client_id']}: {result['quiet_hours']}."])


def cmd_session_add(env: Env, args: argparse.Namespace) -> None:
    from store import plans

    async def work(session: AsyncSession, _vault: Vault) -> dict[str, Any]:
        client = await _client(session, args.client)
        at = _parse_when(args.at, client.timezone)
        await plans.add_session(session, client, at, now())
        return {"client_id": str(client.id), "session_at": at.isoformat()}

    result = asyncio.run(with_session(env, work))
    emit(args, result, [f"Session logged at {result['session_at']}."])


def cmd_session_recurring(env: Env, args: argparse.Namespace) -> None:
    from schedules.planner import session_rule

    spec: str | None = None
    if not args.clear:
        if not args.weekday or not args.at:
            raise CliError("give --weekday (repeatable) and --at HH:MM, or --clear")
        try:
            spec = json.dumps({"weekdays": args.weekday, "at": args.at})
            session_rule(spec)
        except (RuleError, ValueError) as exc:
            raise CliError(f"--at: {exc}") from None

    async def work(session: AsyncSession, _vault: Vault) -> dict[str, Any]:
        from schedules import manage

        client = await _client(session, args.client)
        weekdays = None if args.clear else args.weekday
        manage.set_recurring(session, client, weekdays, args.at, now())  # re-plans; audited
        return {"client_id": str(client.id), "recurring": json.loads(spec) if spec else None}

    result = asyncio.run(with_session(env, work))
    emit(
        args,
        result,
        [f"Regular sessions for {result['client_id']}: {result['recurring'] or 'none'}."],
    )


def _parse_when(text: str | None, zone: str) -> datetime:
    from schedules import manage

    try:
        return manage.parse_when(text, zone, now())
    except ValueError as exc:
        raise CliError(f"--at: {exc}") from None
