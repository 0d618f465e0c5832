"""The web dashboard's side in Telegram: /web, a therapist's one-time link to it, and what
its actions change in the chat (the dashboard itself is the web/ package).

An alert acknowledged or snoozed on the dashboard loses its buttons in Telegram exactly as
when its own Acknowledge button is pressed (`drop_buttons`, which that button uses too), so
the chat never offers to act on an alert that is already handled.
"""

from __future__ import annotations

from handlers.therapist import Ask, Reply, command, drop_buttons
from store import websessions

__all__ = ["HANDLERS", "drop_buttons", "web_link"]

OFF = (
    "The web dashboard is not turned on at this practice: ask your practice admin "
    "(RAPPORT_WEB_PORT, docs/operations.md)."
)


async def web_link(ask: Ask) -> Reply:
    base = ask.services.web_url
    if base is None:
        return Reply(OFF)
    issued = await websessions.issue_login(ask.session, ask.therapist, ask.now)
    minutes = int(websessions.LOGIN_TTL.total_seconds() // 60)
    hours = int(websessions.SESSION_TTL.total_seconds() // 3600)
    return Reply(
        f"Your link to the Rapport dashboard:\n{websessions.login_link(base, issued.token)}\n\n"
        f"It works once, for {minutes} minutes, and keeps you signed in for {hours} hours. "
        "It is for you only: do not forward it. Send /web again for a new one.",
        no_preview=True,
    )


HANDLERS = {"web": command(web_link)}
