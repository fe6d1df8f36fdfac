"""Suara's storage: everything that must never lose an answer, photo or recording.

* `storage.db` — `open_database(url)` (SQLite in the data dir by default, PostgreSQL by URL; migrates
  to head at start), `Database.session()` / `Database.write()`.
* `storage.models` — the SQLModel tables (UTC timestamps, canonical-string answers).
* `storage.repository` — `Repository`, the only writer: one short transaction per operation,
  exactly-once handling of Telegram updates.
* `storage.media` — `MediaStore`, the content-addressed file store (kind from the bytes, Pillow checks,
  upright thumbnails, audio durations).
* `storage.backup` — online backup, verification and restore of a data directory.
* ``storage/migrations`` — Alembic migrations (shipped with the package).

Nothing here imports Telegram, the bot or the exporters (tests/test_architecture.py).
"""
