"""Automatic quality flags of a submission: pure rules over plain data (no database, no Telegram).

Flags (issue 6, "Quality review"), each a short stable code that goes to the export's ``_flags`` column:

``too_fast``
    The interview took less than the form's minimum (settings sheet column ``min_duration`` in seconds,
    when the form has one) or less than `QualityRules.seconds_per_question` per question answered.
``straight_lining``
    A likert block — at least `QualityRules.likert_block_min` consecutive select_one questions with the
    ``likert`` appearance and the same choice list, in one group — all answered with the same choice.
``missing_media``
    A media question (image/audio/video/file) was answered with a file name but no file is stored for it,
    or a required media question with no relevance condition (on itself or its groups) has no answer.
``far_location``
    The interview's location is more than `QualityRules.far_km` from the median location of the same
    enumerator's other interviews that day (needs `QualityRules.far_min_others` of them).
``many_changes``
    Answers were changed (re-answered with a different value) at least `QualityRules.many_changes`
    times in total.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from questionnaires.model import Form, Group, Node, Question, Repeat

FLAGS: tuple[str, ...] = ("too_fast", "straight_lining", "missing_media", "far_location", "many_changes")


@dataclass(frozen=True, slots=True)
class QualityRules:
    """Thresholds. ``seconds_per_question`` (s), ``likert_block_min`` (questions), ``far_km`` (km),
    ``far_min_others`` (interviews), ``many_changes`` (changed answers)."""

    seconds_per_question: float = 3.0
    likert_block_min: int = 3
    far_km: float = 50.0
    far_min_others: int = 2
    many_changes: int = 5


@dataclass(frozen=True, slots=True)
class SubmissionFacts:
    """What the rules look at for one submission.

    ``answers``: answer key -> canonical value (relevant answers only, as submitted). ``changed``: total of
    the Answer rows' ``changed_count``. ``media_keys``: answer keys with a stored file. ``location``:
    (lat, lon) in degrees (the enumerator's paradata location, else the first geopoint answer) or None.
    ``others_today``: locations of the same enumerator's other interviews that day (WIB).
    ``started_at``/``submitted_at``: aware datetimes.
    """

    answers: Mapping[str, str]
    started_at: datetime
    submitted_at: datetime | None
    changed: int = 0
    media_keys: frozenset[str] = frozenset()
    location: tuple[float, float] | None = None
    others_today: Sequence[tuple[float, float]] = field(default_factory=tuple)


def _base(key: str) -> str:
    """Answer key without repeat indices: ``"hh/m[2]/age"`` -> ``"hh/m/age"``."""
    out = []
    for part in key.split("/"):
        out.append(part.split("[", 1)[0])
    return "/".join(out)


def asked_count(form: Form, answers: Mapping[str, str]) -> int:
    """How many answers are to questions a person answers (calculate/hidden/note/metadata left out)."""
    kinds: dict[str, str] = {q.path: q.type for q in form.questions()}
    silent = {"calculate", "hidden", "note", "start", "end", "today", "deviceid", "username", "audit"}
    return sum(1 for k in answers if kinds.get(_base(k), "calculate") not in silent)


def too_fast(form: Form, facts: SubmissionFacts, rules: QualityRules) -> bool:
    """The `too_fast` rule (module doc). False while not submitted."""
    if facts.submitted_at is None:
        return False
    took = (facts.submitted_at - facts.started_at).total_seconds()
    minimum = rules.seconds_per_question * asked_count(form, facts.answers)
    raw = form.settings.get("min_duration", "") if form.settings else ""
    try:
        minimum = max(minimum, float(raw)) if raw else minimum
    except ValueError:
        pass
    return took < minimum


def likert_blocks(form: Form, min_len: int) -> list[list[Question]]:
    """Runs of at least ``min_len`` consecutive likert select_one questions sharing a choice list, within one
    group (a note between them does not break a run; any other question does)."""
    blocks: list[list[Question]] = []

    def visit(children: Sequence[Node]) -> None:
        run: list[Question] = []
        for node in children:
            if isinstance(node, (Group, Repeat)):
                if len(run) >= min_len:
                    blocks.append(run)
                run = []
                visit(node.children)
                continue
            q = node
            if q.type == "note":
                continue
            if q.type == "select_one" and "likert" in q.appearance.split() and (
                    not run or run[-1].list_name == q.list_name):
                run.append(q)
                continue
            if len(run) >= min_len:
                blocks.append(run)
            run = [q] if q.type == "select_one" and "likert" in q.appearance.split() else []
        if len(run) >= min_len:
            blocks.append(run)

    visit(form.children)
    return blocks


def straight_lining(form: Form, facts: SubmissionFacts, rules: QualityRules) -> bool:
    """The `straight_lining` rule (module doc): some likert block answered all alike (every question of
    the block answered; blocks inside repeats are checked per instance)."""
    for block in likert_blocks(form, rules.likert_block_min):
        by_instance: dict[str, list[str]] = {}
        paths = {q.path for q in block}
        for key, value in facts.answers.items():
            base = _base(key)
            if base in paths:
                prefix = key.rsplit("/", 1)[0] if "/" in key else ""
                by_instance.setdefault(prefix, []).append(value)
        for values in by_instance.values():
            if len(values) == len(block) and len(set(values)) == 1:
                return True
    return False


def _unconditional(form: Form, q: Question) -> bool:
    """No relevance on the question or any of its groups, and not inside a repeat."""
    if q.bind.relevant:
        return False
    parts = q.path.split("/")[:-1]
    for i in range(len(parts)):
        node = form.node("/".join(parts[: i + 1]))
        if isinstance(node, Repeat) or getattr(node, "bind", None) is not None and node.bind.relevant:
            return False
    return True


def missing_media(form: Form, facts: SubmissionFacts) -> bool:
    """The `missing_media` rule (module doc)."""
    media_paths = {q.path: q for q in form.questions() if q.is_media}
    for key, value in facts.answers.items():
        if _base(key) in media_paths and value and key not in facts.media_keys:
            return True
    if facts.submitted_at is None:
        return False
    for path, q in media_paths.items():
        required = (q.bind.required or "").strip().lower() in ("true()", "yes", "true", "1")
        if required and _unconditional(form, q) and path not in facts.answers:
            return True
    return False


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km between two (lat, lon) points in degrees (haversine, R = 6371 km)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def far_location(facts: SubmissionFacts, rules: QualityRules) -> bool:
    """The `far_location` rule (module doc)."""
    if facts.location is None or len(facts.others_today) < rules.far_min_others:
        return False
    centre = (statistics.median(p[0] for p in facts.others_today), statistics.median(p[1] for p in facts.others_today))
    return distance_km(facts.location, centre) > rules.far_km


def flags_for(form: Form, facts: SubmissionFacts, rules: QualityRules | None = None) -> tuple[str, ...]:
    """Every flag that applies, in `FLAGS` order (empty tuple: nothing to look at)."""
    rules = rules or QualityRules()
    out: list[str] = []
    if too_fast(form, facts, rules):
        out.append("too_fast")
    if straight_lining(form, facts, rules):
        out.append("straight_lining")
    if missing_media(form, facts):
        out.append("missing_media")
    if far_location(facts, rules):
        out.append("far_location")
    if facts.changed >= rules.many_changes:
        out.append("many_changes")
    return tuple(out)


def parse_geopoint(value: str) -> tuple[float, float] | None:
    """``"lat lon [alt [acc]]"`` (the canonical geopoint string) -> (lat, lon), None when malformed."""
    parts = value.split()
    if len(parts) < 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon
