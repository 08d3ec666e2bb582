"""sales: customer value columns, product plans, offer relations, mined rules, impressions

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import contactcenter.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('marketing_opt_out', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('revenue_short', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('revenue_long', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('revenue_total', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('purchase_frequency', sa.Numeric(precision=10, scale=2), nullable=True))
        batch_op.add_column(sa.Column('last_purchase_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('value_reason', sa.String(length=300), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('value_computed_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sellable', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column('plan_family', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('plan_rank', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('pitch', sa.String(length=300), nullable=False,
                                      server_default=''))

    # The server defaults only filled the existing rows; the models set these values.
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('marketing_opt_out', existing_type=sa.Boolean(),
                              server_default=None)
        batch_op.alter_column('value_reason', existing_type=sa.String(length=300),
                              server_default=None)
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.alter_column('sellable', existing_type=sa.Boolean(), server_default=None)
        batch_op.alter_column('pitch', existing_type=sa.String(length=300),
                              server_default=None)

    op.create_table('offer_stats',
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('tier', sa.String(length=8), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('declined', sa.Integer(), nullable=False),
    sa.Column('not_relevant', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'tier', name=op.f('pk_offer_stats'))
    )
    op.create_table('association_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('antecedent_product_id', sa.Integer(), nullable=False),
    sa.Column('consequent_product_id', sa.Integer(), nullable=False),
    sa.Column('pair_count', sa.Integer(), nullable=False),
    sa.Column('antecedent_count', sa.Integer(), nullable=False),
    sa.Column('consequent_count', sa.Integer(), nullable=False),
    sa.Column('baskets', sa.Integer(), nullable=False),
    sa.Column('support', sa.Double(), nullable=False),
    sa.Column('confidence', sa.Double(), nullable=False),
    sa.Column('lift', sa.Double(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('script', sa.String(length=300), nullable=False),
    sa.Column('mined_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['antecedent_product_id'], ['products.id'], name=op.f('fk_association_rules_antecedent_product_id_products'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['consequent_product_id'], ['products.id'], name=op.f('fk_association_rules_consequent_product_id_products'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_user_id'], ['users.id'], name=op.f('fk_association_rules_decided_by_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_association_rules')),
    sa.UniqueConstraint('antecedent_product_id', 'consequent_product_id', name='uq_association_rules_antecedent_consequent')
    )
    with op.batch_alter_table('association_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_association_rules_antecedent_product_id'), ['antecedent_product_id'], unique=False)
        batch_op.create_index('ix_association_rules_state_lift', ['state', 'lift'], unique=False)

    op.create_table('offer_relations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source_product_id', sa.Integer(), nullable=False),
    sa.Column('target_product_id', sa.Integer(), nullable=False),
    sa.Column('script', sa.String(length=300), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_offer_relations_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_product_id'], ['products.id'], name=op.f('fk_offer_relations_source_product_id_products'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_product_id'], ['products.id'], name=op.f('fk_offer_relations_target_product_id_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offer_relations')),
    sa.UniqueConstraint('kind', 'source_product_id', 'target_product_id', name='uq_offer_relations_kind_source_target')
    )
    with op.batch_alter_table('offer_relations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offer_relations_source_product_id'), ['source_product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_offer_relations_target_product_id'), ['target_product_id'], unique=False)

    op.create_table('offer_impressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('relation_id', sa.Integer(), nullable=True),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('contract_id', sa.Integer(), nullable=True),
    sa.Column('stat_key', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('tier', sa.String(length=8), nullable=False),
    sa.Column('probability', sa.Double(), nullable=False),
    sa.Column('expected_value', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('script', sa.String(length=300), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('shown_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('outcome_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome_user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_offer_impressions_contract_id_contracts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_offer_impressions_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['outcome_user_id'], ['users.id'], name=op.f('fk_offer_impressions_outcome_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_offer_impressions_product_id_products'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['relation_id'], ['offer_relations.id'], name=op.f('fk_offer_impressions_relation_id_offer_relations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rule_id'], ['association_rules.id'], name=op.f('fk_offer_impressions_rule_id_association_rules'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_offer_impressions_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offer_impressions'))
    )
    with op.batch_alter_table('offer_impressions', schema=None) as batch_op:
        batch_op.create_index('ix_offer_impressions_customer', ['customer_id', 'product_id', 'shown_at'], unique=False)
        batch_op.create_index('ix_offer_impressions_outcome', ['customer_id', 'outcome', 'outcome_at'], unique=False)
        batch_op.create_index('ix_offer_impressions_shown_at', ['shown_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_offer_impressions_user_id'), ['user_id'], unique=False)

    op.create_table('sales_follow_ups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('impression_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', contactcenter.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contactcenter.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_sales_follow_ups_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_sales_follow_ups_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['impression_id'], ['offer_impressions.id'], name=op.f('fk_sales_follow_ups_impression_id_offer_impressions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_sales_follow_ups_product_id_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_follow_ups')),
    sa.UniqueConstraint('impression_id', name=op.f('uq_sales_follow_ups_impression_id'))
    )
    with op.batch_alter_table('sales_follow_ups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_follow_ups_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sales_follow_ups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_follow_ups_customer_id'))
    op.drop_table('sales_follow_ups')

    with op.batch_alter_table('offer_impressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offer_impressions_user_id'))
        batch_op.drop_index('ix_offer_impressions_shown_at')
        batch_op.drop_index('ix_offer_impressions_outcome')
        batch_op.drop_index('ix_offer_impressions_customer')
    op.drop_table('offer_impressions')

    with op.batch_alter_table('offer_relations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offer_relations_target_product_id'))
        batch_op.drop_index(batch_op.f('ix_offer_relations_source_product_id'))
    op.drop_table('offer_relations')

    with op.batch_alter_table('association_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_association_rules_state_lift')
        batch_op.drop_index(batch_op.f('ix_association_rules_antecedent_product_id'))
    op.drop_table('association_rules')
    op.drop_table('offer_stats')

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_column('pitch')
        batch_op.drop_column('plan_rank')
        batch_op.drop_column('plan_family')
        batch_op.drop_column('sellable')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('value_computed_at')
        batch_op.drop_column('value_reason')
        batch_op.drop_column('last_purchase_at')
        batch_op.drop_column('purchase_frequency')
        batch_op.drop_column('revenue_total')
        batch_op.drop_column('revenue_long')
        batch_op.drop_column('revenue_short')
        batch_op.drop_column('marketing_opt_out')
