"""Settings from environment variables (prefix RAPPORT_) and an optional `.env` file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BOTFATHER_HELP = """RAPPORT_BOT_TOKEN is not set.

To get a token: open Telegram, talk to @BotFather, send /newbot and follow the steps.
BotFather answers with a token like 123456789:AAE...; put it in a file named .env in this
directory:

    RAPPORT_BOT_TOKEN=123456789:AAE...

or export RAPPORT_BOT_TOKEN in the environment, then start Rapport again."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAPPORT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    bot_token: SecretStr | None = None
    data_dir: Path = Path("data")
    database_url: str | None = None
    key_file: Path | None = None
    master_keys: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    bot_username: str | None = None
    config: Path | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    # The web dashboard, served by `rapport run` itself; port 0 turns it off. `web_url` is the
    # public https address a reverse proxy forwards to it, used in the sign-in links.
    web_listen: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    web_url: str | None = None
    dispatch_interval: float = Field(default=5.0, gt=0, le=300)
    # How long a claimed check-in stays reserved for this process before another may take it
    # over (a crashed process's claims are freed after this).
    dispatch_lease: float = Field(default=300, ge=1, le=3600)
    # Whether this process runs the dispatcher (planning, and sending check-ins, reminders,
    # alerts and notices). With several processes, one or two that dispatch are enough.
    dispatch: bool = True
    # Messages per second that this process starts itself (check-ins, reminders, alerts,
    # notices; replies to a client's taps are not counted). Telegram allows a bot about 30.
    send_rate: float = Field(default=30, gt=0, le=1000)
    log_level: str = "INFO"

    @field_validator("telegram_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("web_url")
    @classmethod
    def _web_base(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError(
                "give the dashboard's public address, e.g. https://rapport.example.org"
            )
        return value.rstrip("/")

    @field_validator("bot_username")
    @classmethod
    def _strip_at(cls, value: str | None) -> str | None:
        return value.lstrip("@") if value else value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'rapport.db'}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.data_dir / "rapport.key"

    @property
    def resolved_config(self) -> Path | None:
        if self.config is not None:
            return self.config
        default = Path("rapport.toml")
        return default if default.exists() else None

    @property
    def web_base_url(self) -> str | None:
        """Where the dashboard's links point: RAPPORT_WEB_URL, or the address it listens on;
        None when it is off."""
        if self.web_url:
            return self.web_url
        if not self.web_port:
            return None
        host = f"[{self.web_listen}]" if ":" in self.web_listen else self.web_listen
        return f"http://{host}:{self.web_port}"

    def token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise MissingToken(BOTFATHER_HELP)
        return self.bot_token.get_secret_value().strip()


class MissingToken(RuntimeError):
    """The bot cannot start without a token; the message says how to get one."""
