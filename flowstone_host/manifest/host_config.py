"""The host config (``config/host.yaml``, ``kind: HostConfig``): reading it into a frozen model.

Defaults live once, in ``schemas/host-config.schema.json`` (``default`` keywords); this
module applies them. Relative paths are resolved against the folder of the config file.
The host config may read any environment variable (``${FLOWSTONE_ADMIN_TOKEN:-}``); it is
the manifests whose access :attr:`HostConfig.env_allow` restricts. A value written as
exactly one reference takes the type the schema asks for (:mod:`.typed_values`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..callables import CallablePolicy, matches
from ..config import FieldPath, Interpolated, has_path, interpolate
from ..errors import ConfigError
from .issues import Issue, Position, format_path
from .schema import schema_files
from .shape import shape_issues
from .typed_values import coerce_references, json_schema_type, not_parsed
from .yaml_reader import YamlDocument, read_file

__all__ = ["Admin", "HealthChecks", "HostConfig", "Reload", "Sandbox", "read_host_config"]


@dataclass(frozen=True, slots=True)
class Sandbox:
    """Which distributions may load, how plugins are probed and isolated, and child limits."""

    allow: tuple[str, ...]
    deny: tuple[str, ...]
    import_timeout_s: float
    call_timeout_s: float
    memory_mb: int
    cpu_s: int
    open_files: int
    probe_imports: bool = True
    default_isolation: str = "inprocess"
    #: Seconds an in-process constructor, ``setup()``, ``teardown()`` or ``close()`` may take.
    setup_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class HealthChecks:
    """Periodic health checks."""

    interval_s: float
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Admin:
    """The admin API: where it listens and the token mutating calls need ('' for none)."""

    listen: str
    token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Reload:
    """When manifests are re-read."""

    debounce_ms: int
    rescan_interval_s: float


@dataclass(frozen=True, slots=True)
class HostConfig:
    """The validated host config; build it with :func:`read_host_config`.

    Attributes:
        path: The file it was read from, or ``None`` for the built-in defaults.
        plugins_dir: The manifest folder the host reads and watches.
        overlays: Folders read after ``plugins_dir``, in order, merging over it.
        state_dir: Folder for run records and embedded state.
        sandbox: Distribution policy and child-process limits.
        admin: The admin API settings.
        reload: Debounce and rescan interval.
        health: Interval and time limit of periodic health checks.
        shutdown_grace_s: How long a stopping daemon waits for runs in flight.
        env_allow: Patterns of the environment variables manifests may read.
        callables_allow: Patterns of the modules whose callables assets may name.
    """

    path: Path | None
    plugins_dir: Path
    overlays: tuple[Path, ...]
    state_dir: Path
    sandbox: Sandbox
    admin: Admin
    reload: Reload
    health: HealthChecks
    shutdown_grace_s: float
    env_allow: tuple[str, ...]
    callables_allow: tuple[str, ...]

    @property
    def manifest_folders(self) -> tuple[Path, ...]:
        """The manifest layers in order: ``plugins_dir``, then each overlay."""
        return (self.plugins_dir, *self.overlays)

    def env_allowed(self, name: str) -> bool:
        """Return whether manifests may read environment variable ``name``."""
        return matches(name, self.env_allow)

    @property
    def callables(self) -> CallablePolicy:
        """The policy every callable a manifest names is resolved under."""
        return CallablePolicy(self.callables_allow)

    @classmethod
    def defaults(cls, base: Path | None = None) -> HostConfig:
        """Return the built-in defaults, relative paths resolved against ``base`` (cwd)."""
        return _build({}, base or Path.cwd() / "config", None)


def read_host_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> HostConfig:
    """Read, check and interpolate a host config file.

    Args:
        path: The ``kind: HostConfig`` YAML file.
        environ: Where ``${VAR}`` is read; ``os.environ`` by default.

    Raises:
        ConfigError: the file is missing, unreadable or invalid; ``details["issues"]``
            lists every problem with its position.
    """
    result = read_file(path)
    issues = list(result.issues)
    documents: list[YamlDocument] = []
    for document in result.documents:
        # a value still reading ${VAR} is checked once it is substituted, below
        found = [i for i in shape_issues(document) if not _reads_env(document, i.path)]
        issues.extend(found)
        if not found:
            documents.append(document)
    if not issues and (len(documents) != 1 or documents[0].data["kind"] != "HostConfig"):
        issues.append(_not_host_config(str(path), result.documents))
    if issues:
        raise _config_error(str(path), issues)
    doc = documents[0]
    interpolated = interpolate(doc.data["spec"], os.environ if environ is None else environ)
    issues = [
        Issue(doc.position(("spec", *p.path)), ("spec", *p.path), p.code, p.message)
        for p in interpolated.problems
    ]
    if not issues:
        issues = _typed_issues(doc, interpolated) or _substituted_shape_issues(doc, interpolated)
    if issues:
        raise _config_error(str(path), issues)
    return _build(interpolated.value, Path(path).resolve().parent, Path(path))


def _reads_env(document: YamlDocument, path: FieldPath) -> bool:
    value: Any = document.data
    for part in path:
        if not has_path(value, (part,)):
            return False
        value = value[part]
    return isinstance(value, str) and "${" in value


def _typed_issues(doc: YamlDocument, interpolated: Interpolated) -> list[Issue]:
    """Convert, in place, each value written as exactly one ``${...}`` to the integer,
    number or boolean the host config schema asks for there; an issue for each that does
    not parse (``memory_mb: ${FLOWSTONE_MEMORY_MB:-2048}``)."""
    schema = schema_files()["host-config.schema.json"]
    failed = coerce_references(
        interpolated.value, interpolated.typed_paths, lambda p: json_schema_type(schema, p)
    )
    issues = []
    for path, wanted in failed:
        full = ("spec", *path)
        message = not_parsed(f"Host config key {format_path(path)!r}", wanted)
        issues.append(Issue(doc.position(full), full, "shape.type", message, doc.index))
    return issues


def _substituted_shape_issues(doc: YamlDocument, interpolated: Interpolated) -> list[Issue]:
    """Shape-check the values ``${VAR}`` produced; never show one from the environment."""
    resolved = dataclasses.replace(doc, data={**doc.data, "spec": interpolated.value})
    from_env = {("spec", *p) for p in interpolated.env_paths}
    issues = []
    for issue in shape_issues(resolved):
        if not _reads_env(doc, issue.path):
            continue  # reported, or not, by the first check
        if issue.path in from_env:
            message = (
                "The value this reads from the environment is not valid here; check the "
                "variable (its value is not shown)."
            )
            issue = dataclasses.replace(issue, message=message)
        issues.append(issue)
    return issues


def _build(spec: Mapping[str, Any], base: Path, path: Path | None) -> HostConfig:
    values = _with_defaults(spec, schema_files()["host-config.schema.json"])
    sandbox = values["sandbox"]
    policy, limits = sandbox["policy"], sandbox["limits"]
    return HostConfig(
        path=path,
        plugins_dir=_resolve(base, values["plugins_dir"]),
        overlays=tuple(_resolve(base, folder) for folder in values["overlays"]),
        state_dir=_resolve(base, values["state_dir"]),
        sandbox=Sandbox(
            tuple(policy["allow"]),
            tuple(policy["deny"]),
            **limits,
            probe_imports=sandbox["probe_imports"],
            default_isolation=sandbox["default_isolation"],
        ),
        admin=Admin(values["admin"]["listen"], values["admin"].get("token", "")),
        reload=Reload(**values["reload"]),
        health=HealthChecks(**values["health"]),
        shutdown_grace_s=values["shutdown"]["grace_s"],
        env_allow=tuple(values["env"]["allow"]),
        callables_allow=tuple(values["callables"]["allow"]),
    )


def _resolve(base: Path, folder: str) -> Path:
    return Path(os.path.normpath(base / folder))


def _with_defaults(value: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in result and "default" in sub:
            result[key] = sub["default"]
        elif sub.get("type") == "object" and "properties" in sub:
            result[key] = _with_defaults(result.get(key, {}), sub)
    return result


@functools.lru_cache(maxsize=1024)
def _not_host_config(file: str, documents: Any) -> Issue:
    position = documents[0].position(("kind",)) if documents else None
    message = "A host config file holds exactly one document of kind HostConfig; fix the file."
    return Issue(position or Position(file, 1, 1), ("kind",), "shape.host_config", message)


def _config_error(file: str, issues: list[Issue]) -> ConfigError:
    lines = "\n".join(issue.to_text() for issue in issues)
    return ConfigError(
        f"Invalid host config {file}:\n{lines}",
        details={"issues": [issue.to_dict() for issue in issues]},
        file=file,
    )
