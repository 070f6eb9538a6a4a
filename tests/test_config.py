"""The merge rule of every config layer."""

from __future__ import annotations

from flowstone_host.config import deep_merge


def test_mappings_merge_deeply_and_later_layers_win() -> None:
    defaults = {"pool": {"size": 5, "timeout": 30}, "tags": ["a"], "schema": "public"}
    declared = {"pool": {"size": 10}, "tags": ["b", "c"]}
    asset = {"pool": {"timeout": 5}, "schema": "staging"}
    merged = deep_merge(defaults, declared, asset)
    assert merged == {"pool": {"size": 10, "timeout": 5}, "tags": ["b", "c"], "schema": "staging"}


def test_inputs_are_not_modified_and_results_share_no_mapping() -> None:
    base = {"a": {"b": 1}}
    override = {"a": {"c": 2}, "d": {"e": 3}}
    merged = deep_merge(base, override)
    merged["a"]["b"] = 99
    merged["d"]["e"] = 99
    assert base == {"a": {"b": 1}} and override == {"a": {"c": 2}, "d": {"e": 3}}


def test_a_scalar_replaces_a_mapping_and_back() -> None:
    assert deep_merge({"a": {"b": 1}}, {"a": None}) == {"a": None}
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert deep_merge({"a": 1}, None, {}) == {"a": 1}
