"""Versioned ClickHouse migrations, applied idempotently by `meterflow run` and the operator.

Migrations are the SQL files in ``migrations/`` (``NNNN_name.sql``), ``{db}`` standing for the
pipeline's database. Applied versions are recorded in ``<db>.schema_migrations`` with a checksum;
a changed file that was already applied is an error naming the file (write a new migration
instead).

An applied migration is also checked against what exists: a table or view it creates that is
gone (``DROP TABLE alerts`` in ``meterflow sql --write``) is created again by re-running the
statement that created it — every migration creates with ``IF NOT EXISTS``, so that is the
statement's own idempotent effect. Materialized views find a re-created table by name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from meterflow_clickhouse.client import ClickHouseError, session


class MigrationChangedError(ClickHouseError):
    """An applied migration's file no longer matches its checksum: a person must ship a new migration."""


_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_CREATES = re.compile(
    r"^CREATE\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW|DICTIONARY)\s+IF\s+NOT\s+EXISTS\s+[\w{}]+\.(\w+)", re.IGNORECASE
)
_ALTERS = re.compile(r"^ALTER\s+TABLE\s+[\w{}]+\.(\w+)\s", re.IGNORECASE)
_DROPS = re.compile(r"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?[\w{}]+\.(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def file(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str) -> list[str]:
        """The statements, split at lines holding only ``;`` (so ``;`` may appear inside strings)."""
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        parts = re.split(r"^;\s*$", body, flags=re.MULTILINE)
        return [p.strip().replace("{db}", database) for p in parts if p.strip()]

    def creates(self, database: str) -> list[tuple[str, str]]:
        """(object name, statement) of every ``CREATE ... IF NOT EXISTS`` of the migration, in order,
        but for a table it drops again (a staging table: gone by design, not to be re-created)."""
        statements = self.statements(database)
        dropped = {m.group(1) for s in statements if (m := _DROPS.match(s))}
        found = []
        for statement in statements:
            match = _CREATES.match(statement)
            if match and match.group(1) not in dropped:
                found.append((match.group(1), statement))
        return found

    def alters(self, database: str) -> list[tuple[str, str]]:
        """(table name, statement) of every ``ALTER TABLE`` of the migration, in order: they are
        written to be re-run (``ADD COLUMN IF NOT EXISTS``) on a table an older migration re-created."""
        return [(m.group(1), s) for s in self.statements(database) if (m := _ALTERS.match(s))]


def migrations() -> list[Migration]:
    """Every migration shipped with meterflow, in version order."""
    found = []
    for entry in resources.files("meterflow_clickhouse").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def apply_migrations(dsn: str, database: str) -> list[str]:
    """Create ``database`` and apply the migrations it lacks; return the names applied."""
    with session(dsn) as client:
        return apply_with(client, database)


def apply_with(client: Any, database: str) -> list[str]:
    """:func:`apply_migrations` on an open client: the names of the migrations applied, and
    ``<migration> (recreated <objects>)`` for every applied one whose objects had gone."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = {
        int(v): c
        for v, c in client.query(f"SELECT version, checksum FROM {database}.schema_migrations FINAL").result_rows
    }
    existing = {
        str(name)
        for (name,) in client.query(
            "SELECT name FROM system.tables WHERE database = {db:String}", parameters={"db": database}
        ).result_rows
    }
    done = []
    recreated: set[str] = set()
    for migration in migrations():
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationChangedError(
                    f"migration {migration.file} changed after it was applied to {database}; "
                    "add a new migration instead of editing an applied one"
                )
            missing = [(name, statement) for name, statement in migration.creates(database) if name not in existing]
            for _, statement in missing:
                client.command(statement)
            recreated.update(name for name, _ in missing)
            # a table re-created by an older migration lacks what later ones altered in it
            altered = [(name, statement) for name, statement in migration.alters(database) if name in recreated]
            for _, statement in altered:
                client.command(statement)
            repairs = [f"recreated {', '.join(n for n, _ in missing)}"] if missing else []
            repairs += [f"altered {', '.join(dict.fromkeys(n for n, _ in altered))} again"] if altered else []
            if repairs:
                done.append(f"{migration.file.removesuffix('.sql')} ({'; '.join(repairs)})")
            continue
        for statement in migration.statements(database):
            client.command(statement)
        client.insert(
            f"{database}.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        done.append(f"{migration.version:04d}_{migration.name}")
    return done


def drop_database(dsn: str, database: str) -> None:
    """Remove a pipeline's database (the operator's Delete retention policy)."""
    with session(dsn) as client:
        client.command(f"DROP DATABASE IF EXISTS {database}")
