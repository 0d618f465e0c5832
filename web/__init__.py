"""The web dashboard: another adapter beside handlers/, served by `rapport run` in the bot's
own process and event loop, on the same database (see web/app.py and bot/dashboard.py)."""
