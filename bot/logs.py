"""Logging that never carries the bot token, and quiet httpx (it logs full request URLs)."""

from __future__ import annotations

import logging
import re

_TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
REDACTED = "[REDACTED]"


class RedactingFilter(logging.Filter):
    """Removes bot tokens from every record, its arguments and any attached exception text."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self._secrets = [s for s in secrets or [] if s]

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_PATTERN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            # Format the traceback now, redacted, and drop the live exception so no
            # handler formats the raw one again.
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def redact(text: str, *secrets: str) -> str:
    """Text with bot tokens (and the given secrets) removed, for messages outside logging."""
    return RedactingFilter(list(secrets)).redact(text)


_installed: RedactingFilter | None = None


def install_redaction(secrets: list[str] | None = None) -> RedactingFilter:
    """Redact in the log record factory, so every handler, present or added later, is covered."""
    global _installed
    redactor = RedactingFilter(secrets)
    if _installed is None:
        make_record = logging.getLogRecordFactory()

        def redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            assert _installed is not None
            _installed.filter(record)
            return record

        logging.setLogRecordFactory(redacting_factory)
    _installed = redactor
    return redactor


# At DEBUG these libraries log whole updates and request parameters (names, Telegram ids,
# answers); they never log below INFO, whatever RAPPORT_LOG_LEVEL says. The database drivers
# and SQLAlchemy's engine log statements with their parameters at INFO, and httpx logs URLs
# (with the token) at INFO: those stay at WARNING.
PAYLOAD_LOGGERS = ("telegram", "tornado")
QUIET_LOGGERS = (
    "httpx",
    "httpcore",
    "apscheduler",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
)


def configure(level: str = "INFO", secrets: list[str] | None = None) -> None:
    install_redaction(secrets)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())
    floor = max(logging.INFO, root.level)
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(floor)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
