"""content gaps (issue 23): the newest content-gap report of each period, for the RAG Ops page and the trend

Revision ID: 0015c_content_gaps
Revises: 0015g_quality_drift
"""
from alembic import op
import sqlalchemy as sa


revision = '0015c_content_gaps'
down_revision = '0015g_quality_drift'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('content_gap_reports',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('report', sa.JSON(), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('period_end'))
    with op.batch_alter_table('content_gap_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_content_gap_reports_ts'), ['ts'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('content_gap_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_content_gap_reports_ts'))
    op.drop_table('content_gap_reports')
