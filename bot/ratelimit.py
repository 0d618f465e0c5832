"""PTB's AIORateLimiter, with replies to a client's own taps kept out of the bot-wide bucket.

The bucket (RAPPORT_SEND_RATE messages per second, default 30: Telegram's broadcast limit for
a bot) exists for messages the bot starts. Editing the message a client just tapped, and
answering the tap, are replies the client is waiting for; queueing them behind a check-in
fan-out would make every tap wait. Measured: with every edit in the bucket, taps could never
exceed 30 per second (docs/performance.md). Retries after a 429 still apply to them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram._utils.types import JSONDict
from telegram.ext import AIORateLimiter

REPLIES_TO_TAPS = frozenset({"editMessageText", "editMessageReplyMarkup", "answerCallbackQuery"})


class RapportRateLimiter(AIORateLimiter):
    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        if endpoint in REPLIES_TO_TAPS:
            data = {}  # the limiter reads only chat_id from it; the request is in args/kwargs
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )
