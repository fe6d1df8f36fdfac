"""The XLSForm reader (`questionnaires.xlsform`): forms written inline as pyxform markdown tables."""

from __future__ import annotations

import pytest
from forms_md import form

from questionnaires.errors import FormError
from questionnaires.model import Group, Question


def test_minimal_form__ok() -> None:
    f = form(
        """
        | survey |
        |        | type    | name | label | relevant   |
        |        | integer | age  | Age?  |            |
        |        | text    | nm   | Name  | ${age} > 3 |
        """
    )
    assert f.form_id == "test"
    assert [q.name for q in f.questions()] == ["age", "nm"]
    age, nm = f.questions()
    assert isinstance(age, Question) and age.type == "integer" and age.row == 2
    assert nm.bind.relevant == "${age} > 3" and nm.row == 3
    assert f.languages[0].code == "default"


def test_group_paths__ok() -> None:
    f = form(
        """
        | survey |
        |        | type        | name | label |
        |        | begin group | hh   | HH    |
        |        | text        | a    | A     |
        |        | end group   |      |       |
        """
    )
    g = f.children[0]
    assert isinstance(g, Group) and g.path == "hh" and g.row == 2
    assert f.node("hh/a").row == 3


def test_unknown_reference__error() -> None:
    with pytest.raises(FormError) as ei:
        form(
            """
            | survey |
            |        | type | name | label | relevant     |
            |        | text | a    | A     | ${nope} = 1  |
            """
        )
    p = ei.value.problems[0]
    assert (p.sheet, p.row, p.column, p.code) == ("survey", 2, "relevant", "unknown-reference")
