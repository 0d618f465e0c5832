"""The composition root: builds the PTB Application and owns every resource it uses.

post_init opens the database (migrating it), loads the keys and starts the dispatcher's
clock; post_shutdown closes them. Handlers reach all of it through `context.services`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import config as practice_config
from bot import dashboard, logs
from bot.ratelimit import RapportRateLimiter
from bot.settings import Settings
from bot.vault import load_vault
from handlers import (
    brief,
    callbacks,
    caseload,
    checkin,
    client,
    delivery,
    digest,
    i18n,
    menus,
    planning,
    progress,
    start,
    web,
)
from handlers import therapist as therapist_handlers
from handlers.charts import Charts
from handlers.context import BotData, RapportApp, RapportContext, Services
from handlers.texts import Say, Texts
from review.decide import Detection
from schedules.dispatcher import Dispatcher
from schedules.planner import Planner
from schedules.rules import QuietHours, defer_past_quiet, resolve_local
from store import people, settings_kv, updates, websessions
from store.alerts import AlertPolicy
from store.db import create_engine, migrate, session_factory, transaction
from store.retention import run_retention

log = logging.getLogger(__name__)

DIGEST_INTERVAL = timedelta(minutes=5)


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_application(
    settings: Settings,
    loaded: practice_config.Loaded,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> RapportApp:
    token = settings.token()
    logs.install_redaction([token])
    api = settings.telegram_api_url
    built = (
        Application.builder()
        .token(token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .context_types(ContextTypes(context=RapportContext, bot_data=BotData))
        .rate_limiter(RapportRateLimiter(max_retries=3, overall_max_rate=settings.send_rate))
        .post_init(lambda app: _post_init(app, settings, loaded, clock))
        .post_shutdown(_post_shutdown)
        .build()
    )
    # The builder's generics cannot follow context_types() into the job queue's type.
    app = cast(RapportApp, built)
    _register_handlers(app)
    return app


def _register_handlers(app: RapportApp) -> None:
    private = filters.ChatType.PRIVATE
    app.add_handler(CommandHandler("start", start.start, filters=private))
    for name, callback in CLIENT_COMMAND_HANDLERS.items():
        app.add_handler(CommandHandler(name, callback, filters=private))
    app.add_handler(CallbackQueryHandler(start.on_consent, pattern=_pattern(callbacks.CONSENT)))
    app.add_handler(CallbackQueryHandler(client.on_erase, pattern=_pattern(callbacks.ERASE)))
    app.add_handler(CallbackQueryHandler(client.on_language, pattern=_pattern(callbacks.LANGUAGE)))
    for name, command in THERAPIST_COMMAND_HANDLERS.items():
        app.add_handler(CommandHandler(name, command, filters=private))
    for action, pressed in THERAPIST_BUTTON_HANDLERS.items():
        app.add_handler(CallbackQueryHandler(pressed, pattern=_pattern(action)))
    # Check-in buttons, and anything else: on_tap answers unknown data with a plain "closed".
    app.add_handler(CallbackQueryHandler(checkin.on_tap))
    app.add_handler(MessageHandler(private & ~filters.COMMAND, checkin.on_text))
    app.add_handler(ChatMemberHandler(client.on_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_error_handler(_on_error)


def _pattern(action: str) -> str:
    return f"^{action}:"


CLIENT_COMMAND_HANDLERS = {
    "help": client.help_command,
    "privacy": client.privacy,
    "pause": client.pause,
    "resume": client.resume,
    "stop": client.stop,
    "mydata": client.mydata,
    "delete": client.delete,
    "progress": progress.progress,
    "language": client.language,
}
THERAPIST_COMMAND_HANDLERS = {**caseload.HANDLERS, **planning.HANDLERS, **web.HANDLERS}
THERAPIST_BUTTON_HANDLERS = {**caseload.BUTTONS, **planning.BUTTONS}


@asynccontextmanager
async def running(app: RapportApp, *, poll_timeout: float | None = None) -> AsyncIterator[None]:
    """Start and stop the Application in the order PTB's run_polling uses, post hooks included.

    With `poll_timeout` it long-polls for updates; without, updates come from elsewhere (the
    webhook server).
    """
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        if poll_timeout is not None and app.updater is not None:
            await app.updater.start_polling(
                poll_interval=0, timeout=int(poll_timeout), allowed_updates=Update.ALL_TYPES
            )
        await app.start()
        try:
            yield
        finally:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            await app.stop()
    finally:
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


async def _post_init(
    app: RapportApp,
    settings: Settings,
    loaded: practice_config.Loaded,
    clock: Callable[[], datetime],
) -> None:
    engine = create_engine(settings.resolved_database_url)
    app.bot_data.closers.append(engine.dispose)
    await migrate(engine)
    sessions = session_factory(engine)
    config = loaded.config
    charts = Charts()
    app.bot_data.closers.append(charts.close)
    texts = config.make_texts()
    # Therapist-facing words: the practice's language, through the same catalogs.
    i18n.staff.use(texts.catalogs, config.practice.language)
    services = Services(
        sessions=sessions,
        vault=load_vault(settings),
        texts=texts,
        detection=Detection(
            settings=loaded.detectors,
            push=config.alerts.push.settings(),
            policy=AlertPolicy(
                cooldown=timedelta(days=config.alerts.cooldown_days),
                defer=non_urgent_delivery(
                    config.practice.timezone, loaded.quiet, config.alerts.digest_at
                ),
            ),
        ),
        alert_detail=config.alerts.detail,
        brief_lead=timedelta(hours=config.alerts.brief_hours_before),
        instruments=loaded.instruments,
        checkin_instruments=list(config.checkins.instruments),
        show_scores=list(config.checkins.show_scores),
        checkin_window=config.checkins.window,
        invite_ttl=config.invites.ttl,
        clock=clock,
        charts=charts,
        bot_username=app.bot.username,
        timezone=config.practice.timezone,
        quiet=loaded.quiet,
        templates=loaded.templates,
        default_template=config.checkins.default_template,
        client_progress=config.checkins.client_progress,
        web_url=settings.web_base_url,
    )
    async with transaction(sessions) as session:
        await settings_kv.put(session, settings_kv.BOT_USERNAME, app.bot.username)
    dispatcher = Dispatcher(
        sessions,
        services.vault,
        services.instruments,
        delivery.Messenger(app.bot, services.texts, charts, services.alert_detail),
        clock,
        planner=Planner(quiet=loaded.quiet, window=config.checkins.window),
        reminder_delay=config.checkins.reminder_delay,
        # A changed consent text asks clients again only when the practice wants that.
        consent_version=services.texts.consent_version if config.consent.ask_again else None,
        detection=services.detection,
        lease=timedelta(seconds=settings.dispatch_lease),
    )
    job_queue = app.job_queue
    if job_queue is None:
        raise RuntimeError("PTB's job queue is missing: install python-telegram-bot[job-queue]")

    async def tick(_context: RapportContext) -> None:
        await dispatcher.tick()

    # Late ticks still run (no misfire drop) and pile-ups coalesce into one: what is due
    # lives in the database, so a tick only has to happen, not to happen on time.
    job_kwargs = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
    if settings.dispatch:
        app.bot_data.dispatcher = dispatcher
        job_queue.run_repeating(
            tick,
            interval=settings.dispatch_interval,
            first=0.5,
            name="dispatch",
            job_kwargs=job_kwargs,
        )
    else:
        log.info("dispatching is off in this process (RAPPORT_DISPATCH=false)")

    async def retention(_context: RapportContext) -> None:
        async with transaction(sessions) as session:
            await updates.prune(session, clock() - timedelta(days=2))
            await websessions.prune(session, clock())
            report = await run_retention(
                session,
                services.vault,
                now=clock(),
                inactive_days=config.retention.inactive_days,
                warn_days=config.retention.warn_days,
            )
        if report.warned and not report.admins_told:
            log.warning("retention: clients are due for erasure but no admin could be told")
        if report.warned or report.erased:
            log.info("retention: %d warned, %d erased", len(report.warned), len(report.erased))
            kick()

    job_queue.run_repeating(
        retention, interval=timedelta(days=1), first=60, name="retention", job_kwargs=job_kwargs
    )

    async def pre_session_briefs(context: RapportContext) -> None:
        await brief.send_due(context.bot, services)

    job_queue.run_repeating(
        pre_session_briefs,
        interval=brief.BRIEF_INTERVAL,
        first=20,
        name="brief",
        job_kwargs=job_kwargs,
    )

    async def digests(context: RapportContext) -> None:
        await digest.send_due(context.bot, services)

    job_queue.run_repeating(
        digests, interval=DIGEST_INTERVAL, first=30, name="digest", job_kwargs=job_kwargs
    )

    def kick() -> None:
        """Run a tick soon; a kick while one is already waiting adds nothing. A process that
        does not dispatch leaves it to those that do (within their interval)."""
        if settings.dispatch and not job_queue.get_jobs_by_name("dispatch-now"):
            job_queue.run_once(tick, 0, name="dispatch-now")

    services.kick = kick
    app.bot_data.services = services
    stop_web = await dashboard.serve(app.bot, settings, services)
    if stop_web is not None:
        app.bot_data.closers.append(stop_web)
    await menus.set_client_menus(app.bot, services.texts, services.client_progress)
    await _therapist_menus(app, services)
    log.info("Rapport is running as @%s", app.bot.username)


async def _therapist_menus(app: RapportApp, services: Services) -> None:
    """Therapists' own command menus: set for active therapists, removed for deactivated ones."""
    async with transaction(services.sessions) as session:
        chats = await people.therapist_chats(session, services.vault)
    for chat, active in chats:
        try:
            await therapist_handlers.register_commands(app.bot, chat, active)
        except TelegramError as exc:
            log.warning("could not set a therapist's command menu: %s", type(exc).__name__)


def non_urgent_delivery(
    zone: str, quiet: QuietHours | None, digest_at: time | None
) -> Callable[[datetime], datetime]:
    """When a non-urgent alert goes out: after the practice's quiet hours, or, with a daily
    digest, at the next digest time (all of that day's alerts arrive together)."""
    tz = ZoneInfo(zone)

    def when(now: datetime) -> datetime:
        if digest_at is not None:
            day = now.astimezone(tz).date()
            at = resolve_local(datetime.combine(day, digest_at), tz)
            now = (
                at
                if at > now
                else resolve_local(datetime.combine(day + timedelta(days=1), digest_at), tz)
            )
        return defer_past_quiet(now, zone, quiet)

    return when


async def _post_shutdown(app: RapportApp) -> None:
    while app.bot_data.closers:
        await app.bot_data.closers.pop()()


JOB_NAMES = {"dispatch": "dispatcher", "dispatch-now": "dispatcher"}


def cause(error: BaseException | None) -> str:
    """The error's type and message, and those of what caused it: for a database error the
    driver's own message (SQLAlchemy's would add the statement and its parameters)."""
    parts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen and len(parts) < 3:
        seen.add(id(error))
        shown = error.orig if isinstance(error, DBAPIError) and error.orig else error
        text = str(shown).strip().splitlines()[0][:200] if str(shown).strip() else ""
        parts.append(f"{type(error).__name__}: {text}" if text else type(error).__name__)
        error = error.__cause__ or error.__context__
    return "; caused by ".join(parts) or "unknown error"


async def _on_error(update: object, context: RapportContext) -> None:
    """Log the failure without the update (it holds names, ids and text), and apologise.
    A job's failure (no update) is logged as that job's error, with its cause."""
    error = context.error
    if update is None and context.job is not None:
        job = JOB_NAMES.get(context.job.name or "", f"{context.job.name} job")
        log.error("%s error: %s", job, cause(error), exc_info=error)
        return
    log.error("error while handling an update: %s", type(error).__name__, exc_info=error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    services = context.bot_data.services
    sorry = (services.say(None) if services else Say(Texts(), None))("something_wrong")
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(sorry)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(sorry)
    except TelegramError:
        log.warning("could not tell the user about the error")
