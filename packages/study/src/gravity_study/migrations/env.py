"""Alembic environment: the engine comes from gravity_study.database (never from a URL in a file)."""

from __future__ import annotations

from alembic import context

from gravity_study.models import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
