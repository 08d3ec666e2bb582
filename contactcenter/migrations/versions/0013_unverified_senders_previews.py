"""email identity and previews: unverified tickets (ID-1), attachment previews (ATT-2)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender_unverified', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('claimed_ticket_number', sa.Integer(), nullable=True))
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preview_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('preview_sha256', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_column('preview_sha256')
        batch_op.drop_column('preview_state')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('claimed_ticket_number')
        batch_op.drop_column('sender_unverified')
