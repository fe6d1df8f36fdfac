"""Errors raised when a questionnaire cannot be used: `FormError` carrying one or more `FormProblem`.

A broken XLSForm must never crash an interview later: the reader (`questionnaires.xlsform`) collects every
problem it can find at load time and raises one `FormError` listing them all. Each problem names the sheet,
row and column where the researcher should look (house rule: "Broken XLSForm errors name sheet, row and
column") and says what to do about it.

Other parts (engine, storage, `suara check`) may raise or catch `FormError` too; build one with
`FormError.single(...)` when there is only one problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class FormProblem:
    """One thing wrong with a form.

    ``sheet`` is the XLSForm sheet (``"survey"``, ``"choices"``, ``"settings"``) or ``None`` when the
    problem is about the whole file; ``row`` is the 1-based spreadsheet row (the header is row 1) or
    ``None``; ``column`` is the column header as the reader knows it (``"constraint"``, ``"type"``) or
    ``None``. ``code`` is a short stable identifier for tests and tools (``"unsupported-type"``,
    ``"unknown-reference"``, ``"pyxform"``…). ``message`` says what is wrong and what to do.
    """

    sheet: str | None
    row: int | None
    column: str | None
    code: str
    message: str

    def location(self) -> str:
        """Where the problem is, e.g. ``'survey sheet, row 12, column "constraint"'`` (``""`` if unknown)."""
        parts: list[str] = []
        if self.sheet:
            parts.append(f"{self.sheet} sheet")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f'column "{self.column}"')
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, str | int | None]:
        """A JSON-ready dict with the keys ``sheet``, ``row``, ``column``, ``code``, ``message``."""
        return asdict(self)


class FormError(Exception):
    """A form that Suara refuses to run. ``problems`` lists every problem found (at least one).

    ``str(err)`` gives one line per problem, each starting with its location
    (``survey sheet, row 12, column "constraint": unknown function "foo()" — …``).
    """

    def __init__(self, problems: Iterable[FormProblem]) -> None:
        self.problems: tuple[FormProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("FormError needs at least one FormProblem")
        super().__init__(self.render())

    @classmethod
    def single(
        cls,
        message: str,
        *,
        code: str = "invalid",
        sheet: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> FormError:
        """A FormError holding one problem."""
        return cls([FormProblem(sheet=sheet, row=row, column=column, code=code, message=message)])

    def render(self) -> str:
        """The problems, one per line."""
        return "\n".join(str(p) for p in self.problems)

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self) -> tuple[type[FormError], tuple[tuple[FormProblem, ...]]]:
        return (type(self), (self.problems,))

    def codes(self) -> list[str]:
        """The problem codes in order (handy in tests)."""
        return [p.code for p in self.problems]
