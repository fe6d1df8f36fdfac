"""The form model: frozen dataclasses that describe a questionnaire, independent of how it was written.

This module is the contract between the XLSForm reader (`questionnaires.xlsform`), the interview engine
(`questionnaires.engine`), storage and exports. It holds no parsing and no evaluation.

Paths and answer keys
---------------------
* A node's ``path`` is its position in the form without repeat indices, names joined by ``/`` and
  without the form's root: ``"consent"``, ``"household/members/age"``.
* An *answer key* is a path with a 1-based instance index after every repeat segment
  (XPath style): ``"household/members[2]/age"``. Outside repeats the key equals the path.
  `key_to_path` strips the indices; `split_key` returns the segments with their indices.

Languages
---------
Labels, hints and messages are mappings ``language code -> text``. The code is the one in the XLSForm
column header (``label::Indonesian (id)`` -> ``"id"``); a header without a code uses a known
language name's ISO 639-1 code (``English`` -> ``"en"``) or else the name itself; a plain ``label``
column uses ``"default"``. `pick` chooses the text for a language with fallbacks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: The language key used for plain ``label`` / ``hint`` columns without a ``::language`` suffix.
DEFAULT_LANG = "default"

#: Question types the engine runs (after alias normalisation by the reader, e.g. ``int`` -> ``integer``).
QUESTION_TYPES: frozenset[str] = frozenset(
    {
        "text", "integer", "decimal", "range",
        "select_one", "select_multiple", "rank",
        "select_one_from_file", "select_multiple_from_file",
        "note", "acknowledge",
        "date", "time", "datetime",
        "geopoint",
        "image", "audio", "video", "file",
        "calculate", "hidden",
    }
)

#: Types whose answer is a file reference.
MEDIA_TYPES: frozenset[str] = frozenset({"image", "audio", "video", "file"})
#: Types with a choice list.
SELECT_TYPES: frozenset[str] = frozenset(
    {"select_one", "select_multiple", "rank", "select_one_from_file", "select_multiple_from_file"}
)
#: Types that never prompt the user.
SILENT_TYPES: frozenset[str] = frozenset({"calculate", "hidden"})
#: XLSForm metadata types: recorded as paradata by the caller, never asked.
METADATA_TYPES: frozenset[str] = frozenset(
    {"start", "end", "today", "deviceid", "username", "audit", "subscriberid", "simserial",
     "phonenumber", "email", "start-geopoint", "background-audio"}
)

_EMPTY: Mapping[str, str] = MappingProxyType({})


def frozen_map(d: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """Return a read-only copy of ``d`` (an empty read-only mapping for ``None``)."""
    return MappingProxyType(dict(d)) if d else _EMPTY


def pick(texts: Mapping[str, str], lang: str | None, default_lang: str | None = None) -> str:
    """Text of ``texts`` in ``lang``; falls back to ``default_lang``, then ``"default"``, then any.

    Returns ``""`` when ``texts`` is empty.
    """
    for code in (lang, default_lang, DEFAULT_LANG):
        if code is not None and texts.get(code):
            return texts[code]
    for text in texts.values():
        if text:
            return text
    return ""


_KEY_SEGMENT = re.compile(r"^(?P<name>[^\[\]/]+)(?:\[(?P<index>\d+)\])?$")


def split_key(key: str) -> list[tuple[str, int | None]]:
    """Split an answer key into ``[(name, index or None), ...]``.

    ``"hh/members[2]/age"`` -> ``[("hh", None), ("members", 2), ("age", None)]``.
    Raises ValueError on a malformed key.
    """
    out: list[tuple[str, int | None]] = []
    for seg in key.split("/"):
        m = _KEY_SEGMENT.match(seg)
        if not m:
            raise ValueError(f"malformed answer key: {key!r}")
        idx = m.group("index")
        out.append((m.group("name"), int(idx) if idx is not None else None))
    return out


def key_to_path(key: str) -> str:
    """Strip repeat indices from an answer key: ``"hh/members[2]/age"`` -> ``"hh/members/age"``."""
    return re.sub(r"\[\d+\]", "", key)


@dataclass(frozen=True, slots=True)
class Language:
    """A form language: ``code`` is the key used in label mappings, ``name`` as written in the form."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Choice:
    """One row of the choices sheet.

    ``name`` is the stored value (always a string, ``"01"`` keeps its zero); ``labels`` per language;
    ``media`` maps e.g. ``"image"`` -> file name per the ``media::image`` column (language-free);
    ``extra`` holds the other columns (used by ``choice_filter``, e.g. ``{"regency": "kerinci"}``).
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    media: Mapping[str, str] = field(default_factory=frozen_map)
    extra: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True)
class Bind:
    """The XLSForm columns that control a node, as expression *source text* (parsed by the engine).

    ``required``/``read_only`` are ``None`` when absent, otherwise an expression (``yes`` in the sheet
    becomes ``"true()"``). Messages are per language. Source: XLSForm spec, survey sheet columns.
    """

    required: str | None = None
    required_message: Mapping[str, str] = field(default_factory=frozen_map)
    relevant: str | None = None
    constraint: str | None = None
    constraint_message: Mapping[str, str] = field(default_factory=frozen_map)
    calculation: str | None = None
    choice_filter: str | None = None
    read_only: str | None = None
    default: str | None = None
    trigger: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Question:
    """A survey row that holds one value.

    ``type`` is one of `QUESTION_TYPES`. ``choices`` is the resolved choice list (in sheet order) for
    select types, else ``()``; ``list_name`` names it. ``or_other`` is True for ``select_* x or_other``
    (the engine accepts the extra name ``"other"``). ``parameters`` holds the parsed ``parameters``
    column (e.g. ``{"start": "1", "end": "10", "step": "1"}`` for range, ``{"max-pixels": "1024"}``).
    ``row`` is the 1-based row in the survey sheet, for error messages.
    """

    name: str
    path: str
    type: str
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    hints: Mapping[str, str] = field(default_factory=frozen_map)
    bind: Bind = field(default_factory=Bind)
    appearance: str = ""
    parameters: Mapping[str, str] = field(default_factory=frozen_map)
    list_name: str | None = None
    choices: tuple[Choice, ...] = ()
    or_other: bool = False
    media: Mapping[str, str] = field(default_factory=frozen_map)
    row: int = 0

    @property
    def is_select(self) -> bool:
        """True for types answered from a choice list."""
        return self.type in SELECT_TYPES

    @property
    def is_media(self) -> bool:
        """True for image/audio/video/file."""
        return self.type in MEDIA_TYPES

    @property
    def is_multiple(self) -> bool:
        """True when several choices may be chosen (stored space-separated)."""
        return self.type in ("select_multiple", "select_multiple_from_file", "rank")


@dataclass(frozen=True, slots=True, eq=False)
class Group:
    """``begin group`` … ``end group``: a section whose ``relevant`` applies to every child."""

    name: str
    path: str
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    bind: Bind = field(default_factory=Bind)
    appearance: str = ""
    children: tuple[Node, ...] = ()
    row: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Repeat:
    """``begin repeat`` … ``end repeat``: children asked once per instance.

    ``repeat_count`` is an expression (source text) fixing the number of instances, or ``None`` for an
    open-ended repeat (the engine asks "add another?").
    """

    name: str
    path: str
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    bind: Bind = field(default_factory=Bind)
    appearance: str = ""
    children: tuple[Node, ...] = ()
    repeat_count: str | None = None
    row: int = 0


Node = Question | Group | Repeat


@dataclass(frozen=True, slots=True, eq=False)
class Form:
    """A parsed questionnaire (one version of it).

    ``form_id`` and ``version`` come from the settings sheet (``form_id`` defaults to the file stem,
    ``version`` to ``""``). ``languages`` are in column order; ``default_language`` is a code from
    ``languages`` (settings ``default_language``, else the first). ``children`` is the survey tree.
    ``metadata`` lists the metadata types present (``start``, ``end``, ``audit``…), recorded as paradata.
    ``settings`` keeps every settings-sheet column as text. ``choice_lists`` maps list name -> choices.
    Instances compare and hash by identity (the engine caches compiled expressions per form).
    """

    form_id: str
    version: str
    title: str
    languages: tuple[Language, ...]
    default_language: str
    children: tuple[Node, ...]
    metadata: tuple[str, ...] = ()
    settings: Mapping[str, str] = field(default_factory=frozen_map)
    choice_lists: Mapping[str, tuple[Choice, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def walk(self) -> Iterator[Node]:
        """Every node (groups, repeats, questions) in form order, depth first."""

        def rec(nodes: tuple[Node, ...]) -> Iterator[Node]:
            for n in nodes:
                yield n
                if isinstance(n, (Group, Repeat)):
                    yield from rec(n.children)

        return rec(self.children)

    def questions(self) -> list[Question]:
        """All questions (including calculate/hidden/note) in form order."""
        return [n for n in self.walk() if isinstance(n, Question)]

    def node(self, path: str) -> Node:
        """The node at ``path`` (repeat indices allowed and ignored). Raises KeyError if absent."""
        target = key_to_path(path)
        for n in self.walk():
            if n.path == target:
                return n
        raise KeyError(path)

    def by_name(self, name: str) -> Node:
        """The node whose ``name`` is ``name`` (as in ``${name}``). Raises KeyError if absent."""
        for n in self.walk():
            if n.name == name:
                return n
        raise KeyError(name)

    def language_codes(self) -> tuple[str, ...]:
        """The codes of `languages`, in order."""
        return tuple(lang.code for lang in self.languages)
