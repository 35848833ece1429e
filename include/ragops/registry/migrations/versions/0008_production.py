"""production path (issue 10)

Revision ID: 0008
Revises: 0007

No schema change: this revision was reserved for the issue and it needed no table. It stays so that registries
already stamped with it keep a linear history.
"""

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
