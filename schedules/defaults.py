"""The schedule every practice has without writing one: the built-in template `standard`.

A client invited without `--schedule`, in a practice whose config names no
`[checkins] default_template`, gets it, so that check-ins arrive from day one without a config
file. A practice replaces it by defining its own `[templates.standard]`, or names another
template as `default_template` (or `""` for none: check-ins only when sent by hand).

Why weekly and not "after each session": a practice on its first day logs no sessions, and
the rules have no "after a session, else weekly": an `after_session` rule beside a weekly one
would ask the alliance questions twice in a week whenever a session is logged. So the default
asks every client once a week, sessions logged or not (docs/scheduling.md).
"""

from __future__ import annotations

from typing import Any

from schedules.rules import Template, parse_templates

DEFAULT_TEMPLATE = "standard"

# Two fortnightly rules a week apart, both anchored on the day the client joins: one check-in a
# week, the alliance every week and WHO-5 with it every other week (WHO-5 asks about the last
# two weeks). 18:00 local is after most working days and before the usual quiet hours.
BUILTIN: dict[str, Any] = {
    DEFAULT_TEMPLATE: {
        "description": (
            "Weekly at 18:00 (client's time), from the day after joining: the alliance "
            "questions, with WHO-5 every other week"
        ),
        "rules": [
            {
                "kind": "every_n_days",
                "every": 14,
                "start_after_days": 1,
                "at": "18:00",
                "instruments": ["alliance", "who5"],
                "comment": True,
            },
            {
                "kind": "every_n_days",
                "every": 14,
                "start_after_days": 8,
                "at": "18:00",
                "instruments": ["alliance"],
                "comment": True,
            },
        ],
    }
}


def builtin_templates() -> dict[str, Template]:
    """The built-in templates (the shipped instruments only)."""
    return parse_templates(BUILTIN, known_instruments={"alliance", "who5"})
