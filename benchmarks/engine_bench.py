"""Engine benchmark: steps per second through `questionnaires.engine.step`, and form load times.

Run from the repository root::

    python benchmarks/engine_bench.py [--seconds 1.0] [FORM ...]

Default forms: the shipped voter survey and campaign interview, plus the largest form in
../shared/xlsforms that loads. For each form it records one complete interview with generated valid
answers (`questionnaires.engine_sample.run`), then replays the accepted inputs through `step()`:

* ``warm``: each step gets the Progress returned by the previous step (the engine reuses its cached
  evaluation and updates only what the answer touches) — an interview in one process;
* ``reload``: each Progress is first sent through ``to_dict``/``from_dict`` (as the bot does when it
  loads progress from the database); the engine finds its evaluation again by content;
* ``uncached``: as ``reload`` with the engine's state cache emptied before every step, so each step
  starts with a full evaluation of the form (a freshly restarted bot).

Rates use CPU time of this process (``time.process_time``), so other jobs on a shared machine disturb
them less than wall time would. Figures are printed (one core, this machine); nothing is asserted.
Target: >= 20,000 steps/s warm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from questionnaires import engine, engine_sample  # noqa: E402
from questionnaires.engine_plan import plan_for  # noqa: E402
from questionnaires.errors import FormError  # noqa: E402
from questionnaires.interview import Progress  # noqa: E402
from questionnaires.model import Form  # noqa: E402
from questionnaires.xlsform import load_xlsform  # noqa: E402

NOW = datetime(2024, 3, 5, 9, 55, tzinfo=ZoneInfo("Asia/Jakarta"))
SHARED = ROOT.parent / "shared" / "xlsforms"


def load_timed(path: Path, repeat: int = 3) -> tuple[Form | None, float]:
    """The form and its median load time in seconds (None when refused)."""
    times = []
    form = None
    for _ in range(repeat):
        t = time.perf_counter()
        try:
            form = load_xlsform(path)
        except FormError:
            return None, time.perf_counter() - t
        times.append(time.perf_counter() - t)
    return form, statistics.median(times)


def replay_rate(form: Form, seconds: float, mode: str, seed: int) -> tuple[float, int, int]:
    """(steps per second, steps per interview, questions answered) replaying a generated interview."""
    run = engine_sample.run(form, now=NOW, seed=seed)
    inputs = run.accepted
    first = engine.start(form, now=NOW)
    steps = 0
    elapsed = 0.0
    while elapsed < seconds:
        progress = first.progress
        t = time.process_time()
        if mode == "reload":
            for inp in inputs:
                progress = engine.step(form, Progress.from_dict(progress.to_dict()), inp, now=NOW).progress
        elif mode == "uncached":
            cache = plan_for(form).states
            for inp in inputs:
                cache.clear()
                progress = engine.step(form, Progress.from_dict(progress.to_dict()), inp, now=NOW).progress
        else:
            for inp in inputs:
                progress = engine.step(form, progress, inp, now=NOW).progress
        elapsed += time.process_time() - t
        steps += len(inputs)
    return steps / elapsed, len(inputs), len(run.progress.answers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("forms", nargs="*", type=Path)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    print("load times (median of 3):")
    loaded: dict[Path, Form] = {}
    candidates = sorted(SHARED.glob("*")) if SHARED.is_dir() else []
    for path in [p for p in candidates if p.suffix in (".xls", ".xlsx", ".csv")]:
        form, secs = load_timed(path)
        state = f"{len(form.questions()):4d} questions" if form else "refused"
        print(f"  {path.name:40s} {secs * 1000:8.1f} ms  {state}")
        if form is not None:
            loaded[path] = form
    forms = list(args.forms)
    if not forms:
        forms = [p for p in (ROOT / "questionnaires" / "forms").glob("*.xlsx")]
        if loaded:
            forms.append(max(loaded, key=lambda p: len(loaded[p].questions())))
    print("\nsteps through engine.step() (one core):")
    print(f"  {'form':36s} {'questions':>9s} {'steps/run':>9s} {'warm/s':>9s} {'reload/s':>9s} {'uncached/s':>10s}")
    for path in forms:
        form = loaded.get(path)
        if form is None:
            form, secs = load_timed(path)
            if form is None:
                print(f"  {path.name:36s} refused by the loader")
                continue
            print(f"  (load {path.name}: {secs * 1000:.1f} ms)")
        warm, n, answered = replay_rate(form, args.seconds, "warm", args.seed)
        reload, _, _ = replay_rate(form, args.seconds, "reload", args.seed)
        uncached, _, _ = replay_rate(form, args.seconds, "uncached", args.seed)
        print(f"  {path.name:36s} {len(form.questions()):9d} {n:9d} {warm:9,.0f} {reload:9,.0f} {uncached:10,.0f}"
              f"   ({answered} answers kept)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
