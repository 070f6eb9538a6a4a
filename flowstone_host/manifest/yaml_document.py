"""The values YAML reading gives: documents with their node trees, and the bounds.

A :class:`YamlDocument` keeps the node tree beside the data, and finds the place of any
field path in it only when an error needs one, so valid files pay nothing for positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .issues import Issue, Position

__all__ = [
    "DEFAULT_LIMITS",
    "ReadLimits",
    "ReadResult",
    "YamlDocument",
    "path_of",
    "position_of",
]

#: The tag of a ``<<`` merge key.
MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds that keep hostile YAML cheap to refuse.

    Attributes:
        max_bytes: Largest file read; checked before reading.
        max_depth: Deepest nesting of mappings and sequences.
        max_nodes: Most values built for one file, all its documents together, counting
            every alias expansion.
        max_documents: Most documents in one file.
    """

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 100_000
    max_documents: int = 1000


#: The bounds used when none are given.
DEFAULT_LIMITS = ReadLimits()


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One YAML document: its plain data and the node tree it was built from.

    Attributes:
        file: The file it came from, as given.
        index: Its position in the file, from 0.
        data: The values: dicts with string keys, lists, str, int, float, bool, None, dates.
        node: The root node, kept to locate fields.
    """

    file: str
    index: int
    data: Any
    node: Node = field(repr=False, compare=False)
    _positions: dict[tuple[Any, ...], Position] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def node_at(self, path: tuple[str | int, ...]) -> tuple[Node | None, Node]:
        """Return ``(key node, value node)`` of the deepest field of ``path`` present."""
        key: Node | None = None
        node = self.node
        for part in path:
            found = child_of(node, part)
            if found is None:
                break
            key, node = found
        return key, node

    def position(self, path: tuple[str | int, ...], *, at_key: bool = False) -> Position:
        """Return where ``path`` is; its key's place if ``at_key``, else its value's.

        A path that is not all there resolves to its deepest existing parent, which is
        where a missing key should be added.
        """
        memo = (path, at_key)  # documents are immutable and kept while unchanged: memoize
        found = self._positions.get(memo)
        if found is None:
            key, node = self.node_at(path)
            found = position_of(self.file, key if at_key and key is not None else node)
            self._positions[memo] = found
        return found


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What reading one file gave: its documents and the problems found."""

    file: str
    documents: tuple[YamlDocument, ...]
    issues: tuple[Issue, ...]


def child_of(node: Node, part: str | int) -> tuple[Node | None, Node] | None:
    """Return ``(key node, value node)`` of field ``part`` of ``node``, or ``None``."""
    if isinstance(node, SequenceNode):
        if isinstance(part, int) and 0 <= part < len(node.value):
            return None, node.value[part]
        return None
    if not isinstance(node, MappingNode):
        return None
    found: tuple[Node | None, Node] | None = None
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.tag != MERGE_TAG and key.value == part:
            found = (key, value)  # the last one wins, as when building
    if found is None:
        for key, value in node.value:
            if key.tag == MERGE_TAG:
                for source in value.value if isinstance(value, SequenceNode) else [value]:
                    found = found or child_of(source, part)
    return found


def position_of(file: str, node: Node) -> Position:
    """Return where ``node`` starts in ``file``, counting lines and columns from 1."""
    mark = node.start_mark
    return Position(file, mark.line + 1, mark.column + 1)


def path_of(root: Node, target: Node) -> tuple[str | int, ...]:
    """Return the field path of ``target`` below ``root`` (a key node gives its field)."""
    stack: list[tuple[Node, tuple[str | int, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target or id(node) in seen:
            if node is target:
                return path
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend((child, (*path, i)) for i, child in enumerate(node.value))
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                part = key.value if isinstance(key, ScalarNode) else "?"
                if key is target:
                    return (*path, part)
                stack.append((value, (*path, part)))
    return ()
