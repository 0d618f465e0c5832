"""invite opened by: a client's invitation is bound to the account that opened its link

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 09:00:00.000000

- invite.opened_by_hash: the blind index (keyed HMAC, as client.telegram_hash) of the Telegram
  account that opened a client's invite link; only that account may then consent. Empty for
  invites whose link was not opened yet, and for those opened before this revision: their
  invitee opens the link again, which binds it.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_by_hash', sa.LargeBinary(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invite', schema=None) as batch_op:
        batch_op.drop_column('opened_by_hash')
