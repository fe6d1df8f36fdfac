"""Export benchmark: Suara's export vs a bare openpyxl write-only dump of the same cells (the floor) vs
openpyxl's normal mode, on synthetic voter-survey data with repeats and select_multiple.

    python benchmarks/export_bench.py                     # 1k, 10k, 100k
    python benchmarks/export_bench.py --sizes 1000,10000  # quicker
    python benchmarks/export_bench.py --normal-max 200000 # also normal mode at 100k (slow, GBs of RAM)

The form is ``questionnaires/forms/jambi_voter_survey.xlsx`` plus a ``household`` repeat (member age,
gender, platforms used (select_multiple), voted) added with the model dataclasses, so every submission
writes rows to the data sheet, the repeat sheet (0-4 members) and, for open answers, Qualitative.

Every measurement runs in its own child process; peak RSS is that child's ``ru_maxrss`` (os.wait4).
Times are CPU seconds of the child (``time.process_time``; wall time printed beside): the machine is
shared, and CPU time is far less disturbed by other load. Up to 10k Suara and the floor run alternately
``--repeat`` times and the best CPU time of each is kept.
Input costs are subtracted so only writing is compared: Suara's figure is (export with the synthetic
generator) - (the generator alone); the floor replays the exact cell values Suara appended (captured
once, per sheet, to a pickle stream) and its figure is (replay + write) - (replay alone). Normal mode
appends the same values to a normal ``Workbook()`` and saves. Nothing here asserts: it prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORM_PATH = ROOT / "questionnaires" / "forms" / "jambi_voter_survey.xlsx"
CHUNK = 2000


class _Clock:
    """Wall and CPU time of this process since creation (CPU time is what we compare: the machine is
    shared, so wall time swings with other people's load)."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def _net(total: tuple[float, float], inp: tuple[float, float], rows: int) -> dict:
    return {"wall": total[0] - inp[0], "seconds": total[1] - inp[1], "input_s": inp[1], "rows": rows}


# ----------------------------------------------------------------------------------------- synthetic data
def bench_form():
    """The voter survey with a household repeat added (model dataclasses)."""
    from questionnaires.model import Choice, Question, Repeat, frozen_map
    from questionnaires.xlsform import load_xlsform

    form = load_xlsform(FORM_PATH)
    lists = form.choice_lists
    platforms = lists.get("platform") or tuple(Choice(n) for n in ("instagram", "facebook", "tiktok"))
    gender = lists.get("gender") or (Choice("male"), Choice("female"))
    yes_no = lists.get("yes_no") or (Choice("yes"), Choice("no"))
    lab = frozen_map

    def q(name: str, qtype: str, choices=(), label_id: str = "", label_en: str = "") -> Question:
        return Question(name=name, path=f"household/{name}", type=qtype, choices=tuple(choices),
                        labels=lab({"id": label_id or name, "en": label_en or name}))

    household = Repeat(
        name="household", path="household", labels=lab({"id": "Anggota rumah tangga", "en": "Household member"}),
        children=(
            q("member_age", "integer", label_id="Umur anggota", label_en="Member's age"),
            q("member_gender", "select_one", gender),
            q("member_platforms", "select_multiple", platforms),
            q("member_voted", "select_one", yes_no),
        ),
    )
    return dataclasses.replace(form, children=(*form.children, household))


def _answer(q, rng: random.Random) -> str | None:
    t = q.type
    if t == "integer":
        return str(rng.randint(17, 80))
    if t == "select_one":
        return rng.choice(q.choices).name if q.choices else None
    if t == "select_multiple":
        k = rng.randint(1, min(3, len(q.choices)))
        return " ".join(c.name for c in rng.sample(q.choices, k))
    if t == "text":
        return rng.choice(("Saya melihat iklan kampanye di TikTok setiap hari.", "Tidak ada.",
                           "Kebanyakan dari grup WhatsApp keluarga.", "Video debat di YouTube."))
    if t == "calculate":
        return str(rng.randint(0, 6))
    if t == "geopoint":
        return f"{-1.6 + rng.random():.5f} {103.6 + rng.random():.5f} {rng.randint(5, 80)} {rng.randint(3, 20)}"
    return None  # notes, media (no files in this benchmark)


def synthetic(form, n: int, seed: int = 7) -> Iterator:
    """``n`` SubmissionRecords: every top-level question answered (0-4 household members)."""
    from exports.records import SubmissionRecord

    rng = random.Random(seed)
    top = [q for q in form.questions() if not q.path.startswith("household/")]
    members = [q for q in form.questions() if q.path.startswith("household/")]
    t0 = datetime(2024, 2, 1, 1, 0, tzinfo=UTC)
    for i in range(n):
        answers: dict[str, str] = {}
        for q in top:
            v = _answer(q, rng)
            if v is not None:
                answers[q.path] = v
        for m in range(1, rng.randint(0, 4) + 1):
            for q in members:
                v = _answer(q, rng)
                if v is not None:
                    answers[f"household[{m}]/{q.name}"] = v
        start = t0 + timedelta(minutes=7 * i)
        yield SubmissionRecord(
            instance_id=f"00000000-0000-4000-8000-{i:012d}", form_version=form.version, mode="self",
            enumerator="", respondent=f"R-{i:06d}", status="submitted", language="id", started_at=start,
            ended_at=start + timedelta(seconds=rng.randint(120, 900)),
            submitted_at=start + timedelta(seconds=950), answers=answers)


# ------------------------------------------------------------------------------------------- child jobs
def _suara(n: int, out: Path) -> dict:
    from exports.workbook import ExportOptions, export_workbook

    form = bench_form()
    c = _Clock()
    for _ in synthetic(form, n):
        pass
    gen = c.read()
    c = _Clock()
    res = export_workbook([form], synthetic(form, n), out=out, options=ExportOptions(media=False), total=n)
    return _net(c.read(), gen, sum(res.rows.values()))


def _capture(n: int, out: Path, dump: Path) -> dict:
    """Run Suara's export with every append recorded (values and forced-text/hyperlink cells)."""
    from openpyxl.cell.cell import Cell
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

    from exports.workbook import ExportOptions, export_workbook

    form = bench_form()
    fh = dump.open("wb")
    order: list[str] = []
    buf: list = []

    def flush() -> None:
        if buf:
            pickle.dump(buf, fh, protocol=pickle.HIGHEST_PROTOCOL)
            buf.clear()

    def append(self, row) -> None:
        vals = []
        for v in row:
            if isinstance(v, Cell):
                styled = v.has_style
                vals.append(("__cell__", v.value, v.data_type, v.hyperlink.target if v.hyperlink else None,
                             v.number_format if styled and v.number_format != "General" else None,
                             styled and bool(v.font.b), styled and bool(v.alignment.wrap_text)))
            else:
                vals.append(v)
        if self.title not in order:
            order.append(self.title)
        buf.append((self.title, vals))
        if len(buf) >= CHUNK:
            flush()

    WriteOnlyWorksheet.append = append
    export_workbook([form], synthetic(form, n), out=out, options=ExportOptions(media=False), total=n)
    flush()
    fh.close()
    with (dump.with_suffix(".order")).open("wb") as f:
        pickle.dump(order, f)
    return {"sheets": order}


def _replay(dump: Path) -> Iterator[tuple[str, list]]:
    with dump.open("rb") as fh:
        while True:
            try:
                chunk = pickle.load(fh)
            except EOFError:
                return
            yield from chunk


def _floor(dump: Path, out: Path) -> dict:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font

    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    order = pickle.loads(dump.with_suffix(".order").read_bytes())
    c = _Clock()
    for _ in _replay(dump):
        pass
    replay = c.read()
    clock = _Clock()
    wb = Workbook(write_only=True)
    sheets = {title: wb.create_sheet(title) for title in order}
    rows = 0
    for title, vals in _replay(dump):
        ws = sheets[title]
        row = []
        for v in vals:
            if v.__class__ is tuple and v and v[0] == "__cell__":
                c = WriteOnlyCell(ws, v[1])
                c.data_type = v[2]
                if v[3]:
                    c.hyperlink = v[3]
                if v[4]:
                    c.number_format = v[4]
                if v[5]:
                    c.font = bold
                if v[6]:
                    c.alignment = wrap
                row.append(c)
            else:
                row.append(v)
        ws.append(row)
        rows += 1
    wb.save(out)
    return _net(clock.read(), replay, rows)


def _normal(dump: Path, out: Path) -> dict:
    from openpyxl import Workbook

    order = pickle.loads(dump.with_suffix(".order").read_bytes())
    c = _Clock()
    for _ in _replay(dump):
        pass
    replay = c.read()
    c = _Clock()
    wb = Workbook()
    wb.remove(wb.active)
    sheets = {title: wb.create_sheet(title) for title in order}
    rows = 0
    for title, vals in _replay(dump):
        sheets[title].append([v[1] if v.__class__ is tuple and v and v[0] == "__cell__" else v for v in vals])
        rows += 1
    wb.save(out)
    return _net(c.read(), replay, rows)


def _child_main(argv: list[str]) -> None:
    job, n, tmp = argv[0], int(argv[1]), Path(argv[2])
    dump = tmp / f"cells_{n}.pkl"
    if job == "suara":
        res = _suara(n, tmp / f"suara_{n}.xlsx")
    elif job == "capture":
        res = _capture(n, tmp / f"capture_{n}.xlsx", dump)
    elif job == "floor":
        res = _floor(dump, tmp / f"floor_{n}.xlsx")
    elif job == "normal":
        res = _normal(dump, tmp / f"normal_{n}.xlsx")
    elif job == "profile":
        import cProfile
        import pstats

        cProfile.runctx("_suara(n, tmp / 'p.xlsx')", globals(), {"_suara": _suara, "n": n, "tmp": tmp},
                        str(tmp / "prof"))
        pstats.Stats(str(tmp / "prof")).sort_stats("tottime").print_stats(25)
        res = {}
    else:
        raise SystemExit(f"unknown job {job}")
    print("RESULT " + repr(res))


# ---------------------------------------------------------------------------------------------- parent
def run_child(job: str, n: int, tmp: Path) -> tuple[dict, float]:
    """Run one job in a child process; returns (its result dict, its peak RSS in MB)."""
    p = subprocess.Popen([sys.executable, __file__, "--child", job, str(n), str(tmp)],
                         stdout=subprocess.PIPE, text=True)
    out = p.stdout.read() if p.stdout else ""
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{job} {n} failed ({p.returncode}):\n{out}")
    if job == "profile":
        print(out)
    line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), "RESULT {}")
    import ast

    return ast.literal_eval(line[len("RESULT "):]), usage.ru_maxrss / 1024  # KiB on Linux -> MiB


def _best_pair(n: int, tmp: Path, times: int) -> tuple[tuple[dict, float], tuple[dict, float]]:
    """Suara and floor run alternately ``times`` times (so both see the same background load); for each,
    the run with the lowest CPU time is kept and the highest peak RSS seen is reported."""
    runs: dict[str, list[tuple[dict, float]]] = {"suara": [], "floor": []}
    for _ in range(max(1, times)):
        for job in ("suara", "floor"):
            runs[job].append(run_child(job, n, tmp))
    out = []
    for job in ("suara", "floor"):
        best = min(runs[job], key=lambda r: r[0]["seconds"])
        out.append((best[0], max(r[1] for r in runs[job])))
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--normal-max", type=int, default=10000,
                    help="largest size run in openpyxl normal mode (default 10000: at 100k it needs GBs)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per way up to 10k (best CPU time kept)")
    ap.add_argument("--profile", type=int, default=0, help="print a cProfile of Suara's export at this size")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child_main(args.child)
        return
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            run_child("profile", args.profile, Path(tmp))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'n':>7} {'way':<8} {'cpu s':>8} {'wall s':>8} {'rows/s':>9} {'peak MB':>8} {'x floor':>8}  note")
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="suara-bench-") as tmpd:
            tmp = Path(tmpd)
            run_child("capture", n, tmp)
            times = args.repeat if n <= 10000 else 1
            (suara, suara_rss), (floor, floor_rss) = _best_pair(n, tmp, times)
            rows = [("suara", suara, suara_rss), ("floor", floor, floor_rss)]
            if n <= args.normal_max:
                normal, normal_rss = run_child("normal", n, tmp)
                rows.append(("normal", normal, normal_rss))
            for way, res, rss in rows:
                secs = res["seconds"]
                note = f"{res['rows']} rows; input {res['input_s']:.2f}s cpu subtracted"
                print(f"{n:>7} {way:<8} {secs:>8.2f} {res['wall']:>8.2f} {res['rows'] / secs:>9.0f} {rss:>8.0f} "
                      f"{secs / floor['seconds']:>8.3f}  {note}", flush=True)
            if n > args.normal_max:
                print(f"{n:>7} {'normal':<8} {'skipped':>8}  (openpyxl normal mode keeps every cell in "
                      f"memory; raise --normal-max to run it)", flush=True)


if __name__ == "__main__":
    main()
