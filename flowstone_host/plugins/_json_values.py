"""What the built-in JSON formats hold unchanged, and a check that refuses the rest.

``json.dumps`` changes some values without a word: a tuple comes back a list, and an
``int`` (or ``None``, ``bool``, ``float``) dict key comes back a string, so ``{1: 7.0}``
would load as ``{"1": 7.0}``. :func:`check_json_value` refuses those with a
ValidationError naming the type, before anything is written; what ``json.dumps`` refuses
itself (bytes, dates, NaN) it leaves to ``json.dumps``'s own error.
"""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError

__all__ = ["JSON_VALUE_TYPES", "check_json_value"]

#: The conformance kit's value types JSON holds unchanged (``flowstone_host.testing``).
JSON_VALUE_TYPES = frozenset({"none", "bool", "int", "big_int", "float", "str", "list", "dict"})


def check_json_value(value: Any, what: str) -> None:
    """Refuse ``value`` if JSON would give it back changed.

    Raises:
        ValidationError: it holds a tuple, or a dict key that is not a ``str``.
    """
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, tuple):
            _refuse(what, path, "a tuple", "tuple", "it would load back as a list")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    kind = type(key).__name__
                    _refuse(what, path, f"the {kind} key {key!r}", kind, "it would be a str")
                stack.append((child, f"{path}[{key!r}]"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))


def _refuse(what: str, path: str, culprit: str, kind: str, change: str) -> None:
    where = f" at {path}" if path else ""
    raise ValidationError(
        f"{what}: the json format cannot hold {culprit}{where} ({kind}): {change}. Store "
        "str keys and lists, or use a format that keeps Python types.",
        details={"type": kind, "path": path},
    )
