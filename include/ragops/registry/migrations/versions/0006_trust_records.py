"""trust boundaries, records and callers (issue 8): the MCP access log becomes a hash chain

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table('mcp_access_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('row_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_mcp_access_log_seq'), ['seq'], unique=True)
    op.create_table('audit_chain_heads',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    _chain_existing_rows()


def _chain_existing_rows() -> None:
    """Rows written before the chain existed are linked in id order, so the whole log is verifiable from here on."""
    from ragops.audit.chain import CHAIN, FIELDS, digest

    bind = op.get_bind()
    types = {'ts': sa.DateTime(timezone=True), 'latency_ms': sa.Float(), 'seq': sa.Integer()}
    log = sa.table('mcp_access_log', sa.column('id', sa.Integer()), *(sa.column(f, types.get(f, sa.String())) for f in FIELDS),
                   sa.column('prev_hash', sa.String()), sa.column('row_hash', sa.String()))
    rows = bind.execute(sa.select(log).order_by(log.c.id)).mappings().all()
    head, seq = GENESIS, 0
    for row in rows:
        seq += 1
        values = dict(row) | {"seq": seq}
        row_hash = digest(head, values)
        bind.execute(sa.update(log).where(log.c.id == row["id"]).values(seq=seq, prev_hash=head, row_hash=row_hash))
        head = row_hash
    heads = sa.table('audit_chain_heads', sa.column('name', sa.String()), sa.column('seq', sa.Integer()),
                     sa.column('head_hash', sa.String()))
    bind.execute(sa.insert(heads).values(name=CHAIN, seq=seq, head_hash=head))


def downgrade() -> None:
    op.drop_table('audit_chain_heads')
    with op.batch_alter_table('mcp_access_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mcp_access_log_seq'))
        batch_op.drop_column('row_hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
