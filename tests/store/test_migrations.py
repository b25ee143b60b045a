"""The Alembic migrations build exactly the schema that ``_tables`` describes, on both engines."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from inferwatch.store import SQLStore, metadata
from inferwatch.store._sql import _alembic_config
from inferwatch.store._tables import VERSION_TABLE


@pytest.fixture
def migrated(store_url: str) -> Iterator[tuple[SQLStore, sa.Inspector]]:
    """A database that went through every migration from empty, and an inspector on it."""
    store = SQLStore(store_url)
    store.upgrade()
    yield store, sa.inspect(store.engine)
    store.close()


def _shape(inspector: sa.Inspector, table: str) -> dict[str, Any]:
    return {
        "columns": {c["name"]: c["nullable"] for c in inspector.get_columns(table)},
        "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
        "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        "indexes": sorted(
            (i["name"], tuple(i["column_names"]))
            for i in inspector.get_indexes(table)
            if not i.get("duplicates_constraint")  # PostgreSQL lists unique constraints again
        ),
    }


def _declared(table: sa.Table) -> dict[str, Any]:
    return {
        "columns": {c.name: c.nullable for c in table.columns},
        "primary_key": [c.name for c in table.primary_key.columns],
        "unique": sorted(
            tuple(c.name for c in u.columns)
            for u in table.constraints
            if isinstance(u, sa.UniqueConstraint)
        ),
        "indexes": sorted((i.name, tuple(c.name for c in i.columns)) for i in table.indexes),
    }


def test_the_migration_creates_exactly_the_expected_tables(
    migrated: tuple[SQLStore, sa.Inspector],
) -> None:
    _, inspector = migrated

    assert sorted(inspector.get_table_names()) == sorted(
        [
            "action_records",
            "alert_history",
            "alert_notifications",
            "evaluations",
            "history_models",
            "history_resources",
            "labels",
            "leases",
            "models",
            "predictions",
            "quarantine",
            "references",
            "silences",
            "window_performance",
            "window_profiles",
            VERSION_TABLE,
        ]
    )
    assert set(metadata.tables) == {
        "action_records",
        "alert_history",
        "alert_notifications",
        "evaluations",
        "history_models",
        "history_resources",
        "labels",
        "leases",
        "models",
        "predictions",
        "quarantine",
        "references",
        "silences",
        "window_performance",
        "window_profiles",
    }


@pytest.mark.parametrize("table", sorted(metadata.tables))
def test_migrated_tables_match_the_metadata(
    migrated: tuple[SQLStore, sa.Inspector], table: str
) -> None:
    _, inspector = migrated

    assert _shape(inspector, table) == _declared(metadata.tables[table])


def test_autogenerate_finds_nothing_to_migrate(migrated: tuple[SQLStore, sa.Inspector]) -> None:
    store, _ = migrated
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, metadata) == []


def test_the_reserved_table_name_is_quoted(migrated: tuple[SQLStore, sa.Inspector]) -> None:
    store, _ = migrated
    store.register_reference("m", "1", uri=None, n_rows=1, schema={})

    with store.engine.connect() as conn:
        assert conn.exec_driver_sql('SELECT count(*) FROM "references"').scalar() == 1


def test_downgrade_to_base_removes_every_table(migrated: tuple[SQLStore, sa.Inspector]) -> None:
    store, _ = migrated
    config = _alembic_config()

    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")

    assert sa.inspect(store.engine).get_table_names() == [VERSION_TABLE]
    assert store.current_revision() is None


def test_processes_that_upgrade_together_all_succeed(store_url: str) -> None:
    # each process is its own Alembic run: the database lock (advisory lock on
    # PostgreSQL, BEGIN IMMEDIATE on SQLite) must make them take turns
    code = "import sys; from inferwatch.store import upgrade; upgrade(sys.argv[1])"
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", code, store_url], stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    errors = [proc.communicate(timeout=60)[1].decode() for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0, 0], errors
    with SQLStore(store_url) as store:
        assert store.current_revision() == store.head_revision()


def test_the_migrations_ship_inside_the_package() -> None:
    migrations = resources.files("inferwatch.store") / "migrations"

    assert (migrations / "env.py").is_file()
    assert (migrations / "script.py.mako").is_file()
    assert (migrations / "versions" / "0001_initial.py").is_file()
    assert (migrations / "versions" / "0002_evaluations.py").is_file()
    assert (migrations / "versions" / "0003_quarantine.py").is_file()
    assert (migrations / "versions" / "0005_alerts.py").is_file()


@pytest.mark.parametrize(
    ("before", "table"),
    [
        ("0001", "evaluations"),
        ("0002", "quarantine"),
        ("0004", "alert_history"),
        ("0005", "history_models"),
        ("0008", "window_performance"),
    ],
    ids=[
        "0002_evaluations",
        "0003_quarantine",
        "0005_alerts",
        "0006_history",
        "0009_window_performance",
    ],
)
def test_each_revision_adds_its_table_on_top_of_the_one_before(
    store_url: str, before: str, table: str
) -> None:
    store = SQLStore(store_url)
    config = _alembic_config()
    try:
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, before)
        assert table not in sa.inspect(store.engine).get_table_names()

        store.upgrade()

        assert store.current_revision() == store.head_revision()
        assert table in sa.inspect(store.engine).get_table_names()
    finally:
        store.close()


def test_0005_downgrades_to_0004_keeping_the_data_before_it(store_url: str) -> None:
    alerting = {"alert_history", "alert_notifications", "silences", "action_records"}
    store = SQLStore(store_url)
    config = _alembic_config()
    try:
        store.upgrade()
        store.register_model("m", "1", flavor="sklearn")
        store.write_action_record(
            action="a", kind="rollback", model="m", at=datetime.now(UTC), outcome="ok"
        )
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0004")

        assert store.current_revision() == "0004"
        assert not alerting & set(sa.inspect(store.engine).get_table_names())
        assert [m["name"] for m in store.list_models()] == ["m"]

        store.upgrade()  # and back up: the tables come back, empty

        assert alerting <= set(sa.inspect(store.engine).get_table_names())
        assert store.query_action_records() == []
    finally:
        store.close()
