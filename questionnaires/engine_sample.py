"""Generated answers: drive an interview to its end with plausible valid inputs.

Used by the tests (every shared form must complete with generated answers), the benchmark and demos.
`candidates(prompt, rng)` lists inputs worth trying for a prompt, most plausible first; `run(form, …)`
answers prompt after prompt, trying the next candidate when one is rejected (a constraint may refuse
it), and falls back to `Skip` for optional questions.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime

from questionnaires import engine
from questionnaires.interview import (
    AddRepeat,
    Asked,
    Completed,
    EndRepeat,
    Input,
    Location,
    MediaRef,
    Progress,
    Prompt,
    Rejected,
    Select,
    Skip,
    Text,
)
from questionnaires.model import Form

_MEDIA_REF = {
    "image": ("0" * 64 + ".jpg", "image"),
    "audio": ("1" * 64 + ".ogg", "audio"),
    "video": ("2" * 64 + ".mp4", "video"),
    "file": ("3" * 64 + ".pdf", "file"),
}


_REGEX_IN_CONSTRAINT = re.compile(r"regex\(\s*\.\s*,\s*'([^']*)'\s*\)")


def regex_example(pattern: str, rng: random.Random) -> str | None:
    """A string matching ``pattern`` (simple patterns: literals, classes, repeats, groups, ``|``).

    Returns None for constructs it does not handle (look-arounds, back references).
    """
    try:
        from re import _parser as sre  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse as sre  # type: ignore[no-redef]
    try:
        tree = sre.parse(pattern)
    except Exception:
        return None

    def gen(items: object) -> str:
        out: list[str] = []
        for op, arg in items:  # type: ignore[attr-defined]
            name = str(op)
            if name == "LITERAL":
                out.append(chr(arg))
            elif name == "ANY":
                out.append("a")
            elif name == "IN":
                chars: list[str] = []
                negate = False
                for sub_op, sub_arg in arg:
                    sname = str(sub_op)
                    if sname == "NEGATE":
                        negate = True
                    elif sname == "LITERAL":
                        chars.append(chr(sub_arg))
                    elif sname == "RANGE":
                        chars.extend(chr(c) for c in range(sub_arg[0], min(sub_arg[1], sub_arg[0] + 25) + 1))
                    elif sname == "CATEGORY":
                        chars.extend("0" if "DIGIT" in str(sub_arg) and "NOT" not in str(sub_arg) else "a")
                if negate:
                    chars = [c for c in "aZ0_" if c not in chars][:1]
                if not chars:
                    raise ValueError(pattern)
                out.append(rng.choice(chars))
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                low, high, sub = arg
                high = low + 2 if str(high) == "MAXREPEAT" or high > low + 2 else high
                out.extend(gen(sub) for _ in range(rng.randint(low, high)))
            elif name == "SUBPATTERN":
                out.append(gen(arg[-1]))
            elif name == "BRANCH":
                out.append(gen(rng.choice(arg[1])))
            elif name in ("AT",):
                continue
            elif name == "CATEGORY":
                out.append("0" if "DIGIT" in str(arg) and "NOT" not in str(arg) else "a")
            else:
                raise ValueError(name)
        return "".join(out)

    for _ in range(20):
        try:
            text = gen(tree)
        except (ValueError, TypeError):
            return None
        if re.search(pattern, text):
            return text
    return None


def candidates(prompt: Prompt, rng: random.Random, now: datetime) -> list[Input]:
    """Inputs that may answer ``prompt`` (valid for its type), in the order to try them."""
    if prompt.kind == "repeat":
        return [AddRepeat() if rng.random() < 0.65 else EndRepeat(), EndRepeat()]
    q = prompt.question
    assert q is not None
    out: list[Input] = []
    if prompt.current:
        cur = prompt.current
        out.append(Select(tuple(cur.split(" "))) if q.is_multiple else
                   Select((cur,)) if q.is_select else Text(cur))
    t = q.type
    names = [c.name for c in prompt.choices]
    if q.is_select:
        if t == "rank":
            order = names[:]
            rng.shuffle(order)
            out.append(Select(tuple(order)))
        elif q.is_multiple:
            for _ in range(4):
                if names:
                    k = rng.randint(1, min(3, len(names)))
                    out.append(Select(tuple(rng.sample(names, k))))
            out.extend(Select((n,)) for n in names)
        else:
            # The first choice is often the one that opens the rest of the form (consent: yes).
            rest = names[1:]
            rng.shuffle(rest)
            order = names[:1] + rest if rng.random() < 0.7 else rest + names[:1]
            out.extend(Select((n,)) for n in order)
        if q.or_other:
            out.append(Select(("other",)))
    elif q.is_media:
        ref, kind = _MEDIA_REF[t]
        out.append(MediaRef(ref=ref, kind=kind))
    elif t == "acknowledge":
        out.append(Select(("OK",)))
    elif t == "geopoint":
        out.append(Location(latitude=-1.61 + rng.random() / 10, longitude=103.61, accuracy=5.0))
    elif t == "integer":
        out.extend(Text(str(v)) for v in (rng.randint(1, 5), rng.randint(18, 70), 0, 1, 2, 3, 10, 100,
                                          1000, 2000, 2024, -1))
    elif t == "decimal":
        out.extend(Text(v) for v in ("1.5", "2", "0.5", "25", "100.25", "0", "-1"))
    elif t == "range":
        start = float(q.parameters.get("start", "1") or 1)
        end = float(q.parameters.get("end", "10") or 10)
        step = float(q.parameters.get("step", "1") or 1)
        out.extend(Text(repr(v).removesuffix(".0")) for v in (start, end, start + step))
    elif t == "date":
        out.extend(Text(v) for v in (now.date().isoformat(), "2000-01-01", "05/03/2024", "1980-06-15"))
    elif t == "time":
        out.extend(Text(v) for v in ("09:30", "14:00", "00:00"))
    elif t == "datetime":
        out.extend(Text(v) for v in (now.replace(microsecond=0).isoformat(), "2024-03-05 09:30"))
    else:
        m = _REGEX_IN_CONSTRAINT.search(q.bind.constraint or "")
        example = regex_example(m.group(1), rng) if m else None
        if example is not None:
            out.append(Text(example))
        out.extend(Text(v) for v in ("Jambi", "test answer", "1", "yes", "a"))
    return out


@dataclass(frozen=True, slots=True)
class Run:
    """The outcome of `run`: the final step, the inputs given (accepted ones) and the step count."""

    final: Asked | Rejected | Completed
    accepted: tuple[Input, ...]
    steps: int

    @property
    def completed(self) -> bool:
        """True when the interview reached `Completed`."""
        return isinstance(self.final, Completed)

    @property
    def progress(self) -> Progress:
        """The progress at the end."""
        return self.final.progress


def run(form: Form, *, now: datetime, seed: int = 0, language: str | None = None,
        max_steps: int = 5000, max_instances: int = 3) -> Run:
    """Answer ``form`` with generated valid inputs until `Completed` (or ``max_steps`` inputs).

    Open-ended repeats get at most ``max_instances`` instances. Deterministic for a given ``seed``.
    """
    rng = random.Random(seed)
    result = engine.start(form, language, now=now)
    accepted: list[Input] = []
    steps = 0
    while not isinstance(result, Completed) and steps < max_steps:
        prompt = result.prompt
        options = candidates(prompt, rng, now)
        if prompt.kind == "repeat" and result.progress.repeat_counts.get(prompt.key, 0) >= max_instances:
            options = [EndRepeat()]
        if prompt.can_skip:
            options.append(Skip())
        nxt = None
        for inp in options:
            steps += 1
            nxt = engine.step(form, result.progress, inp, now=now)
            if not isinstance(nxt, Rejected):
                accepted.append(inp)
                break
        if nxt is None or isinstance(nxt, Rejected):
            return Run(final=nxt or result, accepted=tuple(accepted), steps=steps)
        result = nxt
    return Run(final=result, accepted=tuple(accepted), steps=steps)
