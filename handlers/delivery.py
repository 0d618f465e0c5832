"""Outgoing messages started by the bot itself: check-ins to clients, alerts to therapists.

Telegram has no idempotency key, so each failure is sorted by what it says about delivery
(`classify`); `attempt` makes one send and says what it learned, for store.outbox's rules.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ExtBot

from handlers import callbacks, local_time, views
from handlers.alert_words import Detail, shows_scores
from handlers.charts import Charts
from handlers.texts import Say, Texts
from store.alerts import PendingAlert
from store.checkins import Outgoing, Reminder
from store.notices import PendingNotice
from store.outbox import SendOutcome

log = logging.getLogger(__name__)

Attempting = Callable[[], Awaitable[bool]]
"""Records that a send is about to go on the wire (committed); False: do not send it."""


class Withheld(Exception):
    """A send that was never made: its attempt could not be recorded, or is not ours to make."""


@dataclass(eq=False)
class OnTheWire:
    """`rate_limit_args` for a send whose attempt is recorded right before its HTTP request,
    after the rate limiter admitted it (bot.ratelimit.RapportRateLimiter calls `admit`), so
    that a crash leaves in doubt only the requests actually in flight, not those still
    waiting in the limiter. A retry after a 429 is the same attempt: recorded once."""

    attempting: Attempting = field(repr=False)
    max_retries: int | None = None
    admitted: bool = field(default=False, repr=False)

    async def admit(self) -> None:
        if self.admitted:
            return
        if not await self.attempting():
            raise Withheld
        self.admitted = True

    def __bool__(self) -> bool:  # PTB drops falsy rate_limit_args
        return True


def records_on_the_wire(bot: Bot) -> bool:
    """Whether this bot's rate limiter calls `OnTheWire.admit` before each request."""
    limiter = bot.rate_limiter if isinstance(bot, ExtBot) else None
    return bool(getattr(limiter, "records_on_the_wire", False))


def classify(exc: Exception) -> SendOutcome:
    if isinstance(exc, Forbidden):
        return SendOutcome.BLOCKED
    if isinstance(exc, BadRequest):
        return SendOutcome.REJECTED
    if isinstance(exc, TimedOut):
        return SendOutcome.UNKNOWN
    if isinstance(exc, RetryAfter):
        return SendOutcome.NOT_SENT
    if isinstance(exc, NetworkError):
        # PTB reports a refused connection and Telegram's own 5xx answers as NetworkError:
        # both mean the message was not delivered. Anything else may have been.
        text = str(exc)
        if "ConnectError" in text or "Bad Gateway" in text or "Internal Server Error" in text:
            return SendOutcome.NOT_SENT
        return SendOutcome.UNKNOWN
    raise exc


async def attempt(send: Awaitable[Message], what: str) -> tuple[SendOutcome, int | None]:
    """Make one send (of a message the bot starts itself) and say what it learned: the
    outcome and the id of the message sent. A failure is logged as one line, without the
    message; a send never made (Withheld) is NOT_SENT; what is not a Telegram delivery
    problem is raised."""
    try:
        message = await send
    except Withheld:  # never made: nothing to log
        return SendOutcome.NOT_SENT, None
    except Exception as exc:
        outcome = classify(exc)
        log.warning("%s not delivered: %s (%s)", what, type(exc).__name__, outcome)
        return outcome, None
    return SendOutcome.SENT, message.message_id


async def unless_unchanged(edit: Awaitable[object]) -> None:
    """An edit whose content did not change is harmless (a double tap); other errors are not."""
    try:
        await edit
    except BadRequest as exc:
        if "message is not modified" not in str(exc).lower():
            raise


def _ref_in_data(ref: uuid.UUID) -> str:
    """How a record's id is spelled inside button data (handlers.callbacks)."""
    return callbacks.encode(callbacks.Tap(callbacks.ANSWER, ref, 0, 0)).split(":")[1]


_STAND_INS = (uuid.UUID(int=1), uuid.UUID(int=2))  # no check-in has these ids (not uuid4)
_Template = tuple[str, list[list[tuple[str, str]]]]  # text; per row, (label, data) per button


class CheckinMessages:
    """The message that opens a check-in (its first question, or the changed consent text
    first), for fan-outs that send the same few messages thousands of times.

    What handlers.views renders for it depends on the check-in only through its id in the
    buttons' data. So each (question, language, kind) is rendered once with a stand-in id,
    and each check-in gets new buttons with its own id in that data. That this is exactly
    what views would render is checked when a message is first rendered: rendered again with
    a second stand-in, the two must differ only in that id, and the buttons must carry
    nothing but a label and data; otherwise every check-in with that message is rendered in
    full."""

    def __init__(self, texts: Texts, size: int = 256) -> None:
        self._texts = texts
        self._size = size
        self._templates: dict[tuple[object, ...], _Template | None] = {}
        self._stand_in = _ref_in_data(_STAND_INS[0])

    def render(self, outgoing: Outgoing) -> views.Message:
        step = outgoing.step
        key = (
            outgoing.language,
            outgoing.renew_consent,
            step.instrument.id,
            step.item.id,
            step.position,
            step.count,
        )
        if key in self._templates:
            template = self._templates[key]
        else:
            if len(self._templates) >= self._size:
                self._templates.clear()
            template = self._templates[key] = self._template(outgoing)
        if template is None:
            return self._full(outgoing, outgoing.checkin_id)
        text, rows = template
        ref, stand_in = _ref_in_data(outgoing.checkin_id), self._stand_in
        keyboard = [
            [
                InlineKeyboardButton(label, callback_data=data.replace(stand_in, ref))
                for label, data in row
            ]
            for row in rows
        ]
        return text, InlineKeyboardMarkup(keyboard)

    def _full(self, outgoing: Outgoing, checkin_id: uuid.UUID) -> views.Message:
        say = Say(self._texts, outgoing.language)
        if outgoing.renew_consent:
            return views.consent_renewal(say, checkin_id)
        return views.step_message(say, checkin_id, outgoing.step)

    def _template(self, outgoing: Outgoing) -> _Template | None:
        (text, markup), (other_text, other) = (self._full(outgoing, ref) for ref in _STAND_INS)
        other_ref = _ref_in_data(_STAND_INS[1])
        rows: list[list[tuple[str, str]]] = []
        if text != other_text or len(markup.inline_keyboard) != len(other.inline_keyboard):
            return None
        for row, other_row in zip(markup.inline_keyboard, other.inline_keyboard, strict=True):
            if len(row) != len(other_row):
                return None
            rows.append([])
            for button, other_button in zip(row, other_row, strict=True):
                data = button.callback_data
                if not isinstance(data, str) or set(button.to_dict()) != {"text", "callback_data"}:
                    return None
                swapped = data.replace(self._stand_in, other_ref)
                if other_button.to_dict() != {"text": button.text, "callback_data": swapped}:
                    return None
                rows[-1].append((button.text, data))
        return text, rows


class Messenger:
    """Sends what the dispatcher hands it, in each recipient's language."""

    def __init__(
        self, bot: Bot, texts: Texts, charts: Charts, alert_detail: Detail = Detail.FULL
    ) -> None:
        self._bot = bot
        self._texts = texts
        self._charts = charts
        self._detail = alert_detail
        self._on_the_wire = records_on_the_wire(bot)
        self._checkin_messages = CheckinMessages(texts)

    def checkin_message(self, outgoing: Outgoing) -> views.Message:
        """The message that opens this check-in, as send_checkin sends it."""
        return self._checkin_messages.render(outgoing)

    async def _send_recorded(
        self, attempting: Attempting | None, chat_id: int, text: str, **kwargs: Any
    ) -> Message:
        """send_message; with `attempting`, the attempt is recorded right before the request
        leaves: in the rate limiter once it admits the request, or here when the bot has no
        such limiter (raises Withheld when it may not be sent)."""
        if attempting is None:
            return await self._bot.send_message(chat_id, text, **kwargs)
        if self._on_the_wire:
            bot = cast(ExtBot[Any], self._bot)
            wire = OnTheWire(attempting)
            return await bot.send_message(chat_id, text, rate_limit_args=wire, **kwargs)
        if not await attempting():
            raise Withheld
        return await self._bot.send_message(chat_id, text, **kwargs)

    async def send_checkin(
        self, outgoing: Outgoing, attempting: Attempting | None = None
    ) -> tuple[SendOutcome, int | None]:
        text, markup = self.checkin_message(outgoing)
        send = self._send_recorded(attempting, outgoing.chat_id, text, reply_markup=markup)
        return await attempt(send, "check-in")

    async def send_alerts(self, group: Sequence[PendingAlert]) -> tuple[SendOutcome, int | None]:
        """One client's alerts: the text with its buttons, and (unless the practice keeps
        scores out of Telegram) the trend chart. Text and chart go as one photo with a caption
        when the caption fits Telegram's limit, else as the chart followed by the text (the
        buttons on the text). The id is that of the message with the buttons (a chart sent
        before a failed text is sent again with the retry: alerts go at least once)."""
        alert = group[0]
        text, markup = views.alert_message(group, self._detail)
        chart = None
        if alert.trend is not None and alert.trend.points and shows_scores(self._detail):
            chart = await self._charts.render(alert.trend)
        return await attempt(
            send_with_chart(self._bot, alert.therapist_chat_id, text, chart, markup), "alert"
        )

    async def send_notice(self, notice: PendingNotice) -> tuple[SendOutcome, int | None]:
        text = self._texts.get(f"notice_{notice.kind}", None, **notice.values)
        return await attempt(self._bot.send_message(notice.chat_id, text), "notice")

    async def send_reminder(
        self, reminder: Reminder, attempting: Attempting | None = None
    ) -> SendOutcome:
        """A reminder of an unanswered check-in, as a reply to it. When the check-in's own
        send is in doubt (no message id: a crash or a timeout), the reminder carries its
        first question with the buttons: a client whose check-in never arrived gets it now,
        one who got it sees a reminder with the question again."""
        say = Say(self._texts, reminder.language)
        until = local_time.day_time(
            reminder.expires_at, reminder.timezone, reminder.now, reminder.language
        )
        markup = None
        if reminder.carries is None:
            text = say("reminder", until=until)
        else:
            question, markup = views.step_message(say, reminder.checkin_id, reminder.carries)
            text = f"{say('reminder_carrying', until=until)}\n\n{question}"
        reply = None
        if reminder.message_id:
            reply = ReplyParameters(reminder.message_id, allow_sending_without_reply=True)
        send = self._send_recorded(
            attempting, reminder.chat_id, text, reply_parameters=reply, reply_markup=markup
        )
        return (await attempt(send, "reminder"))[0]


async def send_with_chart(
    bot: Bot,
    chat_id: int,
    text: str,
    chart: bytes | None,
    markup: InlineKeyboardMarkup | None = None,
) -> Message:
    """Text with its chart: one photo with the text as caption when it fits Telegram's
    caption limit, else the chart and then the text (with the buttons); the text alone
    without a chart. Returns the message with the text."""
    if chart is not None and views.fits_caption(text):
        return await bot.send_photo(chat_id, chart, caption=text, reply_markup=markup)
    if chart is not None:
        await bot.send_photo(chat_id, chart)
    return await bot.send_message(chat_id, text, reply_markup=markup)
