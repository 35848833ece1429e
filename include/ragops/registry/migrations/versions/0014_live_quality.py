"""live quality (issue 23): request events keep the (redacted) question, the searched query and the retrieval
evidence; users' votes on answers go to `feedback`, one row per request

Rows written before this revision have no question; the content-gap analysis skips them.

Revision ID: 0014_live_quality
Revises: 0013_content_baseline
"""
from alembic import op
import sqlalchemy as sa


revision = '0014_live_quality'
down_revision = '0013_content_baseline'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('question', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('query', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('similarity', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('coverage', sa.Float(), nullable=True))
        batch_op.create_index('ix_request_events_request_id', ['request_id'], unique=False)
    op.create_table('feedback',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('request_id', sa.String(length=64), nullable=False),
                    sa.Column('user_hash', sa.String(length=64), nullable=False),
                    sa.Column('rating', sa.String(length=8), nullable=False),
                    sa.Column('reason', sa.String(length=32), nullable=True),
                    sa.Column('comment', sa.Text(), nullable=True),
                    sa.Column('cited_followed', sa.Boolean(), nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('request_id'))
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_ts'), ['ts'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_ts'))
    op.drop_table('feedback')
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.drop_index('ix_request_events_request_id')
        batch_op.drop_column('coverage')
        batch_op.drop_column('similarity')
        batch_op.drop_column('query')
        batch_op.drop_column('question')
