"""Therapists, clients and invites on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from store import people
from store.crypto import DecryptionError
from store.db import transaction
from store.models import AuditEvent, Client, ClientStatus, Invite
from store.vault import Vault, unseal
from tests.conftest import Database
from tests.factories import NOW, TTL, redeem, team


async def test_names_and_labels_are_listed_decrypted(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault, label="Client Rosalind", name="Therapist Ada")
    async with transaction(database.sessions) as session:
        therapists = await people.list_therapists(session, vault)
        clients = await people.list_clients(session, vault, made.therapist.id)
    assert [(t.name, t.linked, t.clients) for t in therapists] == [("Therapist Ada", True, 1)]
    assert [(c.label, c.status, c.timezone) for c in clients] == [
        ("Client Rosalind", ClientStatus.ACTIVE, "Europe/Berlin")
    ]


async def test_invite_is_single_use(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    assert await redeem(database.sessions, vault, made.client_token, 999) is None


@pytest.mark.parametrize(
    "token",
    ["", "short", "x" * 65, "has spaces in it and is long", "../../etc/passwd-aaaaaaaaaa"],
)
async def test_malformed_tokens_are_refused(database: Database, vault: Vault, token: str) -> None:
    assert await redeem(database.sessions, vault, token, 1) is None


async def test_expired_invite_is_refused_and_stores_nothing(
    database: Database, vault: Vault
) -> None:
    made = await team(database.sessions, vault, client_tg=None)
    async with database.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(AuditEvent))
    late = NOW + TTL + timedelta(seconds=1)
    assert await redeem(database.sessions, vault, made.client_token, 4242, late) is None
    async with database.sessions() as session:
        client = await session.get(Client, made.client.id)
        invite = await session.scalar(select(Invite).where(Invite.client_id == made.client.id))
        after = await session.scalar(select(func.count()).select_from(AuditEvent))
    assert client is not None and client.telegram_hash is None and client.chat_enc is None
    assert invite is not None and invite.used_at is None
    assert after == before


async def test_one_telegram_account_links_once(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault, therapist_tg=5001, client_tg=None)
    # The therapist's own account cannot also become their client.
    assert await redeem(database.sessions, vault, made.client_token, 5001) is None


async def test_ciphertext_copied_to_another_row_fails(database: Database, vault: Vault) -> None:
    first = await team(database.sessions, vault, therapist_tg=1, client_tg=2, label="Alpha")
    async with transaction(database.sessions) as session:
        client, _ = await people.invite_client(
            session,
            vault,
            therapist_id=first.therapist.id,
            label="Beta",
            timezone="UTC",
            schedule_template=None,
            now=NOW,
            invite_ttl=TTL,
        )
        source = await session.get(Client, first.client.id)
        assert source is not None
        client.label_enc = source.label_enc  # an attacker with write access swaps ciphertexts
    async with transaction(database.sessions) as session:
        row = await session.get(Client, client.id)
        assert row is not None
        with pytest.raises(DecryptionError):
            unseal(await vault.key(session, row.id), row, "label_enc")


async def test_unknown_therapist_or_zone_is_a_clear_error(database: Database, vault: Vault) -> None:
    made = await team(database.sessions, vault)
    async with transaction(database.sessions) as session:
        with pytest.raises(ValueError, match="IANA"):
            await people.invite_client(
                session,
                vault,
                therapist_id=made.therapist.id,
                label="x",
                timezone="Mars/Base",
                schedule_template=None,
                now=NOW,
                invite_ttl=TTL,
            )
    async with transaction(database.sessions) as session:
        with pytest.raises(people.NotFound):
            await people.invite_client(
                session,
                vault,
                therapist_id=made.client.id,
                label="x",
                timezone="UTC",
                schedule_template=None,
                now=NOW,
                invite_ttl=TTL,
            )
