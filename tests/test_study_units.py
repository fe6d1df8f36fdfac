"""Small units of the study operations (issue 6): the chart, the schedule settings, the callback codec."""

from __future__ import annotations

import io
from datetime import time, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.charts import bar_chart
from bot.handlers.study_common import zdata, zparse
from bot.handlers.study_texts import _T, TEXT_KEYS, st
from bot.scheduler import StudyConfig


def test_bar_chart_is_a_png_that_grows_with_the_bars() -> None:
    small = Image.open(io.BytesIO(bar_chart("t", [("by status", [("submitted", 3), ("paused", 1)])])))
    many = [(f"regency {i}", i) for i in range(30)]
    big_png = bar_chart("t", [("by status", [("submitted", 3)]), ("by regency", many)], max_bars=12)
    big = Image.open(io.BytesIO(big_png))
    assert small.format == "PNG" and big.format == "PNG"
    assert big.size[0] == small.size[0] == 720
    assert big.size[1] > small.size[1]
    # 12 bars + "…" + 1 + two headings rows: height is fixed by the row count
    assert big.size[1] == 40 + 22 * (2 + 1 + 12 + 1) + 10
    # an empty section still draws (a dash row)
    assert bar_chart("t", [("empty", [])])[:4] == b"\x89PNG"
    with pytest.raises(ValueError):
        bar_chart("t", [("x", [("a", -1)])])


def test_study_config_from_env(tmp_path: Path) -> None:
    cfg = StudyConfig.from_env({}, tmp_path / "data")
    assert cfg.reminder_delay == timedelta(hours=24) and cfg.reminder_max == 2
    assert (cfg.quiet_start, cfg.quiet_end) == (time(21), time(7))
    assert cfg.backup_dir == tmp_path / "data-backups" and cfg.backup_keep == 7 and cfg.export_dir is None
    cfg = StudyConfig.from_env({"SUARA_REMINDER_HOURS": "6", "SUARA_REMINDER_MAX": "3", "SUARA_QUIET_HOURS": "22-6",
                                "SUARA_DIGEST_HOUR": "18", "SUARA_BACKUP_DIR": "off",
                                "SUARA_EXPORT_DIR": str(tmp_path / "x")}, tmp_path / "data")
    assert cfg.reminder_delay == timedelta(hours=6) and cfg.reminder_max == 3
    assert (cfg.quiet_start, cfg.quiet_end, cfg.digest_hour) == (time(22), time(6), 18)
    assert cfg.backup_dir is None and cfg.export_dir == tmp_path / "x"
    with pytest.raises(ValueError, match="SUARA_QUIET_HOURS"):
        StudyConfig.from_env({"SUARA_QUIET_HOURS": "late"}, tmp_path)
    with pytest.raises(ValueError, match="SUARA_REMINDER_MAX"):
        StudyConfig.from_env({"SUARA_REMINDER_MAX": "two"}, tmp_path)


def test_callback_codec_round_trip_and_limits() -> None:
    assert zparse(zdata("zV", "a1", "h")) == ("zV", "a1", "h")
    assert zparse("a|1|x") is None and zparse("zV|1") is None and zparse(None) is None
    with pytest.raises(ValueError):
        zdata("zP", "x" * 70)
    with pytest.raises(ValueError):
        zdata("zP", "a|b")
    with pytest.raises(ValueError):
        zdata("P", "x")


def test_every_study_text_exists_in_both_languages_with_the_same_placeholders() -> None:
    import string

    for key in TEXT_KEYS:
        idn, en = _T[key]
        assert idn and en, key
        fields = [{f for _, f, _, _ in string.Formatter().parse(text) if f} for text in (idn, en)]
        assert fields[0] == fields[1], key
    assert st("en-US", "stopped") == "OK, no more reminders." and st(None, "stopped").startswith("Baik")
