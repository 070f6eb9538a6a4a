"""configure_logging: JSON lines, readable text, idempotence, hostile extras."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from flowstone_host.daemon.logs import JsonFormatter, configure_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class _Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_json_lines_carry_core_fields_and_extras() -> None:
    out = io.StringIO()
    configure_logging("json", "DEBUG", stream=out)
    logging.getLogger("flowstone.test").info("hello %s", "world", extra={"plugin": "memory"})
    [line] = _json_lines(out)
    assert line["level"] == "INFO"
    assert line["logger"] == "flowstone.test"
    assert line["message"] == "hello world"
    assert line["plugin"] == "memory"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["ts"]))


def test_unserialisable_extras_are_repr_and_never_crash() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    logging.getLogger("t").warning(
        "odd",
        extra={
            "obj": _Unrepresentable(),
            "nan": float("nan"),
            "tuple_keys": {(1, 2): 3},
            "nested": {"when": object(), "n": [1, 2]},
            "level": "spoofed",
        },
    )
    [line] = _json_lines(out)
    assert line["obj"] == "<unrepresentable _Unrepresentable>"
    assert line["nan"] == "nan"
    assert line["tuple_keys"] == "{(1, 2): 3}"
    assert line["nested"]["n"] == [1, 2]  # type: ignore[index]
    assert str(line["nested"]["when"]).startswith("<object object")  # type: ignore[index]
    assert line["level"] == "WARNING"  # core fields win over extras


def test_exception_text_is_included() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        logging.getLogger("t").exception("failed")
    [line] = _json_lines(out)
    assert "ZeroDivisionError: boom" in str(line["exception"])


def test_bad_format_args_do_not_lose_the_record() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "two %d %d", (1,), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "'two %d %d' % (1,)"


def test_one_record_is_one_line_even_with_newlines() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    logging.getLogger("t").info("a\nb")
    assert _json_lines(out)[0]["message"] == "a\nb"


def test_text_format_is_readable_with_extras() -> None:
    out = io.StringIO()
    configure_logging("text", "INFO", stream=out)
    logging.getLogger("flowstone.admin").info("listening", extra={"port": 8787, "host": "a b"})
    line = out.getvalue().strip()
    assert re.fullmatch(r"\S+Z INFO    flowstone\.admin: listening port=8787 host=\"a b\"", line), (
        line
    )


def test_configuring_again_replaces_only_our_handler() -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    configure_logging("text", stream=first)
    configure_logging("json", "WARNING", stream=second)
    logging.getLogger("t").warning("once")
    logging.getLogger("t").info("filtered")
    assert first.getvalue() == ""
    assert [line["message"] for line in _json_lines(second)] == ["once"]
    assert other in logging.getLogger().handlers


def test_unknown_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("yaml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="log level"):
        configure_logging("text", "LOUD")
