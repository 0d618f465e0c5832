"""Text rules of the Bot API that the fake reproduces: HTML parse mode, trimming, commands.

Telegram stores a message's *visible* text plus entities (offsets in UTF-16 code units), not
the markup the bot sent, and it rejects malformed HTML with "can't parse entities: ...". The
parser follows the behaviour of the official server (tdlib/telegram-bot-api): a tag name runs
to the first space or ">", only a fixed set of tags is allowed, and "&lt;", "&gt;", "&amp;",
"&quot;" and numeric references are the only entities decoded (any other "&" stays literal).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

PARSE_ERROR_PREFIX = "Bad Request: can't parse entities: "

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_CHAR_REF = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_ATTR = re.compile(r"""([a-zA-Z][\w-]*)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""")
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@/])")


class EntityParseError(ValueError):
    """Malformed markup; ``str(exc)`` is the complete Telegram description."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the output text
    attrs: dict[str, str] = field(default_factory=dict)


def _entity(tag: _OpenTag, end: int) -> dict[str, Any]:
    length = end - tag.start
    entity: dict[str, Any] = {"type": _SIMPLE_TAGS[tag.name], "offset": tag.start, "length": length}
    if tag.name == "a":
        entity["url"] = tag.attrs.get("href", "")
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.attrs.get("emoji-id", "")
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "pre" and tag.attrs.get("language"):
        entity["language"] = tag.attrs["language"]
    return entity


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Return (visible text, entities) for ``parse_mode=HTML`` or raise EntityParseError."""
    out: list[str] = []
    pos16 = 0
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "&" and (ref := _CHAR_REF.match(text, i)):
            decoded = html.unescape(ref.group(0))
            out.append(decoded)
            pos16 += utf16_len(decoded)
            i = ref.end()
            continue
        if char != "<":
            out.append(char)
            pos16 += utf16_len(char)
            i += 1
            continue
        at = f"at byte offset {len(text[:i].encode())}"
        close = text.find(">", i)
        if i + 1 < n and text[i + 1] == "/":
            if close < 0:
                raise EntityParseError(f"{PARSE_ERROR_PREFIX}Unclosed end tag {at}")
            name = text[i + 2 : close].strip().lower()
            if not stack:
                raise EntityParseError(f"{PARSE_ERROR_PREFIX}Unexpected end tag {at}")
            tag = stack.pop()
            if name and name != tag.name:
                raise EntityParseError(
                    f'{PARSE_ERROR_PREFIX}Unmatched end tag {at}, expected "</{tag.name}>", '
                    f'found "</{name}>"'
                )
            if tag.name == "code" and stack and stack[-1].name == "pre":
                # <pre><code class="language-x">: one pre entity carrying the language.
                language = tag.attrs.get("class", "").removeprefix("language-")
                stack[-1].attrs["language"] = language
            elif pos16 > tag.start:
                entities.append(_entity(tag, pos16))
            i = close + 1
            continue
        j = i + 1
        while j < n and not text[j].isspace() and text[j] != ">":
            j += 1
        if j >= n or close < 0:
            raise EntityParseError(f"{PARSE_ERROR_PREFIX}Unclosed start tag {at}")
        name = text[i + 1 : j].lower()
        if name not in _SIMPLE_TAGS:
            raise EntityParseError(f'{PARSE_ERROR_PREFIX}Unsupported start tag "{name}" {at}')
        attrs = {k.lower(): v.strip("'\"") for k, v in _ATTR.findall(text[j:close])}
        if "expandable" in text[j:close].split():
            attrs["expandable"] = ""
        stack.append(_OpenTag(name, pos16, attrs))
        i = close + 1
    if stack:
        raise EntityParseError(
            f'{PARSE_ERROR_PREFIX}Can\'t find end tag corresponding to start tag "{stack[-1].name}"'
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading/trailing whitespace like Telegram does, shifting entities to match."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(stripped)
    kept: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        stop = min(entity["offset"] + entity["length"] - shift, end)
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    return stripped, kept


def command_entities(text: str) -> list[dict[str, Any]]:
    """bot_command entities as Telegram attaches them to a user's message."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group(0)),
        }
        for m in _COMMAND.finditer(text)
    ]
