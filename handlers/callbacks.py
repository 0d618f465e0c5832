"""Button data: short, opaque, and parsed defensively (the client's app writes it).

Format: `<action>:<record id, 22 chars base64url>:<position>:<value>`, at most ~40 bytes,
well inside Telegram's 64. The record is a check-in, an invite or a client, by action.
Parsing never raises: anything malformed is None.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass

ANSWER = "a"  # check-in: an answer
SKIP = "s"  # check-in: skip an optional item
BACK = "b"  # check-in: the previous item
NO_COMMENT = "n"  # check-in: finish without a comment
CONSENT = "c"  # invite: agree (1), not now (0) or the full text (2)
RENEW = "g"  # check-in: agree (1), not now (0) or the full text (2) of a changed consent text
ERASE = "d"  # client: erase everything (1) or cancel (0)
ACKNOWLEDGE = "k"  # alert: the therapist has seen it
SNOOZE = "z"  # alert: remind me tomorrow
WHY = "w"  # alert: the technical reason behind a client's alerts
HISTORY = "h"  # client: the therapist's view of the trend and check-ins (position: page)
PICK = "p"  # client: picked from a therapist's list (position: which command)
TEMPLATE = "t"  # client: follow another schedule template (position: its index)
PAUSE = "u"  # client: the therapist pauses check-ins (value: days; 0 resumes)
LANGUAGE = "l"  # client: writes to me in this language (position: its index; value: a check)
CHECKIN_ACTIONS = frozenset({ANSWER, SKIP, BACK, NO_COMMENT})
THERAPIST_ACTIONS = frozenset({ACKNOWLEDGE, SNOOZE, WHY, HISTORY, PICK, TEMPLATE, PAUSE})
ACTIONS = CHECKIN_ACTIONS | THERAPIST_ACTIONS | {CONSENT, RENEW, ERASE, LANGUAGE}
YES, NO = 1, 0
FULL_TEXT = 2  # a consent message: show the full text in its place
_PATTERN = re.compile(r"^([a-z]):([A-Za-z0-9_-]{22}):(\d{1,3}):(-?\d{1,3})$")


@dataclass(frozen=True)
class Tap:
    action: str
    ref: uuid.UUID
    position: int
    value: int


def encode(tap: Tap) -> str:
    short = base64.urlsafe_b64encode(tap.ref.bytes).rstrip(b"=").decode()
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
