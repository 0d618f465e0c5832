"""The practice admin's commands: `rapport client reassign`, `therapist deactivate`,
`config check`, `export`, `erase`, `retention run`, `audit` and `stats`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import CliError, Env, add_json, emit, now, uuid_arg, with_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from store.vault import Vault

CSV_FILE = "checkins.csv"


def register(sub: Any) -> None:
    client = _group(sub, "client")
    p = client.add_parser(
        "reassign", help="give a client to another therapist (history and alerts move too)"
    )
    p.add_argument("--client", required=True, type=uuid_arg, help="the client's id")
    p.add_argument("--therapist", required=True, type=uuid_arg, help="the new therapist's id")
    add_json(p)
    p.set_defaults(handler=cmd_client_reassign)

    therapist = _group(sub, "therapist")
    p = therapist.add_parser(
        "deactivate", help="a therapist who leaves: no more messages, no new clients"
    )
    p.add_argument("--therapist", required=True, type=uuid_arg, help="the therapist's id")
    add_json(p)
    p.set_defaults(handler=cmd_therapist_deactivate)

    config = sub.add_parser("config", help="check the practice config file").add_subparsers(
        title="config commands", metavar="COMMAND"
    )
    p = config.add_parser("check", help="validate a config file and list every problem")
    p.add_argument(
        "file", nargs="?", type=Path, help="the file (default: RAPPORT_CONFIG or ./rapport.toml)"
    )
    add_json(p)
    # The file under check may be broken: main() must not load it before this command runs.
    p.set_defaults(handler=cmd_config_check, needs_config=False)

    p = sub.add_parser(
        "export", help="export a client's data (GDPR Art. 15/20), or every client's for research"
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--client", type=uuid_arg, help="the client's id")
    who.add_argument("--all", action="store_true", help="every client (needs --out DIR)")
    p.add_argument(
        "--format",
        choices=("json", "csv"),
        default="json",
        help="json: everything stored; csv: the answers in the `rapport backtest` format",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="with --client: a new file (default: standard output); with --all: a new or "
        "empty directory",
    )
    p.add_argument(
        "--pseudonymise",
        action="store_true",
        help="replace ids by stable codes; leave out labels, Telegram ids, comment texts and "
        "alert reasons",
    )
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("erase", help="erase everything stored about a client (cannot be undone)")
    p.add_argument("--client", required=True, type=uuid_arg, help="the client's id")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (scripts)")
    add_json(p)
    p.set_defaults(handler=cmd_erase)

    retention = sub.add_parser(
        "retention", help="erase the data of long-inactive clients"
    ).add_subparsers(title="retention commands", metavar="COMMAND")
    p = retention.add_parser("run", help="warn and erase as the daily job does")
    p.add_argument("--dry-run", action="store_true", help="only show what would happen")
    add_json(p)
    p.set_defaults(handler=cmd_retention_run)

    p = sub.add_parser("audit", help="the audit log: who did what to which record, and when")
    p.add_argument("--client", type=uuid_arg, help="only rows about this client")
    p.add_argument(
        "--since", type=_since, help="only rows from this date or time on (e.g. 2026-11-01)"
    )
    add_json(p)
    p.set_defaults(handler=cmd_audit)

    p = sub.add_parser("stats", help="clients, check-ins and alerts in numbers")
    add_json(p)
    p.set_defaults(handler=cmd_stats)


def _group(sub: Any, name: str) -> Any:
    """The subcommands of an existing command group (e.g. `client`), to add to them."""
    parser = sub.choices.get(name) or sub.add_parser(name)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(title=f"{name} commands", metavar="COMMAND")


def _since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time; use 2026-11-01 or 2026-11-01T09:00+01:00"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- reassignment and deactivation ---------------------------------------------------------


def cmd_client_reassign(env: Env, args: argparse.Namespace) -> None:
    from store import admin

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        done = await admin.reassign(
            session, vault, client_id=args.client, therapist_id=args.therapist, now=now()
        )
        return {k: str(v) if not isinstance(v, int) else v for k, v in asdict(done).items()}

    result = asyncio.run(with_session(env, work))
    emit(
        args,
        result,
        [
            f"Client {result['client_id']} is now with therapist {result['to_therapist']}.",
            f"{result['alerts_moved']} unresolved alert(s) moved with them "
            f"({result['alerts_redelivered']} open, sent to the new therapist).",
            "Both therapists get a notice.",
        ],
    )


def cmd_therapist_deactivate(env: Env, args: argparse.Namespace) -> None:
    from store import admin

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        done = await admin.deactivate(session, therapist_id=args.therapist)
        return {
            "therapist_id": str(done.therapist_id),
            "notices_cancelled": done.notices_cancelled,
            "active_admins_left": done.active_admins_left,
        }

    result = asyncio.run(with_session(env, work))
    lines = [
        f"Therapist {result['therapist_id']} is deactivated: their Telegram account is unlinked, "
        "they get no more messages, and no client can be given to them.",
    ]
    if result["active_admins_left"] == 0:
        lines.append(
            "Warning: no active practice admin is left to receive retention warnings; add one "
            "with: rapport therapist add --name NAME --admin"
        )
    emit(args, result, lines)


# --- config check --------------------------------------------------------------------------


def cmd_config_check(env: Env, args: argparse.Namespace) -> None:
    from bot import config as practice_config

    path: Path | None = args.file or env.settings.resolved_config
    try:
        loaded = practice_config.load(path)
    except practice_config.ConfigError as exc:
        result = {"file": str(path), "valid": False, "problems": exc.problems}
        lines = [
            *exc.problems,
            f"{len(exc.problems)} problem(s): Rapport does not start until they are fixed.",
        ]
        emit(args, result, lines)
        sys.exit(1)
    config = loaded.config
    instruments = sorted(loaded.instruments)
    templates = sorted(loaded.templates)
    languages = sorted(config.make_texts().languages)
    valid = {
        "file": loaded.source,
        "valid": True,
        "problems": [],
        "instruments": instruments,
        "templates": templates,
        "languages": languages,
        "quiet_hours": str(loaded.quiet) if loaded.quiet else None,
        "retention_days": config.retention.inactive_days,
    }
    lines = []
    if path is None:
        lines.append(
            "No config file (RAPPORT_CONFIG is not set and there is no ./rapport.toml): Rapport "
            "runs on its built-in defaults; rapport.example.toml shows every setting."
        )
    lines += [
        f"OK: {loaded.source} is valid.",
        f"  instruments: {', '.join(instruments)}",
        f"  templates: {', '.join(templates) or 'none'}",
        f"  languages: {', '.join(languages)}",
        "  clients invited without --schedule get: "
        + (config.checkins.default_template or "no schedule (check-ins only when sent)"),
    ]
    valid["default_template"] = config.checkins.default_template
    emit(args, valid, lines)


# --- export and erasure --------------------------------------------------------------------


def _write_new(path: Path, text: str) -> None:
    """Write a new file readable by its owner only; an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(
            f"{path} exists already; choose a new name (exports never overwrite)"
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
        file.write(text)


def _json_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def cmd_export(env: Env, args: argparse.Namespace) -> None:
    from store import admin

    out: Path | None = args.out
    if args.all:
        if out is None:
            raise CliError("--all needs --out DIR, a new or empty directory for the files")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise CliError(f"{out} is not an empty directory; choose a new one")
    elif out is not None and out.exists():
        raise CliError(f"{out} exists already; choose a new name (exports never overwrite)")

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        documents = await admin.export_clients(
            session,
            vault,
            None if args.all else [args.client],
            pseudonymise=args.pseudonymise,
            fmt=args.format,
        )
        return {"documents": documents}

    documents: list[dict[str, Any]] = asyncio.run(with_session(env, work))["documents"]
    if not args.all:
        text = admin.render_csv(documents) if args.format == "csv" else _json_text(documents[0])
        if out is None:
            sys.stdout.write(text)
            return
        _write_new(out, text)
        written = str(out)
    else:
        assert out is not None
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        if args.format == "csv":
            _write_new(out / CSV_FILE, admin.render_csv(documents))
        else:
            for doc in documents:
                _write_new(out / f"{doc['client']['id']}.json", _json_text(doc))
        written = f"{out}/"
    kind = args.format.upper() + (", pseudonymised" if args.pseudonymise else "")
    print(
        f"Exported {len(documents)} client(s) to {written} ({kind}). The export holds clinical "
        "data: keep it safe and delete it when it is no longer needed."
    )


def cmd_erase(env: Env, args: argparse.Namespace) -> None:
    from store import admin

    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError(
                "refusing to erase without confirmation: standard input is not a terminal; "
                "add --yes in scripts"
            )

        async def look(session: AsyncSession, vault: Vault) -> dict[str, Any]:
            return asdict(await admin.client_summary(session, vault, args.client))

        found = asyncio.run(with_session(env, look))
        print(
            f"Client {found['id']} ({found['label']}), {found['status']}, therapist "
            f"{found['therapist_id']}, {found['checkins']} check-in(s).\n"
            "Erasing destroys their data key and deletes every answer, comment and alert; "
            "backups become unreadable too. It cannot be undone."
        )
        if input("Type 'erase' to confirm: ").strip().lower() != "erase":
            raise CliError("nothing was erased")

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        await admin.erase_client(session, vault, args.client, now())
        return {"client_id": str(args.client), "erased": True}

    result = asyncio.run(with_session(env, work))
    emit(
        args,
        result,
        [
            f"Erased client {result['client_id']}: their data key is destroyed and their rows "
            "are deleted. Their therapist gets a notice; the audit log keeps only the id.",
        ],
    )


# --- retention, audit, stats ---------------------------------------------------------------


def cmd_retention_run(env: Env, args: argparse.Namespace) -> None:
    from store.retention import run_retention

    settings = env.loaded.config.retention

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        report = await run_retention(
            session,
            vault,
            now=now(),
            inactive_days=settings.inactive_days,
            warn_days=settings.warn_days,
            dry_run=args.dry_run,
        )
        return {
            "enabled": report.enabled,
            "dry_run": report.dry_run,
            "inactive_days": settings.inactive_days,
            "warn_days": settings.warn_days,
            "warned": [str(i) for i in report.warned],
            "erased": [str(i) for i in report.erased],
            "waiting": [str(i) for i in report.waiting],
            "admins_told": report.admins_told,
            "clients": [
                {
                    "client_id": str(c.client_id),
                    "status": c.status,
                    "last_activity": _iso(c.last_activity),
                    "warned_at": _iso(c.warned_at),
                    "erase_after": _iso(c.erase_after),
                    "action": c.action,
                }
                for c in report.candidates
            ],
        }

    result = asyncio.run(with_session(env, work))
    if not result["enabled"]:
        emit(args, result, ["Retention is off: [retention] inactive_days is not set."])
        return
    verb = {"warn": "warn", "erase": "erase", "wait": "wait"}
    if not result["dry_run"]:
        verb = {"warn": "warned", "erase": "erased", "wait": "waiting"}
    lines = [
        ("Dry run, nothing changed. " if result["dry_run"] else "")
        + f"Clients inactive for more than {result['inactive_days']} days are erased; the "
        f"practice admins are warned {result['warn_days']} days before.",
    ]
    lines += [
        f"{c['client_id']}  {c['status']}  last activity {c['last_activity'][:10]}  "
        f"{verb[c['action']]}: erasure on or after {c['erase_after'][:10]}"
        for c in result["clients"]
    ] or ["No client is near the end of the retention period."]
    if result["warned"] and result["admins_told"] == 0:
        lines.append(
            "Warning: there is no active practice admin to warn; add one with: rapport "
            "therapist add --name NAME --admin"
        )
    emit(args, result, lines)


def cmd_audit(env: Env, args: argparse.Namespace) -> None:
    from store import admin

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        chosen = admin.AuditFilter(client_id=args.client, since=args.since)
        rows = await admin.audit_log(session, chosen)
        return {
            "events": [
                {
                    "at": e.at.isoformat(),
                    "actor_kind": e.actor_kind,
                    "actor_id": str(e.actor_id) if e.actor_id else None,
                    "action": e.action,
                    "target_kind": e.target_kind,
                    "target_id": str(e.target_id) if e.target_id else None,
                    "outcome": e.outcome,
                    "detail": e.detail,
                }
                for e in rows
            ]
        }

    result = asyncio.run(with_session(env, work))
    lines = [
        f"{e['at'][:19].replace('T', ' ')}  {e['actor_kind']}"
        + (f" {e['actor_id']}" if e["actor_id"] else "")
        + f"  {e['action']}"
        + (f"  {e['target_kind']} {e['target_id']}" if e["target_id"] else "")
        + f"  {e['outcome']}"
        + (f"  ({e['detail']})" if e["detail"] else "")
        for e in result["events"]
    ] or ["No audit rows match."]
    emit(args, result, lines)


def cmd_stats(env: Env, args: argparse.Namespace) -> None:
    from store import admin

    async def work(session: AsyncSession, vault: Vault) -> dict[str, Any]:
        found = await admin.stats(session, now=now())
        data = asdict(found)
        data["since"], data["until"] = _iso(found.since), _iso(found.until)
        return data

    result = asyncio.run(with_session(env, work))

    def pairs(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"

    checkins = result["checkins"]
    median = result["median_hours_to_acknowledge"]
    emit(
        args,
        result,
        [
            f"Clients: {pairs(result['clients'])}",
            f"Therapists: {pairs(result['therapists'])}",
            f"Check-ins in the last 4 weeks (since {result['since'][:10]}): sent "
            f"{checkins['sent']}, completed {checkins['completed']}, missed {checkins['missed']}"
            f", expired unfinished {checkins['expired']}",
            f"Alerts raised in the last 4 weeks, by rule: {pairs(result['alerts_by_rule'])}",
            f"Open alerts now, by rule: {pairs(result['open_alerts_by_rule'])}",
            "Median time from alert to acknowledgement (last 4 weeks): "
            + (
                f"{median} h over {result['acknowledged']} alert(s)"
                if median is not None
                else "none acknowledged"
            ),
        ],
    )
