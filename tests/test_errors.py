"""The error hierarchy and normalize()."""

from __future__ import annotations

import errno
import pickle

import pytest

from flowstone_host import (
    Conflict,
    FlowStoneError,
    InternalError,
    NotFound,
    NotSupported,
    PermissionDenied,
    StorageError,
    Timeout,
    Unavailable,
    ValidationError,
    normalize,
)
from flowstone_host.errors import PluginCrashed, error_class


def test_subclass_carries_code_retryable_details_and_context() -> None:
    err = NotFound("no such asset", details={"asset": "orders"}, plugin="memory", line=3)
    assert (err.code, err.retryable, err.details) == ("not_found", False, {"asset": "orders"})
    assert err.plugin == "memory" and err.line == 3
    assert str(err) == "no such asset"
    with pytest.raises(AttributeError):
        _ = err.namespace


def test_base_class_takes_any_code() -> None:
    err = FlowStoneError("quota_exceeded", "too many", retryable=True)
    assert (err.code, err.retryable) == ("quota_exceeded", True)


def test_retryable_defaults_follow_the_class_and_can_be_overridden() -> None:
    assert Timeout("slow").retryable and Unavailable("down").retryable
    assert PluginCrashed("died").retryable
    assert not Timeout("slow", retryable=False).retryable


def test_round_trip_through_dict_and_pickle_keeps_the_subclass() -> None:
    err = Conflict("taken", retryable=True, details={"n": 1}, plugin="p")
    for copy in (FlowStoneError.from_dict(err.to_dict()), pickle.loads(pickle.dumps(err))):
        assert type(copy) is Conflict
        assert (copy.code, copy.message, copy.retryable, copy.details) == (
            "conflict",
            "taken",
            True,
            {"n": 1},
        )
        assert copy.plugin == "p"


def test_unknown_code_rebuilds_as_base_class() -> None:
    copy = FlowStoneError.from_dict({"code": "weird", "message": "m"})
    assert type(copy) is FlowStoneError and copy.code == "weird"
    assert error_class("not_found") is NotFound


@pytest.mark.parametrize(
    ("exc", "expected", "retryable"),
    [
        (KeyError("x"), NotFound, False),
        (IndexError("i"), NotFound, False),
        (FileNotFoundError(errno.ENOENT, "gone", "/tmp/x"), NotFound, False),
        (PermissionError(errno.EACCES, "no", "/etc/x"), PermissionDenied, False),
        (TimeoutError("slow"), Timeout, True),
        (ConnectionRefusedError("refused"), Unavailable, True),
        (OSError(errno.EAGAIN, "again"), StorageError, True),
        (OSError(errno.EIO, "io"), StorageError, False),
        (ValueError("bad"), ValidationError, False),
        (NotImplementedError("later"), NotSupported, False),
        (RuntimeError("boom"), InternalError, False),
    ],
)
def test_normalize_standard_exceptions(
    exc: BaseException, expected: type[FlowStoneError], retryable: bool
) -> None:
    err = normalize(exc)
    assert type(err) is expected
    assert err.retryable is retryable
    assert err.__cause__ is exc


def test_normalize_returns_flowstone_errors_unchanged() -> None:
    err = NotFound("x")
    assert normalize(err) is err


def test_plugins_register_rules_for_their_own_exceptions() -> None:
    class DriverError(Exception):
        pass

    @normalize.register(DriverError)
    def _(exc: DriverError) -> FlowStoneError:
        return Unavailable(f"driver: {exc}")

    err = normalize(DriverError("socket closed"))
    assert type(err) is Unavailable and err.message == "driver: socket closed"
    assert err.__cause__.__class__ is DriverError


def test_exceptions_may_describe_themselves() -> None:
    class Described(Exception):
        def __flowstone_error__(self) -> FlowStoneError:
            return Conflict("described")

    err = normalize(Described())
    assert type(err) is Conflict and isinstance(err.__cause__, Described)


def test_unknown_exception_message_names_the_type() -> None:
    err = normalize(RuntimeError("boom"))
    assert err.code == "internal_error" and "RuntimeError: boom" in err.message


def test_rebuilding_ignores_context_keys_that_collide_with_fields() -> None:
    data = {"code": "conflict", "message": "m", "context": {"message": "x", "code": "y", "line": 3}}
    copy = FlowStoneError.from_dict(data)
    assert type(copy) is Conflict and copy.message == "m" and copy.line == 3
