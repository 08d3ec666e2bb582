"""routing: agents' free kinds, kept with their load, and the index of free agents

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

FREE = sa.text("presence = 'available' AND free_kinds <> ''")
# The built-in exclusive pair (CONTACTCENTER_ROUTING_EXCLUSIVE="call:chat"); the
# engine rewrites an agent's free kinds under their lock whenever it matches them.
EXCLUSIVE = {"call": ("chat",), "chat": ("call",), "ticket": ()}


def upgrade() -> None:
    with op.batch_alter_table('agent_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('free_kinds', sa.String(length=32), nullable=False,
                                      server_default=''))
    op.create_index('ix_agent_states_free', 'agent_states', ['last_assigned_at', 'user_id'],
                    unique=False, postgresql_where=FREE, sqlite_where=FREE)
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT user_id, kind, maximum, load FROM agent_capacities"))
    caps: dict[int, dict[str, tuple[int, int]]] = {}
    for user_id, kind, maximum, load in rows:
        caps.setdefault(user_id, {})[kind] = (maximum, load)
    for user_id, kinds in caps.items():
        free = [k for k, (maximum, load) in sorted(kinds.items()) if load < maximum
                and not any(kinds.get(o, (0, 0))[1] > 0 for o in EXCLUSIVE.get(k, ()))]
        if free:
            conn.execute(sa.text("UPDATE agent_states SET free_kinds = :f WHERE user_id = :u"),
                         {"f": "," + ",".join(free) + ",", "u": user_id})


def downgrade() -> None:
    op.drop_index('ix_agent_states_free', table_name='agent_states')
    with op.batch_alter_table('agent_states', schema=None) as batch_op:
        batch_op.drop_column('free_kinds')
