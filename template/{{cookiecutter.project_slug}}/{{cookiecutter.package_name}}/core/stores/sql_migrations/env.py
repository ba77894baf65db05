# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""Alembic environment of the sql backend's tables (core/stores/sql.py).

Run through `python -m {{ cookiecutter.package_name }}.core.stores.sql upgrade`, never by the
alembic command line: sql.py hands over the connection (in its transaction) and the name of the
version table, msal_webapp_alembic_version, which leaves the app's own alembic_version alone.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run these migrations with "
                       "`python -m {{ cookiecutter.package_name }}.core.stores.sql upgrade`")

context.configure(connection=connection,
                  target_metadata=config.attributes.get("target_metadata"),
                  version_table=config.attributes["version_table"])
with context.begin_transaction():
    context.run_migrations()
