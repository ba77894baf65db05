# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""The entries and leases tables of the sql backend (core/stores/sql.py).

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table(
        "msal_webapp_entries",
        sa.Column("key_hash", sa.CHAR(64), primary_key=True),  # sha256 of the key, in hex
        # MySQL's TEXT stops at 64 KB; MEDIUMTEXT at 16 MB.
        sa.Column("value", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"),
                  nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        # Milliseconds of the app's clock.
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        # InnoDB: the leases rely on its row locks (MyISAM has none); utf8mb4: any character.
        mysql_engine="InnoDB", mysql_charset="utf8mb4",
    )
    op.create_index("ix_msal_webapp_entries_expires_at", "msal_webapp_entries",
                    ["expires_at"])
    op.create_table(
        "msal_webapp_leases",
        sa.Column("key_hash", sa.CHAR(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        mysql_engine="InnoDB", mysql_charset="utf8mb4",
    )


def downgrade() -> None:
    op.drop_table("msal_webapp_leases")
    op.drop_index("ix_msal_webapp_entries_expires_at", table_name="msal_webapp_entries")
    op.drop_table("msal_webapp_entries")
