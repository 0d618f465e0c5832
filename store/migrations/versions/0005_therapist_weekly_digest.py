"""therapist weekly digest

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 00:06:15.774343
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('therapist', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest_weekday', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('digest_time', sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column('digest_sent_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('therapist', schema=None) as batch_op:
        batch_op.drop_column('digest_sent_at')
        batch_op.drop_column('digest_time')
        batch_op.drop_column('digest_weekday')

