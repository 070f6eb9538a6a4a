"""A temporary host tree for the host tests: config, plugins folder and a journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def doc(kind: str, name: str, plugin: str, **config: Any) -> str:
    body = (
        json.dumps({"plugin": plugin, "config": config})
        if config
        else json.dumps({"plugin": plugin})
    )
    return header(kind, name) + f"spec: {body}\n"


def asset_doc(name: str, io_manager: str = "default") -> str:
    spec = {"compute": "flowstone_host.examples.demo_assets:orders", "io_manager": io_manager}
    return header("Asset", name) + f"spec: {json.dumps(spec)}\n"


def header(kind: str, name: str) -> str:
    return f"apiVersion: flowstone/v1\nkind: {kind}\nmetadata: {{name: {name}}}\n"


class Tree:
    """A temporary host: its config, plugins folder and a journal the fixture plugins write."""

    def __init__(self, root: Path) -> None:
        self.plugins = root / "plugins.d"
        self.plugins.mkdir()
        self.journal = root / "journal.log"
        self.journal.touch()
        self.config = root / "host.yaml"
        self.config.write_text(
            "apiVersion: flowstone/v1\nkind: HostConfig\nmetadata: {name: test}\n"
            "spec: {plugins_dir: plugins.d, state_dir: state, shutdown: {grace_s: 5}}\n"
        )

    def write(self, name: str, *documents: str) -> Path:
        path = self.plugins / name
        path.write_text("---\n".join(documents))
        return path

    def resource(self, name: str, **config: Any) -> str:
        config.setdefault("label", name)
        return doc("Resource", name, "journal", journal=str(self.journal), **config)

    def resource_labelled_from_env(self, name: str, variable: str) -> str:
        config = f"{{journal: {self.journal}, label: '${{{variable}}}'}}"
        return header("Resource", name) + f"spec:\n  plugin: journal\n  config: {config}\n"

    def io(self, name: str, label: str | None = None) -> str:
        return doc("IOManager", name, "journal", journal=str(self.journal), label=label or name)

    def events(self) -> list[str]:
        return self.journal.read_text().splitlines()
