"""Redaction of what /status and ``config show`` print: keys by pattern, passwords in URLs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flowstone_host.config import REDACTED, redact, secret_keys


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "apitoken",
        "client_secret_value",
        "db_password",
        "aws_credentials",
        "signing_key",
        "api_key",
        "x-auth-token",
    ],
)
def test_keys_that_hold_secrets_are_redacted(key: str) -> None:
    assert redact({key: "Bearer abc"}) == {key: REDACTED}


def test_passwords_inside_urls_and_dsns_are_redacted_whatever_the_key() -> None:
    shown = redact(
        {
            "connection_url": "postgres://u:PASSWORD@h/db",
            "conninfo": "host=h user=u password=PASSWORD dbname=d",
            "targets": ["redis://:PASSWORD@cache:6379/0"],
        }
    )
    assert "PASSWORD" not in repr(shown)
    assert shown["connection_url"] == f"postgres://u:{REDACTED}@h/db"


def test_plain_values_stay() -> None:
    config = {"bucket": "b", "url": "https://example.com/a?b=c", "keyspace": "k", "monkey": 1}
    assert redact(config) == config


def test_plugins_mark_more_keys_in_their_schema() -> None:
    schema = {
        "opaque": {"type": "string", "meta": {"secret": True}},
        "nested": {"type": "dict", "schema": {"pin": {"meta": {"secret": True}}}},
    }
    paths = secret_keys(schema)
    assert paths == [("opaque",), ("nested", "pin")]
    assert redact({"opaque": "x", "nested": {"pin": 1}}, paths) == {
        "opaque": REDACTED,
        "nested": {"pin": REDACTED},
    }


def test_config_show_redacts_the_keys_a_plugin_schema_marks_secret(tmp_path: Path) -> None:
    (tmp_path / "plugins.d").mkdir()
    (tmp_path / "host.yaml").write_text(
        "apiVersion: flowstone/v1\nkind: HostConfig\nmetadata: {name: t}\n"
        "spec: {plugins_dir: plugins.d, state_dir: state}\n"
    )
    (tmp_path / "plugins.d" / "db.yaml").write_text(
        "apiVersion: flowstone/v1\nkind: Resource\nmetadata: {name: db}\n"
        "spec:\n  plugin: hostile-stalling\n"
        "  config: {opaque: hunter2, nested: {pin: '8642'}, label: plain}\n"
    )
    # in a child: reading a plugin's config_schema imports its class, and the hostile
    # fixture plugins must never be imported into the test process
    command = ["config", "show", "db", "--config", str(tmp_path / "host.yaml")]
    shown = subprocess.run(
        [sys.executable, "-m", "flowstone_host.cli", *command], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "hunter2" not in out and "8642" not in out
    assert f'opaque: "{REDACTED}"' in out and f'nested.pin: "{REDACTED}"' in out
    assert 'label: "plain"' in out
