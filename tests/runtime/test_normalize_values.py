"""normalize() accepts any value: rules for error values, InternalError for unknown ones."""

from __future__ import annotations

from dataclasses import dataclass

from flowstone_host import FlowStoneError, InternalError, ValidationError, normalize


def test_unknown_value_becomes_internal_error_carrying_its_repr() -> None:
    err = normalize({"reason": "odd"})
    assert type(err) is InternalError
    assert err.details["value"] == repr({"reason": "odd"})
    assert "{'reason': 'odd'}" in err.message
    assert err.__cause__ is None


def test_none_and_strings_are_values_too() -> None:
    assert normalize(None).code == "internal_error"
    assert "'disk full'" in normalize("disk full").message


def test_a_rule_may_be_registered_for_an_error_value() -> None:
    @dataclass
    class Changeset:  # a driver's error value, returned rather than raised
        errors: dict[str, str]

    @normalize.register(Changeset)
    def _(value: Changeset) -> FlowStoneError:
        return ValidationError("invalid", details={"errors": value.errors})

    err = normalize(Changeset({"name": "required"}))
    assert type(err) is ValidationError and err.details == {"errors": {"name": "required"}}
