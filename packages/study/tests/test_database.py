"""The migration path on a real SQLite file: the migrations build exactly the ORM's schema, re-running them
is a no-op, they go down and up again, and answers survive a restart of the app's database layer."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from gravity_study import studies
from gravity_study.database import Database, downgrade, make_engine, migrate
from gravity_study.models import Base


def test_migrations_build_the_models_schema(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    assert migrate(engine) == "0001"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    tables = set(inspect(engine).get_table_names())
    assert {
        "studies",
        "participants",
        "screens",
        "judgments",
        "jobs",
        "app_secrets",
        "alembic_version",
    } <= tables


def test_migrate_is_idempotent_and_reversible(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'b.sqlite'}")
    migrate(engine)
    assert migrate(engine) == "0001"
    assert downgrade(engine, "base") == ""
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert migrate(engine) == "0001"


def test_answers_survive_reopening_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    db = Database(url)
    with db.session() as s:
        study = studies.create_study(s, "Persisted", "persisted", ["tri-agent"], 3, ["Brazil"], 7)
        (p,) = studies.add_participants(s, study, 1)
        p.genres = ["Romance", "Fiction", "Young Adult"]
        token = p.token
    db.dispose()
    again = Database(url)
    with again.session() as s:
        p = studies.participant_by_token(s, token)
        assert p is not None and p.genres == ["Romance", "Fiction", "Young Adult"]
        assert p.study.value_statements == studies.study_by_slug(s, "persisted").value_statements  # type: ignore[union-attr]
    again.dispose()


def test_a_failed_transaction_saves_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'd.sqlite'}")
    try:
        with db.session() as s:
            studies.create_study(s, "Half", "half", ["tri-agent"], 3, ["USA"], 1)
            raise RuntimeError("crash mid-request")
    except RuntimeError:
        pass
    with db.session() as s:
        assert studies.study_by_slug(s, "half") is None
    db.dispose()
