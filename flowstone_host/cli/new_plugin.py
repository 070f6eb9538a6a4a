"""``flowstone-host new-plugin KIND NAME``: write a ready plugin distribution.

The files come from plain templates shipped in the package (``flowstone_host/templates/
plugin``): ``common/`` for every kind, and one folder per kind with the plugin class and
its conformance test. ``{{placeholder}}`` is the only syntax; there is no template logic.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..kinds import Kind, kind_info
from ..manifest.shape import did_you_mean
from .common import Subparsers, add_command

__all__ = ["SCAFFOLDED", "Scaffold", "register", "write_plugin"]

#: The kinds with a template, and the example config of each one's manifest.
SCAFFOLDED: dict[Kind, dict[str, str]] = {
    Kind.IO_MANAGER: {"root": "/var/lib/flowstone/{name}"},
    Kind.ITEM_READER: {"path": "items.jsonl"},
    Kind.RESOURCE: {"endpoint": "http://127.0.0.1:8080", "timeout_s": "5.0"},
}

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "new-plugin",
        _new_plugin,
        help="write a new plugin distribution that passes its own tests",
        description=(
            "Write DIR/flowstone-NAME: pyproject.toml with the entry point, a package with a\n"
            "working plugin class (contract_version, config_schema), the conformance kit's\n"
            "test class, an example manifest and a README.\n\n"
            f"KIND: {', '.join(SCAFFOLDED)}.\n"
            "Exit codes: 0 written, 2 usage error (unknown kind, bad name, folder exists)."
        ),
    )
    parser.add_argument("kind", metavar="KIND", help="the manifest kind, e.g. IOManager")
    parser.add_argument("name", metavar="NAME", help="the entry-point name, e.g. my-store")
    parser.add_argument(
        "--output", default=".", metavar="DIR", help="where the distribution folder goes"
    )


@dataclass(frozen=True)
class Scaffold:
    """What the templates are filled with, derived from KIND and NAME."""

    kind: Kind
    name: str

    @property
    def values(self) -> dict[str, str]:
        info = kind_info(self.kind)
        assert info.contract is not None
        words = re.split(r"[-_]", self.name)
        example = SCAFFOLDED[self.kind]
        return {
            "kind": str(self.kind),
            "name": self.name,
            "label": info.label,
            "namespace": info.namespace,
            "dist": "flowstone-" + "-".join(words),
            "package": "flowstone_" + "_".join(words),
            "class": "".join(w.capitalize() for w in words) + str(self.kind),
            "contract_version": info.contract.current,
            "example_config": "\n".join(
                f"    {key}: {value.format(name=self.name)}" for key, value in example.items()
            ),
        }


def write_plugin(kind: Kind, name: str, output: Path) -> Path:
    """Write the distribution of plugin ``name`` of ``kind`` under ``output``; return it.

    Raises:
        FileExistsError: the distribution's folder exists already.
    """
    values = Scaffold(kind, name).values
    target = output / values["dist"]
    if target.exists():
        raise FileExistsError(f"{target} exists; remove it or choose another --output.")
    files = {
        "pyproject.toml": ("common", "pyproject.toml.tmpl"),
        "README.md": ("common", "README.md.tmpl"),
        "example-manifest.yaml": ("common", "example-manifest.yaml.tmpl"),
        f"{values['package']}/__init__.py": (str(kind), "plugin.py.tmpl"),
        "tests/test_conformance.py": (str(kind), "test_conformance.py.tmpl"),
    }
    templates = resources.files("flowstone_host.templates").joinpath("plugin")
    for relative, (folder, template) in files.items():
        text = templates.joinpath(folder, template).read_text(encoding="utf-8")
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_PLACEHOLDER.sub(lambda m: values[m.group(1)], text), encoding="utf-8")
    return target


def _new_plugin(args: argparse.Namespace) -> int:
    kind = _kind(args.kind)
    if kind is None:
        return 2
    if not _NAME.match(args.name):
        print(
            f"error: plugin name {args.name!r} must be lower case letters and digits, words "
            "joined by - or _ (e.g. my-store), starting with a letter.",
            file=sys.stderr,
        )
        return 2
    try:
        target = write_plugin(kind, args.name, Path(args.output))
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    print(f"next: cd {target} && pip install -e '.[test]' && pytest")
    return 0


def _kind(text: str) -> Kind | None:
    known = [str(kind) for kind in SCAFFOLDED]
    if text in known:
        return Kind(text)
    other = text in {str(k) for k in Kind}
    reason = "has no template" if other else "is not a plugin kind"
    print(
        f"error: {text!r} {reason}{did_you_mean(text, known)}; new-plugin writes: "
        f"{', '.join(known)}.",
        file=sys.stderr,
    )
    return None
