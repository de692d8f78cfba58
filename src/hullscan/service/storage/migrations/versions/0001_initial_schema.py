"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-07 02:58:18.972939
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hullscan.service.storage.models

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=512), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('registries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=512), nullable=False),
    sa.Column('insecure', sa.Boolean(), nullable=False),
    sa.Column('username', sa.String(length=256), nullable=True),
    sa.Column('password_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('ca_cert', sa.Text(), nullable=True),
    sa.Column('cluster', sa.String(length=64), nullable=False),
    sa.Column('max_concurrent_scans', sa.Integer(), nullable=True),
    sa.Column('hook_token_hash', sa.String(length=64), nullable=True),
    sa.Column('last_sync_state', sa.String(length=16), nullable=True),
    sa.Column('last_sync_started_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sync_finished_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sync_cause', sa.JSON(), nullable=True),
    sa.Column('last_sync_counts', sa.JSON(), nullable=True),
    sa.Column('created_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('service_settings',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('namespaces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('auto_scan', sa.Boolean(), nullable=False),
    sa.Column('block_enabled', sa.Boolean(), nullable=False),
    sa.Column('block_severity', sa.String(length=16), nullable=False),
    sa.Column('block_unscanned', sa.Boolean(), nullable=False),
    sa.Column('block_kev', sa.Boolean(), nullable=False),
    sa.Column('reuse_system_allowlist', sa.Boolean(), nullable=False),
    sa.Column('created_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registry_id'], ['registries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('registry_id', 'name')
    )
    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('allowlist_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=True),
    sa.Column('vuln_id', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('expires_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('namespace_id', 'vuln_id')
    )
    op.create_table('images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sa.Integer(), nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('repository', sa.String(length=512), nullable=False),
    sa.Column('reference', sa.String(length=256), nullable=False),
    sa.Column('tag', sa.String(length=256), nullable=True),
    sa.Column('digest', sa.String(length=160), nullable=True),
    sa.Column('media_type', sa.String(length=160), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('platform', sa.String(length=64), nullable=True),
    sa.Column('pushed_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_seen', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.Column('last_scan_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registry_id'], ['registries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('registry_id', 'repository', 'reference')
    )
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.create_index('ix_images_digest', ['registry_id', 'digest'], unique=False)

    op.create_table('memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'namespace_id')
    )
    op.create_table('schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sa.Integer(), nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('cron', sa.String(length=128), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('last_run_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_run_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registry_id'], ['registries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('scans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=160), nullable=True),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('requested_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('progress_text', sa.String(length=256), nullable=False),
    sa.Column('stop_requested', sa.Boolean(), nullable=False),
    sa.Column('worker', sa.String(length=128), nullable=True),
    sa.Column('heartbeat_at', hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('cause_code', sa.String(length=64), nullable=True),
    sa.Column('cause_message', sa.Text(), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.Column('database_built_at', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registry_id'], ['registries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.create_index('ix_scans_image', ['image_id', 'id'], unique=False)
        batch_op.create_index('ix_scans_registry_state', ['registry_id', 'state'], unique=False)
        batch_op.create_index('ix_scans_state_priority', ['state', 'priority', 'id'], unique=False)

    op.create_table('scan_results',
    sa.Column('scan_id', sa.Integer(), nullable=False),
    sa.Column('report', sa.LargeBinary(), nullable=False),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['scan_id'], ['scans.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('scan_id')
    )
    # images.last_scan_id and scans.image_id point at each other: the second key comes once both tables exist
    # (SQLite cannot add a key to a table, so there it is written into a copy of the table by batch mode).
    with op.batch_alter_table('images') as batch_op:
        batch_op.create_foreign_key('fk_images_last_scan_id', 'scans', ['last_scan_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('images') as batch_op:
        batch_op.drop_constraint('fk_images_last_scan_id', type_='foreignkey')
    op.drop_table('scan_results')
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_index('ix_scans_state_priority')
        batch_op.drop_index('ix_scans_registry_state')
        batch_op.drop_index('ix_scans_image')

    op.drop_table('scans')
    op.drop_table('schedules')
    op.drop_table('memberships')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index('ix_images_digest')

    op.drop_table('images')
    op.drop_table('allowlist_entries')
    op.drop_table('sessions')
    op.drop_table('namespaces')
    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('service_settings')
    op.drop_table('registries')
    op.drop_table('audit_log')
