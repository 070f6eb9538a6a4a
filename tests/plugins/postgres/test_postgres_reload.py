"""A reload that changes only the ``pg`` resource's DSN rebuilds exactly what depends on it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from flowstone_host.host.lifecycle import Host

pytestmark = pytest.mark.integration

SCHEMA = "reload_test"


def _doc(kind: str, name: str, spec: dict[str, Any]) -> str:
    return (
        f"apiVersion: flowstone/v1\nkind: {kind}\nmetadata: {{name: {name}}}\n"
        f"spec: {json.dumps(spec)}\n"
    )


def _manifests(dsn: str) -> str:
    shared = {"plugin": "postgres", "depends_on": ["pg"]}
    return "---\n".join(
        [
            _doc("Resource", "pg", {"plugin": "postgres", "config": {"dsn": dsn, "max_size": 2}}),
            _doc("IOManager", "values", {**shared, "config": {"resource": "pg", "schema": SCHEMA}}),
            _doc(
                "ScatterCoordinator",
                "barriers",
                {**shared, "config": {"resource": "pg", "schema": SCHEMA}},
            ),
            _doc("IOManager", "lake", {"plugin": "memory"}),
        ]
    )


@pytest.fixture
def second_dsn(pg_dsn: str) -> Iterator[str]:
    """A second database on the same server: what the edited DSN points at."""
    name = f"reload_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(pg_dsn, dbname=name)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _stored(dsn: str, asset: str) -> list[Any]:
    with psycopg.connect(dsn) as conn:
        found = conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.io_values"]).fetchone()
        if found is None or found[0] is None:
            return []
        rows = conn.execute(
            f"SELECT payload_json FROM {SCHEMA}.io_values WHERE asset = %s", [asset]
        ).fetchall()
    return [row[0] for row in rows]


def _barrier_in(dsn: str, barrier_id: str) -> bool:
    with psycopg.connect(dsn) as conn:
        query = f"SELECT 1 FROM {SCHEMA}.scatter_barriers WHERE barrier_id = %s"
        return conn.execute(query, [barrier_id]).fetchone() is not None


def _dbname(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


def test_a_new_dsn_replaces_the_pool_and_exactly_its_dependents(
    tmp_path: Path, pg_dsn: str, second_dsn: str
) -> None:
    plugins = tmp_path / "plugins.d"
    plugins.mkdir()
    config = tmp_path / "host.yaml"
    config.write_text(
        "apiVersion: flowstone/v1\nkind: HostConfig\nmetadata: {name: pg-reload}\n"
        "spec: {plugins_dir: plugins.d, state_dir: state, shutdown: {grace_s: 5}}\n"
    )
    manifest = plugins / "backends.yaml"
    manifest.write_text(_manifests(pg_dsn))
    host = Host.from_config(config)
    try:
        assert host.start().ok
        before = host.snapshot()
        old_pool = before.resources.resolve("pg").handle
        old_values = before.io_managers.resolve("values").instance
        old_barriers = before.scatter_coordinators.resolve("barriers").instance
        lake = before.io_managers.resolve("lake").instance
        asset = f"a_{uuid.uuid4().hex[:6]}"
        old_values.store(asset, {"via": "first"}, None)
        assert _stored(pg_dsn, asset) == [{"via": "first"}]

        manifest.write_text(_manifests(second_dsn))
        report = host.reload("manual")

        assert report.outcome == "applied", report
        assert {f"{c.kind}/{c.name}": c.action for c in report.changes} == {
            "Resource/pg": "replaced",
            "IOManager/values": "replaced",
            "ScatterCoordinator/barriers": "replaced",
            "IOManager/lake": "reused",
        }
        after = host.snapshot()
        pool = after.resources.resolve("pg").handle
        values = after.io_managers.resolve("values").instance
        barriers = after.scatter_coordinators.resolve("barriers").instance
        assert pool is not old_pool and _dbname(pool.conninfo) == _dbname(second_dsn)
        assert values is not old_values and barriers is not old_barriers
        assert after.io_managers.resolve("lake").instance is lake
        assert values._pools.pool is pool and barriers._pools.pool is pool

        values.store(asset, {"via": "second"}, None)
        assert values.load(asset, None) == {"via": "second"}
        assert _stored(second_dsn, asset) == [{"via": "second"}]
        assert _stored(pg_dsn, asset) == [{"via": "first"}], "the new instance wrote to the old DSN"
        barrier = barriers.create_barrier("run-1", asset, None)
        assert _barrier_in(second_dsn, barrier) and not _barrier_in(pg_dsn, barrier)
        assert old_pool.closed, "the replaced pool was not torn down"
    finally:
        host.stop(grace_s=0)
