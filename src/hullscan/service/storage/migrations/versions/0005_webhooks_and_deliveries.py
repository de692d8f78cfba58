"""notifications: webhook policies and their deliveries (the outbox and the delivery log)

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hullscan.service.storage.models

revision = '0005'
down_revision = '0002'
branch_labels = None
depends_on = None

UTC = hullscan.service.storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'webhooks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('namespace_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('url', sa.String(length=2048), nullable=False),
        sa.Column('event_types', sa.JSON(), nullable=False),
        sa.Column('secret_encrypted', sa.LargeBinary(), nullable=True),
        sa.Column('auth_header_encrypted', sa.LargeBinary(), nullable=True),
        sa.Column('skip_cert_verify', sa.Boolean(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('created_by', sa.String(length=128), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhooks_namespace', 'webhooks', ['namespace_id', 'enabled'])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('webhook_id', sa.Integer(), nullable=False),
        sa.Column('event_type', sa.String(length=32), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('dedupe_key', sa.String(length=700), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', UTC, nullable=True),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_attempt_at', UTC, nullable=True),
        sa.Column('delivered_at', UTC, nullable=True),
        sa.Column('created_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_deliveries_due', 'webhook_deliveries', ['state', 'next_attempt_at'])
    op.create_index('ix_deliveries_webhook', 'webhook_deliveries', ['webhook_id', 'id'])
    op.create_index('ix_deliveries_dedupe', 'webhook_deliveries', ['webhook_id', 'dedupe_key', 'created_at'])


def downgrade() -> None:
    op.drop_table('webhook_deliveries')
    op.drop_table('webhooks')
