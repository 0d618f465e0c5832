"""client language and therapist notices

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 21:17:02.617857
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('notice',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('therapist_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('body_enc', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_delivery_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivery_attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapist.id'], name=op.f('fk_notice_therapist_id_therapist'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice'))
    )
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notice_next_delivery_at'), ['next_delivery_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_therapist_id'), ['therapist_id'], unique=False)

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=False, server_default='en'))




def downgrade() -> None:

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('language')

    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_therapist_id'))
        batch_op.drop_index(batch_op.f('ix_notice_next_delivery_at'))

    op.drop_table('notice')

