"""The zip bundle: media links that open the right file after unzipping (FC-14), also with a question
subset; thumbnails embedded upright (FC-25); entry names from our own ids only."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import timedelta
from pathlib import Path

from export_helpers import T0, cells, table
from forms_md import form
from openpyxl import load_workbook
from PIL import Image

from exports import ExportOptions, MediaRecord, SubmissionRecord, export_bundle, write_bundle

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PHOTO = FIXTURES / "fc25_1000x750_exif6.jpg"
VOICE = FIXTURES / "voice.ogg"

FORM = """
| survey |  |  |  |
| | type | name | label |
| | text | who | Who |
| | image | photo | Photo |
| | audio | voice | Voice |
| | begin repeat | visit | Visit |
| | image | vphoto | Visit photo |
| | end repeat | | |
"""


def _media(iid: str, key: str | None, path: Path, kind: str, **kw) -> MediaRecord:
    data = path.read_bytes()
    return MediaRecord(instance_id=iid, key=key, kind=kind, mime=kw.pop("mime", ""),
                       sha256=hashlib.sha256(data).hexdigest(), size=len(data), ext=path.suffix[1:],
                       source=path, captured_at=T0 + timedelta(minutes=1), **kw)


def _records():
    sub = SubmissionRecord(
        instance_id="5f0c9a1e-0000-4000-8000-000000000001", form_version="", respondent="R-AAAAA",
        started_at=T0, submitted_at=T0,
        answers={"who": "Ani", "photo": "p.jpg", "voice": "v.ogg", "visit[1]/vphoto": "p.jpg",
                 "visit[2]/vphoto": "p.jpg"})
    iid = sub.instance_id
    media = [
        _media(iid, "photo", PHOTO, "photo", width=750, height=1000, gps=(-1.6, 103.6), mime="image/jpeg"),
        _media(iid, "voice", VOICE, "voice", duration_s=4.5, mime="audio/ogg"),
        _media(iid, "visit[1]/vphoto", PHOTO, "photo"),
        _media(iid, "visit[2]/vphoto", PHOTO, "photo"),
        _media(iid, None, VOICE, "voice", duration_s=4.5, caption="../../etc/passwd"),  # a field note
    ]
    return sub, media


def _unzip(zpath: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zpath) as zf:
        for n in zf.namelist():
            assert not n.startswith("/") and ".." not in n.split("/")
        zf.extractall(dest)
    return dest


def test_fc14_media_links_open_the_right_file_after_unzipping(tmp_path):
    f = form(FORM, "fc14")
    sub, media = _records()
    zpath = export_bundle([f], [sub], media, out=tmp_path)
    assert zpath.name.startswith("fc14_") and zpath.suffix == ".zip"
    root = _unzip(zpath, tmp_path / "unz")
    xlsx = root / "fc14.xlsx"
    ws = cells(xlsx, "fc14")
    head = [c.value for c in ws[1]]
    for q, original in (("photo", PHOTO), ("voice", VOICE)):
        name_cell = ws.cell(2, head.index(q) + 1)
        link_cell = ws.cell(2, head.index(f"{q}_URL") + 1)
        target = link_cell.hyperlink.target
        assert not Path(target).is_absolute()
        assert (root / target).read_bytes() == original.read_bytes()
        assert Path(target).name == name_cell.value
    assert ws.cell(2, head.index("voice_duration_s") + 1).value == 4.5
    visit = cells(xlsx, "visit")
    vhead = [c.value for c in visit[1]]
    targets = [visit.cell(r, vhead.index("vphoto_URL") + 1).hyperlink.target for r in (2, 3)]
    assert targets == [f"media/{sub.instance_id}/vphoto_1.jpg", f"media/{sub.instance_id}/vphoto_2.jpg"]
    assert all((root / t).is_file() for t in targets)
    # the Media sheet links every file, the Qualitative sheet the voice answer and the voice field note
    mrows = cells(xlsx, "Media")
    links = [row[4].hyperlink.target for row in mrows.iter_rows(min_row=2) if row[4].hyperlink]
    assert len(links) == 5 and all((root / t).is_file() for t in links)
    assert f"media/{sub.instance_id}/note_1.ogg" in links  # a caption never becomes a path
    qual = cells(xlsx, "Qualitative")
    qhead = [c.value for c in qual[1]]
    qlinks = [row[qhead.index("media")].hyperlink.target for row in qual.iter_rows(min_row=2)
              if row[qhead.index("media")].hyperlink]
    assert qlinks == [f"media/{sub.instance_id}/voice.ogg", f"media/{sub.instance_id}/note_1.ogg"]
    # thumbnails in the bundle
    thumb = root / "media" / sub.instance_id / "thumbs" / "photo.jpg"
    assert thumb.is_file()


def test_fc14_links_still_resolve_in_an_export_limited_to_some_questions(tmp_path):
    f = form(FORM, "fc14")
    sub, media = _records()
    res = write_bundle([f], [sub], media, out=tmp_path / "sub.zip",
                       options=ExportOptions(questions=("voice",)))
    root = _unzip(res.path, tmp_path / "unz")
    xlsx = root / "fc14.xlsx"
    wb = load_workbook(xlsx)
    assert "visit" not in wb.sheetnames
    ws = wb["fc14"]
    head = [c.value for c in ws[1]]
    assert "photo" not in head and "who" not in head
    target = ws.cell(2, head.index("voice_URL") + 1).hyperlink.target
    assert (root / target).read_bytes() == VOICE.read_bytes()
    with zipfile.ZipFile(res.path) as zf:
        names = zf.namelist()
    assert not any("photo" in n for n in names)  # files of questions left out are not bundled
    assert f"media/{sub.instance_id}/note_1.ogg" in names  # field notes always belong


def test_fc25_thumbnail_embedded_upright_in_media_sheet(tmp_path):
    f = form(FORM, "fc14")
    sub, media = _records()
    res = write_bundle([f], [sub], media[:1], out=tmp_path)
    root = _unzip(res.path, tmp_path / "unz")
    ws = load_workbook(root / "fc14.xlsx")["Media"]
    assert len(ws._images) == 1
    img = Image.open(io.BytesIO(ws._images[0]._data()))
    assert img.height > img.width  # 1000x750 with orientation 6 is portrait when displayed
    row = [c.value for c in ws[2]]
    assert row[9:14] == [750, 1000, None, -1.6, 103.6]
    assert res.thumbnails == 1


def test_missing_media_file_is_reported_not_fatal_and_no_media_option(tmp_path):
    f = form(FORM, "fc14")
    sub, media = _records()
    gone = MediaRecord(instance_id=sub.instance_id, key="photo", kind="photo", ext="jpg",
                       source=tmp_path / "nope.jpg")
    res = write_bundle([f], [sub], [gone], out=tmp_path)
    assert any("missing" in n for n in res.notes)
    with zipfile.ZipFile(res.path) as zf:
        assert [n for n in zf.namelist() if n.startswith("media/")] == []
    res2 = write_bundle([f], [sub], media, out=tmp_path / "nomedia.zip", options=ExportOptions(media=False))
    with zipfile.ZipFile(res2.path) as zf:
        assert zf.namelist() == ["fc14.xlsx"]
        zf.extract("fc14.xlsx", tmp_path / "nm")
    row = table(tmp_path / "nm" / "fc14.xlsx", "fc14")[0]
    assert row["photo"] == "photo.jpg" and row["photo_URL"] is None
