"""PTB's AIORateLimiter, with replies to a client's own taps kept out of the bot-wide bucket.

The bucket (RAPPORT_SEND_RATE messages per second, default 30: Telegram's broadcast limit for
a bot) exists for messages the bot starts. Editing the message a client just tapped, and
answering the tap, are replies the client is waiting for; queueing them behind a check-in
fan-out would make every tap wait. Measured: with every edit in the bucket, taps could never
exceed 30 per second (docs/performance.md). Retries after a 429 still apply to them.

A send made with `rate_limit_args=OnTheWire(...)` (handlers.delivery) is recorded as
attempted only once this limiter has admitted it, right before its HTTP request: a check-in
waiting here is not yet attempted, so a crash leaves in doubt only the requests in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram._utils.types import JSONDict
from telegram.ext import AIORateLimiter

from handlers.delivery import OnTheWire

REPLIES_TO_TAPS = frozenset({"editMessageText", "editMessageReplyMarkup", "answerCallbackQuery"})


Result = bool | JSONDict | list[JSONDict]


class RapportRateLimiter(AIORateLimiter):
    records_on_the_wire = True  # handlers.delivery.records_on_the_wire asks this

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: OnTheWire | int | None,
    ) -> Result:
        if endpoint in REPLIES_TO_TAPS:
            data = {}  # the limiter reads only chat_id from it; the request is in args/kwargs
        if not isinstance(rate_limit_args, OnTheWire):
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        wire, send = rate_limit_args, callback

        async def admitted(*args: Any, **kwargs: Any) -> Result:
            await wire.admit()  # admitted by the limiter: record the attempt, then send
            return await send(*args, **kwargs)

        return await super().process_request(
            admitted, args, kwargs, endpoint, data, wire.max_retries
        )
