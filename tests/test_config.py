"""The merge rule of every config layer."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flowstone_host.config import (
    REDACTED,
    FieldPath,
    callable_keys,
    deep_merge,
    has_path,
    interpolate,
    is_secret_key,
    is_secret_path,
    password_in,
    redact,
    redact_text,
    referenced,
    secret_keys,
    value_at,
)


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


# --- interpolation and redaction of nested data -----------------------------------------------

SECRET = "hunter2-do-not-print"


def test_an_environment_value_inside_a_list_is_redacted_by_its_index() -> None:
    data = {"args": ["--verbose", "${DB_FLAG}", "${MISSING:-plain}"], "n": [1, "${DB_FLAG}"]}
    result = interpolate(data, {"DB_FLAG": SECRET})
    assert result.value == {"args": ["--verbose", SECRET, "plain"], "n": [1, SECRET]}
    assert result.env_paths == {("args", 1), ("n", 1)}
    assert redact(result.value, result.env_paths) == {
        "args": ["--verbose", REDACTED, "plain"],
        "n": [1, REDACTED],
    }


def test_environment_values_deep_in_lists_of_mappings_are_redacted() -> None:
    data = {"replicas": [{"host": "a", "port": "${PORT}"}, {"host": "${HOST}", "port": 1}]}
    result = interpolate(data, {"PORT": "5432", "HOST": SECRET})
    assert result.env_paths == {("replicas", 0, "port"), ("replicas", 1, "host")}
    assert redact(result.value, result.env_paths) == {
        "replicas": [{"host": "a", "port": REDACTED}, {"host": REDACTED, "port": 1}]
    }


def test_secret_keys_in_lists_of_mappings_are_redacted() -> None:
    data = {"replicas": [{"host": "a", "password": SECRET}, {"host": "b", "apiKey": [SECRET]}]}
    assert redact(data) == {
        "replicas": [{"host": "a", "password": REDACTED}, {"host": "b", "apiKey": REDACTED}]
    }
    assert redact((SECRET, {"token": SECRET})) == [SECRET, {"token": REDACTED}]


def test_a_secret_key_redacts_its_whole_subtree_and_env_paths_redact_below() -> None:
    data = {"credentials": {"user": "u", "nested": [SECRET]}, "pool": {"dsn": {"a": 1}}}
    assert redact(data) == {"credentials": REDACTED, "pool": {"dsn": REDACTED}}
    assert redact({"a": {"b": [1, 2]}}, [("a",)]) == {"a": REDACTED}
    assert redact({"a": {"b": 1}}, [("a", "b")]) == {"a": {"b": REDACTED}}
    assert redact({"a": 1}, [("b",)]) == {"a": 1}
    assert redact(SECRET, [()]) == REDACTED  # the root itself came from the environment
    assert redact(SECRET) == SECRET  # no key says it is secret


def test_redaction_can_start_below_the_root() -> None:
    assert redact({"user": "u"}, path=("password",)) == REDACTED
    assert redact({"user": "u"}, [("db", "user")], path=("db",)) == {"user": REDACTED}


def test_is_secret_path_looks_along_the_whole_path() -> None:
    assert is_secret_path(("db", "credentials", 0, "name"))
    assert not is_secret_path(("db", 0, "name")) and not is_secret_path(())
    assert not is_secret_key(3) and not is_secret_key(None)


def test_interpolation_leaves_keys_and_non_strings_alone() -> None:
    data = {"${X}": ("${X}",), "n": None, "b": True, "f": 1.5}
    result = interpolate(data, {"X": SECRET})
    assert result.value == data and result.env_paths == frozenset()


def test_an_escaped_reference_is_kept_literally_and_reads_nothing() -> None:
    result = interpolate({"a": "$${X} and ${X}"}, {"X": "x"}, lambda name: name == "X")
    assert result.value == {"a": "${X} and x"} and not result.problems
    assert referenced({"a": "$${X} and ${Y:-d}", "b": ["${Z}", 3]}) == {"Y", "Z"}
    assert referenced(5) == frozenset() and referenced("plain") == frozenset()


def test_a_default_is_used_only_when_the_variable_is_unset() -> None:
    assert interpolate("${X:-d}", {}).value == "d"
    assert interpolate("${X:-d}", {"X": ""}).value == ""  # set but empty is a value
    result = interpolate("${X:-}", {})
    assert (result.value, result.env_paths, result.problems) == ("", frozenset(), ())


def test_has_path_and_value_at_walk_mappings_and_lists() -> None:
    data = {"a": [{"b": 1}, None], "t": (0,)}
    assert has_path(data, ("a", 0, "b")) and has_path(data, ("t", 0)) and has_path(data, ())
    assert not has_path(data, ("a", 2)) and not has_path(data, ("a", -1))
    assert not has_path(data, ("a", "0")) and not has_path(data, ("x",))
    assert not has_path(data, ("a", 0, "b", "c"))
    assert value_at(data, ("a", 0, "b")) == 1 and value_at(data, ("t", 0)) == 0
    assert value_at(data, ("a", 1)) is None and value_at(data, ("a", 5)) is None
    assert value_at(data, ("x", "y")) is None and value_at(data, ("a", 0, "b", "c")) is None
    assert value_at(data, ("a", -1)) is None


def test_callable_keys_are_found_in_nested_dict_schemas() -> None:
    schema = {
        "function": {"type": "string", "meta": {"callable": True}},
        "other": {"type": "string", "meta": {"callable": False}},
        "nested": {
            "type": "dict",
            "schema": {"hook": {"type": "string", "meta": {"callable": True}}},
        },
        "listed": {"type": "list", "schema": {"x": {"meta": {"callable": True}}}},
        "odd": "not a rule",
        "meta_not_mapping": {"meta": "callable"},
    }
    assert callable_keys(schema) == [("function",), ("nested", "hook")]
    assert callable_keys(None) == [] and callable_keys(schema, ("p",))[0] == ("p", "function")


def test_a_schema_mark_is_found_after_a_rule_that_is_not_a_mapping() -> None:
    schema = {"odd": "not a rule", "pw": {"type": "string", "meta": {"secret": True}}}
    assert secret_keys(schema) == [("pw",)]
    assert callable_keys({"odd": 1, "fn": {"meta": {"callable": True}}}) == [("fn",)]


def test_secret_marks_are_found_in_every_nested_schema_callables_only_in_dicts() -> None:
    schema = {
        "db": {
            "type": "dict",
            "schema": {
                "replicas": {
                    "type": "list",
                    "schema": {"pin": {"meta": {"secret": True, "callable": True}}},
                },
                "user": {"meta": {"secret": False, "callable": False}},
            },
        },
        "hook": {"meta": {"callable": True}},  # marked callable, not secret
    }
    assert secret_keys(schema) == [("db", "replicas", "pin")]
    assert secret_keys(schema, ("spec",)) == [("spec", "db", "replicas", "pin")]
    assert secret_keys(None) == []
    # A list rule's schema describes its items, which are never callables' names.
    assert callable_keys(schema) == [("hook",)]


def test_keys_holding_a_secret_part_anywhere_are_secret() -> None:
    for key in ("apitoken", "xSecretY", "AUTHORIZATION", "mypasswordhash", "dbcredentialfile"):
        assert is_secret_key(key), key
    assert not is_secret_key("max_tokens") and not is_secret_key("host")


def test_passwords_inside_urls_and_dsns_are_redacted_in_any_text() -> None:
    url = "postgresql://app:hunter2@db:5432/x"
    assert redact_text(url) == f"postgresql://app:{REDACTED}@db:5432/x"
    dsn = "host=db password='hunter 2' user=app"
    assert redact_text(dsn) == f"host=db password={REDACTED} user=app"
    assert redact_text(f"{url} and password=abc") == (
        f"postgresql://app:{REDACTED}@db:5432/x and password={REDACTED}"
    )
    for plain in ("no secret here", "a=b c=d", "https://example.org/path"):
        assert redact_text(plain) == plain
    assert redact({"note": url, "n": 1}) == {"note": redact_text(url), "n": 1}


def test_the_password_inside_a_url_or_dsn_is_found_to_scrub_it() -> None:
    assert password_in("postgresql://app:hunter2@db/x") == "hunter2"
    assert password_in("host=db password='hunter 2'") == "hunter 2"
    assert password_in("host=db password='XsecretX'") == "XsecretX"  # only quotes go
    assert password_in("postgresql://app:@db/x password=p") == "p"  # empty URL password
    assert password_in("postgresql://app@db/x") is None
    assert password_in("nothing") is None


def test_a_whole_reference_is_typed_and_nothing_else_is() -> None:
    data = {
        "port": "${PORT:-8080}",
        "host": "${HOST}",
        "url": "http://${HOST}",
        "literal": "$${PORT}",
        "missing": "${NOPE}",
        "denied": "${SECRET_X}",
        "broken": "${PORT",
        "items": ["${PORT}", 3],
    }
    result = interpolate(data, {"HOST": "h", "PORT": "1"}, lambda name: name != "SECRET_X")
    assert result.typed_paths == {("port",), ("host",), ("items", 0)}


def test_an_unsubstituted_reference_is_left_as_written_and_its_problem_names_it() -> None:
    data = {"missing": "a ${NOPE} b", "denied": "${SECRET_X:-d}", "broken": "${PORT"}
    result = interpolate(data, {"SECRET_X": "s"}, lambda name: name != "SECRET_X")
    assert result.value == data
    problems = {p.path: p for p in result.problems}
    assert problems[("missing",)].code == "env.missing"
    assert "NOPE" in problems[("missing",)].message
    assert problems[("denied",)].code == "env.denied"
    assert "SECRET_X" in problems[("denied",)].message
    assert problems[("broken",)].code == "env.syntax"
    assert "${VAR}" in problems[("broken",)].message


def test_value_at_an_index_one_past_the_end_is_absent() -> None:
    assert value_at({"a": [1, 2]}, ("a", 2)) is None and value_at((0,), (1,)) is None
    assert not has_path([1, 2], (2,))


# --- properties -------------------------------------------------------------------------------

keys = st.one_of(
    st.sampled_from(["password", "db_password", "apiKey", "token", "dsn", "host", "level"]),
    st.text(st.characters(codec="utf-8"), max_size=8),
)
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)


def _leaves(data: Any, path: FieldPath = ()) -> list[tuple[FieldPath, Any]]:
    if isinstance(data, dict):
        return [leaf for k, v in data.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(data, list):
        return [leaf for i, v in enumerate(data) for leaf in _leaves(v, (*path, i))]
    return [(path, data)]


@given(trees)
def test_redaction_hides_every_value_under_a_secret_key_and_keeps_the_rest(data: Any) -> None:
    shown = redact(data)
    for path, value in _leaves(data):
        secret = next((i for i, part in enumerate(path) if is_secret_key(part)), None)
        if secret is None:
            assert value_at(shown, path) == value and has_path(shown, path)
        else:
            assert value_at(shown, path[: secret + 1]) == REDACTED
    assert redact(data, [()]) == REDACTED


@given(trees, st.data())
def test_every_environment_value_is_redacted_wherever_it_sits(data: Any, draw: Any) -> None:
    paths = [path for path, value in _leaves(data) if isinstance(value, str)]
    env = draw.draw(st.lists(st.sampled_from(paths), unique=True) if paths else st.just([]))
    marked = _replace(data, {path: "${FLOWSTONE_TEST_VALUE}" for path in env})
    result = interpolate(marked, {"FLOWSTONE_TEST_VALUE": SECRET})
    assert set(result.env_paths) == set(env) and not result.problems
    shown = redact(result.value, result.env_paths)
    assert SECRET not in repr(shown)


def _replace(data: Any, values: dict[FieldPath, Any], path: FieldPath = ()) -> Any:
    if path in values:
        return values[path]
    if isinstance(data, dict):
        return {k: _replace(v, values, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [_replace(v, values, (*path, i)) for i, v in enumerate(data)]
    return data


@given(st.text(st.characters(codec="utf-8", exclude_characters="$")))
def test_strings_without_a_reference_come_back_unchanged(text: str) -> None:
    result = interpolate({"a": [text]}, {})
    assert result.value == {"a": [text]} and not result.problems and not result.env_paths


@given(trees.filter(lambda t: isinstance(t, dict)), trees.filter(lambda t: isinstance(t, dict)))
def test_merging_keeps_every_override_leaf_and_modifies_no_input(a: Any, b: Any) -> None:
    before = (repr(a), repr(b))
    merged = deep_merge(a, b)
    assert (repr(a), repr(b)) == before
    for path, value in _leaves(b):
        if path:
            assert value_at(merged, path) == value
    assert deep_merge(merged, b) == merged  # merging the same layer again changes nothing
