"""PluginLoader: one declaration in, a registry entry or a precise error out.

Throwaway distributions (a module and a dist-info in a ``sys.path`` folder) stand in for
plugins that misbehave in the host process itself, where the hostile fixture distribution
must never be imported.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from loader_helpers import SitePackages, descendants, site, write_declaration, write_host_config
from sandbox_helpers import requires_hostile, wait_until

from flowstone_host import (
    Health,
    IncompatibleContract,
    IOManager,
    NotFound,
    PluginLoadError,
    PluginRefused,
    Resource,
    Timeout,
    Unavailable,
)
from flowstone_host.host.lifecycle import Host
from flowstone_host.loading.catalog import installed
from flowstone_host.loading.isolation.process import BASE_ENVIRONMENT
from flowstone_host.loading.loader import PluginLoader
from flowstone_host.loading.probe import ProbeCache
from flowstone_host.loading.release import teardown_entry
from flowstone_host.manifest.host_config import Sandbox, read_host_config
from flowstone_host.manifest.model import Declaration
from flowstone_host.manifest.validate import validate_paths
from flowstone_host.registry import Entry

__all__ = ["site"]  # the fixture, imported for the tests below

IO = "flowstone.io_managers"
RESOURCES = "flowstone.resources"
FIXTURE_DIST = "flowstone-fixture-plugins"


def sandbox(**changes: Any) -> Sandbox:
    values: dict[str, Any] = {
        "allow": ("*",),
        "deny": (),
        "import_timeout_s": 5.0,
        "call_timeout_s": 5.0,
        "memory_mb": 512,
        "cpu_s": 20,
        "open_files": 256,
        **changes,
    }
    return Sandbox(**values)


def loader(cache: ProbeCache | None = None, **changes: Any) -> PluginLoader:
    """A loader with its own probe cache, so verdicts of other tests never leak in."""
    return PluginLoader(sandbox(**changes), cache or ProbeCache())


@pytest.fixture
def journal(tmp_path: Path) -> Mapping[str, Any]:
    return {"journal": str(tmp_path / "journal.log"), "label": "t"}


def io_manager(
    name: str, plugin: str, config: Mapping[str, Any] | None = None, **kw: Any
) -> Declaration:
    return Declaration("IOManager", name, plugin, dict(config or {}), **kw)


def module_source(body: str) -> str:
    """A plugin module: ``body`` after the imports every throwaway plugin needs."""
    header = (
        "from typing import Any\n"
        "from flowstone_host import Health, IOManager, Resource\n"
        "from flowstone_host.plugins.memory_io import MemoryIOManager\n"
    )
    return header + body


#: A correct throwaway IO manager.
PLAIN = module_source("class Plain(MemoryIOManager):\n    contract_version = '1.0.0'\n")


# -- finding and refusing -------------------------------------------------------------------


def test_a_misspelled_plugin_is_not_found_with_a_suggestion() -> None:
    with pytest.raises(NotFound) as caught:
        loader().load(io_manager("store", "jounral"))
    error = caught.value
    assert error.code == "not_found"
    assert error.namespace == IO and error.context["name"] == "store"
    assert "Did you mean 'journal'?" in error.message
    assert "installed:" in error.message and "memory" in error.message


def test_a_name_like_nothing_installed_says_to_install_it() -> None:
    with pytest.raises(NotFound, match="Install the distribution that provides it"):
        loader().load(io_manager("store", "zzzzzz-nothing-like-it"))


def test_a_deny_pattern_refuses_naming_the_rule(site: SitePackages) -> None:
    site.install("acme-denied", {"acme_denied": PLAIN}, {IO: {"acme": "acme_denied:Plain"}})
    cache = ProbeCache()
    with pytest.raises(PluginRefused) as caught:
        loader(cache, deny=("acme-*",)).load(io_manager("a", "acme"))
    error = caught.value
    assert error.code == "plugin_refused"
    assert error.rule == "sandbox.policy.deny pattern 'acme-*'"
    assert error.distribution == "acme-denied" and error.context["name"] == "a"
    assert "acme-denied" in error.message and "'acme-*'" in error.message
    # Refused before anything ran: neither probed nor imported.
    assert cache.get("acme-denied", "1.0.0", "acme_denied:Plain") is None
    assert "acme_denied" not in sys.modules


def test_no_allow_match_refuses_naming_the_rule(journal: Mapping[str, Any]) -> None:
    with pytest.raises(PluginRefused) as caught:
        loader(allow=("flowstone-host", "acme-*")).load(io_manager("j", "journal", journal))
    error = caught.value
    assert error.distribution == FIXTURE_DIST
    assert error.rule == (
        "no sandbox.policy.allow pattern matches (allow: ['flowstone-host', 'acme-*'])"
    )
    assert error.rule in error.message


def test_deny_wins_over_allow(journal: Mapping[str, Any]) -> None:
    strict = loader(allow=("flowstone-*",), deny=("flowstone-fixture-*",))
    with pytest.raises(PluginRefused, match="deny pattern 'flowstone-fixture-\\*'"):
        strict.load(io_manager("j", "journal", journal))
    assert strict.load(io_manager("m", "memory")).metadata["distribution"] == "flowstone-host"


# -- versions -------------------------------------------------------------------------------


def test_a_legacy_plugin_is_accepted_with_a_warning(
    journal: Mapping[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flowstone_host.loading.loader"):
        entry = loader().load(io_manager("old", "legacy", journal))
    assert entry.metadata["compatibility"] == "legacy"
    assert entry.metadata["contract_version"] is None
    [record] = [r for r in caplog.records if r.name == "flowstone_host.loading.loader"]
    assert record.levelno == logging.WARNING
    assert "'old'" in record.getMessage() and "legacy" in record.getMessage().lower()
    teardown_entry(entry)


def test_a_contract_range_that_holds_loads(journal: Mapping[str, Any]) -> None:
    entry = loader().load(io_manager("j", "journal", journal, contract=">=1.0,<2"))
    assert (entry.metadata["contract_version"], entry.metadata["compatibility"]) == (
        "1.0.0",
        "compatible",
    )
    teardown_entry(entry)


def test_a_contract_range_that_does_not_hold_is_refused_naming_both(
    journal: Mapping[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(IncompatibleContract) as caught:
        loader().load(io_manager("j", "journal", journal, contract=">=1.1"))
    error = caught.value
    assert error.code == "incompatible_contract"
    assert (error.declared, error.supported) == ("1.0.0", ">=1.1")
    assert "contract 1.0.0" in error.message and "'>=1.1'" in error.message
    assert error.context["name"] == "j" and error.distribution == FIXTURE_DIST
    # The range is checked before the constructor runs: nothing was opened.
    assert not (tmp_path / "journal.log").exists()


def test_a_legacy_plugin_is_measured_against_the_range_as_the_current_contract(
    journal: Mapping[str, Any],
) -> None:
    teardown_entry(loader().load(io_manager("old", "legacy", journal, contract="~=1.0")))
    with pytest.raises(IncompatibleContract, match=r"contract 1\.0\.0"):
        loader().load(io_manager("old", "legacy", journal, contract=">=2"))


# -- the import probe -----------------------------------------------------------------------


def test_a_plugin_not_yet_imported_is_probed_first(site: SitePackages) -> None:
    site.install("acme-probed", {"acme_probed": PLAIN}, {IO: {"p": "acme_probed:Plain"}})
    cache = ProbeCache()
    entry = loader(cache).load(io_manager("p", "p"))
    verdict = cache.get("acme-probed", "1.0.0", "acme_probed:Plain")
    assert verdict is not None and verdict.ok
    assert verdict.declared["contract_version"] == "1.0.0"
    assert entry.metadata["distribution"] == "acme-probed"
    assert "acme_probed" in sys.modules  # imported into the host after the probe passed


def test_an_imported_module_is_not_probed_again(site: SitePackages) -> None:
    site.install("acme-known", {"acme_known": PLAIN}, {IO: {"k": "acme_known:Plain"}})
    __import__("acme_known")
    cache = ProbeCache()
    loader(cache).load(io_manager("k", "k"))
    assert cache.get("acme-known", "1.0.0", "acme_known:Plain") is None


def test_the_hosts_own_distribution_is_not_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    from flowstone_host.loading import entry_points

    entry_points.load_class(IO, "memory")  # cached, so the import below is not redone
    monkeypatch.delitem(sys.modules, "flowstone_host.plugins.memory_io")
    cache = ProbeCache()
    entry = loader(cache).load(io_manager("m", "memory"))
    assert entry.metadata["distribution"] == "flowstone-host"
    assert cache.get("flowstone-host", entry.metadata["version"], entry.metadata["target"]) is None


def test_a_probe_failure_is_a_load_error_and_the_module_never_loads(site: SitePackages) -> None:
    site.install(
        "acme-crash",
        {"acme_crash": "raise ImportError('acme_crash needs libacme')\n"},
        {IO: {"c": "acme_crash:Plugin"}},
    )
    with pytest.raises(PluginLoadError) as caught:
        loader().load(io_manager("c", "c"))
    assert caught.value.details["probe"] == "import_error"  # found in the probe, not here
    assert "ImportError: acme_crash needs libacme" in caught.value.message
    assert caught.value.context["name"] == "c"
    assert "acme_crash" not in sys.modules


# -- BaseException at import and in the constructor -----------------------------------------


@pytest.mark.parametrize(
    ("module", "statement", "raised"),
    [
        ("acme_exits", "import sys\nsys.exit(3)\n", "SystemExit: 3"),
        ("acme_interrupts", "raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    ],
)
def test_a_base_exception_at_import_with_probing_off_is_a_load_error(
    site: SitePackages, module: str, statement: str, raised: str
) -> None:
    site.install(module.replace("_", "-"), {module: statement}, {IO: {"b": f"{module}:Plugin"}})
    with pytest.raises(PluginLoadError) as caught:
        loader(probe_imports=False).load(io_manager("b", "b"))
    assert raised in caught.value.message
    assert isinstance(caught.value.__cause__, SystemExit | KeyboardInterrupt)
    assert caught.value.context["name"] == "b"
    assert module not in sys.modules  # the failed import left nothing behind


def test_keyboard_interrupt_in_the_constructor_is_a_load_error(site: SitePackages) -> None:
    body = (
        "class Interrupting(MemoryIOManager):\n"
        "    contract_version = '1.0.0'\n"
        "    def __init__(self, config: Any = None) -> None:\n"
        "        raise KeyboardInterrupt\n"
    )
    site.install(
        "acme-ctor", {"acme_ctor": module_source(body)}, {IO: {"i": "acme_ctor:Interrupting"}}
    )
    with pytest.raises(PluginLoadError, match="its constructor raised KeyboardInterrupt"):
        loader().load(io_manager("i", "i"))


def test_missing_abstract_methods_are_named(site: SitePackages) -> None:
    body = (
        "class Half(IOManager):\n"
        "    contract_version = '1.0.0'\n"
        "    def load(self, asset: str, partition: Any, **opts: Any) -> Any: ...\n"
        "    def store(self, asset: str, data: Any, partition: Any, **opts: Any) -> None: ...\n"
    )
    site.install("acme-half", {"acme_half": module_source(body)}, {IO: {"h": "acme_half:Half"}})
    with pytest.raises(PluginLoadError) as caught:
        loader().load(io_manager("h", "h"))
    assert caught.value.details["missing"] == ["delete", "exists"]
    assert "does not implement delete, exists of IOManager" in caught.value.message


# -- resources and teardown -----------------------------------------------------------------


def test_a_resource_whose_setup_raises_is_a_load_error(site: SitePackages) -> None:
    body = (
        "class Broken(Resource):\n"
        "    contract_version = '1.0.0'\n"
        "    def setup(self, config: Any) -> Any:\n"
        "        raise RuntimeError('no database here')\n"
        "    def teardown(self, resource: Any) -> None: ...\n"
    )
    site.install(
        "acme-res", {"acme_res": module_source(body)}, {RESOURCES: {"broken": "acme_res:Broken"}}
    )
    with pytest.raises(PluginLoadError) as caught:
        loader().load(Declaration("Resource", "db", "broken", {}))
    error = caught.value
    assert error.code == "plugin_load_error" and error.context["name"] == "db"
    assert "setup() raised RuntimeError: no database here" in error.message
    assert isinstance(error.__cause__, RuntimeError)


def test_a_flowstone_error_from_setup_keeps_its_code_and_gains_the_context(
    journal: Mapping[str, Any],
) -> None:
    declaration = Declaration("Resource", "db", "journal", {**journal, "fail_setup": True})
    with pytest.raises(Unavailable) as caught:
        loader().load(declaration)
    error = caught.value
    assert error.retryable  # a resource that is down now may come up: the error says so
    assert (error.context["kind"], error.context["name"]) == ("Resource", "db")
    assert error.context["distribution"] == FIXTURE_DIST


def test_a_resource_is_set_up_and_torn_down(journal: Mapping[str, Any]) -> None:
    entry = loader().load(Declaration("Resource", "db", "journal", dict(journal)))
    assert entry.handle == {"label": "t"}
    teardown_entry(entry)
    assert Path(journal["journal"]).read_text().split("\n")[:2] == ["setup t", "teardown t"]


class _Unruly(Resource):
    contract_version = "1.0.0"

    def __init__(self, raised: BaseException) -> None:
        super().__init__({})
        self.raised = raised

    def setup(self, config: Mapping[str, Any]) -> Any:
        return "handle"

    def teardown(self, resource: Any) -> None:
        raise self.raised

    def health_check(self, resource: Any = None) -> Health | None:
        return None


class _Unclosable(IOManager):
    contract_version = "1.0.0"

    def load(self, asset: str, partition: Any, **opts: Any) -> Any:
        return None

    def store(self, asset: str, data: Any, partition: Any, **opts: Any) -> None:
        pass

    def exists(self, asset: str, partition: Any, **opts: Any) -> bool:
        return False

    def delete(self, asset: str, partition: Any, **opts: Any) -> None:
        pass

    def close(self) -> None:
        raise OSError("socket already gone")


@pytest.mark.parametrize(
    "instance",
    [_Unruly(RuntimeError("teardown failed")), _Unruly(KeyboardInterrupt()), _Unclosable()],
    ids=["teardown-raises", "teardown-interrupted", "close-raises"],
)
def test_teardown_entry_never_raises(instance: Any, caplog: pytest.LogCaptureFixture) -> None:
    kind = "Resource" if isinstance(instance, Resource) else "IOManager"
    with caplog.at_level(logging.ERROR, logger="flowstone_host.loading.loader"):
        teardown_entry(Entry(kind, "x", instance, handle="handle"))
    [record] = caplog.records
    doing = "Closing" if isinstance(instance, _Unclosable) else "Tearing down"
    assert doing in record.getMessage() and "'x'" in record.getMessage()
    assert record.exc_info is not None


def test_close_runs_even_when_teardown_raises() -> None:
    closed: list[bool] = []

    class Both(_Unruly):
        def close(self) -> None:
            closed.append(True)

    teardown_entry(Entry("Resource", "x", Both(RuntimeError("teardown failed")), handle="h"))
    assert closed == [True]


# -- isolation: process ---------------------------------------------------------------------


def _declarations(tmp_path: Path, **sandbox_keys: Any) -> tuple[PluginLoader, Mapping[Any, Any]]:
    """Validate ``tmp_path/plugins.d`` under a host config; return its loader and model."""
    host = read_host_config(
        write_host_config(tmp_path / "config", tmp_path / "plugins.d", **sandbox_keys)
    )
    report = validate_paths([tmp_path / "plugins.d"], host, catalog=installed(host))
    assert report.ok, report.to_text()
    return PluginLoader(host.sandbox), report.manifests.declarations


@pytest.fixture
def no_stray_children() -> Iterator[None]:
    before = descendants()
    yield
    assert wait_until(lambda: descendants() <= before, timeout_s=5)


@requires_hostile
@pytest.mark.integration
@pytest.mark.usefixtures("no_stray_children")
def test_a_process_declaration_passes_only_its_env_to_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTONE_TEST_SECRET", "do-not-leak")
    write_declaration(
        tmp_path / "plugins.d",
        "env",
        "hostile-environ",
        isolation="process",
        env={"FLOWSTONE_PASSED": "yes"},
    )
    loader, declarations = _declarations(tmp_path)
    entry = loader.load(declarations["IOManager", "env"])
    try:
        assert entry.metadata["isolation"] == "process"
        assert isinstance(entry.instance, IOManager)
        seen = entry.instance.load("env", None, environ=True)
        workdir = seen["HOME"]
        assert seen == {
            **BASE_ENVIRONMENT,
            "HOME": workdir,
            "TMPDIR": workdir,
            "FLOWSTONE_PASSED": "yes",
        }
        assert descendants()  # the plugin lives in a child
    finally:
        teardown_entry(entry)


@requires_hostile
@pytest.mark.integration
@pytest.mark.usefixtures("no_stray_children")
def test_a_process_declarations_timeout_cuts_a_slow_call_off(tmp_path: Path) -> None:
    write_declaration(
        tmp_path / "plugins.d", "slow", "hostile-sleepy", isolation="process", timeout_s=0.5
    )
    loader, declarations = _declarations(tmp_path)
    entry = loader.load(declarations["IOManager", "slow"])
    try:
        with pytest.raises(Timeout) as caught:
            entry.instance.exists("a", None, sleep_s=30)
        assert caught.value.retryable
    finally:
        teardown_entry(entry)


@requires_hostile
@pytest.mark.integration
@pytest.mark.usefixtures("no_stray_children")
def test_default_isolation_process_runs_an_undeclared_plugin_in_a_child(tmp_path: Path) -> None:
    write_declaration(tmp_path / "plugins.d", "good", "hostile-good")
    loader, declarations = _declarations(tmp_path, default_isolation="process")
    declaration = declarations["IOManager", "good"]
    assert declaration.isolation is None  # the host's default decides
    entry = loader.load(declaration)
    try:
        assert entry.metadata["isolation"] == "process"
        assert entry.metadata["contract_version"] == "1.0.0"
        assert entry.metadata["distribution"] == "flowstone-hostile"
        entry.instance.store("orders", [1, 2], "2024-01-01")
        assert entry.instance.load("orders", "2024-01-01") == [1, 2]
        assert len(descendants()) >= 1
    finally:
        teardown_entry(entry)
    # The package guard (tests/loading/conftest.py) checks flowstone_hostile never loaded here.


# -- a distribution installed while the host runs --------------------------------------------


def test_a_distribution_installed_while_the_host_runs_loads_at_the_next_manual_reload(
    tmp_path: Path, site: SitePackages
) -> None:
    plugins = tmp_path / "plugins.d"
    write_declaration(plugins, "late", "late-io")
    write_declaration(plugins, "memory", "memory")  # stevedore lists the namespace first
    host = Host(read_host_config(write_host_config(tmp_path / "config", plugins)))
    try:
        first = host.start()
        [failed] = [c for c in first.changes if c.action == "failed"]
        assert failed.name == "late" and "No plugin 'late-io'" in (failed.reason or "")
        assert first.rejected_files == {}
        site.install("acme-late", {"acme_late": PLAIN}, {IO: {"late-io": "acme_late:Plain"}})
        # A reload no person asked for, with no manifest change, does not retry.
        assert host.reload("rescan").outcome == "unchanged"
        assert "late" not in host.snapshot().io_managers
        report = host.reload("manual")
        assert (report.outcome, report.rejected_files) == ("applied", {})
        assert [(c.name, c.action) for c in report.changes if c.action != "reused"] == [
            ("late", "added")
        ]
        entry = host.snapshot().io_managers.resolve("late")
        assert (entry.metadata["distribution"], entry.metadata["version"]) == ("acme-late", "1.0.0")
        entry.instance.store("orders", 1, None)
        assert entry.instance.load("orders", None) == 1
        [late] = [d for d in host.status()["declarations"] if d["name"] == "late"]
        assert (late["state"], late["reason"]) == ("active", None)
    finally:
        host.stop(grace_s=1)


@requires_hostile
@pytest.mark.integration
@pytest.mark.usefixtures("no_stray_children")
@pytest.mark.parametrize(
    ("name", "error", "says"),
    [
        ("constructor-raises", PluginLoadError, "ValueError: flowstone_hostile: this constructor"),
        ("contract-2", IncompatibleContract, "contract 2.0.0; this host runs IOManager >=1.0.0"),
        ("wrong-base", PluginLoadError, "not a subclass of IOManager"),
    ],
)
def test_an_isolated_plugin_failing_to_load_names_its_declaration(
    name: str, error: type[Exception], says: str
) -> None:
    with pytest.raises(error) as caught:
        loader().load(io_manager(name, f"hostile-{name}", isolation="process"))
    assert isinstance(caught.value, PluginLoadError)
    assert says in caught.value.message
    context = caught.value.context
    assert (context["name"], context["plugin"]) == (name, f"hostile-{name}")
    assert (context["distribution"], context["version"]) == ("flowstone-hostile", "1.0.0")


def test_a_name_two_distributions_provide_is_refused_and_neither_imported(
    tmp_path: Path, site: SitePackages
) -> None:
    impostor = "import sys\nsys.modules['impostor_ran'] = sys\n" + PLAIN
    site.install("acme-one", {"acme_one": PLAIN}, {IO: {"twice": "acme_one:Plain"}})
    site.install("zzz-two", {"zzz_two": impostor}, {IO: {"twice": "zzz_two:Plain"}})
    with pytest.raises(PluginRefused) as info:
        loader(probe_imports=False).load(Declaration("IOManager", "t", "twice", {}))
    assert "acme-one (acme_one:Plain)" in info.value.message
    assert "zzz-two (zzz_two:Plain)" in info.value.message
    assert "impostor_ran" not in sys.modules and "zzz_two" not in sys.modules
