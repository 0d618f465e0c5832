"""`rapport web link`: a one-time link to the web dashboard for a therapist."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from bot.cli.common import CliError, Env, add_json, emit, now, uuid_arg, with_session

# Only the standard library at import time (`rapport --help` imports every command module);
# what the command needs is imported when it runs.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from store.vault import Vault


def register(sub: Any) -> None:
    web = sub.add_parser("web", help="the web dashboard").add_subparsers(
        title="web commands", metavar="COMMAND"
    )
    p = web.add_parser("link", help="a therapist's one-time sign-in link (10 minutes)")
    p.add_argument("--therapist", required=True, type=uuid_arg, help="the therapist's id")
    add_json(p)
    p.set_defaults(handler=cmd_link)


def cmd_link(env: Env, args: argparse.Namespace) -> None:
    from store import websessions
    from store.models import Therapist
    from store.people import NotFound

    base = env.settings.web_base_url
    if base is None:
        raise CliError(
            "the web dashboard is off (RAPPORT_WEB_PORT=0 and no RAPPORT_WEB_URL): set them "
            "as docs/operations.md says"
        )

    async def work(session: AsyncSession, _vault: Vault) -> dict[str, Any]:
        therapist = await session.get(Therapist, args.therapist)
        if therapist is None:
            raise NotFound(f"no therapist with id {args.therapist}")
        if not therapist.active:
            raise CliError(f"therapist {therapist.id} is deactivated and cannot sign in")
        issued = await websessions.issue_login(session, therapist, now(), actor_kind="admin")
        return {
            "therapist_id": str(therapist.id),
            "link": websessions.login_link(base, issued.token),
            "expires_at": issued.expires_at.isoformat(),
        }

    result = asyncio.run(with_session(env, work))
    emit(
        args,
        result,
        [
            f"One-time link: {result['link']}",
            f"Valid until: {result['expires_at'][:16].replace('T', ' ')} UTC (10 minutes), once.",
            "Give it to the therapist only; opening it signs them in to the dashboard.",
        ],
    )
