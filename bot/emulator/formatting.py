"""Text formatting as Telegram applies it: HTML parse mode, entity offsets in UTF-16 code units.

Rules from https://core.telegram.org/bots/api#html-style: only the listed tags are allowed; an unknown or
unclosed tag makes the whole request fail with ``400 Bad Request: can't parse entities: ...``.
MarkdownV2/Markdown texts are accepted and displayed as sent (not parsed; documented weakness).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

#: HTML tag -> MessageEntity type (Bot API "Formatting options").
_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


class EntityParseError(ValueError):
    """The text can't be parsed in the given parse mode; ``str(exc)`` is Telegram's description tail."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (how Telegram measures entity offsets and lengths)."""
    return len(text.encode("utf-16-le")) // 2


class _Parser(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lines = source.split("\n")
        self.out: list[str] = []
        self.pos = 0  # UTF-16 offset in the plain text
        self.stack: list[tuple[str, int, dict[str, Any]]] = []
        self.entities: list[dict[str, Any]] = []

    def handle_data(self, data: str) -> None:
        self.out.append(data)
        self.pos += utf16_len(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {self._offset()}')
        extra: dict[str, Any] = {}
        attr = dict(attrs)
        if tag == "span" and attr.get("class") != "tg-spoiler":
            raise EntityParseError(f'Unsupported start tag "span" at byte offset {self._offset()}')
        if tag == "a":
            if not attr.get("href"):
                raise EntityParseError("Can't find the URL of the text link")
            extra["url"] = attr["href"]
        if tag == "code" and self.stack and self.stack[-1][0] == "pre":
            lang = (attr.get("class") or "")
            if lang.startswith("language-"):
                self.stack[-1][2]["language"] = lang[len("language-"):]
        self.stack.append((tag, self.pos, extra))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            open_tag = self.stack[-1][0] if self.stack else None
            if open_tag is None:
                raise EntityParseError(f'Unexpected end tag at byte offset {self._offset()}')
            raise EntityParseError(
                f'Can\'t find end tag corresponding to start tag "{open_tag}"')
        _, start, extra = self.stack.pop()
        if self.pos > start:
            entity = {"type": _TAGS[tag], "offset": start, "length": self.pos - start}
            entity.update(extra)
            self.entities.append(entity)

    def _offset(self) -> int:
        """Byte offset (UTF-8) of the current tag in the source text, as Telegram reports it."""
        line, col = self.getpos()
        before = "\n".join(self.lines[: line - 1]) + ("\n" if line > 1 else "") + self.lines[line - 1][:col]
        return len(before.encode("utf-8"))


_BARE_LT = re.compile(r"<(?![a-zA-Z/])")


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML into ``(plain_text, entities)``; raises :class:`EntityParseError`.

    A ``<`` that does not start a tag is an error, as on Telegram ("All <, > and & symbols that are not
    a part of a tag or an HTML entity must be replaced"): it catches user input echoed unescaped.
    """
    bare = _BARE_LT.search(text)
    if bare:
        offset = len(text[:bare.start()].encode("utf-8"))
        raise EntityParseError(f'Unsupported start tag "" at byte offset {offset}')
    parser = _Parser(text)
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{parser.stack[-1][0]}"')
    parser.entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.out), parser.entities


def render(text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None) -> tuple[str, list[dict[str, Any]]]:
    """What the user sees for ``text`` sent with ``parse_mode``/``entities``: ``(plain_text, entities)``.

    Like Telegram, white space at both ends is trimmed (entity offsets follow), so texts differing only
    there count as identical for "message is not modified". Raises :class:`EntityParseError` for
    malformed HTML or an unknown parse mode.
    """
    mode = (parse_mode or "").lower()
    if entities:
        plain, ents = text, [dict(e) for e in entities]
    elif mode == "html":
        plain, ents = parse_html(text)
    elif mode in ("", "markdown", "markdownv2"):
        plain, ents = text, []
    else:
        raise EntityParseError(f"Unsupported parse_mode {parse_mode!r}")
    return _trim(plain, ents)


def _trim(plain: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    stripped = plain.strip()
    if stripped == plain:
        return plain, entities
    lead = utf16_len(plain[: len(plain) - len(plain.lstrip())])
    end = utf16_len(stripped)
    out = []
    for e in entities:
        start = max(0, e["offset"] - lead)
        stop = min(end, e["offset"] + e["length"] - lead)
        if stop > start:
            out.append(dict(e, offset=start, length=stop - start))
    return stripped, out
