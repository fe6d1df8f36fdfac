"""Tiny helper for tests: write a form inline as pyxform's markdown tables and get a `Form`."""

from __future__ import annotations

from questionnaires.model import Form
from questionnaires.xlsform import load_markdown


def form(md: str, form_id: str = "test") -> Form:
    """The `Form` written in ``md`` (pyxform markdown-table style); raises FormError like load_xlsform."""
    return load_markdown(md, form_id=form_id)
