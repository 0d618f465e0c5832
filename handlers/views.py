"""How Rapport's messages look in Telegram: questions, consent, confirmations, alerts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from telegram import InlineKeyboardButton as Button
from telegram import InlineKeyboardMarkup

from alliance.checkin import Step
from handlers import callbacks
from handlers.texts import Say
from store.alerts import PendingAlert

_ROW = 6

Message = tuple[str, InlineKeyboardMarkup]


def button(label: str, action: str, ref: uuid.UUID, position: int = 0, value: int = 0) -> Button:
    return Button(
        label, callback_data=callbacks.encode(callbacks.Tap(action, ref, position, value))
    )


def _navigation(say: Say, checkin_id: uuid.UUID, position: int, skippable: bool) -> list[Button]:
    row = []
    if position > 0:
        row.append(button(say("back_button"), callbacks.BACK, checkin_id, position))
    if skippable:
        row.append(button(say("skip_button"), callbacks.SKIP, checkin_id, position))
    return row


def step_message(
    say: Say, checkin_id: uuid.UUID, step: Step, selected: int | None = None
) -> Message:
    """One question: progress, prompt, answer buttons sized for a phone, then Back / Skip.

    A scale whose every point has a label shows the labels; a numeric scale shows numbers in
    rows of six (0-10 fits two rows) with its end labels in the text. After Back, the earlier
    answer is marked.
    """
    item = step.item
    lines = [f"{step.instrument.title}  ·  {step.progress}", "", item.prompt]
    labelled = len(item.labels) == len(item.values)
    if not labelled and item.labels:
        lines += ["", "  ·  ".join(f"{v} = {text}" for v, text in sorted(item.labels.items()))]
    buttons = []
    for value in item.values:
        label = item.labels[value] if labelled else str(value)
        if value == selected:
            label = f"✓ {label}"
        buttons.append(button(label, callbacks.ANSWER, checkin_id, step.position, value))
    # Numbers in rows of six; a few short labels side by side; longer ones (WHO-5's) stacked.
    per_row = _ROW if not labelled else len(buttons) if len(buttons) <= 3 else 1
    rows = [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    navigation = _navigation(say, checkin_id, step.position, item.skippable)
    return "\n".join(lines), InlineKeyboardMarkup([*rows, navigation] if navigation else rows)


def comment_prompt(say: Say, checkin_id: uuid.UUID, position: int) -> Message:
    row = [
        *_navigation(say, checkin_id, position, skippable=False),
        button(say("no_comment_button"), callbacks.NO_COMMENT, checkin_id, position),
    ]
    return say("comment_prompt"), InlineKeyboardMarkup([row])


def yes_no(say: Say, text: str, action: str, ref: uuid.UUID, yes: str, no: str) -> Message:
    keyboard = [
        [
            button(say(yes), action, ref, value=callbacks.YES),
            button(say(no), action, ref, value=callbacks.NO),
        ]
    ]
    return text, InlineKeyboardMarkup(keyboard)


def consent_offer(say: Say, invite_id: uuid.UUID) -> Message:
    return yes_no(
        say, say("consent"), callbacks.CONSENT, invite_id, "agree_button", "not_now_button"
    )


def consent_renewal(say: Say, checkin_id: uuid.UUID) -> Message:
    text = say("consent_changed", consent=say("consent"))
    return yes_no(say, text, callbacks.RENEW, checkin_id, "agree_button", "not_now_button")


def erase_confirmation(say: Say, client_id: uuid.UUID) -> Message:
    text = say("delete_confirm")
    return yes_no(say, text, callbacks.ERASE, client_id, "delete_button", "cancel_button")


SEVERITY_MARK = {"info": "ℹ️", "warn": "⚠️", "high": "❗", "urgent": "🚨"}
SEVERITY_ORDER = ["info", "warn", "high", "urgent"]
CAPTION_LIMIT = 1024  # Telegram's limit for a photo caption
COMMENT_RULES = {"critical_comment"}


def alert_message(group: Sequence[PendingAlert], detail: str) -> tuple[str, InlineKeyboardMarkup]:
    """One message for a client's alerts due together. `detail` is the practice's choice of
    how much clinical content passes through Telegram: full, scores (no comment phrases) or
    minimal (a pointer only)."""
    first = max(group, key=lambda a: SEVERITY_ORDER.index(a.severity))
    mark = SEVERITY_MARK.get(first.severity, "⚠️")
    who = first.client_label + (" (their therapist could not be reached)" if first.to_admin else "")
    risky = any(a.rule == "risk" for a in group)
    head = (
        f"{mark} Urgent: a possible risk answer from {who}"
        if risky
        else (f"{mark} Possible rupture: {who}")
    )
    lines = [head]
    for alert in group:
        lines.append(f"\n{alert.rule} ({alert.severity})")
        if detail == "minimal":
            continue
        if detail == "scores" and (alert.rule in COMMENT_RULES or "comment" in alert.reason):
            lines.append("A comment was flagged; open History.")
        else:
            lines.append(alert.reason)
    if detail == "minimal":
        lines.append("\nOpen History for the details.")
    else:
        types = sorted({a.rupture_type for a in group if a.rupture_type})
        if types:
            lines.append(f"\nSuggested type: {', '.join(types)}")
        ideas = list(dict.fromkeys(idea for a in group for idea in a.repair))[:2]
        lines += [f"• {idea}" for idea in ideas]
    if risky:
        lines.append(
            "\nThe client was shown the crisis resources. "
            "This alert stays open until you acknowledge it."
        )
    text = "\n".join(lines)
    if len(text) > CAPTION_LIMIT:
        text = text[: CAPTION_LIMIT - 1] + "…"
    keyboard = [
        [
            button("Acknowledge", callbacks.ACKNOWLEDGE, first.client_id),
            button("Snooze 1 day", callbacks.SNOOZE, first.client_id),
        ],
        [button("History", callbacks.HISTORY, first.client_id)],
    ]
    return text, InlineKeyboardMarkup(keyboard)
