"""The practice config file (TOML) and the instrument definitions it brings in.

Every problem is reported with the file, the key and how to fix it; the bot does not start
on a file with problems.
"""

from __future__ import annotations

import copy
import tomllib
from datetime import time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from alliance.detectors import DetectorSettings, SettingsError, parse_settings
from alliance.instruments import Instrument, InstrumentError, parse_instrument
from alliance.triage import PUSH_DEFAULTS, TriageSettings
from handlers.alert_words import Detail
from handlers.i18n import CatalogError, Catalogs, read_languages
from handlers.texts import Texts, check_catalog
from schedules.defaults import DEFAULT_TEMPLATE, builtin_templates
from schedules.rules import (
    QuietHours,
    RuleError,
    Template,
    parse_quiet_hours,
    parse_templates,
)
from store.people import validate_timezone


class ConfigError(Exception):
    """The config file cannot be used; `problems` lists each one as 'file: key: fix'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PracticeSection(_Section):
    name: str = Field(default="Rapport practice", min_length=1, max_length=200)
    timezone: str = "UTC"
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
    # How clients reach their therapist or the practice (a phone number, an address): told
    # to a client who writes to the bot when no check-in is open. Unset: "the way you
    # usually do".
    contact: str | None = Field(default=None, min_length=1, max_length=300)
    # A folder (relative to the config file) of the practice's own gettext catalogs,
    # `<lang>.po` or `<lang>/LC_MESSAGES/rapport.po`: a new language, or better words for a
    # shipped one (docs/instruments.md, "Adding a language").
    locales: str | None = Field(default=None, min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return validate_timezone(value)


class InvitesSection(_Section):
    ttl_days: int = Field(default=14, ge=1, le=90)

    @property
    def ttl(self) -> timedelta:
        return timedelta(days=self.ttl_days)


class CheckinsSection(_Section):
    window_hours: float = Field(default=24, gt=0, le=24 * 14)
    instruments: list[str] = Field(default_factory=lambda: ["alliance"], min_length=1)
    # Instruments whose score a client sees after answering; alliance scores stay private by
    # default, since seeing them can make clients answer for the therapist's sake.
    show_scores: list[str] = Field(default_factory=list)
    reminder_hours: float = Field(default=4, ge=0, le=24 * 7)  # 0: no reminder
    # For clients invited without --schedule: the built-in "standard" (schedules/defaults.py)
    # unless the practice names another; "" for none (check-ins only when sent by hand).
    default_template: str | None = DEFAULT_TEMPLATE
    # /progress: clients may ask for a chart of their own answers with a plain reading.
    client_progress: bool = True

    @field_validator("default_template")
    @classmethod
    def _no_template(cls, value: str | None) -> str | None:
        return value or None

    @property
    def reminder_delay(self) -> timedelta | None:
        return timedelta(hours=self.reminder_hours) if self.reminder_hours else None

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)


class Helpline(_Section):
    """One named place to get urgent help, shown wherever the crisis text is."""

    name: str = Field(min_length=1, max_length=100)
    contact: str = Field(min_length=1, max_length=200)  # a number, an address, a web page

    @field_validator("name", "contact")
    @classmethod
    def _words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; write it out, or remove the entry")
        return value.strip()


class CrisisSection(_Section):
    """The practice's own helplines, listed wherever a client is told where to get urgent
    help (the {crisis} of every such text); none: the `crisis` text alone."""

    helplines: list[Helpline] = Field(default_factory=list, max_length=10)


class ConsentSection(_Section):
    """The consent text's version (a hash of its words) is recorded when a client agrees.
    When the text changes (the practice's own words, its helplines or retention, or a new
    Rapport version), clients who agreed to an earlier one are asked to agree again before
    their next check-in only with `ask_again`; otherwise their consent stands as recorded."""

    ask_again: bool = False


class InstrumentsSection(_Section):
    directory: Path | None = None


class RetentionSection(_Section):
    """Clients stopped or inactive this long are erased by a daily job; 0 (None) keeps them."""

    inactive_days: int | None = Field(default=365)
    warn_days: int = Field(default=14, ge=1, le=90)

    @field_validator("inactive_days")
    @classmethod
    def _off_or_long_enough(cls, days: int | None) -> int | None:
        if days is None or days == 0:
            return None
        if days < 30:
            raise ValueError(
                f"{days} days is too short; use at least 30, or 0 to keep data until erased by hand"
            )
        return days

    @model_validator(mode="after")
    def _warning_before_erasure(self) -> RetentionSection:
        if self.inactive_days is not None and self.warn_days >= self.inactive_days:
            raise ValueError(
                f"warn_days ({self.warn_days}) must be shorter than inactive_days "
                f"({self.inactive_days}); lower warn_days"
            )
        return self


class PushSection(_Section):
    """Which rupture signs reach the therapist's phone at once (alliance.triage); the rest
    waits for the brief before the client's next session. Defaults and reasons:
    docs/detectors.md."""

    drop_sd: float = Field(default=PUSH_DEFAULTS.drop_sd, gt=0, le=10)
    low_margin: float = Field(default=PUSH_DEFAULTS.low_margin, ge=0, le=1)
    tension_at: int = Field(default=PUSH_DEFAULTS.tension_at, ge=1, le=10)
    criticism: bool = PUSH_DEFAULTS.criticism
    converging: int = Field(default=PUSH_DEFAULTS.converging, ge=0, le=5)
    repeated: bool = PUSH_DEFAULTS.repeated
    missed_in_a_row: int = Field(default=PUSH_DEFAULTS.missed_in_a_row, ge=0, le=52)

    def settings(self) -> TriageSettings:
        return TriageSettings(**self.model_dump())


class AlertsSection(_Section):
    """How alerts reach therapists. `detail`: full (reason, rupture type, repair ideas and
    chart), scores (no comment phrases, chart), or minimal (a pointer only; nothing clinical
    passes through Telegram)."""

    detail: Detail = Detail.FULL
    cooldown_days: float = Field(default=7, ge=0, le=90)
    # A daily digest: non-urgent alerts wait for this local time (practice zone); urgent ones
    # never wait. Unset: each alert goes out at once (after quiet hours).
    digest_at: time | None = None
    push: PushSection = Field(default_factory=PushSection)
    # The brief before each client's next session goes this many hours before it (earlier
    # when that falls in the practice's quiet hours).
    brief_hours_before: float = Field(default=2, ge=0.5, le=48)


class PracticeConfig(_Section):
    practice: PracticeSection = Field(default_factory=PracticeSection)
    invites: InvitesSection = Field(default_factory=InvitesSection)
    checkins: CheckinsSection = Field(default_factory=CheckinsSection)
    instruments: InstrumentsSection = Field(default_factory=InstrumentsSection)
    alerts: AlertsSection = Field(default_factory=AlertsSection)
    # Checked by alliance.detectors.parse_settings (see `load`); keys are DetectorSettings'.
    detectors: dict[str, Any] = Field(default_factory=dict)
    retention: RetentionSection = Field(default_factory=RetentionSection)
    crisis: CrisisSection = Field(default_factory=CrisisSection)
    consent: ConsentSection = Field(default_factory=ConsentSection)
    # Checked by handlers.texts.Texts.validate (see `load`): a text, or for a text with a
    # count a table of plural forms.
    texts: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Checked by schedules.rules after the rest (see `load`), for its precise messages.
    quiet_hours: dict[str, Any] | None = None
    templates: dict[str, Any] = Field(default_factory=dict)

    # The shipped catalogs with the practice's own ([practice] locales), set by `load`.
    _catalogs: Catalogs | None = PrivateAttr(default=None)

    def make_texts(self) -> Texts:
        helplines = [(line.name, line.contact) for line in self.crisis.helplines]
        return Texts(
            self.texts,
            self.practice.language,
            helplines=helplines,
            contact=self.practice.contact,
            retention_days=self.retention.inactive_days,
            catalogs=self._catalogs,
        )


class Loaded(BaseModel):
    """The validated config with the instruments it makes available, by id."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    config: PracticeConfig
    instruments: dict[str, Instrument]
    templates: dict[str, Template]
    quiet: QuietHours | None
    detectors: DetectorSettings
    source: str


def load(path: Path | None) -> Loaded:
    """Read and validate the config; None means built-in defaults."""
    source = str(path) if path is not None else "built-in defaults"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                [f"{path}: the file does not exist; fix RAPPORT_CONFIG or create the file"]
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: not valid TOML ({exc}); fix the syntax"]) from None
    # Every stage runs, each on what the earlier ones could read, so one pass reports every
    # problem: a setting that fails its own check is left out (its default stands in) while
    # the rest of the file is checked.
    problems: list[str] = []
    config, invalid = _validate(raw)
    problems += [_describe(source, error) for error in invalid]
    base = path.parent if path is not None else Path.cwd()
    instrument_problems: list[str] = []
    instruments = _collect_instruments(config.instruments.directory, base, instrument_problems)
    problems += [
        f"{source}: {problem}" if problem.startswith("instruments.directory") else problem
        for problem in instrument_problems
    ]
    # Names are checked only against a complete set: with an unreadable instrument file or
    # folder, a name may well be defined in it.
    known = set(instruments) if not instrument_problems else None
    problems += [
        f"{source}: checkins.instruments: unknown instrument {name!r}; "
        f"use one of {', '.join(sorted(instruments))}"
        for name in config.checkins.instruments + config.checkins.show_scores
        if known is not None and name not in known
    ]
    problems += [f"{source}: {problem}" for problem in Texts.validate(config.texts)]
    config._catalogs = _practice_catalogs(config.practice.locales, base, source, problems)
    if config.crisis.helplines:
        problems += [
            f"{source}: texts.{lang}.crisis: not used while [crisis] helplines are set (the "
            f"crisis_helplines text lists them); put these words in texts.{lang}."
            "crisis_helplines, or remove one of the two"
            for lang, values in config.texts.items()
            if "crisis" in values
        ]
    templates: dict[str, Template] = {}
    templates_read = True
    quiet = None
    try:
        templates = {
            **builtin_templates(),  # a practice's own template of the same name replaces it
            **parse_templates(config.templates, known_instruments=known),
        }
    except RuleError as exc:
        templates_read = False
        problems += [f"{source}: {problem}" for problem in exc.problems]
    try:
        quiet = parse_quiet_hours(config.quiet_hours)
    except RuleError as exc:
        problems += [f"{source}: {problem}" for problem in exc.problems]
    detectors = DetectorSettings()
    try:
        detectors = parse_settings(config.detectors, source)
    except SettingsError as exc:
        problems += exc.problems
    default = config.checkins.default_template
    if default is not None and default not in templates and templates_read:
        problems.append(
            f"{source}: checkins.default_template: no template named {default!r}; "
            f"define [templates.{default}] or use one of {', '.join(sorted(templates)) or 'none'}"
        )
    if problems:
        raise ConfigError(problems)
    return Loaded(
        config=config,
        instruments=instruments,
        templates=templates,
        quiet=quiet,
        detectors=detectors,
        source=source,
    )


def _practice_catalogs(
    folder: str | None, base: Path, source: str, problems: list[str]
) -> Catalogs:
    """The shipped catalogs with the practice's own .po files; each problem names the file,
    the message and the fix."""
    if folder is None:
        return Catalogs()
    directory = base / folder
    if not directory.is_dir():
        problems.append(
            f"{source}: practice.locales: {directory} is not a folder; create it or fix the path"
        )
        return Catalogs()
    try:
        added = read_languages(directory)
    except CatalogError as exc:
        problems.append(str(exc))
        return Catalogs()
    for language in added.values():
        problems += check_catalog(language)
    return Catalogs(added)


def load_instruments(directory: Path | None, base: Path) -> dict[str, Instrument]:
    """The shipped instruments, then the practice's own (which may replace a shipped one);
    ConfigError with every problem in them."""
    problems: list[str] = []
    found = _collect_instruments(directory, base, problems)
    if problems:
        raise ConfigError(problems)
    return found


def _collect_instruments(
    directory: Path | None, base: Path, problems: list[str]
) -> dict[str, Instrument]:
    """The instruments that could be read; a problem with each other one goes to `problems`."""
    found: dict[str, Instrument] = {}
    shipped = resources.files("alliance") / "instruments"
    for entry in sorted(shipped.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            text = entry.read_text(encoding="utf-8")
            found.update(_instrument(text, f"alliance/{entry.name}", problems))
    if directory is not None:
        folder = directory if directory.is_absolute() else base / directory
        if not folder.is_dir():
            problems.append(
                f"instruments.directory: {folder} is not a directory; create it or fix the path"
            )
            return found
        for file in sorted(folder.glob("*.toml")):
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                problems.append(f"{file}: not UTF-8 text; save it as UTF-8")
                continue
            found.update(_instrument(text, str(file), problems))
    return found


def _instrument(text: str, source: str, problems: list[str]) -> dict[str, Instrument]:
    try:
        instrument = parse_instrument(tomllib.loads(text), source)
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{source}: not valid TOML ({exc}); fix the syntax")
        return {}
    except InstrumentError as exc:
        problems.append(str(exc))
        return {}
    return {instrument.id: instrument}


def _validate(raw: dict[str, Any]) -> tuple[PracticeConfig, list[Any]]:
    """The config with every setting that fails its check left out (so its default stands
    in), and the errors of the file as written."""
    try:
        return PracticeConfig.model_validate(raw), []
    except ValidationError as exc:
        first = errors = exc.errors()
    trimmed = copy.deepcopy(raw)
    while True:  # each round removes at least one setting, or stops
        if not any([_remove(trimmed, error["loc"]) for error in errors]):
            return PracticeConfig(), list(first)
        try:
            return PracticeConfig.model_validate(trimmed), list(first)
        except ValidationError as again:
            errors = again.errors()


def _remove(raw: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    """Delete the innermost table key on `loc` (a whole list for an item in it); False when
    there is nothing to delete."""
    node: Any = raw
    parent: dict[str, Any] | None = None
    key: Any = None
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            break
        parent, key, node = node, part, node[part]
    if parent is None:
        return False
    del parent[key]
    return True


def _describe(source: str, error: Any) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{source}: {key}: unknown setting; remove it or check its spelling"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{source}: {key}: {message}"
