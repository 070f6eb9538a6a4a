"""Reading the manifest folders for a reload: by content, keeping each file's last good version.

A reload reads every manifest file's bytes, so it decides what changed by content: events
that changed nothing cost a hash. A file that fails validation, or one still being written,
keeps its last good version in force while the other files' changes apply; a file that
only fails because of another file's failure is held back the same way.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

from ..manifest.assembly import manifest_files
from ..manifest.catalog import Catalog
from ..manifest.host_config import HostConfig
from ..manifest.issues import Issue, Position
from ..manifest.plugin_config import UNLOADABLE
from ..manifest.validate import ValidationCache, ValidationReport, validate_layers
from ..manifest.yaml_reader import DEFAULT_LIMITS
from .held_back import held_back

__all__ = ["ManifestTree", "Reading", "Validated"]


@dataclass(frozen=True, slots=True)
class Reading:
    """What one read of the manifest folders found; nothing is remembered until accepted.

    Attributes:
        layers: Each layer's files, in order, as found on disk.
        current: Bytes by file: what is there now, the last good version of a file still
            being written or unreadable, ``None`` to leave a file out. A file over the size
            limit is absent: validation reads only its size and reports it.
        unreadable: Files that exist but could not be read, with the reason.
        digests: A digest of each file's state, to tell whether anything changed.
        changed: Whether any digest differs from the last accepted reading.
    """

    layers: list[list[str]]
    current: dict[str, bytes | None]
    unreadable: dict[str, Issue]
    digests: dict[str, str]
    changed: bool


@dataclass(frozen=True, slots=True)
class Validated:
    """The outcome of validating the tree with fallbacks.

    Attributes:
        report: The validation of what is applied (every file good or held back).
        rejected: Files whose current content was refused, with its errors.
        applied: The bytes used for each file (its current or its last good version);
            a file absent here was left out entirely.
    """

    report: ValidationReport
    rejected: dict[str, tuple[Issue, ...]]
    applied: dict[str, bytes]


@dataclass(slots=True)
class ManifestTree:
    """The host's view of its manifest folders between reloads.

    Attributes:
        config: The host config naming the folders (plugins folder, then overlays).
        catalog: The installed plugins, as validation asks for them.
        good: Each file's last good content, by path.
        layer_of: The layer of each file in ``good``.
        digests: Each file's digest in the last accepted reading.
        cache: Files read and shape-checked, so a reload re-checks only what changed.
    """

    config: HostConfig
    catalog: Catalog
    good: dict[str, bytes] = field(default_factory=dict)
    layer_of: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    cache: ValidationCache = field(default_factory=ValidationCache)

    def read(self, busy: Collection[Path] = ()) -> Reading:
        """Read every manifest file's bytes (a busy one, still being written, as its last
        good version) and tell whether anything differs from the last accepted reading."""
        busy_real = {os.path.realpath(p) for p in busy}
        layers = [manifest_files([f]) for f in self.config.manifest_folders if f.is_dir()]
        current: dict[str, bytes | None] = {}
        unreadable: dict[str, Issue] = {}
        digests: dict[str, str] = {}
        for files in layers:
            for file in files:
                digests[file] = self._read_one(file, busy_real, current, unreadable)
        return Reading(layers, current, unreadable, digests, digests != self.digests)

    def _read_one(
        self,
        file: str,
        busy: set[str],
        current: dict[str, bytes | None],
        unreadable: dict[str, Issue],
    ) -> str:
        """Put ``file``'s content in ``current`` (if it is to be read) and return its digest."""
        good = self.good.get(file)
        kept = "none" if good is None else hashlib.sha256(good).hexdigest()
        if os.path.realpath(file) in busy:
            current[file] = good
            return f"busy:{kept}"
        try:
            content = _read_regular(file)
            if isinstance(content, str):
                return content
        except FileNotFoundError:
            current[file] = None  # deleted between listing and reading: gone, like any deletion
            return "missing"
        except OSError as exc:  # there but unreadable: keep what it said last
            current[file] = good
            unreadable[file] = _unreadable(file, exc)
            return f"unreadable:{exc.errno}:{kept}"
        current[file] = content
        return hashlib.sha256(content).hexdigest()

    def validate(self, reading: Reading) -> Validated:
        """Validate what was read, holding back failing files at their last good version.

        A declaration whose plugin cannot be had does not fail its file: it is reported
        on its own (``ManifestSet.unloadable``) and the rest of the file applies.

        First every failing file is held back. If a file still fails at its last good
        version, a change in another file broke it: every changed file (a deleted one
        included) is held back, so the last good configuration stays whole. If even that
        fails (an environment variable it reads is gone, say), the files that still fail
        are left out. An unchanged file that failed only with a change now held back is
        not reported as rejected: the held-back issue quotes its error.
        """
        layers = [list(files) for files in reading.layers]
        contents: dict[str, bytes | None] = dict(reading.current)
        rejected: dict[str, tuple[Issue, ...]] = {f: (i,) for f, i in reading.unreadable.items()}
        for _ in range(len(contents) + len(self.good) + 3):  # each round holds back or drops one
            report = validate_layers(
                layers, self.config, catalog=self.catalog, contents=contents, cache=self.cache
            )
            issues = [i for i in report.issues if i.code not in UNLOADABLE]
            failing = sorted({i.position.file for i in issues})
            if not failing:
                break
            fresh = [f for f in failing if f not in rejected]
            for file in fresh:
                rejected[file] = tuple(i for i in issues if i.position.file == file)
                contents[file] = self.good.get(file)
            if not fresh and not self._hold_back_changes(layers, contents, rejected, issues):
                contents.update(dict.fromkeys(failing))
        applied = {f: c for f, c in contents.items() if c is not None}
        still = {i.position.file for i in report.issues if i.code not in UNLOADABLE}
        for file in [f for f in rejected if f in applied and f not in still]:
            if file not in reading.unreadable and reading.current.get(file) == self.good.get(file):
                del rejected[file]  # unchanged, failing only with a change now held back
        return Validated(report, rejected, applied)

    def _hold_back_changes(
        self,
        layers: list[list[str]],
        contents: dict[str, bytes | None],
        rejected: dict[str, tuple[Issue, ...]],
        issues: list[Issue],
    ) -> bool:
        """Put every changed or deleted file back at its last good version; whether any was."""
        changed = [f for f, c in contents.items() if f not in rejected and c != self.good.get(f)]
        deleted = [f for f in self.good if f not in contents]
        for file in [*changed, *deleted]:
            rejected[file] = (held_back(file, self.good.get(file), contents.get(file), issues[0]),)
            contents[file] = self.good.get(file)
        for file in deleted:  # it is not on disk any more: list it where it was
            layers[min(self.layer_of[file], len(layers) - 1)].append(file)
        return bool(changed or deleted)

    def accept(self, validated: Validated, reading: Reading) -> None:
        """Remember the applied contents as each file's last good version, and the reading."""
        self.good = dict(validated.applied)
        layer = {f: i for i, files in enumerate(reading.layers) for f in files}
        self.layer_of = {f: layer.get(f, self.layer_of.get(f, 0)) for f in self.good}
        self.digests = reading.digests


def _read_regular(file: str) -> bytes | str:
    """Return a regular file's bytes, or the digest of a file over the size limit.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` after opening, so a FIFO or a
    device swapped in for a manifest never blocks a reload; reads at most one byte past
    the size limit, whatever the file claims.

    Raises:
        OSError: The file cannot be opened or read, or is not a regular file (``EINVAL``).
    """
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        stat = os.fstat(fd)
        if not S_ISREG(stat.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if stat.st_size > DEFAULT_LIMITS.max_bytes:
            return f"oversize:{stat.st_size}:{stat.st_mtime_ns}"
        chunks: list[bytes] = []
        left = DEFAULT_LIMITS.max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _unreadable(file: str, exc: OSError) -> Issue:
    reason = exc.strerror or type(exc).__name__
    return Issue(
        Position(file, 1, 1),
        (),
        "io.unreadable",
        f"Cannot read the file ({reason}); its last good version stays in force. Check its "
        "permissions and the disk.",
    )
