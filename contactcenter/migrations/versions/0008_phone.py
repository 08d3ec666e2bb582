"""phone: call records, the raw Twilio webhook log, SMS parts, media, opt-outs, agent phones

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import contactcenter.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('phone_opt_outs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('keyword', sa.String(length=16), nullable=False),
    sa.Column('opted_out_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_opt_outs')),
    sa.UniqueConstraint('address', name=op.f('uq_phone_opt_outs_address'))
    )
    op.create_table('twilio_webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=32), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=True),
    sa.Column('idempotency_token', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('query', sa.String(length=1000), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_twilio_webhooks')),
    sa.UniqueConstraint('dedupe_key', name='uq_twilio_webhooks_dedupe_key')
    )
    with op.batch_alter_table('twilio_webhooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_twilio_webhooks_sid'), ['sid'], unique=False)
        batch_op.create_index('ix_twilio_webhooks_state', ['state', 'id'], unique=False)

    op.create_table('phone_agents',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('forward_number', sa.String(length=32), nullable=True),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_phone_agents_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_phone_agents'))
    )
    op.create_table('phone_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('from_number', sa.String(length=64), nullable=False),
    sa.Column('to_number', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('inbox_id', sa.Integer(), nullable=True),
    sa.Column('queue_id', sa.Integer(), nullable=True),
    sa.Column('routing_item_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('ivr_choices', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('fast_track', sa.Boolean(), nullable=False),
    sa.Column('started_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('queued_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('wait_seconds', sa.Integer(), nullable=True),
    sa.Column('talk_seconds', sa.Integer(), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('recording_sid', sa.String(length=64), nullable=True),
    sa.Column('recording_url', sa.String(length=500), nullable=True),
    sa.Column('recording_seconds', sa.Integer(), nullable=True),
    sa.Column('transcription', sa.Text(), nullable=False),
    sa.Column('voicemail_message_id', sa.Integer(), nullable=True),
    sa.Column('bridge_attempts', sa.Integer(), nullable=False),
    sa.Column('bridge_next_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_phone_calls_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_phone_calls_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_phone_calls_inbox_id_inboxes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_phone_calls_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], name=op.f('fk_phone_calls_queue_id_queues'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['routing_item_id'], ['routing_items.id'], name=op.f('fk_phone_calls_routing_item_id_routing_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_phone_calls_ticket_id_tickets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['voicemail_message_id'], ['messages.id'], name=op.f('fk_phone_calls_voicemail_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_calls')),
    sa.UniqueConstraint('sid', name=op.f('uq_phone_calls_sid'))
    )
    with op.batch_alter_table('phone_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phone_calls_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_phone_calls_phase', ['phase', 'bridge_next_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_phone_calls_routing_item_id'), ['routing_item_id'], unique=False)
        batch_op.create_index('ix_phone_calls_ticket', ['ticket_id', 'id'], unique=False)

    op.create_table('phone_sms_parts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('part', sa.Integer(), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.String(length=16), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_phone_sms_parts_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_sms_parts')),
    sa.UniqueConstraint('message_id', 'part', name='uq_phone_sms_parts_message_id_part'),
    sa.UniqueConstraint('sid', name=op.f('uq_phone_sms_parts_sid'))
    )
    op.create_table('phone_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=1000), nullable=False),
    sa.Column('content_type', sa.String(length=127), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('attachment_id', sa.Integer(), nullable=True),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attachment_id'], ['attachments.id'], name=op.f('fk_phone_media_attachment_id_attachments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_phone_media_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_media'))
    )
    with op.batch_alter_table('phone_media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phone_media_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_phone_media_state'), ['state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('phone_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phone_media_state'))
        batch_op.drop_index(batch_op.f('ix_phone_media_message_id'))

    op.drop_table('phone_media')
    op.drop_table('phone_sms_parts')
    with op.batch_alter_table('phone_calls', schema=None) as batch_op:
        batch_op.drop_index('ix_phone_calls_ticket')
        batch_op.drop_index(batch_op.f('ix_phone_calls_routing_item_id'))
        batch_op.drop_index('ix_phone_calls_phase')
        batch_op.drop_index(batch_op.f('ix_phone_calls_customer_id'))

    op.drop_table('phone_calls')
    op.drop_table('phone_agents')
    with op.batch_alter_table('twilio_webhooks', schema=None) as batch_op:
        batch_op.drop_index('ix_twilio_webhooks_state')
        batch_op.drop_index(batch_op.f('ix_twilio_webhooks_sid'))

    op.drop_table('twilio_webhooks')
    op.drop_table('phone_opt_outs')
