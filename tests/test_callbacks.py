"""The button-data codec: whatever a client's app sends, parsing never crashes, and only what
the bot itself issues is accepted."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from handlers import callbacks

taps = st.builds(
    callbacks.Tap,
    action=st.sampled_from(sorted(callbacks.ACTIONS)),
    ref=st.uuids(),
    position=st.integers(min_value=0, max_value=999),
    value=st.integers(min_value=-99, max_value=999),
)


@given(taps)
def test_every_issued_tap_round_trips_within_64_bytes(tap: callbacks.Tap) -> None:
    data = callbacks.encode(tap)
    assert len(data.encode()) <= 64
    assert callbacks.decode(data) == tap


@given(st.text(max_size=80) | st.binary(max_size=80).map(lambda b: b.decode("latin-1")))
def test_anything_else_is_refused_without_crashing(data: str) -> None:
    tap = callbacks.decode(data)
    assert tap is None or callbacks.encode(tap) == data


@given(taps, st.integers(min_value=0, max_value=40), st.characters())
def test_a_changed_character_is_never_a_different_valid_tap(
    tap: callbacks.Tap, index: int, char: str
) -> None:
    data = callbacks.encode(tap)
    forged = data[: index % len(data)] + char + data[index % len(data) + 1 :]
    decoded = callbacks.decode(forged)
    assert decoded is None or callbacks.encode(decoded) == forged


def test_known_forgeries_are_refused() -> None:
    ref = uuid.uuid4()
    good = callbacks.encode(callbacks.Tap(callbacks.ANSWER, ref, 1, 7))
    for forged in [
        good + " ",
        good.upper(),
        good.replace(":7", ":07"),  # a second spelling of the same tap
        good.replace("a:", "q:", 1),  # an action the bot never issues
        "a:" + "A" * 21 + ":1:7",  # a short id
        "",
        None,
    ]:
        assert callbacks.decode(forged) is None, forged


def test_the_why_button_is_a_therapist_action_in_the_same_exact_form() -> None:
    client = uuid.uuid4()
    data = callbacks.encode(callbacks.Tap(callbacks.WHY, client, 0, 0))
    assert data.startswith("w:") and len(data.encode()) <= 64
    assert callbacks.decode(data) == callbacks.Tap(callbacks.WHY, client, 0, 0)
    assert callbacks.WHY in callbacks.THERAPIST_ACTIONS
    assert callbacks.WHY not in {callbacks.ACKNOWLEDGE, callbacks.SNOOZE, callbacks.HISTORY}
    assert callbacks.WHY not in callbacks.CHECKIN_ACTIONS | {callbacks.CONSENT, callbacks.ERASE}
    for forged in (data + ":0", data.replace("w:", "W:", 1), data.replace(":0:0", ":00:0")):
        assert callbacks.decode(forged) is None, forged
