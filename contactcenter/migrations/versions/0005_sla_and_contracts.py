"""sla and contracts: business calendars, SLA policies and clocks, contract coverage

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import contactcenter.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sla_calendars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('hours', sa.String(length=1000), nullable=False),
    sa.Column('holiday_country', sa.String(length=8), nullable=True),
    sa.Column('holiday_subdivision', sa.String(length=16), nullable=True),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_calendars')),
    sa.UniqueConstraint('name', name=op.f('uq_sla_calendars_name'))
    )
    op.create_table('sla_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_notifications')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_sla_notifications_dedupe_key'))
    )
    with op.batch_alter_table('sla_notifications', schema=None) as batch_op:
        batch_op.create_index('ix_sla_notifications_due', ['state', 'next_attempt_at'], unique=False)

    op.create_table('sla_calendar_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('hours', sa.String(length=200), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['sla_calendars.id'], name=op.f('fk_sla_calendar_exceptions_calendar_id_sla_calendars'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_calendar_exceptions')),
    sa.UniqueConstraint('calendar_id', 'day', name='uq_sla_calendar_exceptions_calendar_day')
    )
    op.create_table('sla_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=True),
    sa.Column('pause_on_hold', sa.Boolean(), nullable=False),
    sa.Column('warn_percent', sa.Integer(), nullable=False),
    sa.Column('match_channel', sa.String(length=16), nullable=True),
    sa.Column('match_queue_id', sa.Integer(), nullable=True),
    sa.Column('match_tier', sa.String(length=8), nullable=True),
    sa.Column('match_organisation_id', sa.Integer(), nullable=True),
    sa.Column('match_contract_level', sa.String(length=50), nullable=True),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['sla_calendars.id'], name=op.f('fk_sla_policies_calendar_id_sla_calendars'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['match_organisation_id'], ['organisations.id'], name=op.f('fk_sla_policies_match_organisation_id_organisations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['match_queue_id'], ['queues.id'], name=op.f('fk_sla_policies_match_queue_id_queues'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_policies')),
    sa.UniqueConstraint('name', name=op.f('uq_sla_policies_name'))
    )
    op.create_table('sla_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=True),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['sla_policies.id'], name=op.f('fk_sla_targets_policy_id_sla_policies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_targets')),
    sa.UniqueConstraint('policy_id', 'kind', 'priority', name='uq_sla_targets_policy_kind_priority')
    )
    op.create_table('contract_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.String(length=300), nullable=False),
    sa.Column('sent_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_contract_alerts_contract_id_contracts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_alerts')),
    sa.UniqueConstraint('contract_id', 'kind', name='uq_contract_alerts_contract_kind')
    )
    op.create_table('contract_products',
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_contract_products_contract_id_contracts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_contract_products_product_id_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contract_id', 'product_id', name=op.f('pk_contract_products'))
    )
    op.create_table('contract_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('incidents', sa.Integer(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('counted_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_contract_usage_contract_id_contracts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_contract_usage_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_usage')),
    sa.UniqueConstraint('contract_id', 'ticket_id', name='uq_contract_usage_contract_ticket')
    )
    with op.batch_alter_table('contract_usage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contract_usage_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('sla_clocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('cycle', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=True),
    sa.Column('calendar_id', sa.Integer(), nullable=True),
    sa.Column('target_minutes', sa.Integer(), nullable=False),
    sa.Column('warn_percent', sa.Integer(), nullable=False),
    sa.Column('pause_on_hold', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('running_since', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('elapsed_seconds', sa.Integer(), nullable=False),
    sa.Column('warn_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('due_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_check_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('warned_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('breached_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('breach_reported_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('met_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('business_seconds', sa.Integer(), nullable=True),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['sla_calendars.id'], name=op.f('fk_sla_clocks_calendar_id_sla_calendars'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['policy_id'], ['sla_policies.id'], name=op.f('fk_sla_clocks_policy_id_sla_policies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_sla_clocks_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_clocks')),
    sa.UniqueConstraint('ticket_id', 'kind', 'cycle', name='uq_sla_clocks_ticket_kind_cycle')
    )
    with op.batch_alter_table('sla_clocks', schema=None) as batch_op:
        batch_op.create_index('ix_sla_clocks_next_check', ['next_check_at'], unique=False, postgresql_where=sa.text('next_check_at IS NOT NULL'), sqlite_where=sa.text('next_check_at IS NOT NULL'))
        batch_op.create_index('ix_sla_clocks_policy', ['policy_id'], unique=False)
        batch_op.create_index('ix_sla_clocks_started', ['started_at'], unique=False)

    op.create_table('ticket_sla',
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=True),
    sa.Column('policy_name', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=True),
    sa.Column('contract_id', sa.Integer(), nullable=True),
    sa.Column('entitlement', sa.String(length=16), nullable=False),
    sa.Column('entitlement_note', sa.String(length=300), nullable=False),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['sla_calendars.id'], name=op.f('fk_ticket_sla_calendar_id_sla_calendars'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_ticket_sla_contract_id_contracts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['policy_id'], ['sla_policies.id'], name=op.f('fk_ticket_sla_policy_id_sla_policies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_sla_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ticket_id', name=op.f('pk_ticket_sla'))
    )
    with op.batch_alter_table('ticket_sla', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_sla_contract_id'), ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_sla_policy_id'), ['policy_id'], unique=False)

    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organisation_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('calendar_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sla_policy_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('allowance_kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('allowance_amount', sa.Numeric(precision=10, scale=2), nullable=True))
        batch_op.add_column(sa.Column('allowance_used', sa.Numeric(precision=10, scale=2), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('renewal_state', sa.String(length=16), nullable=False, server_default='none'))
        batch_op.add_column(sa.Column('account_owner_id', sa.Integer(), nullable=True))
        batch_op.alter_column('customer_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_contracts_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_contracts_account_owner_id_users'), 'users', ['account_owner_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_contracts_calendar_id_sla_calendars'), 'sla_calendars', ['calendar_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_contracts_organisation_id_organisations'), 'organisations', ['organisation_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key(batch_op.f('fk_contracts_sla_policy_id_sla_policies'), 'sla_policies', ['sla_policy_id'], ['id'], ondelete='SET NULL')
        batch_op.create_check_constraint('owner', 'customer_id IS NOT NULL OR organisation_id IS NOT NULL')

    # The server defaults only filled the existing rows; the models set these values.
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.alter_column('allowance_used', server_default=None,
                              existing_type=sa.Numeric(precision=10, scale=2),
                              existing_nullable=False)
        batch_op.alter_column('renewal_state', server_default=None,
                              existing_type=sa.String(length=16), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_contracts_owner'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_contracts_sla_policy_id_sla_policies'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_contracts_organisation_id_organisations'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_contracts_calendar_id_sla_calendars'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_contracts_account_owner_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_contracts_organisation_id'))
        batch_op.alter_column('customer_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('account_owner_id')
        batch_op.drop_column('renewal_state')
        batch_op.drop_column('allowance_used')
        batch_op.drop_column('allowance_amount')
        batch_op.drop_column('allowance_kind')
        batch_op.drop_column('sla_policy_id')
        batch_op.drop_column('calendar_id')
        batch_op.drop_column('organisation_id')

    with op.batch_alter_table('ticket_sla', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_sla_policy_id'))
        batch_op.drop_index(batch_op.f('ix_ticket_sla_contract_id'))

    op.drop_table('ticket_sla')
    with op.batch_alter_table('sla_clocks', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_clocks_started')
        batch_op.drop_index('ix_sla_clocks_policy')
        batch_op.drop_index('ix_sla_clocks_next_check', postgresql_where=sa.text('next_check_at IS NOT NULL'), sqlite_where=sa.text('next_check_at IS NOT NULL'))

    op.drop_table('sla_clocks')
    with op.batch_alter_table('contract_usage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contract_usage_ticket_id'))

    op.drop_table('contract_usage')
    op.drop_table('contract_products')
    op.drop_table('contract_alerts')
    op.drop_table('sla_targets')
    op.drop_table('sla_policies')
    op.drop_table('sla_calendar_exceptions')
    with op.batch_alter_table('sla_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_notifications_due')

    op.drop_table('sla_notifications')
    op.drop_table('sla_calendars')
