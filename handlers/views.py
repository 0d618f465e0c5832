"""How a check-in step and an alert look in Telegram."""

from __future__ import annotations

import uuid

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from alliance.checkin import Step
from handlers import callbacks, texts
from store.alerts import PendingAlert

_ROW = 6


def step_message(checkin_id: uuid.UUID, step: Step) -> tuple[str, InlineKeyboardMarkup]:
    item = step.item
    lines = [f"{step.instrument.title}  ·  {step.progress}", "", item.prompt]
    labelled = len(item.labels) == len(item.values)
    if not labelled and item.labels:
        lines += ["", "  ·  ".join(f"{v} = {text}" for v, text in sorted(item.labels.items()))]
    buttons = [
        InlineKeyboardButton(
            item.labels[value] if labelled else str(value),
            callback_data=callbacks.encode(
                callbacks.Tap(callbacks.ANSWER, checkin_id, step.position, value)
            ),
        )
        for value in item.values
    ]
    per_row = len(buttons) if labelled else _ROW
    rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    return "\n".join(lines), InlineKeyboardMarkup(rows)


SEVERITY_MARK = {"info": "ℹ️", "warn": "⚠️", "high": "❗", "urgent": "🚨"}


def alert_message(alert: PendingAlert) -> str:
    mark = SEVERITY_MARK.get(alert.severity, "⚠️")
    return (
        f"{mark} Possible rupture: {alert.client_label}\n"
        f"Rule: {alert.rule} ({alert.severity})\n"
        f"{alert.reason}\n\n"
        "Consider inviting the client to talk about how the work together feels at the next "
        "session."
    )


def comment_prompt(checkin_id: uuid.UUID, position: int) -> tuple[str, InlineKeyboardMarkup]:
    button = InlineKeyboardButton(
        texts.NO_COMMENT_BUTTON,
        callback_data=callbacks.encode(
            callbacks.Tap(callbacks.NO_COMMENT, checkin_id, position, 0)
        ),
    )
    return texts.COMMENT_PROMPT, InlineKeyboardMarkup([[button]])
