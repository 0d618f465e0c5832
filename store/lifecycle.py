"""A client's status as a small state machine: every allowed move is in `MOVES`, and every
code path that changes a client's status goes through `move` (store/clients.py,
store/people.py). A move that is not in the table changes nothing; the caller says why.

    invited --join--> active <--resume-- paused        (pause again: a new end date)
    active  --pause-> paused
    active, paused, unreachable --stop--> stopped --restart (by their therapist)--> active
    active, paused --block--> unreachable --unblock--> active

A stopped client cannot undo the stop with /pause or /resume: they withdrew, and only their
therapist restarts them (at the client's request). Erasure deletes the row: no status.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from store.models import Client, ClientStatus


class ClientEvent(enum.StrEnum):
    JOIN = "join"  # consented through their invite link
    PAUSE = "pause"  # the client or their therapist paused (again: a new end date)
    RESUME = "resume"  # the client or their therapist resumed, or the pause ran out
    STOP = "stop"  # the client withdrew (/stop)
    RESTART = "restart"  # their therapist started a stopped client's check-ins again
    BLOCK = "block"  # the client blocked the bot
    UNBLOCK = "unblock"  # the client unblocked the bot


_S, _E = ClientStatus, ClientEvent

MOVES: Mapping[tuple[ClientStatus, ClientEvent], ClientStatus] = MappingProxyType(
    {
        (_S.INVITED, _E.JOIN): _S.ACTIVE,
        (_S.ACTIVE, _E.PAUSE): _S.PAUSED,
        (_S.PAUSED, _E.PAUSE): _S.PAUSED,
        (_S.PAUSED, _E.RESUME): _S.ACTIVE,
        (_S.ACTIVE, _E.STOP): _S.STOPPED,
        (_S.PAUSED, _E.STOP): _S.STOPPED,
        (_S.UNREACHABLE, _E.STOP): _S.STOPPED,
        (_S.STOPPED, _E.RESTART): _S.ACTIVE,
        (_S.ACTIVE, _E.BLOCK): _S.UNREACHABLE,
        (_S.PAUSED, _E.BLOCK): _S.UNREACHABLE,
        (_S.UNREACHABLE, _E.UNBLOCK): _S.ACTIVE,
    }
)


def after(status: str, event: ClientEvent) -> ClientStatus | None:
    """The status `event` leads to from `status`, or None when the move is not allowed."""
    return MOVES.get((ClientStatus(status), event))


def allowed(client: Client, event: ClientEvent) -> bool:
    return after(client.status, event) is not None


def move(client: Client, event: ClientEvent) -> bool:
    """Apply `event` to the client's status; False (and nothing changed) when not allowed."""
    target = after(client.status, event)
    if target is None:
        return False
    client.status = target
    return True
