"""The front door of manifest checking: read, check all three layers, build the model.

:func:`validate_paths` checks files and folders as one set; :func:`load_manifests` reads
the folders a host config names, as layers (overlays merge over the plugins folder).
Either returns a :class:`ValidationReport`: every issue with its position, and the model
of everything valid.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..config import interpolate, referenced
from .assembly import Declared, Source, manifest_files, merge_layers
from .builder import Built, build_manifests
from .catalog import Catalog
from .host_config import HostConfig
from .issues import Issue, one_per_field
from .model import ManifestSet
from .references import reference_issues
from .shape import shape_issues
from .yaml_reader import (
    DEFAULT_LIMITS,
    ReadLimits,
    ReadResult,
    YamlDocument,
    read_bytes,
    read_file,
)

__all__ = [
    "ValidationCache",
    "ValidationReport",
    "load_manifests",
    "validate_layers",
    "validate_paths",
]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """What checking a set of manifests found.

    Attributes:
        files: Every file read, in order.
        issues: Every problem, by file and document, best match first within a document.
        manifests: The model of every declaration and asset without issues.
        declared: The merged documents that passed the shape check (for ``config show``).
        documents: How many documents were read.
    """

    files: tuple[str, ...]
    issues: tuple[Issue, ...]
    manifests: ManifestSet = field(default_factory=ManifestSet)
    declared: tuple[Declared, ...] = field(default=(), repr=False)
    documents: int = 0

    @property
    def ok(self) -> bool:
        """Whether no issue was found."""
        return not self.issues

    @property
    def failed_files(self) -> frozenset[str]:
        """The files with at least one issue (a host keeps their last good version)."""
        return frozenset(issue.position.file for issue in self.issues)

    def summary(self) -> str:
        """Return one line: how many files and documents, and how many errors."""
        counts = f"{len(self.files)} file(s), {self.documents} document(s)"
        if self.ok:
            return f"{counts}: valid"
        return f"{counts}: {len(self.issues)} error(s) in {len(self.failed_files)} file(s)"

    def to_text(self) -> str:
        """Return ``file:line:col: error[code]: message`` lines and the summary."""
        return "\n".join([*(issue.to_text() for issue in self.issues), self.summary()])

    def to_json(self) -> str:
        """Return the report as JSON (``validate --format json``)."""
        data = {
            "valid": self.ok,
            "files": list(self.files),
            "documents": self.documents,
            "errors": [issue.to_dict() for issue in self.issues],
            "summary": self.summary(),
        }
        return json.dumps(data, indent=2)


class _Interpolation(NamedTuple):
    """A cached document's interpolation: what it read, and what came of it."""

    document: YamlDocument
    names: frozenset[str]
    inputs: tuple[Any, ...]
    source: Source
    problems: tuple[Issue, ...]


class ValidationCache:
    """What a validation can reuse from the last one, so a reload costs what changed.

    - Reading and the JSON Schema check depend on a file's bytes alone: kept while the
      bytes stay the same.
    - A document's interpolation depends on the variables it reads: kept while their
      values (and whether each is allowed) stay the same.
    - A plugin declaration's config check and model depend on its interpolated documents
      and its plugin class: kept while both are the very same objects.

    Cross-references and assets are checked afresh every time: they span files.
    """

    def __init__(self) -> None:
        self._files: dict[str, tuple[bytes, ReadResult, tuple[tuple[Issue, ...], ...]]] = {}
        self._sources: dict[int, _Interpolation] = {}
        self.built: Built = {}  # the builder's memo

    def source(
        self,
        document: YamlDocument,
        layer: int,
        label: str,
        environ: Mapping[str, str],
        allowed: Callable[[str], bool],
    ) -> tuple[Source, tuple[Issue, ...]]:
        """Return ``document`` interpolated, and its problems; the same objects while
        neither the document nor the variables it reads change."""
        hit = self._sources.get(id(document))  # the entry holds the document: ids never clash
        names = hit.names if hit is not None else referenced(document.data["spec"])
        inputs = (layer, label, *((n, environ.get(n), allowed(n)) for n in sorted(names)))
        if hit is not None and hit.inputs == inputs:
            return hit.source, hit.problems
        source, problems = _interpolated(document, layer, label, environ, allowed)
        self._sources[id(document)] = _Interpolation(document, names, inputs, source, problems)
        return source, problems

    def read(
        self, file: str, given: bytes | None, limits: ReadLimits
    ) -> tuple[ReadResult, tuple[tuple[Issue, ...], ...]]:
        """Return ``file``'s documents and each one's shape issues (``given`` its bytes)."""
        if given is None:  # not read by the caller: read it here, within the limits
            result = read_file(file, limits)
            return result, tuple(tuple(shape_issues(d)) for d in result.documents)
        hit = self._files.get(file)
        if hit is not None and hit[0] == given:
            return hit[1], hit[2]
        result = read_bytes(given, file, limits)
        shapes = tuple(tuple(shape_issues(d)) for d in result.documents)
        self._files[file] = (given, result, shapes)
        return result, shapes

    def retain(self, files: Iterable[str]) -> None:
        """Forget every file but ``files`` (the ones just read)."""
        keep = set(files)
        self._files = {f: v for f, v in self._files.items() if f in keep}
        live = {id(d) for _, result, _ in self._files.values() for d in result.documents}
        self._sources = {k: v for k, v in self._sources.items() if k in live}


def validate_paths(
    paths: Iterable[PathLike],
    host: HostConfig | None = None,
    *,
    catalog: Catalog,
    environ: Mapping[str, str] | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> ValidationReport:
    """Check manifest files and folders together, as one set (no overlays).

    Args:
        paths: Files, and folders whose ``*.yaml``/``*.yml`` files are read (not recursive).
        host: The host config (env and callable permissions); built-in defaults if ``None``.
        catalog: The installed plugins (``flowstone_host.loading.catalog.installed``).
        environ: Where ``${VAR}`` is read; ``os.environ`` by default.
        limits: YAML reading bounds.

    Raises:
        NotFound: a path does not exist.
    """
    return validate_layers([list(paths)], host, catalog=catalog, environ=environ, limits=limits)


def load_manifests(
    host: HostConfig, *, catalog: Catalog, environ: Mapping[str, str] | None = None
) -> ValidationReport:
    """Read the host config's manifest folders as layers: plugins folder, then overlays.

    Raises:
        NotFound: a folder does not exist.
    """
    folders = [[folder] for folder in host.manifest_folders]
    return validate_layers(folders, host, catalog=catalog, environ=environ)


def validate_layers(
    layers: Sequence[Sequence[PathLike]],
    host: HostConfig | None = None,
    *,
    catalog: Catalog,
    environ: Mapping[str, str] | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
    contents: Mapping[str, bytes | None] | None = None,
    cache: ValidationCache | None = None,
) -> ValidationReport:
    """Check manifests given as layers; a later layer's same kind and name merges over.

    Args:
        layers: Files and folders of each layer, in order.
        host: The host config (env, callables, sandbox); built-in defaults if ``None``.
        catalog: The installed plugins, read under the host's sandbox policy.
        environ: Where ``${VAR}`` is read; ``os.environ`` by default.
        limits: YAML reading bounds.
        contents: Bytes to use instead of reading a file, by path as listed (such a file
            need not exist any more); ``None`` leaves that file out. A reloading host
            passes what it read, with each rejected file's last good version.
        cache: Files read and shape-checked before, by content; a reloading host keeps
            one, so a reload re-reads and re-checks only the files that changed.

    Raises:
        NotFound: a path does not exist.
    """
    host = host or HostConfig.defaults()
    env = os.environ if environ is None else environ
    given = contents or {}
    expanded = [_expand(layer, given) for layer in layers]
    with _gc_paused():
        return _validate(
            layers, expanded, host, catalog, env, limits, contents or {}, cache or ValidationCache()
        )


def _expand(layer: Sequence[PathLike], contents: Mapping[str, bytes | None]) -> list[str]:
    """List a layer's files: a path ``contents`` gives bytes for is taken as it is."""
    files: list[str] = []
    for path in layer:
        name = os.fspath(path)
        files.extend([name] if contents.get(name) is not None else manifest_files([path]))
    return [f for f in dict.fromkeys(files) if contents.get(f, b"") is not None]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while checking: everything built is acyclic and kept in the
    report, so each collection would only walk the growing live heap again (it cost a
    third of the time on a 500-file folder)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _validate(
    layers: Sequence[Sequence[PathLike]],
    expanded: list[list[str]],
    host: HostConfig,
    catalog: Catalog,
    env: Mapping[str, str],
    limits: ReadLimits,
    contents: Mapping[str, bytes | None],
    cache: ValidationCache,
) -> ValidationReport:
    issues: list[Issue] = []
    sources: list[list[Source]] = []
    documents = 0
    for index, files in enumerate(expanded):
        label = ", ".join(str(p) for p in layers[index])
        sources.append([])
        for file in files:
            result, shapes = cache.read(file, contents.get(file), limits)
            issues.extend(result.issues)
            documents += len(result.documents)
            for document, shape in zip(result.documents, shapes, strict=True):
                source = _source(document, shape, index, label, host, env, issues, cache)
                if source is not None:
                    sources[-1].append(source)
    declared, duplicates = merge_layers(sources)
    issues.extend(duplicates)
    issues.extend(reference_issues(declared, host))
    failed = {(i.position.file, i.document) for i in issues}
    manifests, config_issues = build_manifests(
        declared, failed, catalog, host.callables, cache.built
    )
    issues.extend(config_issues)
    read = tuple(f for layer in expanded for f in layer)
    cache.retain(read)
    return ValidationReport(read, _ordered(issues, read), manifests, tuple(declared), documents)


def _source(
    document: YamlDocument,
    shape: tuple[Issue, ...],
    layer: int,
    label: str,
    host: HostConfig,
    environ: Mapping[str, str],
    issues: list[Issue],
    cache: ValidationCache,
) -> Source | None:
    """Interpolate one shape-checked document; ``None`` if its shape is wrong."""
    if shape:
        issues.extend(shape)
        return None
    source, problems = cache.source(document, layer, label, environ, host.env_allowed)
    issues.extend(problems)
    return source


def _interpolated(
    document: YamlDocument,
    layer: int,
    label: str,
    environ: Mapping[str, str],
    allowed: Callable[[str], bool],
) -> tuple[Source, tuple[Issue, ...]]:
    data: dict[str, Any] = dict(document.data)
    result = interpolate(data["spec"], environ, allowed)
    problems = []
    for problem in result.problems:
        path = ("spec", *problem.path)
        position = document.position(path)
        problems.append(Issue(position, path, problem.code, problem.message, document.index))
    data["spec"] = result.value
    env_paths = frozenset(("spec", *p) for p in result.env_paths)
    typed = frozenset(("spec", *p) for p in result.typed_paths)
    return Source(document, data, env_paths, layer, label, typed), tuple(problems)


def _ordered(issues: list[Issue], files: tuple[str, ...]) -> tuple[Issue, ...]:
    """Order by file (as read), then document; keep relevance order inside a document, and
    the first issue of each field."""
    rank = {file: index for index, file in enumerate(files)}
    unique = one_per_field(dict.fromkeys(issues))
    return tuple(sorted(unique, key=lambda i: (rank.get(i.position.file, -1), i.document)))
