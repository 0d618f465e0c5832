"""scheduling: planning, sessions, reminders, quiet hours

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:33:51.524848
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('session_log',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_session_log_client_id_client'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_log'))
    )
    with op.batch_alter_table('session_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_session_log_client_id'), ['client_id'], unique=False)

    with op.batch_alter_table('checkin', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('reminder_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_checkin_reminder_at'), ['reminder_at'], unique=False)

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quiet_hours', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('session_rule', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('planned_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_client_planned_until'), ['planned_until'], unique=False)

    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template', sa.String(length=64), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('schedule', schema=None) as batch_op:
        batch_op.drop_column('template')

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_planned_until'))
        batch_op.drop_column('planned_until')
        batch_op.drop_column('session_rule')
        batch_op.drop_column('quiet_hours')

    with op.batch_alter_table('checkin', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkin_reminder_at'))
        batch_op.drop_column('reminded_at')
        batch_op.drop_column('reminder_at')
        batch_op.drop_column('claim')

    with op.batch_alter_table('session_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_session_log_client_id'))

    op.drop_table('session_log')

