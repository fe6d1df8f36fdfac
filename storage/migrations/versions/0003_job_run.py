"""The job_run table: once-a-day scheduler jobs claimed in the database, one row per (job, local day).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Before 0003 each bot process remembered the day each daily job (digest, morning note, backup, export)
last ran in its own ``<data_dir>/scheduler_state.json``; several workers on one PostgreSQL database
could then all send the digest. Now the unique key ``(job, local_day)`` makes the INSERT of the row the
claim (see `storage.repository.Repository.claim_daily_job`).

Only CREATE TABLE: no existing table is touched, so no row can be lost; downgrade drops the new table.
Plain SQLAlchemy types only (no imports from storage.models). Timestamps are naive UTC
(storage.models.UTCDateTime); ``local_day`` is a DATE in the study's zone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_run")),
        sa.UniqueConstraint("job", "local_day", name="uq_job_run_job_local_day"),
    )


def downgrade() -> None:
    op.drop_table("job_run")
