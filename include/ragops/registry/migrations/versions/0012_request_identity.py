"""request identity (issue 21): whether a request event's caller proved who it is (an API key)

Rows written before this revision are not verified: their user came from the request body, which anyone could set,
so under the default RAGOPS_ROLLOUT_ANONYMOUS=exclude a rollout running across the upgrade counts only newer events.

Revision ID: 0012_request_identity
Revises: 0011_audit_row_mac
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_request_identity'
down_revision = '0011_audit_row_mac'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.drop_column('verified')
