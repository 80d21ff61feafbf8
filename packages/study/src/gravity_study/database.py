"""The study database: an engine for ``study.database_url`` (SQLite in the data directory by default),
migrations run on start (Alembic, scripts shipped in the package), and sessions.

SQLite runs with WAL and a busy timeout so the web workers and the background job thread can write the same
file; any other SQL URL is used as given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from gravity_core.errors import ConfigError


def migrations_dir() -> Path:
    return Path(str(resources.files("gravity_study").joinpath("migrations")))


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"study.database_url is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() or ""


def migrate(engine: Engine, revision: str = "head") -> str:
    """Upgrade the schema to ``revision`` (idempotent); returns the revision the database is at."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)
    return current_revision(engine)


def downgrade(engine: Engine, revision: str) -> str:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)
    return current_revision(engine)


class Database:
    def __init__(self, url: str, run_migrations: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.revision = migrate(self.engine) if run_migrations else ""
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error (nothing half-saved)."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
