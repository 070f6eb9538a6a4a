"""Safe, positioned YAML reading: plain data out, every node's place kept for errors.

libyaml (``CSafeLoader``) composes the node tree, so reading runs at C speed where libyaml
is installed; this module then builds plain Python values from the nodes itself, which is
where the rules live:

- only the YAML core tags (str, int, float, bool, null, timestamp, map, seq) are accepted,
  so ``!!python/...`` and every other tag is refused before any value is built;
- a key that appears twice in a mapping is an error at its second occurrence;
- keys must be strings (``on:`` is a boolean in YAML 1.1: quote it);
- nesting depth and the number of nodes built (every alias expansion counted) are bounded,
  and a recursive alias is refused, so a "billion laughs" document stops in milliseconds;
- the file size is checked before anything is read, and the bytes must be UTF-8.

The node tree is kept beside the data: :meth:`YamlDocument.position` walks it to turn any
field path into ``file:line:col`` only when an error needs one, so valid files pay nothing
for positions.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .issues import Issue, Position
from .yaml_document import (
    DEFAULT_LIMITS,
    MERGE_TAG,
    ReadLimits,
    ReadResult,
    YamlDocument,
    path_of,
    position_of,
)

__all__ = ["DEFAULT_LIMITS", "ReadLimits", "ReadResult", "YamlDocument", "read_file", "read_text"]

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _MERGE = _TAG + "str", _TAG + "null", MERGE_TAG
_MAP, _SEQ = _TAG + "map", _TAG + "seq"
_SCALARS = {
    _TAG + "int": _CONSTRUCTOR.construct_yaml_int,
    _TAG + "float": _CONSTRUCTOR.construct_yaml_float,
    _TAG + "bool": _CONSTRUCTOR.construct_yaml_bool,
    _NULL: _CONSTRUCTOR.construct_yaml_null,
    _TAG + "timestamp": _CONSTRUCTOR.construct_yaml_timestamp,
}
_TYPE_NAMES = {
    _TAG + "int": "an integer",
    _TAG + "float": "a number",
    _TAG + "bool": "a boolean",
    _NULL: "null",
    _TAG + "timestamp": "a date",
}


class _Problem(Exception):
    """A problem that stops building one document."""

    def __init__(self, code: str, message: str, node: Node) -> None:
        super().__init__(message)
        self.code, self.message, self.node = code, message, node


def read_file(path: str | os.PathLike[str], limits: ReadLimits = DEFAULT_LIMITS) -> ReadResult:
    """Read every document of a YAML file, safely and within ``limits``.

    Never raises for bad content: unreadable, oversized, non-UTF-8 and malformed files
    come back as issues.
    """
    name = os.fspath(path)
    try:
        size = os.stat(name).st_size
        if size > limits.max_bytes:
            return _failed(name, "io.too_large", _too_large(size, limits))
        with open(name, "rb") as stream:
            raw = stream.read(limits.max_bytes + 1)
    except OSError as exc:
        return _failed(
            name,
            "io.unreadable",
            f"Cannot read the file ({exc.strerror}); check it exists and is readable.",
        )
    return read_bytes(raw, name, limits)


def read_bytes(raw: bytes, file: str, limits: ReadLimits = DEFAULT_LIMITS) -> ReadResult:
    """Read every document of a file's bytes, already read by the caller, as ``file``."""
    if len(raw) > limits.max_bytes:
        return _failed(file, "io.too_large", _too_large(len(raw), limits))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # its offset does not count a byte-order mark
        return _not_utf8(file, raw, exc.start + (3 if raw.startswith(codecs.BOM_UTF8) else 0))
    return read_text(text, file, limits)


def read_text(text: str, file: str = "<string>", limits: ReadLimits = DEFAULT_LIMITS) -> ReadResult:
    """Read every document of YAML ``text`` as if it came from ``file``."""
    documents: list[YamlDocument] = []
    issues: list[Issue] = []
    index, spent = 0, 0  # the document being read; values built so far, in all documents
    try:
        for index, node in enumerate(_compose_all(text)):
            if index >= limits.max_documents:
                issues.append(_too_many_documents(file, node, limits))
                break
            if isinstance(node, ScalarNode) and node.tag == _NULL and not node.value:
                continue  # an empty document, e.g. after a trailing '---'
            builder = _Builder(limits, spent)
            try:
                documents.append(YamlDocument(file, index, builder.build(node, 0), node))
            except _Problem as problem:
                builder.problems.append(problem)
            spent = builder.count
            issues.extend(_located(file, index, node, p) for p in builder.problems)
    except yaml.MarkedYAMLError as exc:
        issues.append(_syntax_issue(file, index, exc))
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        detail = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc)
        issues.append(
            Issue(
                Position(file, 1, 1),
                (),
                "yaml.syntax",
                f"The file is not valid YAML ({detail}); fix the YAML syntax.",
            )
        )
    if not documents and not issues:
        issues.append(
            Issue(
                Position(file, 1, 1),
                (),
                "yaml.empty",
                "The file holds no YAML document; add a manifest or delete it.",
            )
        )
    return ReadResult(file, tuple(documents), tuple(issues))


def _too_many_documents(file: str, node: Node, limits: ReadLimits) -> Issue:
    return Issue(
        position_of(file, node),
        (),
        "yaml.too_many_documents",
        f"The file holds more than {limits.max_documents} documents; split it into several files.",
        limits.max_documents,
    )


def _compose_all(text: str) -> Iterator[Node]:
    loader = _LOADER(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


class _Builder:
    """Build plain values from one document's nodes, enforcing the reading rules."""

    def __init__(self, limits: ReadLimits, spent: int = 0) -> None:
        self.limits = limits
        self.count = spent  # the file's earlier documents count against the same budget
        self.active: set[int] = set()
        self.built: set[int] = set()  # collections built once: seeing one again is an alias
        self.expanding: Node | None = None  # the outermost alias being expanded
        self.problems: list[_Problem] = []

    def build(self, node: Node, depth: int) -> Any:
        self.count += 1
        if self.count > self.limits.max_nodes:
            raise _Problem(
                "yaml.too_many_nodes",
                f"The file expands to more than "
                f"{self.limits.max_nodes} values (aliases count each time they "
                "are used); write the values out or split the file.",
                self.expanding or node,
            )
        if node.__class__ is ScalarNode:
            return self._scalar(node)
        if depth >= self.limits.max_depth:
            raise _Problem(
                "yaml.too_deep",
                f"The document nests deeper than {self.limits.max_depth} levels; flatten it.",
                node,
            )
        if id(node) in self.active:
            raise _Problem(
                "yaml.recursive_alias",
                "This alias refers to a node that contains "
                "it; a manifest must be a tree, so remove the recursive alias.",
                node,
            )
        outermost = self.expanding is None and id(node) in self.built
        if outermost:
            self.expanding = node
        self.active.add(id(node))
        try:
            return self._collection(node, depth)
        finally:
            self.active.discard(id(node))
            self.built.add(id(node))
            if outermost:
                self.expanding = None

    def _collection(self, node: Node, depth: int) -> Any:
        if node.__class__ is MappingNode and node.tag == _MAP:
            return self._mapping(node, depth + 1)
        if node.__class__ is SequenceNode and node.tag == _SEQ:
            return [self.build(item, depth + 1) for item in node.value]
        raise _Problem("yaml.tag", _tag_message(node.tag), node)

    def _scalar(self, node: Node) -> Any:
        if node.tag == _STR:
            return node.value
        construct = _SCALARS.get(node.tag)
        if construct is None:
            raise _Problem("yaml.tag", _tag_message(node.tag), node)
        try:
            return construct(node)  # type: ignore[arg-type]  # a ScalarNode here
        except (ValueError, TypeError, OverflowError, yaml.YAMLError):
            raise _Problem(
                "yaml.bad_scalar",
                f"This value is not valid as {_TYPE_NAMES[node.tag]}; fix it or quote it.",
                node,
            ) from None

    def _mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self._merge(result, merged, value_node, depth)
                continue
            key = self._key(key_node)
            if key in result and key not in merged:
                self.problems.append(
                    _Problem(
                        "yaml.duplicate_key",
                        f"Key {key!r} appears twice in this mapping; keep one of them.",
                        key_node,
                    )
                )
            merged.discard(key)
            result[key] = self.build(value_node, depth)
        return result

    def _merge(self, result: dict[str, Any], merged: set[str], node: Node, depth: int) -> None:
        sources = node.value if node.__class__ is SequenceNode else [node]
        for source in sources:
            if source.__class__ is not MappingNode:
                raise _Problem(
                    "yaml.bad_merge",
                    "A merge key '<<' takes a mapping or a list "
                    "of mappings (usually aliases such as *defaults).",
                    source,
                )
            for key, value in self.build(source, depth).items():
                if key not in result:
                    result[key] = value
                    merged.add(key)

    def _key(self, node: Node) -> str:
        if node.__class__ is ScalarNode and node.tag == _STR:
            return str(node.value)
        if node.__class__ is ScalarNode and node.tag in _TYPE_NAMES:
            raise _Problem(
                "yaml.key_type",
                f"The key {node.value!r} is read as "
                f"{_TYPE_NAMES[node.tag]} by YAML 1.1; quote it: "
                f'"{node.value}":',
                node,
            )
        raise _Problem(
            "yaml.key_type",
            "Mapping keys must be plain strings; replace this key with a name.",
            node,
        )


def _located(file: str, index: int, root: Node, problem: _Problem) -> Issue:
    path = path_of(root, problem.node)
    return Issue(position_of(file, problem.node), path, problem.code, problem.message, index)


def _tag_message(tag: str | None) -> str:
    shown = "(no tag)" if tag is None else tag.replace(_TAG, "!!")
    return (
        f"The tag {shown!r} is not allowed: manifests hold plain data only (no Python "
        "objects or custom types). Remove the tag."
    )


def _syntax_issue(file: str, index: int, exc: yaml.MarkedYAMLError) -> Issue:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    what = "; ".join(str(p) for p in (exc.context, exc.problem) if p)
    return Issue(
        Position(file, line, column),
        (),
        "yaml.syntax",
        f"Invalid YAML: {what}. Fix the YAML syntax here.",
        index,
    )


def _failed(file: str, code: str, message: str) -> ReadResult:
    return ReadResult(file, (), (Issue(Position(file, 1, 1), (), code, message),))


def _too_large(size: int, limits: ReadLimits) -> str:
    return (
        f"The file is {size} bytes; the limit is {limits.max_bytes}. Split it into "
        "several manifest files."
    )


def _not_utf8(file: str, raw: bytes, offset: int) -> ReadResult:
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    message = (
        f"The file is not UTF-8 (byte 0x{raw[offset]:02x} cannot be decoded); save it as UTF-8."
    )
    return ReadResult(file, (), (Issue(Position(file, line, column), (), "io.encoding", message),))
