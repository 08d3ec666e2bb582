"""chat and forms

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import contactcenter.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_forms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('queue_id', sa.Integer(), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('acknowledge', sa.Boolean(), nullable=False),
    sa.Column('success_message', sa.Text(), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], name=op.f('fk_web_forms_queue_id_queues'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_forms')),
    sa.UniqueConstraint('slug', name=op.f('uq_web_forms_slug'))
    )
    op.create_table('chat_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('visitor_id', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('routing_item_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('identified', sa.Boolean(), nullable=False),
    sa.Column('external_user_id', sa.String(length=200), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('page_url', sa.String(length=2000), nullable=False),
    sa.Column('page_title', sa.String(length=300), nullable=False),
    sa.Column('user_agent', sa.String(length=500), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('started_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_reason', sa.String(length=32), nullable=False),
    sa.Column('last_visitor_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_agent_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_activity_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('warned_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('visitor_read_id', sa.Integer(), nullable=False),
    sa.Column('agent_read_id', sa.Integer(), nullable=False),
    sa.Column('transcript_sent_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_chat_sessions_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_chat_sessions_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['routing_item_id'], ['routing_items.id'], name=op.f('fk_chat_sessions_routing_item_id_routing_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_chat_sessions_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_sessions')),
    sa.UniqueConstraint('public_id', name=op.f('uq_chat_sessions_public_id'))
    )
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_sessions_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_sessions_routing_item_id'), ['routing_item_id'], unique=False)
        batch_op.create_index('ix_chat_sessions_state_activity', ['state', 'last_activity_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_chat_sessions_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_index('ix_chat_sessions_visitor', ['visitor_id', 'state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_sessions_visitor')
        batch_op.drop_index(batch_op.f('ix_chat_sessions_ticket_id'))
        batch_op.drop_index('ix_chat_sessions_state_activity')
        batch_op.drop_index(batch_op.f('ix_chat_sessions_routing_item_id'))
        batch_op.drop_index(batch_op.f('ix_chat_sessions_customer_id'))

    op.drop_table('chat_sessions')
    op.drop_table('web_forms')
