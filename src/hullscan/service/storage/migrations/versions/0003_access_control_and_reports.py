"""access: when a password was last set; indexes for sessions, tokens, the audit log, usage per month and the
last scan of a digest; one entry per vulnerability in the system-wide allowlist

Revision ID: 0003
Revises: 0004
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hullscan.service.storage.models

revision = '0003'
down_revision = '0004'
branch_labels = None
depends_on = None

_SYSTEM = sa.text("namespace_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_changed_at',
                                      hullscan.service.storage.models.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_api_tokens_user', ['user_id'], unique=False)
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_user', ['user_id'], unique=False)
        batch_op.create_index('ix_sessions_expires', ['expires_at'], unique=False)
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_action', ['action', 'at'], unique=False)
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.create_index('ix_scans_registry_finished', ['registry_id', 'state', 'finished_at'], unique=False)
        batch_op.create_index('ix_scans_digest', ['registry_id', 'digest'], unique=False)
    # Duplicates in the system list (possible until now: NULL namespace ids never collided) keep their newest.
    op.execute("DELETE FROM allowlist_entries WHERE namespace_id IS NULL AND id NOT IN "
               "(SELECT max(id) FROM allowlist_entries WHERE namespace_id IS NULL GROUP BY vuln_id)")
    op.create_index('uq_allowlist_system', 'allowlist_entries', ['vuln_id'], unique=True,
                    sqlite_where=_SYSTEM, postgresql_where=_SYSTEM)


def downgrade() -> None:
    op.drop_index('uq_allowlist_system', table_name='allowlist_entries')
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_index('ix_scans_digest')
        batch_op.drop_index('ix_scans_registry_finished')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_action')
        batch_op.drop_index('ix_audit_at')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_expires')
        batch_op.drop_index('ix_sessions_user')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_api_tokens_user')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
