"""the RAG Ops page and first hour (issue 11)

Revision ID: 0009
Revises: 0008

No schema change: issue 11 needed no table. The revision stays because Alembic looks up the id in a registry's
alembic_version row among these files, and a registry stamped '0009' (by `alembic upgrade 0009`, `alembic stamp`, or
a downgrade from 0010) would stop with "Can't locate revision identified by '0009'" if this file went. Folding it
away safely takes a rewrite of that row in env.py that could never be removed again: more code and more risk than
this empty step (issue 18). tests/include/ragops/registry/test_migrations.py upgrades from every shipped revision.
"""

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
