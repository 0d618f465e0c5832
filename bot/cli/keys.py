"""`rapport keys rotate` and `rapport keys status`."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from bot.cli.common import CliError, Env, add_json, emit, with_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from store.vault import Vault


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="master key rotation and status").add_subparsers(
        title="keys commands", metavar="COMMAND"
    )
    p = keys.add_parser("rotate", help="add a new active master key and re-wrap every data key")
    add_json(p)
    p.set_defaults(handler=cmd_keys_rotate)
    p = keys.add_parser("status", help="which master keys are still in use")
    add_json(p)
    p.set_defaults(handler=cmd_keys_status)


def cmd_keys_rotate(env: Env, args: argparse.Namespace) -> None:
    from store.crypto import load_keyring, write_key_file

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

    result = asyncio.run(with_session(env, work))
    emit(
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

    result = asyncio.run(with_session(env, work))
    lines = [
        f"{k['id']}{' (active)' if k['active'] else ''}: wraps {k['data_keys']} data keys"
        + ("" if k["data_keys"] or k["active"] else " - no longer needed")
        for k in result["keys"]
    ]
    if result["missing"]:
        lines.append(f"MISSING from the key file, but used: {', '.join(result['missing'])}")
    emit(args, result, lines)
