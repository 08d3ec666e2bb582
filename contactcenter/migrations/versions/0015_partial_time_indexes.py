"""routing and reports: indexes on times most rows lack hold only the rows that have them

Revision ID: 0015
Revises: 0014

A routing decision updates an item's and an agent's rows without setting these times;
each such index was written at every decision all the same. Every query on them
compares the time, which implies it is set, so they serve the same queries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# (index, table, columns, the column that must be set)
INDEXES = (
    ('ix_routing_items_offer_expiry', 'routing_items', ['state', 'offer_expires_at'],
     'offer_expires_at'),
    ('ix_routing_items_rescore', 'routing_items', ['state', 'rescore_at'], 'rescore_at'),
    ('ix_routing_items_answered', 'routing_items', ['queue_id', 'answered_at'], 'answered_at'),
    ('ix_routing_items_abandoned', 'routing_items', ['queue_id', 'abandoned_at'],
     'abandoned_at'),
    ('ix_routing_items_answered_at', 'routing_items', ['answered_at'], 'answered_at'),
    ('ix_routing_items_abandoned_at', 'routing_items', ['abandoned_at'], 'abandoned_at'),
    ('ix_routing_items_external_ref', 'routing_items', ['external_ref'], 'external_ref'),
    ('ix_agent_states_wrap_up_until', 'agent_states', ['wrap_up_until'], 'wrap_up_until'),
    ('ix_agent_states_disconnected_at', 'agent_states', ['disconnected_at'], 'disconnected_at'),
)


def upgrade() -> None:
    for name, table, columns, column in INDEXES:
        where = sa.text(f'{column} IS NOT NULL')
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, unique=False, postgresql_where=where,
                        sqlite_where=where)


def downgrade() -> None:
    for name, table, columns, _column in INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, unique=False)
