"""the MCP access log's rows carry a MAC made with a key the registry never holds (issue 21)

Rows written before it keep an empty MAC: `ragops audit verify` counts them as written before the key existed.

Revision ID: 0011_audit_row_mac
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_audit_row_mac'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mcp_access_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('row_mac', sa.String(length=64), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('mcp_access_log', schema=None) as batch_op:
        batch_op.drop_column('row_mac')
