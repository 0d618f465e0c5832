"""A client's status as a state machine (store.lifecycle): every move the table allows, and
every move it does not, both on the table and through the store operations that use it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from itertools import product

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import clients, lifecycle, people
from store.db import transaction
from store.lifecycle import MOVES, ClientEvent
from store.models import Client, ClientStatus, Invite, Notice
from store.vault import Vault
from tests.conftest import Database
from tests.factories import NOW, team

ALLOWED = sorted(MOVES)
DISALLOWED = sorted(set(product(ClientStatus, ClientEvent)) - set(MOVES))


def _client(status: ClientStatus) -> Client:
    return Client(id=uuid.uuid4(), status=status)


@pytest.mark.parametrize(("status", "event"), ALLOWED)
def test_each_allowed_move_lands_where_the_table_says(
    status: ClientStatus, event: ClientEvent
) -> None:
    client = _client(status)
    assert lifecycle.move(client, event) is True
    assert client.status == MOVES[status, event]


@pytest.mark.parametrize(("status", "event"), DISALLOWED)
def test_each_other_move_is_refused_and_changes_nothing(
    status: ClientStatus, event: ClientEvent
) -> None:
    client = _client(status)
    assert lifecycle.after(status, event) is None
    assert lifecycle.move(client, event) is False
    assert client.status == status


def test_a_stopped_client_has_one_way_back_and_it_is_not_their_own() -> None:
    assert [event for (status, event) in MOVES if status == ClientStatus.STOPPED] == [
        ClientEvent.RESTART
    ]
    assert (ClientStatus.STOPPED, ClientEvent.PAUSE) in DISALLOWED
    assert (ClientStatus.STOPPED, ClientEvent.RESUME) in DISALLOWED


# --- through the store ----------------------------------------------------------------------

Operation = Callable[[AsyncSession, Vault, Client], Awaitable[object]]


OPERATIONS: dict[ClientEvent, Operation] = {
    ClientEvent.PAUSE: lambda s, v, c: clients.pause(s, v, c, NOW + timedelta(days=3), NOW),
    ClientEvent.RESUME: lambda s, v, c: clients.resume(s, v, c, NOW),
    ClientEvent.STOP: lambda s, v, c: clients.stop(s, v, c, NOW),
    ClientEvent.RESTART: lambda s, v, c: clients.restart(s, c, NOW, uuid.uuid4()),
    ClientEvent.BLOCK: lambda s, v, c: clients.mark_unreachable(s, v, c, NOW),
    ClientEvent.UNBLOCK: lambda s, v, c: clients.mark_reachable(s, v, c, NOW),
}


async def _notices(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Notice)) or 0)


@pytest.mark.parametrize(("status", "event"), DISALLOWED)
async def test_the_store_refuses_each_other_move(
    database: Database, vault: Vault, status: ClientStatus, event: ClientEvent
) -> None:
    """Through the operation that makes the move: the status, the pause and the planning
    stay as they were, and the therapist is told nothing."""
    made = await team(
        database.sessions, vault, client_tg=None if event == ClientEvent.JOIN else 7001
    )
    async with transaction(database.sessions) as session:
        client = await session.get(Client, made.client.id)
        assert client is not None
        client.status = status  # the starting point, set directly on purpose
    before = await _notices(database)
    async with transaction(database.sessions) as session:
        client = await session.get(Client, made.client.id)
        assert client is not None
        paused_until, planned_until = client.paused_until, client.planned_until
        if event == ClientEvent.JOIN:
            invite = await session.scalar(select(Invite).where(Invite.client_id == client.id))
            assert invite is not None
            linked = await people.redeem_invite(
                session,
                vault,
                invite=invite,
                telegram_user_id=7001,
                chat_id=7001,
                now=NOW,
                consent_version="v1",
            )
            assert linked is None
        else:
            result = await OPERATIONS[event](session, vault, client)
            assert result in (None, False)
    async with database.sessions() as session:
        client = await session.get(Client, made.client.id)
        assert client is not None
        assert client.status == status
        assert (client.paused_until, client.planned_until) == (paused_until, planned_until)
        if event == ClientEvent.JOIN:
            assert client.telegram_hash is None
    assert await _notices(database) == before
