"""release gates (issue 9): accepted eval runs, rollout start, probe flag on request events, collection manifests

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('collection_documents',
    sa.Column('collection', sa.String(length=256), nullable=False),
    sa.Column('uri', sa.String(length=1024), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=512), nullable=False),
    sa.Column('n_chunks', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('collection', 'uri')
    )
    with op.batch_alter_table('eval_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_by', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True))
    # Runs that passed their gate before this revision are the baselines they were.
    op.execute("UPDATE eval_runs SET accepted_by = 'gate', accepted_at = created_at WHERE status = 'ok'")
    with op.batch_alter_table('rollout_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE rollout_state SET started_at = stage_started_at")
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('synthetic', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.drop_column('synthetic')
    with op.batch_alter_table('rollout_state', schema=None) as batch_op:
        batch_op.drop_column('started_at')
    with op.batch_alter_table('eval_runs', schema=None) as batch_op:
        batch_op.drop_column('accepted_at')
        batch_op.drop_column('accepted_by')
    op.drop_table('collection_documents')
