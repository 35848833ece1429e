"""trust boundaries, sources and refresh (issue 8)

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('locks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('renewed_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('refresh_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('index_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('doc_baseline', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('index_versions', schema=None) as batch_op:
        batch_op.drop_column('doc_baseline')
    with op.batch_alter_table('refresh_runs', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('lease_owner')
    with op.batch_alter_table('locks', schema=None) as batch_op:
        batch_op.drop_column('renewed_at')
