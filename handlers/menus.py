"""The command menus Telegram shows beside the message field, in each reader's language.

Clients: one menu per language Rapport has (`setMyCommands` with that `language_code`), the
practice's language as the default for everyone else, and a chat's own menu once a client
chooses a language with /language. Therapists: their own menu in their chat, in the
practice's language (handlers/i18n.staff).
"""

from __future__ import annotations

from telegram import Bot, BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from handlers.texts import Texts

CLIENT_MENU = (
    "help",
    "pause",
    "resume",
    "stop",
    "mydata",
    "delete",
    "privacy",
    "progress",
    "language",
)


def client_commands(texts: Texts, language: str | None, progress: bool = True) -> list[BotCommand]:
    """The clients' menu in `language`; without /progress where the practice turned it off."""
    return [
        BotCommand(name, texts.get(f"menu_{name}", language))
        for name in CLIENT_MENU
        if progress or name != "progress"
    ]


def telegram_code(language: str) -> str | None:
    """The code setMyCommands takes for a language: two letters (ISO 639-1), else None."""
    return language if len(language) == 2 and language.isalpha() else None


async def set_client_menus(bot: Bot, texts: Texts, progress: bool = True) -> None:
    """The default menu in the practice's language, and one per language Rapport has."""
    default = BotCommandScopeDefault()
    await bot.set_my_commands(
        client_commands(texts, texts.default_language, progress), scope=default
    )
    for language in texts.languages:
        code = telegram_code(language)
        if code is not None:
            menu = client_commands(texts, language, progress)
            await bot.set_my_commands(menu, scope=default, language_code=code)


async def set_chat_menu(
    bot: Bot, texts: Texts, chat_id: int, language: str, progress: bool = True
) -> None:
    """A client's own menu, in the language they chose (whatever their Telegram's)."""
    menu = client_commands(texts, language, progress)
    await bot.set_my_commands(menu, scope=BotCommandScopeChat(chat_id))
