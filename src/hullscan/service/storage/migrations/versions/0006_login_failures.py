"""login throttle: failed log-ins kept in the database, shared by every API process

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'login_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=256), nullable=False),
        sa.Column('client', sa.String(length=64), nullable=False),
        sa.Column('failed_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_login_failures_pair', 'login_failures', ['username', 'client', 'failed_at'])
    op.create_index('ix_login_failures_at', 'login_failures', ['failed_at'])


def downgrade() -> None:
    op.drop_index('ix_login_failures_at', table_name='login_failures')
    op.drop_index('ix_login_failures_pair', table_name='login_failures')
    op.drop_table('login_failures')
