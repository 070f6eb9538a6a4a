"""Config assembly: the one merge rule, ``${VAR}`` interpolation, and redaction."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "REDACTED",
    "EnvProblem",
    "FieldPath",
    "Interpolated",
    "deep_merge",
    "has_path",
    "interpolate",
    "is_secret_key",
    "is_secret_path",
    "redact",
    "redact_text",
    "referenced",
    "secret_keys",
]


def has_path(data: Any, path: FieldPath) -> bool:
    """Return whether ``data`` holds a value at ``path`` (mapping keys and list indexes)."""
    for part in path:
        in_mapping = isinstance(data, Mapping) and part in data
        in_list = isinstance(data, list | tuple) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_mapping or in_list):
            return False
        data = data[part]
    return True


def value_at(data: Any, path: FieldPath) -> Any:
    """Return the value at ``path`` in nested mappings and lists, or ``None`` if absent."""
    for part in path:
        if isinstance(data, Mapping):
            if part not in data:
                return None
            data = data[part]
        elif isinstance(data, list | tuple) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def callable_keys(schema: Mapping[str, Any] | None, path: FieldPath = ()) -> list[FieldPath]:
    """Return the paths of the config keys a cerberus schema marks as callables.

    A plugin marks a key whose value names a function with ``"meta": {"callable": True}``;
    the host checks such values against ``callables.allow`` at validation and at load.
    """
    return _marked_keys(schema, "callable", path, dicts_only=True)


def _marked_keys(
    schema: Mapping[str, Any] | None, mark: str, path: FieldPath, *, dicts_only: bool
) -> list[FieldPath]:
    """The paths of the keys whose rules say ``"meta": {mark: True}``, nested schemas
    included (with ``dicts_only``, only those of ``"type": "dict"`` rules)."""
    found: list[FieldPath] = []
    for key, rules in (schema or {}).items():
        if not isinstance(rules, Mapping):
            continue
        meta = rules.get("meta")
        if isinstance(meta, Mapping) and meta.get(mark) is True:
            found.append((*path, key))
        nested = rules.get("schema")
        if isinstance(nested, Mapping) and (not dicts_only or rules.get("type") == "dict"):
            found.extend(_marked_keys(nested, mark, (*path, key), dicts_only=dicts_only))
    return found


def deep_merge(base: Mapping[str, Any], *overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge ``overrides`` over ``base``, later ones winning, into a new dict.

    Mappings merge key by key, recursively; every other value (lists included) is replaced
    whole. Neither input is modified.
    """
    merged = _copy(base)
    for override in overrides:
        if override:
            _merge_into(merged, override)
    return merged


def _copy(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in mapping.items()}


def _merge_into(target: dict[str, Any], override: Mapping[str, Any]) -> None:
    for key, value in override.items():
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _merge_into(current, value)
        else:
            target[key] = _copy(value) if isinstance(value, Mapping) else value


# --- ${VAR} interpolation -------------------------------------------------------------

#: ``${VAR}``, ``${VAR:-default}``, or ``$${...}`` for a literal ``${...}``.
# The default stops at "$" as well as "}": one scan per reference, so a string full of
# unclosed "${X:-" costs linear time, not quadratic.
_REFERENCE = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}$]*))?\}")

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class EnvProblem:
    """A ``${VAR}`` that could not be substituted: ``code`` is ``env.missing`` or ``env.denied``."""

    path: FieldPath
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Interpolated:
    """The result of :func:`interpolate`.

    Attributes:
        value: The data with every reference substituted.
        env_paths: Paths of the strings that took a value from the environment; their
            values must be redacted wherever config is shown.
        problems: References that could not be substituted (left as written in ``value``).
        typed_paths: Paths of the values that were exactly one reference
            (``port: ${PORT:-8080}``): a schema asking for an integer, a number or a
            boolean there gets the text converted
            (:mod:`flowstone_host.manifest.typed_values`).
    """

    value: Any
    env_paths: frozenset[FieldPath]
    problems: tuple[EnvProblem, ...]
    typed_paths: frozenset[FieldPath] = frozenset()


def interpolate(
    data: Any, environ: Mapping[str, str], allowed: Callable[[str], bool] = lambda _: True
) -> Interpolated:
    """Substitute ``${VAR}`` and ``${VAR:-default}`` in every string value of ``data``.

    Only string scalars are touched (never keys), in one pass: a substituted value is not
    scanned again, so a variable holding ``"x\\nsandbox: false"`` stays that literal string.
    ``$${VAR}`` stands for a literal ``${VAR}``.

    Args:
        data: Plain data (mappings, lists, scalars); not modified.
        environ: Where variables are read, usually ``os.environ``.
        allowed: Whether a variable may be read at all; a refused one is a problem even
            when it has a default.

    Returns:
        The substituted copy, the paths of environment-derived strings, and the problems.
    """
    interpolator = _Interpolator(environ, allowed)
    result = interpolator.walk(data, ())
    return Interpolated(
        result,
        frozenset(interpolator.env_paths),
        tuple(interpolator.problems),
        frozenset(interpolator.typed_paths),
    )


def referenced(data: Any) -> frozenset[str]:
    """Return the names of the variables ``${VAR}`` references in ``data``'s strings read.

    :func:`interpolate` of ``data`` depends on nothing but these variables' values (and
    whether each is allowed), so a caller may keep its result while they stay the same.
    """
    if isinstance(data, str):
        return frozenset(m.group(2) for m in _REFERENCE.finditer(data) if not m.group(1))
    if isinstance(data, Mapping):
        data = list(data.values())
    if isinstance(data, list):
        return frozenset().union(*(referenced(v) for v in data))
    return frozenset()


class _Interpolator:
    """One pass of :func:`interpolate`, collecting env-derived paths and problems."""

    def __init__(self, environ: Mapping[str, str], allowed: Callable[[str], bool]) -> None:
        self.environ, self.allowed = environ, allowed
        self.env_paths: set[FieldPath] = set()
        self.problems: list[EnvProblem] = []
        self.typed_paths: set[FieldPath] = set()

    def walk(self, value: Any, path: FieldPath) -> Any:
        if isinstance(value, str):
            if "${" not in value:
                return value
            if value.count("${") > len(_REFERENCE.findall(value)):
                self.problems.append(EnvProblem(path, "env.syntax", _SYNTAX))
                return value
            before = len(self.problems)
            result = _REFERENCE.sub(lambda match: self._replace(match, path), value)
            whole = _REFERENCE.fullmatch(value)
            if whole is not None and not whole.group(1) and len(self.problems) == before:
                self.typed_paths.add(path)
            return result
        if isinstance(value, Mapping):
            return {k: self.walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    def _replace(self, match: re.Match[str], path: FieldPath) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if not self.allowed(name):
            self.problems.append(EnvProblem(path, "env.denied", _denied(name)))
            return match.group(0)
        if name in self.environ:
            self.env_paths.add(path)
            return self.environ[name]
        if default is None:
            self.problems.append(EnvProblem(path, "env.missing", _missing(name)))
            return match.group(0)
        return default


_SYNTAX = (
    "A ${ here is not closed, or nests another: write ${VAR} or ${VAR:-default} (a default "
    "cannot contain $ or }), or $${ for a literal ${."
)


def _denied(name: str) -> str:
    return (
        f"Environment variable {name} is not allowed here; add a matching pattern to "
        "env.allow in the host config, or write the value in the manifest."
    )


def _missing(name: str) -> str:
    return (
        f"Environment variable {name} is not set and has no default; set it, or write "
        f"${{{name}:-default}}."
    )


# --- redaction ---------------------------------------------------------------------------

#: What replaces a redacted value in output, logs and errors.
REDACTED = "<redacted>"

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwords",
        "pass",
        "passwd",
        "bearer",
        "cookie",
        "cookies",
        "jwt",
        "pwd",
        "secret",
        "secrets",
        "token",
        "key",
        "apikey",
        "dsn",
        "credential",
        "credentials",
        "auth",
        "private",
        "passphrase",
        "cert",
        "signature",
    }
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


#: Parts of a key that make it secret wherever they appear (``apitoken``, ``xSecretY``).
_SECRET_PARTS = ("token", "secret", "password", "passwd", "credential", "authorization")
#: A password inside a URL (``scheme://user:PASSWORD@host``) or a libpq DSN
#: (``password=PASSWORD``), whatever the key holding the text.
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]*)(?=@)"
)
_DSN_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE
)


def is_secret_key(key: object) -> bool:
    """Return whether a mapping key looks like it holds a secret.

    Secret: a key with one of the words of ``_SECRET_WORDS`` (``db_password``, ``apiKey``),
    containing ``token``, ``secret``, ``password``, ``credential`` or ``authorization``
    anywhere (``apitoken``, ``Authorization``), or ending in ``_key``.
    """
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    if lowered.endswith("tokens"):  # a count or a list of them (``max_tokens``), not one
        lowered = lowered[: -len("tokens")]
    if any(part in lowered for part in _SECRET_PARTS) or lowered.endswith("_key"):
        return True
    return any(word.lower() in _SECRET_WORDS for word in _WORD.findall(key))


def redact_text(text: str) -> str:
    """Return ``text`` with passwords inside URLs and ``password=`` DSN fields redacted."""
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
    if "=" in text:
        text = _DSN_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
    return text


def password_in(text: str) -> str | None:
    """Return the password inside a URL or ``password=`` DSN field of ``text``, if any (to
    scrub it from messages that quote it without the rest of the DSN)."""
    for pattern in (_URL_PASSWORD, _DSN_PASSWORD):
        match = pattern.search(text)
        if match and match["secret"]:
            return match["secret"].strip("'")
    return None


def secret_keys(schema: Mapping[str, Any] | None, path: FieldPath = ()) -> list[FieldPath]:
    """Return the paths of the config keys a cerberus schema marks as secret.

    A plugin marks a key to redact with ``"meta": {"secret": True}``, beside the key
    patterns of :func:`is_secret_key`.
    """
    return _marked_keys(schema, "secret", path, dicts_only=False)


def is_secret_path(path: FieldPath) -> bool:
    """Return whether any key along ``path`` looks like it holds a secret."""
    return any(is_secret_key(part) for part in path)


def redact(data: Any, env_paths: Iterable[FieldPath] = (), path: FieldPath = ()) -> Any:
    """Return a copy of ``data`` with secrets replaced by :data:`REDACTED`.

    A value is redacted, whole, when its key looks secret (:func:`is_secret_key`) or when
    its path is one of ``env_paths`` (or below one); pass a plugin's :func:`secret_keys`
    there too. Any other text has the passwords in its URLs and DSNs redacted.
    """
    hidden = frozenset(env_paths)
    return _redact(data, hidden, path)


def _redact(value: Any, hidden: frozenset[FieldPath], path: FieldPath) -> Any:
    if path in hidden or (path and is_secret_key(path[-1])):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact(v, hidden, (*path, k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, hidden, (*path, i)) for i, v in enumerate(value)]
    if isinstance(value, str):
        return redact_text(value)
    return value
