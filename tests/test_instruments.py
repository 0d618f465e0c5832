"""Instrument definition files: the shipped ones load; a broken one is rejected with its file,
item and problem; no file content crashes the loader."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alliance.instruments import InstrumentError, parse_instrument
from bot.config import ConfigError, load, load_instruments

DOCS_EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "phq9.toml"


def test_shipped_instruments_have_the_documented_shape() -> None:
    instruments = load_instruments(None, Path("."))
    alliance, who5 = instruments["alliance"], instruments["who5"]
    assert [i.id for i in alliance.items] == ["bond", "goals", "approach", "overall", "tension"]
    assert alliance.max_total == 40 and alliance.cutoff == 36 and not alliance.validated
    assert [i.id for i in alliance.scored_items] == ["bond", "goals", "approach", "overall"]
    assert [i.id for i in who5.items] == [f"who5_{n}" for n in range(1, 6)]
    assert who5.max_total == 100  # raw 0-25, times 4
    assert who5.total({f"who5_{n}": 3 for n in range(1, 6)}) == 60
    assert who5.total({"who5_1": 3}) is None  # a partial total would mislead
    assert "WHO Collaborating" in who5.attribution


def test_documented_phq9_example_loads_with_its_risk_item() -> None:
    phq9 = parse_instrument(tomllib.loads(DOCS_EXAMPLE.read_text()), str(DOCS_EXAMPLE))
    assert len(phq9.items) == 9 and phq9.max_total == 27
    assert phq9.item("phq9_9").risk_threshold == 1


BASE: dict[str, Any] = {
    "id": "x",
    "title": "X",
    "items": [{"id": "a", "prompt": "A?", "min": 0, "max": 4}],
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"id": ""}, "id: is missing or empty"),
        ({"id": "has space"}, "may hold only letters"),
        ({"items": []}, "items: add at least one"),
        ({"items": [{"id": "a", "prompt": "A?", "min": 3, "max": 3}]}, "item 'a': min (3)"),
        ({"items": [{"id": "a", "prompt": "A?", "min": 0, "max": 20}]}, "at most 11 points"),
        ({"items": [{"id": "a", "prompt": "A?", "min": 0}]}, "item 'a' max: is missing"),
        ({"items": [{"id": "a", "min": 0, "max": 2}]}, "item 'a' prompt: is missing"),
        (
            {"items": [{"id": "a", "prompt": "A?", "min": 0, "max": 2, "labels": {"9": "x"}}]},
            "9 is outside the scale 0-2",
        ),
        ({"items": [BASE["items"][0], BASE["items"][0]]}, "the id is used twice"),
        ({"scoring": "median"}, "scoring: must be one of sum, mean"),
        ({"cutoff": "high"}, "cutoff: must be a number"),
        (
            {"items": [{"id": "a", "prompt": "A?", "min": 0, "max": 2, "risk_threshold": 5}]},
            "risk_threshold must be a whole number up to 2",
        ),
    ],
)
def test_each_problem_is_named(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(InstrumentError, match=r"^my\.toml: ") as info:
        parse_instrument({**BASE, **change}, "my.toml")
    assert expected in str(info.value)


toml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-20, 20)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(["id", "title", "items", "scoring", "cutoff", "scale_factor", "validated"]),
        toml_values,
    ),
    st.lists(
        st.dictionaries(
            st.sampled_from(
                ["id", "prompt", "min", "max", "labels", "scored", "skippable", "risk_threshold"]
            ),
            toml_values,
        ),
        max_size=3,
    ),
)
def test_no_definition_crashes_the_loader(data: dict[str, Any], items: list[Any]) -> None:
    if items:
        data["items"] = items
    try:
        instrument = parse_instrument(data, "fuzz.toml")
    except InstrumentError as exc:
        assert str(exc).startswith("fuzz.toml: ")
    else:
        assert instrument.items


def test_a_broken_practice_file_stops_the_config_with_its_name(tmp_path: Path) -> None:
    folder = tmp_path / "instruments"
    folder.mkdir()
    (folder / "srs.toml").write_text('id = "srs"\ntitle = "SRS"\n[[items]]\nid = "r"\n')
    config = tmp_path / "rapport.toml"
    config.write_text('[instruments]\ndirectory = "instruments"\n')
    with pytest.raises(ConfigError) as info:
        load(config)
    assert "srs.toml: item 'r' min: is missing or not a whole number" in str(info.value)


def test_every_text_is_documented_for_practices() -> None:
    from handlers.texts import KEYS

    page = (Path(__file__).parent.parent / "docs" / "instruments.md").read_text()
    missing = [key for key in KEYS if f"| `{key}` |" not in page]
    assert missing == []


def test_shipped_instruments_speak_german_and_spanish() -> None:
    instruments = load_instruments(None, Path("."))
    who5, alliance = instruments["who5"], instruments["alliance"]
    assert who5.languages == alliance.languages == ["de", "es"]
    german = who5.in_language("de-CH")
    assert german.items[0].prompt == "In den letzten zwei Wochen war ich froh und guter Laune."
    assert german.items[0].labels[5] == "Die ganze Zeit" and german.max_total == 100
    assert "Psychiatric Research Unit" in german.attribution
    spanish = who5.in_language("es")
    assert spanish.items[4].labels[0] == "Nunca"
    assert who5.in_language("fr") is who5  # no French: as written
    assert "Rapport" in alliance.in_language("de").attribution  # marked as ours
    assert [i.id for i in alliance.in_language("es").items] == [i.id for i in alliance.items]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"translations": {"de": {"title": "X"}}}, "item 'a' translations.de: is missing"),
        ({"translations": {"Deutsch": {}}}, "translations.Deutsch: is not a language code"),
        ({"translations": {"de": {"prompt": "X"}}}, "translations.de.prompt: unknown"),
        (
            {"items": [{**BASE["items"][0], "translations": {"de": {"labels": {"0": "N"}}}}]},
            "item 'a' translations.de prompt: is missing",
        ),
        (
            {
                "items": [
                    {
                        **BASE["items"][0],
                        "labels": {"0": "Never"},
                        "translations": {"de": {"prompt": "A?", "labels": {"4": "Immer"}}},
                    }
                ]
            },
            "must label the same points as the English labels ([0])",
        ),
    ],
)
def test_each_translation_problem_is_named(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(InstrumentError, match=r"^my\.toml: ") as info:
        parse_instrument({**BASE, **change}, "my.toml")
    assert expected in str(info.value)


def test_an_english_only_practice_file_still_loads() -> None:
    instrument = parse_instrument(BASE, "my.toml")
    assert instrument.languages == [] and instrument.in_language("de") is instrument
