"""alert acknowledgement, snooze and context

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 22:09:08.424384
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context_enc', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('snoozed_until', sa.DateTime(timezone=True), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_column('snoozed_until')
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('context_enc')


