"""Values exchanged with the interview engine: inputs, prompts, steps and the serialisable Progress.

These types are the engine's whole public surface (see `questionnaires.engine` for the functions).
They are plain frozen dataclasses with no Telegram, SQL or clock in them, so the bot, storage and the
terminal pilot (`suara try`) all speak the same language.

Answer values are stored as *canonical strings*, the way an ODK submission holds them:

=================  ==========================================================
type               canonical value
=================  ==========================================================
integer            ``"42"``
decimal / range    ``"3.5"`` (``repr``-free: no exponent, no trailing ``.0`` for integers in range)
text               the text as typed (stripped of surrounding white space)
select_one         the choice ``name`` (may contain spaces: FC-3)
select_multiple    choice names separated by one space, in the order chosen
date               ``"2024-03-05"`` (ISO 8601; never shifted by time zones: FC-11)
time               ``"09:55:00"`` (local wall time as entered)
datetime           ``"2024-03-05T09:55:00+07:00"`` (ISO 8601 with offset)
geopoint           ``"lat lon altitude accuracy"`` (decimal degrees, metres)
image/audio/…      the media reference given by the caller (storage uses ``"sha256.ext"``)
acknowledge        ``"OK"``
calculate          the calculation's result as an XPath string
=================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from questionnaires.model import Question


# --------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class Text:
    """Free text typed by the user (also numbers, dates, ``lat lon`` for geopoint)."""

    value: str


@dataclass(frozen=True, slots=True)
class Select:
    """Choice names picked (one for select_one, any number for select_multiple, all in order for rank)."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Location:
    """A shared location: decimal degrees; ``altitude`` and ``accuracy`` in metres when known."""

    latitude: float
    longitude: float
    altitude: float | None = None
    accuracy: float | None = None


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A stored media file answering an image/audio/video/file question.

    ``ref`` is the storage reference (``"<sha256>.<ext>"``); ``kind`` is ``"image"``, ``"audio"``,
    ``"video"`` or ``"file"`` as detected from the bytes (the engine refuses a wrong kind).
    """

    ref: str
    kind: str


@dataclass(frozen=True, slots=True)
class Skip:
    """Leave the current question unanswered (refused when it is required)."""


@dataclass(frozen=True, slots=True)
class Back:
    """Go back to the previously asked question (its answer is offered again)."""


@dataclass(frozen=True, slots=True)
class Jump:
    """Go to the question with answer key ``key`` (from the review); after answering, return to review."""

    key: str


@dataclass(frozen=True, slots=True)
class AddRepeat:
    """Answer "add another?" with yes: start a new instance of the open-ended repeat being asked."""


@dataclass(frozen=True, slots=True)
class EndRepeat:
    """Answer "add another?" with no: leave the open-ended repeat."""


Input = Text | Select | Location | MediaRef | Skip | Back | Jump | AddRepeat | EndRepeat


# -------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True, slots=True)
class ChoiceOption:
    """A visible choice (after ``choice_filter``): its stored ``name`` and ``label`` in the language."""

    name: str
    label: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """What to show the user now.

    ``kind`` is ``"question"`` for a question, or ``"repeat"`` for an "add another <label>?" prompt of an
    open-ended repeat (answer with `AddRepeat` / `EndRepeat`). ``key`` is the answer key (for
    ``"repeat"``: the key of the repeat itself, e.g. ``"platforms"``). ``question`` is the model node
    (``None`` for ``"repeat"``). ``label``/``hint`` are in the interview language with ``${name}``
    references already filled in. ``current`` is the value already held (editing, default, or an earlier
    answer offered again). ``number`` is this prompt's 1-based position among the questions that are
    relevant now and ``total`` an estimate of how many will be asked ("7 of ~23").
    """

    kind: Literal["question", "repeat"]
    key: str
    question: Question | None
    label: str
    hint: str = ""
    choices: tuple[ChoiceOption, ...] = ()
    current: str | None = None
    required: bool = False
    number: int = 0
    total: int = 0
    can_skip: bool = True
    can_back: bool = True
    group_labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One line of the review: answer key, question label (language), value shown (choice labels)."""

    key: str
    label: str
    value: str
    question: Question


# ------------------------------------------------------------------------------------------- progress
@dataclass(frozen=True, slots=True)
class Progress:
    """The state of one interview: plain, serialisable, enough to resume exactly after a restart.

    ``answers`` maps answer key -> canonical value and holds only answers that are relevant now
    (plus calculate results): this is the submission's data. ``stash`` keeps answers that became
    irrelevant after an edit: they are offered again as ``Prompt.current`` if the question becomes
    relevant again while the interview is open (FC-18), and are never part of the submission (FC-17).
    ``position`` is the key being asked (or ``None`` when the end / review is reached). ``history`` is
    the stack of keys asked, for `Back`. ``repeat_counts`` maps a repeat's instance key (e.g.
    ``"platforms"``, ``"tree[2]/nest"``) to its number of instances. ``reviewing`` is True after a
    `Jump` from the review (answering returns to the review). ``language`` is a form language code.
    """

    language: str
    answers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    stash: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    position: str | None = None
    history: tuple[str, ...] = ()
    repeat_counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    reviewing: bool = False
    completed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (storage keeps it in Submission.progress)."""
        return {
            "language": self.language,
            "answers": dict(self.answers),
            "stash": dict(self.stash),
            "position": self.position,
            "history": list(self.history),
            "repeat_counts": dict(self.repeat_counts),
            "reviewing": self.reviewing,
            "completed": self.completed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Progress:
        """Inverse of `to_dict`. Raises KeyError/TypeError on a malformed dict."""
        return cls(
            language=str(data["language"]),
            answers=MappingProxyType({str(k): str(v) for k, v in data.get("answers", {}).items()}),
            stash=MappingProxyType({str(k): str(v) for k, v in data.get("stash", {}).items()}),
            position=data.get("position"),
            history=tuple(data.get("history", ())),
            repeat_counts=MappingProxyType({str(k): int(v) for k, v in data.get("repeat_counts", {}).items()}),
            reviewing=bool(data.get("reviewing", False)),
            completed=bool(data.get("completed", False)),
        )


# ---------------------------------------------------------------------------------------------- steps
@dataclass(frozen=True, slots=True)
class Asked:
    """The engine asks `prompt`. ``notes`` are note texts passed on the way (show them first)."""

    prompt: Prompt
    progress: Progress
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    """The input was refused; ``error`` is a message in the interview language. Progress is unchanged."""

    error: str
    prompt: Prompt
    progress: Progress


@dataclass(frozen=True, slots=True)
class Completed:
    """Every relevant question is answered (or skipped): show the review / submit. ``notes`` as in Asked."""

    progress: Progress
    notes: tuple[str, ...] = ()


Step = Asked | Rejected | Completed
