"""The custom item reader's two modes, beyond what the conformance kit checks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from flowstone_host import ConfigError, PermissionDenied, ValidationError
from flowstone_host.callables import CallablePolicy
from flowstone_host.plugins.custom_reader import CustomItemReader

#: The host's policy, allowing this module's functions only.
HERE = CallablePolicy((__name__,))


def numbers(config: Mapping[str, Any], deps: Mapping[str, Any]) -> Iterator[int]:
    yield from range(deps.get("n", 7))


def pages(
    cursor: int | None, batch_size: int, config: Mapping[str, Any], deps: Any
) -> tuple[list[int], int | None]:
    start = cursor or 0
    size = config.get("page_size", 3)
    end = min(start + size, 10)
    return list(range(start, end)), (end if end < 10 else None)


def _drain(reader: CustomItemReader, batch_size: int) -> list[int]:
    out: list[int] = []
    for _ in range(1000):  # a reader that never finishes fails the test instead of hanging it
        batch = reader.read(batch_size)
        out.extend(batch.items)
        if batch.done:
            return out
    raise AssertionError(f"still not done after 1000 reads; read {out[:20]}...")


def test_iterable_mode_by_import_path_with_deps() -> None:
    reader = CustomItemReader({"function": f"{__name__}:numbers"}, {"n": 5}, callables=HERE)
    assert _drain(reader, 2) == [0, 1, 2, 3, 4]
    assert reader.read(2).items == [] and reader.read(2).done


def test_last_batch_is_marked_done_without_an_extra_empty_read() -> None:
    reader = CustomItemReader({"function": numbers}, {"n": 4})
    assert reader.read(2).done is False
    last = reader.read(2)
    assert last.items == [2, 3] and last.done is True


def test_iterable_restore_resumes_after_the_checkpointed_offset() -> None:
    first = CustomItemReader({"function": numbers})
    first.read(3)
    saved = json.loads(json.dumps(first.checkpoint()))
    second = CustomItemReader({"function": numbers})
    second.restore(saved)
    assert _drain(second, 10) == [3, 4, 5, 6]


def test_paged_mode_resumes_from_the_cursor_without_rereading() -> None:
    reader = CustomItemReader({"function": pages, "paged": True, "page_size": 4})
    assert reader.read(3).items == [0, 1, 2]
    saved = json.loads(json.dumps(reader.checkpoint()))
    resumed = CustomItemReader({"function": pages, "paged": True, "page_size": 4})
    resumed.restore(saved)
    assert _drain(resumed, 5) == [3, 4, 5, 6, 7, 8, 9]


def test_count_comes_from_config() -> None:
    assert CustomItemReader({"function": numbers}).count() is None
    assert CustomItemReader({"function": numbers, "count": 7}).count() == 7


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({}, "needs config.function"),
        ({"function": "nope"}, "module:function"),
        ({"function": "no_such_module_xyz:f"}, "Cannot import"),
        ({"function": f"{__name__}:missing"}, "no attribute"),
    ],
)
def test_bad_function_config_is_a_config_error(config: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        CustomItemReader(config, callables=CallablePolicy(("*",)))


@pytest.mark.parametrize("function", ["os:listdir", "subprocess:run"])
def test_a_function_outside_the_allow_list_is_refused_before_import(function: str) -> None:
    with pytest.raises(PermissionDenied, match=r"callables.allow: test_custom_reader\)"):
        CustomItemReader({"function": function}, callables=HERE)


def test_without_a_policy_no_function_name_is_resolved() -> None:
    with pytest.raises(PermissionDenied, match=r"callables\.allow: nothing"):
        CustomItemReader({"function": f"{__name__}:numbers"})


def test_bad_batch_size_and_foreign_checkpoint_are_validation_errors() -> None:
    reader = CustomItemReader({"function": numbers})
    with pytest.raises(ValidationError):
        reader.read(0)
    with pytest.raises(ValidationError, match="iterable"):
        reader.restore({"cursor": 3})


def test_close_closes_the_users_generator() -> None:
    closed: list[bool] = []

    def source(config: Any, deps: Any) -> Iterator[int]:
        try:
            yield from range(100)
        finally:
            closed.append(True)

    reader = CustomItemReader({"function": source})
    reader.read(5)
    reader.close()
    reader.close()
    assert closed == [True]


@pytest.mark.parametrize(("page_size", "batch_size"), [(4, 3), (3, 4), (1, 5), (5, 1), (10, 10)])
def test_paged_mode_returns_every_item_once_whatever_the_sizes(
    page_size: int, batch_size: int
) -> None:
    reader = CustomItemReader({"function": pages, "paged": True, "page_size": page_size})
    assert _drain(reader, batch_size) == list(range(10))


def test_a_paged_checkpoint_holds_a_cursor_not_items() -> None:
    reader = CustomItemReader({"function": pages, "paged": True, "page_size": 4})
    reader.read(3)
    saved = reader.checkpoint()
    assert saved == {"cursor": None, "skip": 3, "done": False}  # page 0, three items in
    resumed = CustomItemReader({"function": pages, "paged": True, "page_size": 4})
    resumed.restore(json.loads(json.dumps(saved)))
    assert resumed.checkpoint() == saved  # a restored reader checkpoints where it stands
    assert _drain(resumed, 2) == [3, 4, 5, 6, 7, 8, 9]
