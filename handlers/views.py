"""How Rapport's messages look in Telegram: questions, consent, confirmations, alerts."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence

from telegram import InlineKeyboardButton as Button
from telegram import InlineKeyboardMarkup

from alliance.checkin import Step
from alliance.detectors import CRITICAL_COMMENT, DISENGAGEMENT, RISK, RUPTURE_RULES
from alliance.repair import RISK_ACTION
from handlers import alert_words as words
from handlers import callbacks, i18n
from handlers.i18n import N_, _, ngettext
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
    answer is marked. The first question of each instrument has the instrument's
    instructions (its `intro`, such as WHO-5's "Over the last two weeks...") above it. Title,
    intro, prompt and labels are in the client's language when the instrument file has it.
    """
    instrument = step.instrument.in_language(say.language)  # its texts in the client's
    item = instrument.item(step.item.id)
    first = item.id == instrument.items[0].id
    intro = [instrument.intro, ""] if instrument.intro and first else []
    lines = [f"{instrument.title}  ·  {step.progress}", "", *intro, item.prompt]
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


def consent_offer(say: Say, invite_id: uuid.UUID, full: bool = False) -> Message:
    """The consent's short first screen with I agree / Not now and a button for the full
    text; `full`: the full text in its place, with the same I agree / Not now."""
    return _consent(
        say, say("consent_full" if full else "consent"), callbacks.CONSENT, invite_id, full
    )


def consent_renewal(say: Say, checkin_id: uuid.UUID, full: bool = False) -> Message:
    """A changed consent text, before a check-in: as the offer, after a line saying so."""
    text = say("consent_changed", consent=say("consent_full" if full else "consent"))
    return _consent(say, text, callbacks.RENEW, checkin_id, full)


def _consent(say: Say, text: str, action: str, ref: uuid.UUID, full: bool) -> Message:
    text, markup = yes_no(say, text, action, ref, "agree_button", "not_now_button")
    if full:
        return text, markup
    more = button(say("full_text_button"), action, ref, value=callbacks.FULL_TEXT)
    return text, InlineKeyboardMarkup([*markup.inline_keyboard, [more]])


def language_check(code: str) -> int:
    """A short check of a language's code, so a button from before a change of the
    practice's languages is noticed rather than choosing another language."""
    return zlib.crc32(code.encode()) % 1000


def language_choice(say: Say, client_id: uuid.UUID, languages: Sequence[str]) -> Message:
    """/language: one button per language, named in itself, the current one marked."""
    buttons = [
        button(
            ("✓ " if code == say.language else "") + i18n.display_name(code),
            callbacks.LANGUAGE,
            client_id,
            index,
            language_check(code),
        )
        for index, code in enumerate(languages)
    ]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    return say("language_choose"), InlineKeyboardMarkup(rows)


def chosen_language(tap: callbacks.Tap, languages: Sequence[str]) -> str | None:
    """The language a /language button names, if it still names the same one."""
    if not 0 <= tap.position < len(languages):
        return None
    code = languages[tap.position]
    return code if tap.value == language_check(code) else None


def erase_confirmation(say: Say, client_id: uuid.UUID) -> Message:
    text = say("delete_confirm")
    return yes_no(say, text, callbacks.ERASE, client_id, "delete_button", "cancel_button")


SEVERITY_MARK = {"info": "ℹ️", "warn": "⚠️", "high": "❗", "urgent": "🚨"}
CAPTION_LIMIT = 1024  # Telegram's limit for a photo caption (in UTF-16 code units)
ALERT_LIMIT = 600  # what a therapist reads at a glance; the risk instruction may pass it
STAYS_OPEN = N_("This alert stays open until you acknowledge it.")  # _() where used


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def fits_caption(text: str) -> bool:
    return telegram_length(text) <= CAPTION_LIMIT


def alert_message(
    group: Sequence[PendingAlert], detail: words.Detail
) -> tuple[str, InlineKeyboardMarkup]:
    """One message for one client's alerts, in words read at a glance.

    A headline (urgent risk first), one sentence per alert in the client's own numbers
    (handlers.alert_words), the suggested rupture type and one question to open it in
    session, and with risk the safety instruction. Under ALERT_LIMIT characters: when too
    long, whole lower-priority sentences give way to "and N more in History" (never a cut
    mid-sentence; the safety instruction always stays). `detail` is the practice's choice of
    how much passes through Telegram: full, scores (no comment text or cue) or minimal (a
    pointer, nothing clinical, with Acknowledge and Snooze only).
    """
    alerts = words.ordered(group)
    first = alerts[0]
    client_id = first.client_id
    risky = any(a.rule == RISK for a in alerts)
    reached = " " + _("(their therapist could not be reached)") if first.to_admin else ""
    acknowledge = [
        button(_("Acknowledge"), callbacks.ACKNOWLEDGE, client_id),
        button(_("Snooze 1 day"), callbacks.SNOOZE, client_id),
    ]
    if not words.shows_scores(detail):
        return _pointer(first.client_label + reached, risky), InlineKeyboardMarkup([acknowledge])

    label = first.client_label
    rules = {a.rule for a in alerts}
    mark = SEVERITY_MARK.get(max((a.severity for a in alerts), key=words.severity_rank), "⚠️")
    if risky:
        head = "🚨 " + _("Urgent: {label} may be at risk", label=label) + reached
    elif rules & (RUPTURE_RULES - {DISENGAGEMENT}):
        head = f"{mark} " + _("Possible rupture with {label}", label=label) + reached
    elif DISENGAGEMENT in rules:
        head = f"{mark} " + _("{label} has gone quiet", label=label) + reached
    else:
        head = f"{mark} " + _("{label}'s wellbeing needs a look", label=label) + reached
    sentences = words.sentences(alerts, detail)
    safety = [f"{RISK_ACTION[0]} {_(STAYS_OPEN)}"] if risky else []
    kind = words.rupture_type(alerts)
    ruptured = bool(rules & RUPTURE_RULES)
    type_line = [_(words.TYPE_WORDS[kind])] if kind in words.TYPE_WORDS else []
    # With risk, the safety instruction is the one thing to do; a repair idea waits.
    idea = (
        [_('You could ask: "{question}"', question=words.opening_question(kind))]
        if ruptured and not risky
        else []
    )
    note = []
    if detail == words.Detail.SCORES and any(a.rule == CRITICAL_COMMENT for a in alerts):
        note = [_("Comments stay out of Telegram in this practice.")]

    def compose(shown: int, type_line: list[str], idea: list[str], note: list[str]) -> str:
        bullets = [f"• {s}" for s in sentences[:shown]]
        hidden = len(sentences) - shown
        if hidden:
            bullets.append(
                ngettext("…and {n} more in History.", "…and {n} more in History.", hidden)
            )
        blocks = [[head], bullets, safety, [*type_line, *idea], note]
        return "\n\n".join("\n".join(block) for block in blocks if block)

    # Give way in this order: the idea, the comment note, sentences from the least important
    # (at least one stays), the rupture type.
    shown = len(sentences)
    text = compose(shown, type_line, idea, note)
    while telegram_length(text) > ALERT_LIMIT:
        if idea:
            idea = []
        elif note:
            note = []
        elif shown > 1:
            shown -= 1
        elif type_line:
            type_line = []
        else:
            break
        text = compose(shown, type_line, idea, note)
    keyboard = [
        acknowledge,
        [
            button(_("History"), callbacks.HISTORY, client_id),
            button(_("Why?"), callbacks.WHY, client_id),
        ],
    ]
    return text, InlineKeyboardMarkup(keyboard)


def _pointer(who: str, urgent: bool) -> str:
    """The `minimal` alert: that there is news, and where to read it; nothing clinical."""
    elsewhere = _(words.ELSEWHERE)
    if urgent:
        return (
            "🚨 "
            + _(
                "Urgent check-in news for {who}: please look at it now and follow your practice's "
                "protocol. {stays_open}",
                who=who,
                stays_open=_(STAYS_OPEN),
            )
            + f"\n\n{elsewhere}"
        )
    return f"🔔 {words.end(_('Check-in news for {who}', who=who))}\n\n{elsewhere}"
