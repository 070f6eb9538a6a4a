"""Folder and overlay assembly: which files are read, and how same-named documents merge.

Manifests are read in layers: the plugins folder first, then each overlay folder the host
config lists. Within a layer, a kind and name may be declared once. A document in a later
layer with the same kind and name deep-merges over the earlier one (:func:`deep_merge`, the
one merge rule), and every merged document remembers its sources so that any field can be
traced to the file and line that set it. A later document naming another ``spec.plugin``
replaces the earlier one whole: the old plugin's config means nothing to the new one
(dev on ``memory``, prod on ``postgres``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FieldPath, deep_merge, has_path
from ..errors import NotFound
from .issues import Issue, Position
from .yaml_reader import YamlDocument

__all__ = ["Declared", "Source", "manifest_files", "merge_layers"]

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Source:
    """One document that passed the shape check, with ``${VAR}`` substituted.

    Attributes:
        document: The document as read, with its node tree for positions.
        data: Its data after interpolation.
        env_paths: Paths of strings that took a value from the environment.
        layer: 0 for the first layer, 1 for the first overlay, ...
        layer_name: The folder or paths of that layer, for ``--explain``.
        typed_paths: Paths of values that were exactly one ``${...}``: converted to the
            integer, number or boolean the plugin's schema asks for there.
    """

    document: YamlDocument
    data: Mapping[str, Any]
    env_paths: frozenset[FieldPath]
    layer: int = 0
    layer_name: str = ""
    typed_paths: frozenset[FieldPath] = frozenset()

    @property
    def kind(self) -> str:
        return str(self.data["kind"])

    @property
    def name(self) -> str:
        return str(self.data["metadata"]["name"])

    def position(self, path: FieldPath, *, at_key: bool = False) -> Position:
        """Return where ``path`` is written in this document."""
        return self.document.position(path, at_key=at_key)

    def has(self, path: FieldPath) -> bool:
        """Return whether this document writes ``path`` itself."""
        return has_path(self.data, path)


@dataclass(frozen=True, slots=True)
class Declared:
    """A kind and name after merging every layer that declares it."""

    kind: str
    name: str
    data: Mapping[str, Any]
    sources: tuple[Source, ...] = field(repr=False)

    @property
    def env_paths(self) -> frozenset[FieldPath]:
        """Paths whose value came from the environment in any layer."""
        return frozenset().union(*(s.env_paths for s in self.sources))

    def typed_paths_below(self, base: FieldPath) -> frozenset[FieldPath]:
        """Paths under ``base`` written as exactly one ``${...}`` in any layer."""
        return frozenset(p for s in self.sources for p in s.typed_paths if p[: len(base)] == base)

    def typed(self, path: FieldPath) -> bool:
        """Whether the layer that sets ``path`` wrote it as exactly one ``${...}``."""
        return path in self.origin(path).typed_paths

    def origin(self, path: FieldPath) -> Source:
        """Return the last source that writes ``path`` (the first source if none does)."""
        for source in reversed(self.sources):
            if source.has(path):
                return source
        return self.sources[0]

    def position(self, path: FieldPath, *, at_key: bool = False) -> Position:
        """Return where ``path`` was set: in the layer that wrote it last."""
        return self.origin(path).position(path, at_key=at_key)


def manifest_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand files and folders (``*.yaml``, ``*.yml``, not recursive) in a stable order.

    In a folder, other names are skipped (an editor's ``a.yaml~`` or ``.a.yaml.swp``), and so
    are dotfiles (``.draft.yaml``, macOS's ``._a.yaml``, Emacs's ``.#a.yaml``): hidden means
    not part of the configuration. A file named explicitly is read whatever its name.

    Raises:
        NotFound: a path does not exist.
    """
    files: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if _is_manifest_name(p.name) and p.is_file())
            files.extend(str(p) for p in found)
        elif path.exists():
            files.append(str(path))
        else:
            raise NotFound(f"No such file or folder: {raw}. Check the path.", path=str(raw))
    return list(dict.fromkeys(files))


def _is_manifest_name(name: str) -> bool:
    return not name.startswith(".") and name.endswith(_SUFFIXES)


def merge_layers(layers: Sequence[Sequence[Source]]) -> tuple[list[Declared], list[Issue]]:
    """Merge same kind-and-name documents across layers; report duplicates within one."""
    merged: dict[tuple[str, str], Declared] = {}
    issues: list[Issue] = []
    for layer in layers:
        seen: dict[tuple[str, str], Source] = {}
        for source in layer:
            key = (source.kind, source.name)
            if key in seen:
                issues.append(_duplicate(source, seen[key]))
                continue
            seen[key] = source
            earlier = merged.get(key)
            if earlier is None or _switches_plugin(earlier, source):
                # a new plugin's config would not fit the old one's: replace, do not merge
                merged[key] = Declared(source.kind, source.name, source.data, (source,))
            else:
                data = deep_merge(earlier.data, source.data)
                merged[key] = Declared(key[0], key[1], data, (*earlier.sources, source))
    return list(merged.values()), issues


def _switches_plugin(earlier: Declared, source: Source) -> bool:
    before, after = earlier.data["spec"].get("plugin"), source.data["spec"].get("plugin")
    return before is not None and after is not None and before != after


def _duplicate(source: Source, first: Source) -> Issue:
    where = first.position(("metadata", "name"))
    message = (
        f"{source.kind} {source.name!r} is already declared at {where}; names are unique per "
        "kind. Rename one, or move one into an overlay folder to override the other."
    )
    path = ("metadata", "name")
    return Issue(source.position(path), path, "ref.duplicate_name", message, source.document.index)
