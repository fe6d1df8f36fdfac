"""The direction of imports (ARCHITECTURE.md): the core never imports transport, SQL or spreadsheets."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN: dict[str, set[str]] = {
    # questionnaires/ is pure: no Telegram, no SQL. openpyxl only in the XLSForm reader.
    "questionnaires": {"telegram", "sqlmodel", "sqlalchemy", "alembic", "bot", "storage", "exports"},
    "storage": {"telegram", "bot", "exports"},
    "exports": {"telegram", "bot"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_packages_respect_import_direction() -> None:
    offenders: list[str] = []
    checked = 0
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            checked += 1
            bad = _imports(path) & forbidden
            if bad:
                offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert checked > 0
    assert offenders == []


def test_openpyxl_only_in_the_xlsform_reader_within_core() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "questionnaires").rglob("*.py")
        if "openpyxl" in _imports(p) and p.name not in {"xlsform.py"}
    ]
    assert offenders == []
