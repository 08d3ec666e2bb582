"""reports csat

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import contactcenter.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('csat_surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('solve_round', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('queue_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('nonce', sa.String(length=32), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_csat_surveys_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_csat_surveys_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['queue_id'], ['queues.id'], name=op.f('fk_csat_surveys_queue_id_queues'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_csat_surveys_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_csat_surveys')),
    sa.UniqueConstraint('nonce', name=op.f('uq_csat_surveys_nonce')),
    sa.UniqueConstraint('ticket_id', 'solve_round', name='uq_csat_surveys_ticket_round')
    )
    with op.batch_alter_table('csat_surveys', schema=None) as batch_op:
        batch_op.create_index('ix_csat_surveys_agent_answered', ['agent_id', 'answered_at'], unique=False)
        batch_op.create_index('ix_csat_surveys_answered', ['answered_at'], unique=False)

    # The reports' period indexes on tickets and routing items (see reports/models.py).
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_tickets_first_response_at', ['first_response_at'], unique=False)
        batch_op.create_index('ix_tickets_solved_at', ['solved_at'], unique=False)
    with op.batch_alter_table('routing_items', schema=None) as batch_op:
        batch_op.create_index('ix_routing_items_answered_at', ['answered_at'], unique=False)
        batch_op.create_index('ix_routing_items_abandoned_at', ['abandoned_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('routing_items', schema=None) as batch_op:
        batch_op.drop_index('ix_routing_items_abandoned_at')
        batch_op.drop_index('ix_routing_items_answered_at')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_solved_at')
        batch_op.drop_index('ix_tickets_first_response_at')
        batch_op.drop_index('ix_tickets_created_at')

    with op.batch_alter_table('csat_surveys', schema=None) as batch_op:
        batch_op.drop_index('ix_csat_surveys_answered')
        batch_op.drop_index('ix_csat_surveys_agent_answered')

    op.drop_table('csat_surveys')
