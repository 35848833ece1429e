"""quality drift (issue 23): each check of a live quality signal per release and variant against its baseline, so
a sustained shift alerts once, /metrics can export the verdict, and the alert can say since when

Revision ID: 0015g_quality_drift
Revises: 0014_live_quality
"""
from alembic import op
import sqlalchemy as sa


revision = '0015g_quality_drift'
down_revision = '0014_live_quality'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quality_checks',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('signal', sa.String(length=32), nullable=False),
                    sa.Column('release', sa.String(length=128), nullable=False),
                    sa.Column('variant', sa.String(length=16), nullable=False),
                    sa.Column('current', sa.Float(), nullable=True),
                    sa.Column('baseline', sa.Float(), nullable=True),
                    sa.Column('difference', sa.Float(), nullable=True),
                    sa.Column('at_least', sa.Float(), nullable=True),
                    sa.Column('requests', sa.Integer(), nullable=False),
                    sa.Column('users', sa.Integer(), nullable=False),
                    sa.Column('crossed', sa.Boolean(), nullable=False),
                    sa.Column('streak', sa.Integer(), nullable=False),
                    sa.Column('shifted', sa.Boolean(), nullable=False),
                    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('evidence', sa.JSON(), nullable=False),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('quality_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_checks_window_end'), ['window_end'], unique=False)
        batch_op.create_index('ix_quality_checks_key', ['window_end', 'signal', 'release', 'variant'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('quality_checks', schema=None) as batch_op:
        batch_op.drop_index('ix_quality_checks_key')
        batch_op.drop_index(batch_op.f('ix_quality_checks_window_end'))
    op.drop_table('quality_checks')
