"""Text formatting as Telegram applies it: HTML parse mode, entity offsets in UTF-16 code units.

Rules from https://core.telegram.org/bots/api#html-style: only the listed tags are allowed; an unknown or
unclosed tag makes the whole request fail with ``400 Bad Request: can't parse entities: ...``.
MarkdownV2 (https://core.telegram.org/bots/api#markdownv2-style) and legacy Markdown are parsed too,
including Telegram's best-known failure: a reserved character (``.``, ``-``, ``!``...) not escaped.
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
    elif mode == "markdownv2":
        plain, ents = _Markdown(text, v2=True).parse()
    elif mode == "markdown":
        plain, ents = _Markdown(text, v2=False).parse()
    elif mode == "":
        plain, ents = text, []
    else:
        raise EntityParseError(f"Unsupported parse_mode {parse_mode!r}")
    return _trim(plain, ents)


_RESERVED_V2 = set("_*[]()~`>#+-=|{}.!")
_MARKERS_V2 = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}
_MARKERS_V1 = {"*": "bold", "_": "italic"}


class _Markdown:
    """A MarkdownV2 / legacy Markdown parser producing ``(plain_text, entities)`` like Telegram."""

    def __init__(self, text: str, *, v2: bool) -> None:
        self.src = text
        self.v2 = v2
        self.i = 0
        self.out: list[str] = []
        self.pos = 0  # UTF-16 offset in the output
        self.open: dict[str, tuple[int, int]] = {}  # marker -> (output offset, source index)
        self.link: tuple[int, int] | None = None
        self.entities: list[dict[str, Any]] = []

    def _byte(self, index: int) -> int:
        return len(self.src[:index].encode("utf-8"))

    def _emit(self, chunk: str) -> None:
        self.out.append(chunk)
        self.pos += utf16_len(chunk)

    def _toggle(self, marker: str, kind: str) -> None:
        if marker in self.open:
            start, _ = self.open.pop(marker)
            if self.pos > start:
                self.entities.append({"type": kind, "offset": start, "length": self.pos - start})
        else:
            self.open[marker] = (self.pos, self.i)

    def _until(self, end: str, start_index: int, what: str) -> str:
        """Raw text up to the closing ``end`` (backslash escapes ``\\`` and the end char in V2)."""
        buf: list[str] = []
        src = self.src
        while self.i < len(src):
            if src.startswith(end, self.i):
                self.i += len(end)
                return "".join(buf)
            ch = src[self.i]
            if self.v2 and ch == "\\" and self.i + 1 < len(src):
                buf.append(src[self.i + 1])
                self.i += 2
                continue
            buf.append(ch)
            self.i += 1
        raise EntityParseError(f"Can't find end of {what} entity at byte offset {self._byte(start_index)}")

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        src = self.src
        markers = _MARKERS_V2 if self.v2 else _MARKERS_V1
        while self.i < len(src):
            ch = src[self.i]
            at_line_start = self.i == 0 or src[self.i - 1] == "\n"
            if ch == "\\" and self.v2:
                if self.i + 1 >= len(src) or not (1 <= ord(src[self.i + 1]) <= 126):
                    raise EntityParseError("Character '\\' is reserved and must be escaped with the preceding "
                                           "'\\'")
                self._emit(src[self.i + 1])
                self.i += 2
            elif src.startswith("```", self.i):
                start = self.i
                self.i += 3
                body = self._until("```", start, "Pre")
                lang, sep, rest = body.partition("\n")
                code = rest if sep and lang and " " not in lang else body
                begin = self.pos
                self._emit(code)
                entity: dict[str, Any] = {"type": "pre", "offset": begin, "length": self.pos - begin}
                if code is rest:
                    entity["language"] = lang
                self.entities.append(entity)
            elif ch == "`":
                start = self.i
                self.i += 1
                begin = self.pos
                self._emit(self._until("`", start, "Code"))
                self.entities.append({"type": "code", "offset": begin, "length": self.pos - begin})
            elif self.v2 and src.startswith("__", self.i):
                self._toggle("__", "underline")
                self.i += 2
            elif self.v2 and src.startswith("||", self.i):
                self._toggle("||", "spoiler")
                self.i += 2
            elif ch in markers:
                self._toggle(ch, markers[ch])
                self.i += 1
            elif ch == "[" and self.link is None:
                self.link = (self.pos, self.i)
                self.i += 1
            elif ch == "]" and self.link is not None:
                start, src_start = self.link
                self.link = None
                if not src.startswith("(", self.i + 1):
                    if self.v2:
                        raise EntityParseError("Character ']' is reserved and must be escaped with the "
                                               "preceding '\\'")
                    self.i += 1
                    continue
                self.i += 2
                url = self._until(")", src_start, "TextUrl")
                if self.pos > start:
                    self.entities.append({"type": "text_link", "offset": start, "length": self.pos - start,
                                          "url": url})
            elif self.v2 and ch == ">" and at_line_start:
                end = src.find("\n", self.i)
                end = len(src) if end < 0 else end
                self.i += 1
                begin = self.pos
                inner = _Markdown(src[self.i:end], v2=True).parse()
                base = self.pos
                self._emit(inner[0])
                self.entities.extend(dict(e, offset=e["offset"] + base) for e in inner[1])
                self.entities.append({"type": "blockquote", "offset": begin, "length": self.pos - begin})
                self.i = end
            elif self.v2 and ch in _RESERVED_V2:
                raise EntityParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")
            else:
                self._emit(ch)
                self.i += 1
        if self.link is not None:
            raise EntityParseError(f"Can't find end of TextUrl entity at byte offset {self._byte(self.link[1])}")
        if self.open:
            marker, (_, src_index) = min(self.open.items(), key=lambda kv: kv[1][1])
            name = {"bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
                    "spoiler": "Spoiler"}[markers.get(marker, _MARKERS_V2.get(marker, "bold"))]
            raise EntityParseError(f"Can't find end of {name} entity at byte offset {self._byte(src_index)}")
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities


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
