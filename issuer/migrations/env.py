"""Alembic environment: runs on the connection the issuer hands it (db.Database.upgrade),
or on DATABASE_URL when called from the alembic command line."""

from __future__ import annotations

import os

from alembic import context

from dualres.issuer.domain.db import make_engine
from dualres.issuer.domain.models import Base

target_metadata = Base.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(os.environ["DATABASE_URL"])
    with engine.begin() as conn:
        context.configure(
            connection=conn,
            target_metadata=target_metadata,
            render_as_batch=conn.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run()
