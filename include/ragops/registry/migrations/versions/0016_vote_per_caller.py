"""vote per caller: `feedback` is unique per (request id, caller), no longer per request id

Request ids are client-chosen (X-Request-ID), so two callers could share one and with it one vote slot: the second
caller's vote on its own answer was refused. Now each caller keeps its own vote on its own request.

SQLite cannot drop the unnamed unique constraint 0014 created, so there the table is copied (batch mode, from an
explicit definition rather than reflection). The downgrade keeps, per request id, the vote cast first (the one the
old rule let stand) and drops the others before the old constraint comes back.

Revision ID: 0016_vote_per_caller
Revises: 0015c_content_gaps
"""
from alembic import op
import sqlalchemy as sa


revision = '0016_vote_per_caller'
down_revision = '0015c_content_gaps'
branch_labels = None
depends_on = None

NEW = 'uq_feedback_request_caller'
OLD_POSTGRES = 'feedback_request_id_key'  # PostgreSQL's name for 0014's unnamed UNIQUE (request_id)


def _feedback(*constraints) -> sa.Table:
    """The `feedback` table as 0014 created it, with `constraints` in place of its unique one."""
    return sa.Table('feedback', sa.MetaData(),
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('request_id', sa.String(length=64), nullable=False),
                    sa.Column('user_hash', sa.String(length=64), nullable=False),
                    sa.Column('rating', sa.String(length=8), nullable=False),
                    sa.Column('reason', sa.String(length=32), nullable=True),
                    sa.Column('comment', sa.Text(), nullable=True),
                    sa.Column('cited_followed', sa.Boolean(), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.Index('ix_feedback_ts', 'ts'),
                    *constraints)


def _unique_on_request_id(bind) -> str:
    """The name of the unique constraint on `request_id` alone (PostgreSQL names it; a restored dump may differ)."""
    for constraint in sa.inspect(bind).get_unique_constraints('feedback'):
        if constraint['column_names'] == ['request_id'] and constraint['name']:
            return constraint['name']
    return OLD_POSTGRES


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        with op.batch_alter_table('feedback', copy_from=_feedback(), recreate='always') as batch_op:
            batch_op.create_unique_constraint(NEW, ['request_id', 'user_hash'])
        return
    op.drop_constraint(_unique_on_request_id(bind), 'feedback', type_='unique')
    op.create_unique_constraint(NEW, 'feedback', ['request_id', 'user_hash'])


def downgrade() -> None:
    op.execute("DELETE FROM feedback WHERE id NOT IN (SELECT first FROM (SELECT min(id) AS first FROM feedback "
               "GROUP BY request_id) AS kept)")
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        with op.batch_alter_table('feedback', copy_from=_feedback(sa.UniqueConstraint('request_id')),
                                  recreate='always'):
            pass
        return
    op.drop_constraint(NEW, 'feedback', type_='unique')
    op.create_unique_constraint(OLD_POSTGRES, 'feedback', ['request_id'])
