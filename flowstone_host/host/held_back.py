"""The issue of a valid change held back because applying it breaks another file.

It points at the change: the first field that differs in the document the change altered,
or the name of the document that took a removed one's place. A document removed without
a replacement, or a deleted file, is pointed at where it is declared in the file's last
good version (the one that stays in force).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config import FieldPath
from ..manifest.issues import Issue, Position
from ..manifest.yaml_document import YamlDocument
from ..manifest.yaml_reader import read_bytes

__all__ = ["held_back"]

_NAME: FieldPath = ("metadata", "name")


def held_back(file: str, old: bytes | None, new: bytes | None, broken: Issue) -> Issue:
    """Return the ``reload.held_back`` issue of ``file``'s change from ``old`` (its last
    good version) to ``new`` (``None``: the file was deleted), which makes ``broken`` fail."""
    before = _documents(file, old)
    after = _documents(file, new)
    position, path, what = _change(before, after, new is None, broken)
    fails = f"{broken.position} fails ({broken.message})"
    return Issue(
        position or Position(file, 1, 1),
        path,
        "reload.held_back",
        f"Held back: with {what}, {fails}. Fix both files together.",
    )


def _documents(file: str, content: bytes | None) -> list[YamlDocument]:
    return [] if content is None else list(read_bytes(content, file).documents)


def _key(document: YamlDocument) -> tuple[str, str] | None:
    data = document.data
    metadata = data.get("metadata") if isinstance(data, Mapping) else None
    if not isinstance(metadata, Mapping):
        return None
    return str(data.get("kind")), str(metadata.get("name"))


def _named_in(document: YamlDocument, broken: Issue) -> bool:
    key = _key(document)
    return key is not None and repr(key[1]) in broken.message


def _label(key: tuple[str, str] | None) -> str:
    return "a document" if key is None else f"{key[0]} {key[1]!r}"


def _change(
    before: Sequence[YamlDocument], after: Sequence[YamlDocument], deleted: bool, broken: Issue
) -> tuple[Position | None, FieldPath, str]:
    """Where the change is, its field path, and what it does, in words."""
    old = {_key(d): d for d in before}
    new = {_key(d): d for d in after}
    removed = [d for k, d in old.items() if k not in new]
    removed.sort(key=lambda d: not _named_in(d, broken))  # the one it needs, most likely
    if deleted and removed:
        gone = removed[0]
        what = f"deleting this file, which declared {_label(_key(gone))} here"
        return gone.position(_NAME), _NAME, what
    for document in after:
        previous = old.get(_key(document))
        if previous is None:
            if removed:  # a replacement: point at its name
                what = f"this file's change, which removes {_label(_key(removed[0]))}"
                return document.position(_NAME), _NAME, what
            continue
        path = _first_difference(previous.data, document.data)
        if path is not None:
            what = f"this file's change to {_label(_key(document))}"
            return document.position(path), path, what
    if removed:
        gone = removed[0]
        what = (
            f"this file's change, which removes {_label(_key(gone))} (declared here in the "
            "file's last good version)"
        )
        return gone.position(_NAME), _NAME, what
    return None, (), "this file's change"


def _first_difference(old: Any, new: Any, path: FieldPath = ()) -> FieldPath | None:
    """The first field path where ``new`` differs from ``old``; a key or item removed
    gives the path of the mapping or list that held it."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key, value in new.items():
            if key not in old:
                return (*path, key)
            found = _first_difference(old[key], value, (*path, key))
            if found is not None:
                return found
        return path if old.keys() - new.keys() else None
    if isinstance(old, list) and isinstance(new, list):
        for index, (was, now) in enumerate(zip(old, new, strict=False)):
            found = _first_difference(was, now, (*path, index))
            if found is not None:
                return found
        return path if len(old) != len(new) else None
    return None if type(old) is type(new) and old == new else path
