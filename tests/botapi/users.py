"""FakeUser: a Telegram user talking to the bot through the fake Bot API.

The methods that act (send_text, press, block, ...) are synchronous: they only enqueue an
update, exactly as Telegram would, and return at once. Because nothing is awaited between the
action and a following ``await user.wait_for_message(...)``, the bot cannot answer in between,
so waiting for the *new* message is race-free.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.botapi.formatting import command_entities
from tests.botapi.records import BotMessage, Press

if TYPE_CHECKING:
    from tests.botapi.fake import FakeBotAPI


class FakeUser:
    """A private-chat user; ``id`` is both the user id and the chat id."""

    def __init__(
        self,
        fake: FakeBotAPI,
        user_id: int,
        first_name: str,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> None:
        self.fake = fake
        self.id = user_id
        self.first_name = first_name
        self.username = username
        self.last_name = last_name
        self.language_code = language_code
        self.started = False  # the private chat exists once the user wrote to the bot
        self.blocked = False
        self.sent: list[dict[str, Any]] = []  # the user's own messages (API dicts)

    def __repr__(self) -> str:
        return f"<FakeUser {self.id} {self.first_name!r}{' blocked' if self.blocked else ''}>"

    # -- API shapes ---------------------------------------------------------------------------

    def as_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                user[key] = getattr(self, key)
        return user

    def as_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        for key in ("last_name", "username"):
            if getattr(self, key) is not None:
                chat[key] = getattr(self, key)
        return chat

    # -- acting -------------------------------------------------------------------------------

    def open_chat(self) -> None:
        """Make the chat exist (as if the user had pressed Start long ago) without an update."""
        self.started = True

    def send_text(self, text: str) -> dict[str, Any]:
        """Send a text message; "/cmd args" gets a bot_command entity. Returns the update."""
        self.started = True
        message: dict[str, Any] = {
            "message_id": self.fake.next_message_id(self.id),
            "from": self.as_user(),
            "chat": self.as_chat(),
            "date": int(time.time()),
            "text": text,
        }
        if entities := command_entities(text):
            message["entities"] = entities
        self.sent.append(message)
        return self.fake.enqueue_update("message", message)

    def press(self, message: BotMessage | int, data: str) -> Press:
        """Send a callback_query for ``message`` with arbitrary ``data``.

        Nothing is checked against the message's keyboard, so tests can forge data the bot
        never issued, press stale buttons, or press on messages that no longer exist.
        """
        message_id = message if isinstance(message, int) else message.message_id
        record = self.fake.find_message(self.id, message_id)
        if record is not None and not record.deleted:
            message_json = self.fake.message_json(record)
        else:  # Telegram's InaccessibleMessage: date 0
            message_json = {"chat": self.as_chat(), "message_id": message_id, "date": 0}
        query_id = self.fake.next_query_id()
        payload = {
            "id": query_id,
            "from": self.as_user(),
            "message": message_json,
            "chat_instance": str(-(10**18) - self.id),
            "data": data,
        }
        update = self.fake.enqueue_update("callback_query", payload)
        press = Press(query_id, update["update_id"], self.id, message_id, data)
        self.fake.presses[query_id] = press
        return press

    def press_button(self, message: BotMessage | int, text: str) -> Press:
        """Press the inline button labelled ``text`` in the message's current keyboard."""
        message_id = message if isinstance(message, int) else message.message_id
        record = self.fake.find_message(self.id, message_id)
        if record is None or record.deleted:
            raise AssertionError(f"{self!r} has no (undeleted) bot message {message_id}")
        for row in record.inline_keyboard:
            for button in row:
                if button.get("text") != text:
                    continue
                if "callback_data" not in button:
                    raise AssertionError(f"button {text!r} has no callback_data: {button}")
                return self.press(record, button["callback_data"])
        raise AssertionError(
            f"no inline button {text!r} on message {message_id} ({record.content[:80]!r}); "
            f"available: {record.buttons}"
        )

    def block(self) -> dict[str, Any]:
        """Block the bot: sends fail with 403 and a my_chat_member update is enqueued."""
        self.started = True
        self.blocked = True
        return self._membership_update("member", "kicked")

    def unblock(self) -> dict[str, Any]:
        self.blocked = False
        return self._membership_update("kicked", "member")

    def _membership_update(self, old: str, new: str) -> dict[str, Any]:
        def member(status: str) -> dict[str, Any]:
            out: dict[str, Any] = {"user": self.fake.bot_user(), "status": status}
            if status == "kicked":
                out["until_date"] = 0
            return out

        payload = {
            "chat": self.as_chat(),
            "from": self.as_user(),
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        return self.fake.enqueue_update("my_chat_member", payload)

    # -- reading ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[BotMessage]:
        """The bot's messages in this chat, oldest first (deleted ones included, flagged)."""
        return self.fake.chat_messages(self.id)

    @property
    def last_message(self) -> BotMessage:
        messages = self.messages
        if not messages:
            raise AssertionError(f"the bot has sent nothing to {self!r}")
        return messages[-1]

    async def wait_for_message(
        self,
        contains: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the wait's deadline
        predicate: Callable[[BotMessage], bool] | None = None,
    ) -> BotMessage:
        """Wait for a message sent or edited *after this call* whose text/caption contains
        ``contains`` and that satisfies ``predicate``; returns its (current) record."""
        start = len(self.fake.message_events)

        def find() -> BotMessage | None:
            for event in self.fake.message_events[start:]:
                if event.message.chat_id != self.id or event.kind == "deleted":
                    continue
                if contains is not None and contains not in event.content:
                    continue
                if predicate is None or predicate(event.message):
                    return event.message
            return None

        wanted = f"a new message to {self!r}" + (f" containing {contains!r}" if contains else "")
        return await self.fake.wait_for(find, timeout, message=wanted)
