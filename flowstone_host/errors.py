"""The errors the host shows, and ``normalize()``, which turns any exception or value into one.

Every error the host reports is a :class:`FlowStoneError` with a stable ``code``, a
``retryable`` flag, JSON-safe ``details`` and keyword context (``plugin``, ``namespace``,
``file``, ``line``, ...). Plugins raise these, or raise whatever their libraries raise and let
the host's error boundary call :func:`normalize`.

Hierarchy::

    FlowStoneError                    code
    ├── NotFound                      not_found
    ├── NotSupported                  not_supported
    ├── Conflict                      conflict
    ├── ValidationError               validation_error
    │   └── ConfigError               config_error
    ├── PermissionDenied              permission_denied
    ├── Unavailable                   unavailable          (retryable)
    ├── Timeout                       timeout              (retryable)
    ├── StorageError                  storage_error
    ├── PluginLoadError               plugin_load_error
    │   ├── IncompatibleContract      incompatible_contract
    │   └── PluginRefused             plugin_refused
    ├── PluginCrashed                 plugin_crashed       (retryable)
    └── InternalError                 internal_error

Adding a normalization rule (the original design's ``Error.Normalizer`` protocol) is one
decorated function in the plugin's module::

    from flowstone_host import NotFound, normalize

    @normalize.register
    def _(exc: botocore.exceptions.ClientError) -> FlowStoneError:
        return NotFound(str(exc)) if exc.response["Error"]["Code"] == "NoSuchKey" else ...

An exception class may instead define ``__flowstone_error__(self) -> FlowStoneError``.
Either way ``normalize`` sets the original exception as ``__cause__``.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "Conflict",
    "FlowStoneError",
    "IncompatibleContract",
    "InternalError",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "PluginCrashed",
    "PluginLoadError",
    "PluginRefused",
    "StorageError",
    "Timeout",
    "Unavailable",
    "ValidationError",
    "error_class",
    "normalize",
]

_BY_CODE: dict[str, type[FlowStoneError]] = {}


class FlowStoneError(Exception):
    """An error the host can show, log, serve and retry by its ``code``.

    Args:
        code: Stable machine-readable code, e.g. ``"not_found"``.
        message: What went wrong, naming the culprit and what to do next.
        retryable: Whether the same call may succeed later; defaults to the class's choice.
        details: JSON-safe data for machines (never secrets).
        **context: Where it happened: ``plugin``, ``namespace``, ``file``, ``line``, ...
    """

    code: ClassVar[str] = "error"
    retryable_default: ClassVar[bool] = False

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool | None = None,
        details: Mapping[str, Any] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]  # instances may carry a code of their own
        self.message = message
        self.retryable = self.retryable_default if retryable is None else retryable
        self.details: dict[str, Any] = dict(details or {})
        self.context: dict[str, Any] = context

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            _BY_CODE.setdefault(cls.code, cls)

    def __getattr__(self, name: str) -> Any:
        # Context keys read as attributes (``err.plugin``); only called for missing names.
        context = self.__dict__.get("context", {})
        if name in context:
            return context[name]
        raise AttributeError(name)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def __reduce__(self) -> Any:
        return (_rebuild, (self.code, self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe form served by the admin API and sent over the plugin wire."""
        return {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "details": self.details,
            "context": {k: v for k, v in self.context.items() if _is_json_scalar(v)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowStoneError:
        """Rebuild an error from :meth:`to_dict` output, as the subclass its code names."""
        return _rebuild(str(data.get("code", "internal_error")), data)


class _Coded(FlowStoneError):
    """A subclass whose code is fixed, so it is built from the message alone."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        details: Mapping[str, Any] | None = None,
        **context: Any,
    ) -> None:
        super().__init__(type(self).code, message, retryable=retryable, details=details, **context)


class NotFound(_Coded):
    """The asset, partition, barrier, decision or name asked for does not exist."""

    code = "not_found"


class NotSupported(_Coded):
    """The plugin does not implement this optional operation."""

    code = "not_supported"


class Conflict(_Coded):
    """The call contradicts recorded state (a different routing decision, a join too early)."""

    code = "conflict"


class ValidationError(_Coded):
    """Input has the wrong shape or value."""

    code = "validation_error"


class ConfigError(ValidationError):
    """A manifest, host config or plugin config is invalid."""

    code = "config_error"


class PermissionDenied(_Coded):
    """The operation is not allowed for this caller or by the sandbox policy."""

    code = "permission_denied"


class Unavailable(_Coded):
    """A backend could not be reached; try again later."""

    code = "unavailable"
    retryable_default = True


class Timeout(_Coded):
    """An operation ran past its time limit."""

    code = "timeout"
    retryable_default = True


class StorageError(_Coded):
    """Reading or writing storage failed for a reason that is not a missing object."""

    code = "storage_error"


class PluginLoadError(_Coded):
    """A plugin could not be imported, checked or constructed."""

    code = "plugin_load_error"


class IncompatibleContract(PluginLoadError):
    """A plugin implements a contract version this host cannot run."""

    code = "incompatible_contract"


class PluginRefused(PluginLoadError):
    """The sandbox policy refuses the plugin's distribution."""

    code = "plugin_refused"


class PluginCrashed(_Coded):
    """An out-of-process plugin died during a call; it is being restarted."""

    code = "plugin_crashed"
    retryable_default = True


class InternalError(_Coded):
    """An exception no rule knows; the original is kept as ``__cause__``."""

    code = "internal_error"


def error_class(code: str) -> type[FlowStoneError]:
    """Return the subclass registered for ``code``, or :class:`FlowStoneError` if none."""
    return _BY_CODE.get(code, FlowStoneError)


_RESERVED = frozenset({"code", "message", "retryable", "details"})


def _rebuild(code: str, data: Mapping[str, Any]) -> FlowStoneError:
    cls = error_class(code)
    context = {k: v for k, v in dict(data.get("context") or {}).items() if k not in _RESERVED}
    kwargs: dict[str, Any] = {
        "retryable": data.get("retryable"),
        "details": data.get("details"),
        **context,
    }
    message = str(data.get("message", ""))
    if issubclass(cls, _Coded):
        return cls(message, **kwargs)
    return cls(code, message, **kwargs)


def _is_json_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@functools.singledispatch
def _rule(value: object) -> FlowStoneError:
    hook = getattr(value, "__flowstone_error__", None)
    if callable(hook):
        result = hook()
        if isinstance(result, FlowStoneError):
            return result
    if isinstance(value, BaseException):
        return InternalError(_describe(value))
    return InternalError(
        f"Unexpected error value {type(value).__name__}: {value!r}",
        details={"value": repr(value)},
    )


def normalize(exc: object) -> FlowStoneError:
    """Turn any exception, or any error value, into a :class:`FlowStoneError`.

    A ``FlowStoneError`` is returned as it is. Other values go through the rules
    registered with ``@normalize.register`` (most specific class first): a rule may be
    registered for an error *value* a driver returns rather than raises (the original
    design's changeset case). Unknown exceptions become :class:`InternalError`; unknown
    non-exception values too, carrying their ``repr`` in the message and
    ``details["value"]``.

    Args:
        exc: The exception or error value to normalize.

    Returns:
        The normalized error, whose ``__cause__`` is ``exc`` when ``exc`` is an exception
        (and was not already a ``FlowStoneError``).
    """
    if isinstance(exc, FlowStoneError):
        return exc
    result = _rule(exc)
    if isinstance(exc, BaseException) and result is not exc and result.__cause__ is None:
        result.__cause__ = exc
    return result


normalize.register = _rule.register  # type: ignore[attr-defined]
normalize.registry = _rule.registry  # type: ignore[attr-defined]


@_rule.register
def _(exc: KeyError) -> FlowStoneError:
    return NotFound(f"Not found: {exc.args[0]!r}" if exc.args else "Not found")


@_rule.register
def _(exc: LookupError) -> FlowStoneError:
    return NotFound(_describe(exc))


@_rule.register
def _(exc: NotImplementedError) -> FlowStoneError:
    return NotSupported(_describe(exc))


@_rule.register
def _(exc: TimeoutError) -> FlowStoneError:
    return Timeout(_describe(exc))


@_rule.register
def _(exc: ConnectionError) -> FlowStoneError:
    return Unavailable(_describe(exc))


@_rule.register
def _(exc: FileNotFoundError) -> FlowStoneError:
    return NotFound(_describe(exc), path=exc.filename)


@_rule.register
def _(exc: PermissionError) -> FlowStoneError:
    return PermissionDenied(_describe(exc), path=exc.filename)


_TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ENOBUFS})


@_rule.register
def _(exc: OSError) -> FlowStoneError:
    return StorageError(_describe(exc), retryable=exc.errno in _TRANSIENT_ERRNOS, path=exc.filename)


@_rule.register
def _(exc: ValueError) -> FlowStoneError:
    return ValidationError(_describe(exc))


@_rule.register
def _(exc: MemoryError) -> FlowStoneError:
    return InternalError("Out of memory", retryable=True)
