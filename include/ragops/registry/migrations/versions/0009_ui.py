"""the RAG Ops page and first hour (issue 11)

Revision ID: 0009
Revises: 0008

No schema change: this revision was reserved for the issue and it needed no table. It stays so that registries
already stamped with it keep a linear history.
"""

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
