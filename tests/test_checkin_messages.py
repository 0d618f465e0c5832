"""The message that opens a check-in, rendered once per question and language and copied
with each check-in's own id (handlers.delivery.CheckinMessages), is exactly what
handlers.views renders for that check-in; a message that does not depend on the check-in
only through its buttons' data is rendered in full every time."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from alliance.checkin import Step, steps
from bot.config import load_instruments
from handlers import views
from handlers.delivery import CheckinMessages
from handlers.texts import Say, Texts
from store.checkins import Outgoing
from tests.factories import NOW

INSTRUMENTS = load_instruments(None, Path("."))


def _outgoing(step: Step, language: str, renew: bool) -> Outgoing:
    return Outgoing(
        checkin_id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        chat_id=800_000_001,
        language=language,
        step=step,
        renew_consent=renew,
        expires_at=NOW,
    )


def _views(texts: Texts, outgoing: Outgoing) -> views.Message:
    say = Say(texts, outgoing.language)
    if outgoing.renew_consent:
        return views.consent_renewal(say, outgoing.checkin_id)
    return views.step_message(say, outgoing.checkin_id, outgoing.step)


def _same(one: views.Message, other: views.Message) -> bool:
    return one[0] == other[0] and one[1].to_dict() == other[1].to_dict()


@pytest.mark.parametrize("renew", [False, True])
@pytest.mark.parametrize("language", ["en", "de", "es"])
def test_each_check_in_gets_what_views_renders_for_it(language: str, renew: bool) -> None:
    texts = Texts()
    messages = CheckinMessages(texts)
    for instrument in INSTRUMENTS.values():
        first = steps([instrument])[0]
        for _ in range(3):  # the first renders the template, the others copy it
            outgoing = _outgoing(first, language, renew)
            assert _same(messages.render(outgoing), _views(texts, outgoing))
    assert all(template is not None for template in messages._templates.values())


def test_a_message_with_the_id_elsewhere_is_rendered_in_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    step_message = views.step_message

    def with_id_in_text(say: Say, checkin_id: uuid.UUID, step: Step) -> views.Message:
        text, markup = step_message(say, checkin_id, step)
        return f"{text} ({checkin_id})", markup

    monkeypatch.setattr(views, "step_message", with_id_in_text)
    texts = Texts()
    messages = CheckinMessages(texts)
    first = steps([INSTRUMENTS["alliance"]])[0]
    for _ in range(2):
        outgoing = _outgoing(first, "en", False)
        rendered = messages.render(outgoing)
        assert str(outgoing.checkin_id) in rendered[0]
        assert _same(rendered, _views(texts, outgoing))
    assert list(messages._templates.values()) == [None]
