"""Issues: one problem found in a manifest, with its place, field path, code and advice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Issue", "Position", "format_path", "one_per_field"]


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a file; ``line`` and ``column`` count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a manifest.

    Attributes:
        position: Where it is; for a missing key, the mapping that should hold it.
        path: The field path inside the document, e.g. ``("spec", "deps", 0)``.
        code: A stable code such as ``"shape.unknown_key"``; its prefix names the layer
            (``io``, ``yaml``, ``shape``, ``env``, ``ref``, ``plugin``).
        message: What is wrong and what to do; never a secret or environment value.
        document: Index of the document in its file (0 for file-level problems).
    """

    position: Position
    path: tuple[str | int, ...]
    code: str
    message: str
    document: int = 0

    @property
    def layer(self) -> str:
        """The layer that found the issue: the code's prefix."""
        return self.code.split(".", 1)[0]

    def to_text(self) -> str:
        """Return the ``file:line:col: error[code]: message`` line."""
        where = f" (at {format_path(self.path)})" if self.path else ""
        return f"{self.position}: error[{self.code}]: {self.message}{where}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form used by ``validate --format json``."""
        return {
            "file": self.position.file,
            "line": self.position.line,
            "column": self.position.column,
            "document": self.document,
            "path": format_path(self.path),
            "code": self.code,
            "message": self.message,
        }


def one_per_field(issues: Iterable[Issue]) -> list[Issue]:
    """Keep the first issue of each field (file, document and path): one bad value, one error.

    Callers list issues in the order the layers find them, so the cause wins: a ``${VAR}``
    that could not be substituted is reported as that, not also as the type error of the
    text left in its place. Issues about a whole file or document (no path) are all kept.
    """
    seen: set[tuple[str, int, tuple[str | int, ...]]] = set()
    kept: list[Issue] = []
    for issue in issues:
        if issue.path:
            field = (issue.position.file, issue.document, issue.path)
            if field in seen:
                continue
            seen.add(field)
        kept.append(issue)
    return kept


def format_path(path: tuple[str | int, ...]) -> str:
    """Return a field path as text: ``spec.deps[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
