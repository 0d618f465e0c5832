"""Every text a client reads, by a stable key, in the client's language.

The English texts are here (`DEFAULTS`, and `PLURALS` for texts with a count); their
translations are gettext catalogs (handlers/i18n.py: `msgctxt` is the key, `msgid` the English
text), shipped for German and Spanish and addable by a practice. A practice also replaces any
text per language in its config file (`[texts.<language>]`), which wins over every catalog.

Placeholders in braces are filled in by the bot; a replacement may use the same ones and no
others, and must keep those that tell a client where to get urgent help (`REQUIRED`).
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from handlers.i18n import Catalogs, Language, locale

DEFAULT_LANGUAGE = "en"

DEFAULTS: dict[str, str] = {
    "invitation_only": (
        "Hello! This bot works by invitation only. If your therapist or practice gave you a "
        "link, please open that link to start."
    ),
    "already_linked": "You're already connected to Rapport. There's nothing more to do here.",
    "therapist_linked": (
        "Your Telegram account is now linked to Rapport. You will get alerts about your "
        "clients here."
    ),
    # The first screen of the consent: short enough for a phone; the full text is a tap away.
    "consent": (
        "Welcome to Rapport, the check-in service of your therapy practice. Between sessions "
        "it sends you a few short questions about your therapy, answered with a few taps. "
        "Your answers go to your own therapist.\n\n"
        "Nobody reads them in real time: this is no way to get urgent help. {crisis}\n\n"
        "Do you agree to take part?"
    ),
    # Everything a client agrees to; /privacy shows it again (without the last question).
    "consent_full": (
        "How Rapport works\n\n"
        "What it is: the check-in service of your therapy practice. Between sessions it sends "
        "you a few short questions about how your therapy is going and how you are, answered "
        "with taps; at the end you can add a comment.\n\n"
        "Who sees what: your own therapist sees your answers and comments (in Telegram, and "
        "on Rapport's web pages if the practice uses them), and is told when you pause, "
        "resume or stop. If your therapist cannot be reached, alerts about you go to an "
        "administrator of the practice. The practice's administrators can move you to another "
        "of its therapists, who then sees your history, and can export or erase your data.\n\n"
        "Read automatically: besides your therapist, Rapport itself checks your answers and "
        "comments by fixed rules, for signs that you may be at risk and for signs of strain "
        "between you and your therapist (such as answers lower than usual, tension, criticism "
        "or giving up). Strong signs are sent to your therapist at once; milder ones are kept "
        "for your therapist to read before your next session. Messages you type outside a "
        "check-in are only checked for risk and never kept; if one suggests you may be at "
        "risk, your therapist is told that, not what you wrote.\n\n"
        "Not for emergencies: nobody reads your answers in real time, and this is no way to "
        "get urgent help. {crisis}\n\n"
        "Your data: your answers, comments and Telegram ID are stored encrypted. Chats with "
        "Telegram bots are not end-to-end encrypted, and alerts to your therapist pass "
        "through Telegram too, so please don't write anything here that you wouldn't want to "
        "pass through Telegram. {retention} Copies in the practice's backups last until the "
        "practice deletes them.\n\n"
        "Your choices: /pause or /stop check-ins at any time, download everything stored "
        "about you with /mydata, and erase it with /delete. /privacy shows this text again."
        "\n\n"
        "Do you agree to take part?"
    ),
    "full_text_button": "Read the full text",
    "retention_kept": (
        "Your data is kept until you erase it with /delete or the practice erases it."
    ),
    "crisis": (
        "If you are in crisis or thinking about harming yourself, call your local emergency "
        "number now (112 in Europe, 911 in North America, 999 in the UK) or go to the "
        "nearest emergency department."
    ),
    "crisis_helplines": (
        "If you are in crisis or thinking about harming yourself, call now or go to the "
        "nearest emergency department:\n{helplines}"
    ),
    "agree_button": "I agree",
    "not_now_button": "Not now",
    "consent_declined": (
        "No problem, nothing has been saved. Your link keeps working until {expires}: open it "
        "again whenever you are ready."
    ),
    "consent_changed": (
        "Before your next check-in: the text about how Rapport works has changed. Please read "
        "it again.\n\n{consent}"
    ),
    "consent_skipped": "All right, no check-in this time. We'll ask again next time.",
    "client_welcome": (
        "Thank you, you're all set. Your check-ins will arrive here; type /help to see what "
        "you can do."
    ),
    "help": (
        "Rapport sends you short check-ins from your therapy practice; just tap the buttons.\n\n"
        "/pause [days] - no check-ins for a while (14 days unless you say)\n"
        "/resume - start check-ins again\n"
        "/stop - stop check-ins for good\n"
        "/mydata - get a file with everything stored about you\n"
        "/delete - erase everything stored about you\n"
        "/privacy - how your data is handled\n"
        "/progress - a chart of your answers so far\n"
        "/language - the language Rapport writes to you in\n\n"
        "Nobody reads this chat in real time: your answers, comments and messages are no way "
        "to get urgent help. {crisis}"
    ),
    "therapist_help": (
        "You receive alerts about your clients here. Send /help to see what you can do."
    ),
    "clients_only": "That command is for clients.",
    "checkin_closed": "This check-in is closed.",
    "not_yours": "This button isn't for you.",
    "thanks": (
        "Thank you! Your answers are saved for your therapist. Nobody reads them in real time: "
        "for urgent help, see /help."
    ),
    "thanks_before_session": (
        "Thank you! Your answers are saved. Your therapist will see them before your next "
        "session, not in real time: for urgent help, see /help."
    ),
    "saved": "Saved",
    "your_score": "Your {title}: {score} of {max}.",
    "progress_alliance_steady": (
        "Your answers about your work with your therapist have been steady."
    ),
    "progress_alliance_lower": (
        "Your answers about your work with your therapist have been lower lately; it may help "
        "to talk about it in your next session."
    ),
    "progress_alliance_higher": (
        "Your answers about your work with your therapist have been higher lately."
    ),
    "progress_wellbeing_steady": "Your answers about how you have been feeling have been steady.",
    "progress_wellbeing_lower": (
        "Your answers about how you have been feeling have been lower lately; it may help to "
        "talk about it in your next session."
    ),
    "progress_wellbeing_higher": (
        "Your answers about how you have been feeling have been higher lately."
    ),
    "progress_too_few": (
        "There are not enough answers yet to see a trend; the chart fills in as you answer "
        "check-ins."
    ),
    "progress_nothing_yet": (
        "You haven't completed a check-in yet. Once you have, /progress shows a chart of your "
        "answers."
    ),
    "progress_footer": "This chat is not watched in real time. {crisis}",
    "progress_off": "Charts of your answers are not available in this practice.",
    "use_buttons": "Your check-in above is waiting for you: please answer with its buttons.",
    "free_text_next": "No check-in is open right now; your next one is due {when}.",
    "free_text_paused": "No check-in is open right now: your check-ins are paused until {until}.",
    "free_text_stopped": "No check-in is open right now: your check-ins are stopped.",
    "free_text_unscheduled": "No check-in is open right now, and none is scheduled yet.",
    "practice_contact": "To reach your therapist or the practice: {contact}.",
    "practice_contact_unknown": (
        "To reach your therapist, contact the practice the way you usually do."
    ),
    "free_text_not_kept": (
        "Rapport doesn't keep messages typed here, and nobody reads them: they are only "
        "checked automatically for signs that you may need urgent help. {crisis}"
    ),
    "free_text_risk": (
        "Your therapist will be told that your message suggests you may need help, but not "
        "in real time: nobody is reading this chat now, and your message is not kept. Please "
        "don't wait for your next session.\n\n{crisis}"
    ),
    "something_wrong": "Something went wrong on our side. Please try again in a moment.",
    "comment_prompt": (
        "Anything you'd like your therapist to know before next time? Type it here, or tap "
        '"No comment". It is not read in real time: for urgent help, see /help.'
    ),
    "no_comment_button": "No comment",
    "back_button": "‹ Back",
    "skip_button": "Skip ›",
    "pause_usage": (
        "Please give the number of days as a whole number from 1 to {max}, e.g. /pause 7."
    ),
    "resumed": "Welcome back! Check-ins are on again.",
    "paused_by_therapist": (
        "Your therapist paused your check-ins until {until}. You don't need to do anything."
    ),
    "resumed_by_therapist": "Your therapist started your check-ins again.",
    "not_paused": "Check-ins are already on.",
    "stopped_no_change": (
        "Your check-ins are stopped, so there is nothing to pause or resume. If you'd like "
        "them again, ask your therapist: they can restart them for you."
    ),
    "stopped": (
        "Check-ins are stopped; you won't get any more messages. Your data is kept until you "
        "erase it with /delete or the practice's retention period ends. To start again, ask "
        "your therapist: they can restart your check-ins."
    ),
    "mydata_caption": "Everything Rapport stores about you.",
    "delete_confirm": (
        "This erases everything Rapport stores about you: your answers, comments and link. "
        "It cannot be undone. Your therapist will be told that you left."
    ),
    "delete_button": "Yes, erase everything",
    "cancel_button": "Cancel",
    "deleted": "Done: everything Rapport stored about you is erased. Goodbye, and take care.",
    "delete_cancelled": "Nothing was erased.",
    "risk_resources": (
        "Your therapist will be told about this answer, but not in real time: nobody is "
        "reading this chat now. Please don't wait for your next session.\n\n{crisis}"
    ),
    "language_choose": "Which language should Rapport write to you in?",
    "language_set": "From now on, Rapport writes to you in {name}.",
    # The command menu (setMyCommands) in each client's language; one line each.
    "menu_help": "What this bot does and what you can do",
    "menu_pause": "Pause check-ins for a while (e.g. /pause 7)",
    "menu_resume": "Start check-ins again",
    "menu_stop": "Stop check-ins",
    "menu_mydata": "Download everything stored about you",
    "menu_delete": "Erase everything stored about you",
    "menu_privacy": "How your data is handled",
    "menu_progress": "A chart of your answers so far",
    "menu_language": "The language Rapport writes to you in",
    "notice_paused": "{label} paused check-ins until {until}.",
    "notice_resumed": "{label} resumed check-ins.",
    "notice_stopped": "{label} stopped check-ins.",
    "notice_left": "{label} left Rapport and erased their data.",
    "notice_unreachable": "{label} blocked the bot; their check-ins are stopped.",
    "notice_reassigned_away": (
        "{label} is now with another therapist of the practice; you will get no more alerts "
        "about them."
    ),
    "notice_erased": "The practice erased {label}'s data in Rapport; their check-ins have stopped.",
    "notice_retention_erased": (
        "{label}'s data was erased: the practice's retention period ended after a long time "
        "without activity."
    ),
    "notice_retention_warning": (
        "Retention: {label} (client {client}) has shown no activity since {since}. Their data "
        "will be erased on or after {date}. To keep a copy, export it before then: "
        "rapport export --client {client}"
    ),
    "notice_reachable": "{label} unblocked the bot; their check-ins start again.",
    "notice_joined": "{label} joined Rapport; their first check-in is due {when}.",
    "notice_joined_unscheduled": (
        "{label} joined Rapport; no check-ins are scheduled yet. Give them a schedule with "
        "/schedule, or ask the practice admin to send one."
    ),
    "reminder": "A gentle reminder: your check-in above is still open until {until}.",
    "reminder_carrying": "A gentle reminder: your check-in is still open until {until}.",
}


@dataclass(frozen=True)
class Plural:
    """A text with a count: English singular and plural; each catalog has its language's
    forms (German two, Spanish two; gettext's Plural-Forms header says how many)."""

    one: str
    other: str
    count: str  # the placeholder that holds the number


PLURALS: dict[str, Plural] = {
    "retention_erasure": Plural(
        "If you show no activity for {days} day (no answers, and none of /pause, /resume, "
        "/stop or /mydata), everything stored about you is erased automatically.",
        "If you show no activity for {days} days (no answers, and none of /pause, /resume, "
        "/stop or /mydata), everything stored about you is erased automatically.",
        "days",
    ),
    "comment_cut": Plural(
        "Thank you! Your comment was long, so only its first {limit} character was saved. "
        "Nobody reads it in real time: for urgent help, see /help.",
        "Thank you! Your comment was long, so only its first {limit} characters were saved. "
        "Nobody reads it in real time: for urgent help, see /help.",
        "limit",
    ),
    "paused": Plural(
        "Check-ins are paused for {days} day, until {until}. Send /resume to start them earlier.",
        "Check-ins are paused for {days} days, until {until}. Send /resume to start them earlier.",
        "days",
    ),
    "notice_reassigned_to": Plural(
        "{label} is now your client. Their check-in history and {alerts} unresolved alert "
        "moved to you; open alerts follow in separate messages.",
        "{label} is now your client. Their check-in history and {alerts} unresolved alerts "
        "moved to you; open alerts follow in separate messages.",
        "alerts",
    ),
}

# Every key with its English text (the plural form for texts with a count).
KEYS: dict[str, str] = {**DEFAULTS, **{key: p.other for key, p in PLURALS.items()}}

# Texts a therapist reads (English is shipped; a catalog may translate them too). Every other
# key is read by clients and is translated in every shipped catalog.
STAFF_KEYS = frozenset(
    {"therapist_linked", "therapist_help", "clients_only"}
    | {key for key in KEYS if key.startswith("notice_")}
)
CLIENT_KEYS = tuple(key for key in KEYS if key not in STAFF_KEYS)

# Plural categories a practice's own text with a count may name (CLDR's).
CATEGORIES = ("zero", "one", "two", "few", "many", "other")

# Placeholders a replacement must keep: without {crisis} a client is not told where to get
# urgent help (docs/DESIGN's safety net: every client-facing surface says where to go).
WHAT_IT_SHOWS = {
    "crisis": "where to get urgent help",
    "helplines": "the practice's helplines from [crisis]",
    "consent": "the consent text",
}
REQUIRED: dict[str, frozenset[str]] = {
    **{key: frozenset({"crisis"}) for key, text in KEYS.items() if "{crisis}" in text},
    "crisis_helplines": frozenset({"helplines"}),
    "consent_changed": frozenset({"consent"}),
}

Override = str | Mapping[str, str]


class TextError(ValueError):
    """An override that cannot be used; the message names the key and the fix."""


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def allowed(key: str) -> set[str]:
    """The placeholders a text of this key may use."""
    plural = PLURALS.get(key)
    if plural is not None:
        return placeholders(plural.one) | placeholders(plural.other)
    return placeholders(DEFAULTS[key])


def check_text(key: str, text: str, where: str) -> list[str]:
    """Problems of one text (one form of a text with a count) for `key`."""
    names = allowed(key)
    try:
        text.format(**dict.fromkeys(names, ""))
    except (KeyError, IndexError, ValueError) as exc:
        return [
            f"{where}: placeholder {exc} is not available; use only "
            f"{sorted(names) or 'no placeholders'}"
        ]
    if not text.strip():
        return [f"{where}: is empty; write the text, or remove the key"]
    return [
        f"{where}: must contain {{{name}}} ({WHAT_IT_SHOWS[name]}); add {{{name}}} where it "
        "should appear, or remove the key to keep the default"
        for name in sorted(REQUIRED.get(key, frozenset()) - placeholders(text))
    ]


def check_catalog(language: Language) -> list[str]:
    """Problems of a .po catalog's client texts, as 'file: msgctxt <key>: problem; fix'."""
    problems = []
    for key, forms in sorted(language.texts.items()):
        if key not in KEYS:
            continue  # an old key a newer Rapport no longer uses: harmless
        for form in forms:
            problems += check_text(key, form, f"{language.source}: msgctxt {key!r}")
    return problems


class Texts:
    """Texts in a language: the practice's overrides, then the catalogs, then English."""

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, Override]] | None = None,
        default_language: str = DEFAULT_LANGUAGE,
        helplines: Sequence[tuple[str, str]] = (),
        contact: str | None = None,
        retention_days: int | None = None,
        catalogs: Catalogs | None = None,
    ) -> None:
        self._overrides = {lang: dict(values) for lang, values in (overrides or {}).items()}
        self.default_language = default_language
        self.catalogs = catalogs or Catalogs()
        # The practice's named helplines ([crisis] helplines): with them, {crisis} is the
        # `crisis_helplines` text listing them; without, the `crisis` text.
        self.helplines = tuple(helplines)
        self.contact = contact  # how clients reach the practice ([practice] contact)
        self.retention_days = retention_days  # [retention] inactive_days; None: kept

    @staticmethod
    def validate(overrides: Mapping[str, Mapping[str, object]]) -> list[str]:
        """Problems as 'texts.<lang>.<key>: problem; fix' lines (empty when all is well)."""
        problems = []
        for lang, values in overrides.items():
            for key, text in values.items():
                where = f"texts.{lang}.{key}"
                if key not in KEYS:
                    problems.append(
                        f"{where}: unknown text; the keys are listed in docs/instruments.md"
                    )
                elif isinstance(text, str):
                    problems += check_text(key, text, where)
                elif key not in PLURALS:
                    problems.append(
                        f'{where}: must be one text in quotes ("..."); only texts with a count '
                        "take a table of plural forms"
                    )
                elif not isinstance(text, Mapping) or "other" not in text:
                    problems.append(
                        f"{where}: must be a text, or a table of plural forms such as "
                        '{ one = "...", other = "..." } with at least `other`'
                    )
                else:
                    for category, form in text.items():
                        if category not in CATEGORIES or not isinstance(form, str):
                            problems.append(
                                f"{where}.{category}: must be a text under one of "
                                f"{', '.join(CATEGORIES)}"
                            )
                        else:
                            problems += check_text(key, form, f"{where}.{category}")
        return problems

    @property
    def languages(self) -> list[str]:
        """Every language a client may choose: the catalogs' and the practice's own texts'."""
        return sorted(
            {DEFAULT_LANGUAGE, self.default_language, *self.catalogs.codes, *self._overrides}
        )

    def language_for(self, code: str | None) -> str:
        """The best language for a Telegram language code such as 'de' or 'pt-br': that
        language when Rapport has it, else the practice's."""
        known = set(self.languages)
        if code:
            for candidate in (code.lower(), code.lower().split("-")[0]):
                if candidate in known:
                    return candidate
        return self.default_language

    def get(self, key: str, language: str | None = None, **values: object) -> str:
        lang = language or self.default_language
        text = self._template(key, lang, values)
        wanted = placeholders(text)
        if "crisis" in wanted and "crisis" not in values:
            values["crisis"] = self.crisis(lang)
        if "retention" in wanted and "retention" not in values:
            values["retention"] = self.retention(lang)
        return text.format(**values) if values or wanted else text

    def _template(self, key: str, lang: str, values: Mapping[str, object]) -> str:
        plural = PLURALS.get(key)
        count = _count(values.get(plural.count)) if plural else 0
        for code in dict.fromkeys((lang, lang.split("-")[0], self.default_language)):
            own = self._overrides.get(code, {}).get(key)
            if own:
                if isinstance(own, str):
                    return own
                category = locale(code).plural_form(count)
                return own.get(category) or own["other"]
            found = self.catalogs.get(code)
            forms = found.texts.get(key) if found is not None else None
            if found is not None and forms:
                if plural is None or len(forms) == 1:
                    return forms[0]
                index = getattr(found.translations, "plural", lambda n: int(n != 1))(count)
                return forms[min(index, len(forms) - 1)]
        if plural is not None:
            return plural.one if count == 1 else plural.other
        return DEFAULTS[key]

    def crisis(self, language: str | None = None) -> str:
        """Where to get urgent help: the practice's helplines when it named some, listed in
        the `crisis_helplines` text, else the `crisis` text."""
        if not self.helplines:
            return self.get("crisis", language)
        listed = "\n".join(f"• {name}: {contact}" for name, contact in self.helplines)
        return self.get("crisis_helplines", language, helplines=listed)

    def retention(self, language: str | None = None) -> str:
        """What happens to a client's data when they stop answering ([retention])."""
        if self.retention_days is None:
            return self.get("retention_kept", language)
        return self.get("retention_erasure", language, days=self.retention_days)

    def reach(self, language: str | None = None) -> str:
        """How a client reaches their therapist or the practice."""
        if self.contact:
            return self.get("practice_contact", language, contact=self.contact.rstrip(". "))
        return self.get("practice_contact_unknown", language)

    def consent_version(self, language: str | None = None) -> str:
        """Changes whenever what a client agrees to changes: the first screen or the full
        text, with the crisis resources and the retention rule in them, in the client's
        language. Each client's version is recorded when they agree; whether a change asks
        clients again is the practice's choice ([consent] ask_again)."""
        agreed = f"{self.get('consent', language)}\n\n{self.get('consent_full', language)}"
        return hashlib.sha256(agreed.encode()).hexdigest()[:16]


def _count(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


class Say:
    """The texts of one language, as a callable: say("thanks"), say("paused", until=...)."""

    def __init__(self, texts: Texts, language: str | None) -> None:
        self.texts = texts
        self.language = language or texts.default_language

    def __call__(self, key: str, **values: object) -> str:
        return self.texts.get(key, self.language, **values)
