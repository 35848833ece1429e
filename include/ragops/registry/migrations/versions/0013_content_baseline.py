"""content baseline (issue 22): the shrinkage guard also remembers the most chunks indexed since the last override

Rows written before this revision have none; the guard then starts from the live version's n_chunks.

Revision ID: 0013_content_baseline
Revises: 0012_request_identity
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_content_baseline'
down_revision = '0012_request_identity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('index_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chunk_baseline', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('index_versions', schema=None) as batch_op:
        batch_op.drop_column('chunk_baseline')
