"""Small non-personal facts the bot learns and the command line reads."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from store.models import BotSetting

BOT_USERNAME = "bot_username"


async def put(session: AsyncSession, key: str, value: str | None) -> None:
    if value is None:
        return
    row = await session.get(BotSetting, key)
    if row is None:
        session.add(BotSetting(key=key, value=value))
    else:
        row.value = value


async def get(session: AsyncSession, key: str) -> str | None:
    row = await session.get(BotSetting, key)
    return None if row is None else row.value
