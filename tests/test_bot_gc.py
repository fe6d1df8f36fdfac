"""The running bot hides its start-up objects from the cyclic garbage collector (`bot.app.freeze_startup_objects`)
so a full collection does not pause every answer in flight, and gives them back when it stops."""

from __future__ import annotations

import gc
from pathlib import Path

from bot_harness import bot_harness, start_respondent


async def test_running_bot_freezes_startup_objects_and_thaws_them_when_it_stops(tmp_path: Path) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    async with bot_harness(tmp_path) as h:
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # modules, forms, the Application, SQLAlchemy metadata
        u, _, _ = await start_respondent(h, 7301)
        await h.do(u.send_command("help"))  # the bot still works
        assert 0 < gc.get_freeze_count() <= frozen  # frozen objects still go when their last reference does
    assert gc.get_freeze_count() == 0
