"""customers: a contract's own on-site commitment for field visits

Revision ID: 0016
Revises: 0015

Until now a visit's deadline came from the contract level's commitment only
(``CONTACTCENTER_FIELD_ONSITE_COMMITMENTS``); a contract may now carry its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contracts') as batch:
        batch.add_column(sa.Column('onsite_minutes', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('contracts') as batch:
        batch.drop_column('onsite_minutes')
