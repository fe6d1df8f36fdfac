"""Base tables: person, form_version, invite, submission, answer, event, media, processed_update, reminder.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29

Plain SQLAlchemy types only (no imports from storage.models): a migration must keep meaning the same
schema whatever the models become later. Timestamps are naive UTC (see storage.models.UTCDateTime).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('telegram_id', sa.BigInteger(), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('telegram_id', name=op.f('uq_person_telegram_id'))
    )
    op.create_table('processed_update',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('update_id', sa.BigInteger(), nullable=False),
    sa.Column('processed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_processed_update')),
    sa.UniqueConstraint('update_id', name=op.f('uq_processed_update_update_id'))
    )
    op.create_table('form_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('form_id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('xlsx', sa.LargeBinary(), nullable=False),
    sa.Column('xlsx_sha256', sa.String(length=64), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=False),
    sa.Column('published_by', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['published_by'], ['person.id'], name=op.f('fk_form_version_published_by_person'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_form_version')),
    sa.UniqueConstraint('xlsx_sha256', name=op.f('uq_form_version_xlsx_sha256'))
    )
    with op.batch_alter_table('form_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_form_version_form_id'), ['form_id'], unique=False)
        batch_op.create_index('ix_form_version_form_id_active', ['form_id', 'active'], unique=False)

    op.create_table('invite',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('form_id', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('max_uses', sa.Integer(), nullable=True),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['person.id'], name=op.f('fk_invite_created_by_person'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invite')),
    sa.UniqueConstraint('code', name=op.f('uq_invite_code'))
    )
    op.create_table('submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.String(length=36), nullable=False),
    sa.Column('form_version_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('respondent_code', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('progress', sa.JSON(), nullable=False),
    sa.Column('position', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=20), nullable=False),
    sa.Column('consent_given_at', sa.DateTime(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=True),
    sa.Column('reviewed_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['form_version_id'], ['form_version.id'], name=op.f('fk_submission_form_version_id_form_version'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_submission_person_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reviewed_by'], ['person.id'], name=op.f('fk_submission_reviewed_by_person'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submission')),
    sa.UniqueConstraint('instance_id', name=op.f('uq_submission_instance_id')),
    sa.UniqueConstraint('respondent_code', name=op.f('uq_submission_respondent_code'))
    )
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.create_index('ix_submission_form_version_status', ['form_version_id', 'status'], unique=False)

    op.create_table('answer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('answered_at', sa.DateTime(), nullable=False),
    sa.Column('seconds_spent', sa.Float(), nullable=False),
    sa.Column('changed_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], name=op.f('fk_answer_submission_id_submission'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_answer')),
    sa.UniqueConstraint('submission_id', 'path', name='uq_answer_submission_path')
    )
    op.create_table('event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('question_path', sa.Text(), nullable=True),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_event_person_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], name=op.f('fk_event_submission_id_submission'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event'))
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index('ix_event_submission_id', ['submission_id'], unique=False)

    op.create_table('media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('mime', sa.String(length=100), nullable=False),
    sa.Column('ext', sa.String(length=10), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('taken_at', sa.DateTime(), nullable=True),
    sa.Column('gps_lat', sa.Float(), nullable=True),
    sa.Column('gps_lon', sa.Float(), nullable=True),
    sa.Column('telegram_file_unique_id', sa.String(length=200), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=True),
    sa.Column('question_path', sa.Text(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('caption', sa.Text(), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_media_person_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], name=op.f('fk_media_submission_id_submission'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media'))
    )
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_sha256'), ['sha256'], unique=False)

    op.create_table('reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], name=op.f('fk_reminder_submission_id_submission'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder'))
    )
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminder_submission_id'), ['submission_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminder_submission_id'))

    op.drop_table('reminder')
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_sha256'))

    op.drop_table('media')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index('ix_event_submission_id')

    op.drop_table('event')
    op.drop_table('answer')
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index('ix_submission_form_version_status')

    op.drop_table('submission')
    op.drop_table('invite')
    with op.batch_alter_table('form_version', schema=None) as batch_op:
        batch_op.drop_index('ix_form_version_form_id_active')
        batch_op.drop_index(batch_op.f('ix_form_version_form_id'))

    op.drop_table('form_version')
    op.drop_table('processed_update')
    op.drop_table('person')
