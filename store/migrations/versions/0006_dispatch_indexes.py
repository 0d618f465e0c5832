"""dispatch indexes: an idle dispatcher tick reads indexes, not whole tables

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 00:20:53.491480

- checkin: the expiry of the check-ins that can still expire (an expression, empty for all
  others), for closing expired check-ins without reading the growing history;
- client (paused_until), for waking paused clients;
- client.planned_until filled in where it is empty, so that finding the clients to plan is a
  range on its index (empty meant "plan from now"; every way of activating a client sets it).
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# As store.models.OPEN_EXPIRY was when this revision was written.
OPEN_EXPIRY = "(CASE WHEN state IN ('due', 'sent', 'in_progress') THEN expires_at END)"


def upgrade() -> None:
    op.create_index('ix_checkin_open_expiry', 'checkin', [sa.text(OPEN_EXPIRY)], unique=False)

    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_paused_until'), ['paused_until'], unique=False)

    now = datetime.now(UTC)
    if op.get_bind().dialect.name == 'sqlite':
        now = now.replace(tzinfo=None)  # as store.models.UTCDateTime stores it there
    op.execute(
        sa.text('UPDATE client SET planned_until = :now WHERE planned_until IS NULL').bindparams(
            sa.bindparam('now', now, type_=sa.DateTime(timezone=True))
        )
    )


def downgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_paused_until'))

    op.drop_index('ix_checkin_open_expiry', table_name='checkin')
