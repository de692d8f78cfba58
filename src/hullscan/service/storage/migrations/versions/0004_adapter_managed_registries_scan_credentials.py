"""Harbor scanner adapter: registries created by the adapter, and a scan's own sealed pull credentials

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('registries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('managed_by', sa.String(length=32), nullable=True))
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pull_authorization', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_column('pull_authorization')
    with op.batch_alter_table('registries', schema=None) as batch_op:
        batch_op.drop_column('managed_by')
