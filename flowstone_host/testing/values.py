"""Value types an IO manager may declare, and how the kit generates and compares them.

An IO manager declares which kinds of Python value it holds with a ``value_types``
attribute (class or instance) naming some of :data:`VALUE_TYPES`; absent means all of
them, which is what the built-in memory IO manager round-trips. A value made only of
declared types must load back *the same*: equal, and of the same type all the way down (a
tuple stays a tuple, an ``int`` key stays an ``int``). A value holding any other type must be
refused with a :class:`~flowstone_host.ValidationError` or
:class:`~flowstone_host.NotSupported` that names the type, and nothing may be stored.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import cerberus  # type: ignore[import-untyped]

from ..errors import ValidationError

__all__ = [
    "JSON_VALUE_TYPES",
    "VALUE_TYPES",
    "build_checked",
    "checked_config",
    "declared_value_types",
    "describe",
    "large_values",
    "refusal_samples",
    "same",
    "schema_problems",
    "type_samples",
    "value_strategy",
]

#: Every value type the kit knows, with what it means.
VALUE_TYPES: dict[str, str] = {
    "none": "None",
    "bool": "True and False",
    "int": "int within 64 bits",
    "big_int": "int beyond 64 bits",
    "float": "finite float",
    "str": "str (any code point but surrogates and NUL, which PostgreSQL cannot hold)",
    "bytes": "bytes",
    "list": "list",
    "dict": "dict with str keys",
    "int_keys": "dict with int keys",
    "tuple": "tuple",
    "date": "datetime.date",
    "datetime": "naive datetime.datetime",
}

#: What JSON holds without change: declare this for a JSON-backed IO manager.
JSON_VALUE_TYPES = frozenset({"none", "bool", "int", "big_int", "float", "str", "list", "dict"})

_DAY = dt.date(2024, 1, 31)

#: One value of each type, to be refused when undeclared, and the type names its message
#: may give (the value's own, or the one of the part that cannot be held).
_SAMPLES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "none": (None, ("None",)),
    "bool": (True, ("bool",)),
    "int": (7, ("int",)),
    "big_int": (2**70, ("int",)),
    "float": (2.5, ("float",)),
    "str": ("text", ("str",)),
    "bytes": (b"\x00\xffbytes", ("bytes",)),
    "list": ([1, "two"], ("list",)),
    "dict": ({"key": "value"}, ("dict",)),
    "int_keys": ({1: 7.0}, ("int", "dict")),
    "tuple": (("eu", 7), ("tuple",)),
    "date": (_DAY, ("date",)),
    "datetime": (dt.datetime(2024, 1, 31, 12, 30, 5), ("datetime",)),
}


def declared_value_types(plugin: Any) -> frozenset[str]:
    """Return the value types ``plugin`` declares (``value_types``), all of them if none.

    Raises:
        ValueError: it names a type the kit does not know.
    """
    declared = getattr(plugin, "value_types", None)
    if declared is None:
        return frozenset(VALUE_TYPES)
    unknown = sorted(set(declared) - set(VALUE_TYPES))
    if unknown:
        raise ValueError(
            f"{type(plugin).__name__}.value_types names {unknown}, which the kit does not "
            f"know; use some of: {', '.join(VALUE_TYPES)}"
        )
    return frozenset(declared)


def refusal_samples(declared: Iterable[str]) -> list[tuple[str, Any, tuple[str, ...]]]:
    """Return ``(type, value, names)`` for each undeclared type: values to be refused.

    Each undeclared type is tried alone and, when a list or str-keyed dict is declared,
    nested inside one (a JSON store must refuse ``{"k": ("eu", 7)}`` too).
    """
    declared = set(declared)
    samples = []
    for name, (value, names) in _SAMPLES.items():
        if name in declared:
            continue
        samples.append((name, value, names))
        if "dict" in declared and name not in {"dict", "none"}:
            samples.append((name, {"nested": value}, names))
        elif "list" in declared and name not in {"list", "none"}:
            samples.append((name, [value], names))
    return samples


def type_samples(declared: Iterable[str]) -> list[tuple[str, Any]]:
    """Return ``(type, value)``: one value of each declared type, alone and nested in each
    declared container, then one value holding all of them."""
    declared = set(declared)
    wrappers: dict[str, Callable[[Any], Any]] = {
        "list": lambda v: [v, v],
        "tuple": lambda v: (v, (v,)),
        "dict": lambda v: {"value": v},
        "int_keys": lambda v: {-3: v, 2**40: v},
    }
    samples = []
    for name, (value, _) in _SAMPLES.items():
        if name in declared:
            samples.append((name, value))
            samples += [
                (f"{name}-in-{c}", wrap(value)) for c, wrap in wrappers.items() if c in declared
            ]
    combined = _combine([value for _, value in samples], declared)
    return samples if combined is None else [*samples, ("all-together", combined)]


def _combine(values: list[Any], declared: set[str]) -> Any:
    if not values:
        return None
    if "list" in declared:
        return list(values)
    if "tuple" in declared:
        return tuple(values)
    if "dict" in declared:
        return {str(i): value for i, value in enumerate(values)}
    if "int_keys" in declared:
        return dict(enumerate(values))
    return None


def same(expected: Any, loaded: Any) -> bool:
    """Return whether ``loaded`` equals ``expected`` with the same type at every level."""
    if type(expected) is not type(loaded):
        return False
    if isinstance(expected, dict):
        tagged = {(type(k), k): v for k, v in loaded.items()}
        return len(expected) == len(loaded) and all(
            (type(k), k) in tagged and same(v, tagged[type(k), k]) for k, v in expected.items()
        )
    if isinstance(expected, list | tuple):
        return len(expected) == len(loaded) and all(map(same, expected, loaded))
    if isinstance(expected, float):
        return expected == loaded or (math.isnan(expected) and math.isnan(loaded))
    return bool(expected == loaded)


def describe(value: Any, limit: int = 200) -> str:
    """Return ``repr(value)`` cut to ``limit`` characters, for messages about big values."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def large_values(declared: Iterable[str], size: int) -> tuple[Any, Any] | None:
    """Return two unequal values of about ``size`` bytes, each made of declared types.

    The two have the same shape and size, so half of one followed by half of the other
    still parses: only comparing what loads with what was stored catches a torn write.
    """
    declared = set(declared)
    for needed, make in _LARGE:
        if needed <= declared:
            return make(size, "a"), make(size, "b")
    return None


_LARGE: list[tuple[set[str], Callable[[int, str], Any]]] = [
    ({"dict", "str", "list", "int"}, lambda n, c: {"rows": [c * 100] * (n // 100), "n": n}),
    ({"str"}, lambda n, c: c * n),
    ({"bytes"}, lambda n, c: c.encode() * n),
    ({"list", "int"}, lambda n, c: [ord(c)] * (n // 2)),
]


def value_strategy(declared: Iterable[str]) -> Any:
    """Return a hypothesis strategy of values made only of the declared types, or ``None``.

    Raises:
        ImportError: hypothesis is not installed.
    """
    from hypothesis import strategies as st

    declared = set(declared)
    leaves = {
        "none": st.none(),
        "bool": st.booleans(),
        "int": st.integers(-(2**63), 2**63 - 1),
        "big_int": st.integers(min_value=2**64) | st.integers(max_value=-(2**64)),
        "float": st.floats(allow_nan=False, allow_infinity=False),
        "str": st.text(st.characters(exclude_characters="\x00"), max_size=12),
        "bytes": st.binary(max_size=12),
        "date": st.dates(),
        "datetime": st.datetimes(),
    }
    base = [strategy for name, strategy in leaves.items() if name in declared]
    containers: list[Callable[[Any], Any]] = []
    if "list" in declared:
        containers.append(lambda inner: st.lists(inner, max_size=4))
    if "tuple" in declared:
        containers.append(lambda inner: st.lists(inner, max_size=4).map(tuple))
    if "dict" in declared:
        containers.append(lambda inner: st.dictionaries(leaves["str"], inner, max_size=4))
    if "int_keys" in declared:
        keys = st.integers() if "big_int" in declared else leaves["int"]
        containers.append(lambda inner: st.dictionaries(keys, inner, max_size=4))
    if not base:
        return None
    leaf = st.one_of(base)
    if not containers:
        return leaf
    return st.recursive(
        leaf, lambda inner: st.one_of([c(inner) for c in containers]), max_leaves=12
    )


# -- config, checked as the host checks it ----------------------------------------------

#: Callables a ``config_schema`` may hold and still travel as plain data: the standard
#: coercions the host carries by name (``flowstone_host.loading.schema_wire``).
STANDARD_CALLABLES: tuple[Any, ...] = (
    int,
    float,
    str,
    bool,
    bytes,
    list,
    tuple,
    dict,
    set,
    frozenset,
    dt.date.fromisoformat,
    dt.datetime.fromisoformat,
    dt.time.fromisoformat,
)


def schema_problems(schema: Any, where: str = "config_schema") -> list[str]:
    """Return one sentence per part of ``schema`` that is not plain data.

    Plain data is what survives a JSON round trip (``None``, bools, numbers, strings,
    lists and str-keyed dicts) plus the standard coercions of :data:`STANDARD_CALLABLES`
    (and ``decimal.Decimal``); tuples count as lists.
    """
    if schema is None or isinstance(schema, bool | int | str):
        return []
    if isinstance(schema, float):
        return [] if math.isfinite(schema) else [f"{where} is {schema!r}, which JSON cannot hold"]
    if isinstance(schema, Mapping):
        problems = []
        for key, value in schema.items():
            if not isinstance(key, str):
                problems.append(f"{where} has the non-string key {key!r}")
            problems += schema_problems(value, f"{where}[{key!r}]")
        return problems
    if isinstance(schema, list | tuple):
        return [p for i, v in enumerate(schema) for p in schema_problems(v, f"{where}[{i}]")]
    if _standard(schema):
        return []
    what = getattr(schema, "__qualname__", type(schema).__name__)
    return [
        f"{where} is {what!r}, which is not plain data: a process-isolated plugin's schema "
        "could not be checked by the host (use a standard coercion such as int, or a "
        "cerberus rule)"
    ]


def _standard(value: Any) -> bool:
    if getattr(value, "__module__", None) == "decimal" and getattr(value, "__name__", "") == (
        "Decimal"
    ):
        return True
    return any(value is known for known in STANDARD_CALLABLES)


def checked_config(plugin_class: type, config: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``config`` validated and normalized by the class's ``config_schema``.

    This is the host's check: cerberus with the plugin's schema and default options, so
    defaults are filled, coercions applied and unknown keys refused.

    Raises:
        ValidationError: the config breaks the schema; the message lists each key and rule.
    """
    schema = getattr(plugin_class, "config_schema", None)
    if schema is None:
        return dict(config)
    validator = cerberus.Validator(dict(schema))
    if not validator.validate(dict(config)):
        found = "; ".join(f"{key!r}: {rules}" for key, rules in sorted(validator.errors.items()))
        raise ValidationError(
            f"The config of {plugin_class.__name__} breaks its config_schema ({found}); the "
            "host refuses it the same way.",
            details={"errors": {str(k): str(v) for k, v in validator.errors.items()}},
        )
    return dict(validator.document)


def build_checked(plugin_class: type, config: Mapping[str, Any], **keywords: Any) -> Any:
    """Build ``plugin_class`` as the host does: ``cls(checked config, **keywords)``.

    Raises:
        ValidationError: the config breaks the class's ``config_schema``.
    """
    return plugin_class(checked_config(plugin_class, config), **keywords)
