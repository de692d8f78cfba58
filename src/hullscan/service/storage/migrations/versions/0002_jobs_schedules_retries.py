"""jobs: schedules with a time zone, an outcome and no registry (database updates); scans that wait to retry and
the vulnerability data version they matched

Revision ID: 0002
Revises: 0003 (re-chained after 0004 and 0003, which landed first)
Create Date: 2026-12-07 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hullscan.service.storage.models

revision = '0002'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.alter_column('registry_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=False, server_default='UTC'))
        batch_op.add_column(sa.Column('last_outcome', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.String(length=128), nullable=False, server_default=''))
        batch_op.create_index('ix_schedules_due', ['enabled', 'next_run_at'])
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_before', hullscan.service.storage.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('database_version', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_column('database_version')
        batch_op.drop_column('not_before')
    op.execute("DELETE FROM schedules WHERE registry_id IS NULL")
    with op.batch_alter_table('schedules', schema=None) as batch_op:
        batch_op.drop_index('ix_schedules_due')
        batch_op.drop_column('created_by')
        batch_op.drop_column('last_outcome')
        batch_op.drop_column('timezone')
        batch_op.alter_column('registry_id', existing_type=sa.Integer(), nullable=False)
