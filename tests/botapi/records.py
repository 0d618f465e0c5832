"""Plain records kept by the fake Bot API: calls, the bot's messages, presses, deliveries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["fail", "delay", "drop"]


class ApiError(Exception):
    """A Telegram error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass
class UploadedFile:
    """A file the bot uploaded (or referenced by file_id); ``data`` is None for URLs."""

    file_id: str
    file_unique_id: str
    data: bytes | None
    filename: str | None = None
    mime_type: str | None = None
    url: str | None = None
    file_path: str = ""


@dataclass(eq=False)
class Call:
    """One Bot API request as the fake received it.

    Iterating yields ``(method, params)`` so ``for method, params in fake.calls`` works.
    ``status`` is the HTTP status answered (None while in flight, 0 for a dropped connection);
    ``fault`` says which injected fault hit this call, if any; ``cancelled`` is set when the
    client went away before the fake answered (e.g. a client-side timeout).
    """

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile] = field(default_factory=dict)
    status: int | None = None
    fault: FaultKind | None = None
    result: Any = None
    description: str | None = None
    cancelled: bool = False
    at: float = field(default_factory=time.monotonic)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.method, self.params))

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class MessageVersion:
    """Content of a message before an edit replaced it."""

    text: str | None
    caption: str | None
    reply_markup: dict[str, Any] | None
    edited_at: int


@dataclass(eq=False)
class BotMessage:
    """A message the bot sent into a user's private chat, in its current state."""

    chat_id: int
    message_id: int
    date: int
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    parse_mode: str | None = None
    source_text: str | None = None  # text/caption exactly as the bot sent it (before parsing)
    reply_markup: dict[str, Any] | None = None
    photo: bytes | None = None
    photo_file: UploadedFile | None = None
    document: bytes | None = None
    document_file: UploadedFile | None = None
    history: list[MessageVersion] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False

    @property
    def document_name(self) -> str | None:
        return self.document_file.filename if self.document_file else None

    @property
    def content(self) -> str:
        """Text or caption, whichever the message has ("" for neither)."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def edited(self) -> bool:
        return bool(self.history)

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        if not self.reply_markup:
            return []
        rows: list[list[dict[str, Any]]] = self.reply_markup.get("inline_keyboard", [])
        return rows

    @property
    def buttons(self) -> list[str]:
        """Labels of the inline buttons in the current reply_markup, row by row."""
        return [button["text"] for row in self.inline_keyboard for button in row]

    @property
    def button_data(self) -> list[str | None]:
        """callback_data of the inline buttons (None for URL buttons etc.), same order."""
        return [button.get("callback_data") for row in self.inline_keyboard for button in row]

    def __repr__(self) -> str:
        state = " deleted" if self.deleted else (" edited" if self.edited else "")
        return (
            f"<BotMessage {self.chat_id}/{self.message_id}{state} {self.content[:60]!r}"
            f" buttons={self.buttons}>"
        )


@dataclass(eq=False)
class Press:
    """A callback query a FakeUser produced; ``answer`` is the bot's answerCallbackQuery."""

    query_id: str
    update_id: int
    chat_id: int
    message_id: int
    data: str
    answer: dict[str, Any] | None = None

    @property
    def answered(self) -> bool:
        return self.answer is not None


@dataclass(eq=False)
class WebhookDelivery:
    """POSTs of one update to the webhook; ``statuses`` holds each attempt's HTTP status
    (0 when the connection failed)."""

    update_id: int
    url: str
    statuses: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.statuses) and 200 <= self.statuses[-1] < 300


@dataclass(eq=False)
class Fault:
    """An injected fault waiting for ``times`` more matching calls."""

    kind: FaultKind
    method: str
    times: int
    chat_id: int | None = None
    error: ApiError | None = None
    seconds: float = 0.0
    apply: bool = True

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.times <= 0 or self.method.lower() != method.lower():
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id


@dataclass(frozen=True)
class MessageEvent:
    """The bot sent, edited or deleted ``message``; ``content`` is its text/caption then."""

    kind: Literal["sent", "edited", "deleted"]
    message: BotMessage
    content: str
