"""MCP tool pins, checks and reviews (issue 13)

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mcp_tool_pins',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('server_url', sa.String(length=1024), nullable=False),
    sa.Column('tool', sa.String(length=128), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=256), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mcp_tool_pins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mcp_tool_pins_server_url'), ['server_url'], unique=False)

    op.create_table('mcp_tool_checks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('run', sa.String(length=64), nullable=False),
    sa.Column('server_url', sa.String(length=1024), nullable=False),
    sa.Column('tool', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('diff', sa.JSON(), nullable=False),
    sa.Column('contract', sa.String(length=16), nullable=False),
    sa.Column('probes', sa.JSON(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('mcp_tool_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mcp_tool_checks_ts'), ['ts'], unique=False)

    op.create_table('mcp_tool_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('server_url', sa.String(length=1024), nullable=False),
    sa.Column('tool', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=256), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('mcp_tool_reviews')
    with op.batch_alter_table('mcp_tool_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mcp_tool_checks_ts'))
    op.drop_table('mcp_tool_checks')
    with op.batch_alter_table('mcp_tool_pins', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mcp_tool_pins_server_url'))
    op.drop_table('mcp_tool_pins')
