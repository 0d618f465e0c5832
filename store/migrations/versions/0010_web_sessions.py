"""web sessions: one-time dashboard links and signed-in browsers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00

- web_login: a one-time link to the web dashboard (sent through the bot, or printed by
  `rapport web link`), valid for minutes; only the SHA-256 of its token is stored;
- web_session: a signed-in browser; only the SHA-256 of its cookie is stored; it ends at
  `expires_at` or when the therapist signs out (`ended_at`).
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_login',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('therapist_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['therapist_id'],
            ['therapist.id'],
            name=op.f('fk_web_login_therapist_id_therapist'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_web_login')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_web_login_token_hash')),
    )
    op.create_index(
        op.f('ix_web_login_therapist_id'), 'web_login', ['therapist_id'], unique=False
    )
    op.create_table(
        'web_session',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
        sa.Column('therapist_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['therapist_id'],
            ['therapist.id'],
            name=op.f('fk_web_session_therapist_id_therapist'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_web_session')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_web_session_token_hash')),
    )
    op.create_index(
        op.f('ix_web_session_therapist_id'), 'web_session', ['therapist_id'], unique=False
    )
    op.create_index(
        op.f('ix_web_session_expires_at'), 'web_session', ['expires_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_web_session_expires_at'), table_name='web_session')
    op.drop_index(op.f('ix_web_session_therapist_id'), table_name='web_session')
    op.drop_table('web_session')
    op.drop_index(op.f('ix_web_login_therapist_id'), table_name='web_login')
    op.drop_table('web_login')
