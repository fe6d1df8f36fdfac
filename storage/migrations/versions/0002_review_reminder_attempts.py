"""Review fields on submissions, reminder attempts, photo thumbnails, and the query indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

* submission.review_status ('none' for existing rows), review_note, reviewed_at — researchers approve,
  hold or reject submissions with a note.
* reminder.attempt (1 for existing rows) — the bot stops after N reminders per submission.
* media.thumb_path — the upright JPEG thumbnail beside the original.
* Indexes for the hot queries: a person's open interview, due reminders, a submission's events in
  time order, a question's media.

Only ADD COLUMN and CREATE INDEX: on SQLite no table is rebuilt, so no row can be lost (a rebuild
with foreign_keys=ON would cascade-delete children when the old table is dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "submission",
        sa.Column("review_status", sa.String(length=20), nullable=False, server_default="none"),
    )
    op.add_column("submission", sa.Column("review_note", sa.Text(), nullable=True))
    op.add_column("submission", sa.Column("reviewed_at", sa.DateTime(), nullable=True))
    op.add_column("reminder", sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("media", sa.Column("thumb_path", sa.Text(), nullable=True))

    op.create_index("ix_submission_person_status", "submission", ["person_id", "status"])
    op.create_index("ix_reminder_due", "reminder", ["sent_at", "due_at"])
    op.drop_index("ix_event_submission_id", table_name="event")
    op.create_index("ix_event_submission_at", "event", ["submission_id", "at"])
    op.create_index("ix_media_submission_question", "media", ["submission_id", "question_path"])


def downgrade() -> None:
    op.drop_index("ix_media_submission_question", table_name="media")
    op.drop_index("ix_event_submission_at", table_name="event")
    op.create_index("ix_event_submission_id", "event", ["submission_id"])
    op.drop_index("ix_reminder_due", table_name="reminder")
    op.drop_index("ix_submission_person_status", table_name="submission")
    # Plain ALTER TABLE … DROP COLUMN (SQLite >= 3.35): no table rebuild, so no cascading deletes.
    op.drop_column("media", "thumb_path")
    op.drop_column("reminder", "attempt")
    op.drop_column("submission", "reviewed_at")
    op.drop_column("submission", "review_note")
    op.drop_column("submission", "review_status")
