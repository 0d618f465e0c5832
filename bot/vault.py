"""The key ring a process works with, from the settings (the bot and the `rapport` commands).

Its own module, without Telegram: the CLI imports it to open the vault, and importing
`bot.app` would bring python-telegram-bot along.
"""

from __future__ import annotations

from bot.settings import Settings
from store.crypto import load_keyring
from store.vault import Vault


def load_vault(settings: Settings) -> Vault:
    """The key ring from RAPPORT_MASTER_KEYS or the key file, re-read on an unknown key id."""

    def read() -> Vault:
        master = settings.master_keys.get_secret_value() if settings.master_keys else None
        return Vault(load_keyring(settings.resolved_key_file, master), reload=lambda: read().ring)

    return read()
