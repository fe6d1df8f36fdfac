"""Benchmark of the expression language: parses per second and evaluations per second.

Run: ``python benchmarks/expressions_bench.py [--seconds 0.5]``. Prints one line per expression and
totals. The expressions are typical relevant / constraint / calculation / choice_filter columns of the
study's forms. Parsing is measured without the parse cache (`Expression` is built directly); evaluation
uses a dict-backed context as cheap as the engine's. Figures depend on the machine: compare runs on the
same machine only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from questionnaires.expressions import Expression  # noqa: E402

WIB = dt.timezone(dt.timedelta(hours=7))

EXPRESSIONS = [
    ("relevant", "${consent} = 'yes'"),
    ("relevant", "${age} >= 17 and ${voted} = 'yes'"),
    ("relevant", "selected(${platforms}, 'other')"),
    ("relevant", "count-selected(${platforms}) > 1"),
    ("relevant", "${district} != ''"),
    ("constraint", ". >= 17 and . <= 120"),
    ("constraint", "regex(., '^(\\+62|0)8[0-9]{8,11}$')"),
    ("constraint", "string-length(.) <= 500"),
    ("calculation", "int((today() - ${dob}) div 365.25)"),
    ("calculation", "if(${hh_size} = '', 0, ${hh_size} * 2 + 1)"),
    ("calculation", "concat(${first_name}, ' ', ${last_name})"),
    ("calculation", "sum(${spend}) div count(${spend})"),
    ("choice_filter", "selected(${platforms}, name)"),
    ("choice_filter", "cf = ${regency} or cf = 'all'"),
]


class BenchContext:
    """A dict-backed Context: answers by name (list = one value per repeat instance)."""

    __slots__ = ("answers", "value", "choice")

    def __init__(self) -> None:
        self.answers: dict[str, tuple[str, ...]] = {
            "consent": ("yes",), "age": ("34",), "voted": ("yes",), "platforms": ("instagram tiktok x",),
            "district": ("Telanaipura",), "dob": ("1990-06-01",), "hh_size": ("4",),
            "first_name": ("Sari",), "last_name": ("Wulandari",), "spend": ("10", "25.5", "7"),
            "regency": ("kerinci",),
        }
        self.value = "081234567890"
        self.choice = {"name": "tiktok", "cf": "kerinci"}

    def resolve(self, name: str) -> tuple[str, ...]:
        return self.answers.get(name, ("",))

    def current(self) -> str:
        return self.value

    def position(self) -> int:
        return 1

    def indexed_repeat(self, name: str, repeat_indices: tuple[tuple[str, int], ...]) -> str:
        return ""

    def choice_label(self, name: str, value: str) -> str:
        return value

    def now(self) -> dt.datetime:
        return dt.datetime(2024, 3, 5, 9, 55, tzinfo=WIB)

    def new_uuid(self) -> str:
        return "00000000-0000-4000-8000-000000000000"

    def column(self, name: str) -> str:
        return self.choice.get(name, "")


def rate(fn, seconds: float) -> float:  # noqa: ANN001
    """Calls per second of ``fn()`` measured over about ``seconds``."""
    n = 0
    batch = 200
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


ELEMENTPATH_EQUIVALENTS = [
    "consent = 'yes'",
    "age >= 17 and voted = 'yes'",
    "contains(concat(' ', platforms, ' '), ' other ')",
    "string-length(phone) <= 500",
    "concat(first_name, ' ', last_name)",
    "sum(spend) div count(spend)",
]


def compare_elementpath(seconds: float) -> None:
    """The alternative considered: elementpath's XPath 1.0 parser over an XML copy of the answers
    (``${name}`` rewritten as child paths). Printed only when elementpath is importable; it is not a
    dependency of Suara (``pip install --target /tmp/ep elementpath; PYTHONPATH=/tmp/ep python ...``)."""
    try:
        import xml.etree.ElementTree as ET

        from elementpath import XPath1Parser, XPathContext
    except ImportError:
        print("elementpath not importable: comparison skipped")
        return
    root = ET.fromstring(
        "<data><consent>yes</consent><age>34</age><voted>yes</voted>"
        "<platforms>instagram tiktok x</platforms><phone>081234567890</phone><first_name>Sari</first_name>"
        "<last_name>Wulandari</last_name><spend>10</spend><spend>25.5</spend><spend>7</spend></data>"
    )
    print(f"\n{'elementpath':<14} {'parse/s':>10} {'eval/s':>11}  expression (same meaning)")
    for source in ELEMENTPATH_EQUIVALENTS:
        token = XPath1Parser().parse(source)
        parses = rate(lambda s=source: XPath1Parser().parse(s), seconds)
        evals = rate(lambda t=token: t.evaluate(XPathContext(root)), seconds)
        print(f"{'':<14} {parses:>10,.0f} {evals:>11,.0f}  {source}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.4, help="time per measurement (default 0.4)")
    ap.add_argument("--elementpath", action="store_true", help="also time elementpath, if importable")
    args = ap.parse_args()
    ctx = BenchContext()
    print(f"{'column':<14} {'parse/s':>10} {'eval/s':>11}  expression")
    parse_total = eval_total = 0.0
    for column, source in EXPRESSIONS:
        expr = Expression(source)
        ev = expr.evaluate_bool if column in ("relevant", "constraint", "choice_filter") else expr.evaluate_str
        parses = rate(lambda s=source: Expression(s), args.seconds)
        evals = rate(lambda e=ev: e(ctx), args.seconds)
        parse_total += 1 / parses
        eval_total += 1 / evals
        print(f"{column:<14} {parses:>10,.0f} {evals:>11,.0f}  {source}")
    n = len(EXPRESSIONS)
    print(f"{'mean':<14} {n / parse_total:>10,.0f} {n / eval_total:>11,.0f}  (harmonic mean over {n})")
    print(f"mean time per evaluation: {eval_total / n * 1e6:.2f} µs; per parse: {parse_total / n * 1e6:.1f} µs")
    if args.elementpath:
        compare_elementpath(args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
