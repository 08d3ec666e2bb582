"""autoreply log: automatic e-mail sent or withheld (caps, loop guard, supervisor alerts)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 23:22:25.926945
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import contactcenter.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('autoreply_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('inbox_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('suppressed_reason', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_autoreply_log_inbox_id_inboxes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_autoreply_log_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_autoreply_log_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autoreply_log')),
    sa.UniqueConstraint('ticket_id', 'kind', name='uq_autoreply_log_ticket_id_kind')
    )
    with op.batch_alter_table('autoreply_log', schema=None) as batch_op:
        batch_op.create_index('ix_autoreply_log_inbox_sent_at', ['inbox_id', 'sent_at'], unique=False)
        batch_op.create_index('ix_autoreply_log_sender_sent_at', ['sender', 'sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('autoreply_log', schema=None) as batch_op:
        batch_op.drop_index('ix_autoreply_log_sender_sent_at')
        batch_op.drop_index('ix_autoreply_log_inbox_sent_at')

    op.drop_table('autoreply_log')
