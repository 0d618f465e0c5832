"""Button data: short, opaque, and parsed defensively (the client's app writes it).

Format: `<action>:<check-in id, 22 chars base64url>:<position>:<value>`, at most ~40 bytes,
well inside Telegram's 64. Parsing never raises: anything malformed is None.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass

ANSWER = "a"
NO_COMMENT = "n"
ACTIONS = frozenset({ANSWER, NO_COMMENT})
_PATTERN = re.compile(r"^([a-z]):([A-Za-z0-9_-]{22}):(\d{1,3}):(-?\d{1,3})$")


@dataclass(frozen=True)
class Tap:
    action: str
    checkin_id: uuid.UUID
    position: int
    value: int


def encode(tap: Tap) -> str:
    short = base64.urlsafe_b64encode(tap.checkin_id.bytes).rstrip(b"=").decode()
    return f"{tap.action}:{short}:{tap.position}:{tap.value}"


def decode(data: str | None) -> Tap | None:
    if not data:
        return None
    match = _PATTERN.match(data)
    if match is None or match.group(1) not in ACTIONS:
        return None
    try:
        raw = base64.urlsafe_b64decode(match.group(2) + "==")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16:
        return None
    tap = Tap(match.group(1), uuid.UUID(bytes=raw), int(match.group(3)), int(match.group(4)))
    # Only the canonical form is accepted, so one tap has exactly one spelling.
    return tap if encode(tap) == data else None
