"""A fake Telegram Bot API server for end-to-end tests (see tests/botapi/fake.py)."""

from tests.botapi.fake import DEFAULT_TOKEN, FakeBotAPI
from tests.botapi.records import (
    ApiError,
    BotMessage,
    Call,
    Fault,
    MessageVersion,
    Press,
    UploadedFile,
    WebhookDelivery,
)
from tests.botapi.users import FakeUser

__all__ = [
    "DEFAULT_TOKEN",
    "ApiError",
    "BotMessage",
    "Call",
    "FakeBotAPI",
    "FakeUser",
    "Fault",
    "MessageVersion",
    "Press",
    "UploadedFile",
    "WebhookDelivery",
]
