"""one outbox shape: notices, briefs and digests get the columns alerts have

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 22:50:00

Every message row (alert, notice, brief, digest) has next_delivery_at, delivery_attempts,
delivered_at and message_id (store.outbox):
- notice: message_id added;
- brief: sent_at becomes delivered_at; next_delivery_at and delivery_attempts added;
- digest: a new table, one row per therapist and local day, replacing therapist.digest_sent_at
  (each therapist's last digest becomes a delivered row, so an upgrade on digest day sends
  no second one).
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('brief', schema=None) as batch_op:
        batch_op.alter_column('sent_at', new_column_name='delivered_at')
        batch_op.add_column(
            sa.Column('next_delivery_at', sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column('delivery_attempts', sa.Integer(), nullable=False, server_default='0')
        )
        batch_op.create_index('ix_brief_next_delivery_at', ['next_delivery_at'], unique=False)
    digest = op.create_table(
        'digest',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('therapist_id', sa.Uuid(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_delivery_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivery_attempts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('message_id', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ['therapist_id'],
            ['therapist.id'],
            name=op.f('fk_digest_therapist_id_therapist'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_digest')),
        sa.UniqueConstraint('therapist_id', 'day', name='uq_digest_day'),
    )
    op.create_index('ix_digest_next_delivery_at', 'digest', ['next_delivery_at'], unique=False)
    therapist = sa.table(
        'therapist',
        sa.column('id', sa.Uuid()),
        sa.column('digest_sent_at', sa.DateTime(timezone=True)),
    )
    sent = op.get_bind().execute(
        sa.select(therapist.c.id, therapist.c.digest_sent_at).where(
            therapist.c.digest_sent_at.is_not(None)
        )
    )
    rows = [
        {
            'id': uuid.uuid4(),
            'therapist_id': therapist_id,
            'day': at.date(),
            'claimed_at': at,
            'delivered_at': at,
            'delivery_attempts': 1,
        }
        for therapist_id, at in sent
    ]
    if rows:
        op.bulk_insert(digest, rows)
    # Not batch mode: on SQLite that copies the table, and other tables' foreign keys refer
    # to it. DROP COLUMN needs SQLite 3.35 (2021); an older one keeps the unused column.
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite' or sqlite_version(bind) >= (3, 35):
        op.execute('ALTER TABLE therapist DROP COLUMN digest_sent_at')


def sqlite_version(bind: sa.engine.Connection) -> tuple[int, ...]:
    text = bind.exec_driver_sql('select sqlite_version()').scalar_one()
    return tuple(int(part) for part in str(text).split('.'))


def downgrade() -> None:
    op.add_column('therapist', sa.Column('digest_sent_at', sa.DateTime(timezone=True), nullable=True))
    op.drop_index('ix_digest_next_delivery_at', table_name='digest')
    op.drop_table('digest')
    with op.batch_alter_table('brief', schema=None) as batch_op:
        batch_op.drop_index('ix_brief_next_delivery_at')
        batch_op.drop_column('delivery_attempts')
        batch_op.drop_column('next_delivery_at')
        batch_op.alter_column('delivered_at', new_column_name='sent_at')
    with op.batch_alter_table('notice', schema=None) as batch_op:
        batch_op.drop_column('message_id')
