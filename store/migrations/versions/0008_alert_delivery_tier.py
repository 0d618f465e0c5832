"""alert delivery tier: pushed at once, or kept for the pre-session brief

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 22:40:00

- alert.delivery: "push" (a Telegram message now) or "brief" (waits for the brief before the
  client's next session); existing alerts were all pushed;
- alert.briefed_at: when a brief carried the alert;
- brief: one row per client and session whose brief was claimed or sent (at most once).
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('delivery', sa.String(length=8), nullable=False, server_default='push')
        )
        batch_op.add_column(sa.Column('briefed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_alert_brief', 'alert', ['delivery', 'briefed_at'], unique=False)
    op.create_table(
        'brief',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('client_id', sa.Uuid(), nullable=False),
        sa.Column('session_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('message_id', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ['client_id'],
            ['client.id'],
            name=op.f('fk_brief_client_id_client'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_brief')),
        sa.UniqueConstraint('client_id', 'session_at', name='uq_brief_session'),
    )


def downgrade() -> None:
    op.drop_table('brief')
    op.drop_index('ix_alert_brief', table_name='alert')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_column('briefed_at')
        batch_op.drop_column('delivery')
