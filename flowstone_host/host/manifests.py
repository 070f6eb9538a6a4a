"""Reading the manifest folders for a reload: by content, keeping each file's last good version.

A reload reads every manifest file's bytes, so it decides what changed by content: events
that changed nothing cost a hash. A file that fails validation, or one still being written,
keeps its last good version in force while the other files' changes apply; a file that
only fails because of another file's failure is held back the same way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..manifest.assembly import manifest_files
from ..manifest.host_config import HostConfig
from ..manifest.issues import Issue, Position
from ..manifest.plugin_config import UNLOADABLE
from ..manifest.validate import ValidationCache, ValidationReport, validate_layers
from ..manifest.yaml_reader import DEFAULT_LIMITS

__all__ = ["ManifestTree", "Validated"]


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
        good: Each file's last good content, by path.
        digests: Each file's content digest when last read.
        cache: Files read and shape-checked, so a reload re-checks only what changed.
    """

    config: HostConfig
    good: dict[str, bytes] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    cache: ValidationCache = field(default_factory=ValidationCache)

    def layers(self) -> list[list[str]]:
        """Return the manifest files of each existing layer folder, in order."""
        return [
            manifest_files([folder]) for folder in self.config.manifest_folders if folder.is_dir()
        ]

    def read(self, busy: Collection[Path] = ()) -> tuple[dict[str, bytes | None], bool]:
        """Return every file's current bytes, and whether any differs from the last read.

        A busy file (still being written) reads as its last good version, or as ``None``
        (left out) when it has none. A file over the size limit is not read at all: it is
        absent from the result, so validation reads only its size and reports it.
        """
        busy_real = {os.path.realpath(p) for p in busy}
        current: dict[str, bytes | None] = {}
        digests: dict[str, str] = {}
        for layer in self.layers():
            for file in layer:
                digests[file] = self._read_one(file, busy_real, current)
        changed = digests != self.digests
        self.digests = digests
        return current, changed

    def _read_one(self, file: str, busy: set[str], current: dict[str, bytes | None]) -> str:
        """Put ``file``'s content in ``current`` (if it is to be read) and return its digest."""
        if os.path.realpath(file) in busy:
            current[file] = self.good.get(file)
            return f"busy:{self.digests.get(file)}"
        try:
            stat = os.stat(file)
            if stat.st_size > DEFAULT_LIMITS.max_bytes:
                return f"oversize:{stat.st_size}:{stat.st_mtime_ns}"
            with open(file, "rb") as handle:
                content = handle.read(DEFAULT_LIMITS.max_bytes + 1)
        except OSError:
            current[file] = None  # vanished between listing and reading: left out
            return "missing"
        current[file] = content
        return hashlib.sha256(content).hexdigest()

    def validate(self, current: Mapping[str, bytes | None]) -> Validated:
        """Validate ``current``, holding back failing files at their last good version.

        A declaration whose plugin cannot be had does not fail its file: it is reported
        on its own (``ManifestSet.unloadable``) and the rest of the file applies.

        First every failing file is held back. If a file still fails at its last good
        version, a change in another file broke it: every changed file is held back, so
        the last good configuration stays whole. If even that fails (an environment
        variable it reads is gone, say), the files that still fail are left out.
        """
        contents: dict[str, bytes | None] = dict(current)
        rejected: dict[str, tuple[Issue, ...]] = {}
        for _ in range(len(contents) + 3):  # each round holds back or drops at least one file
            report = validate_layers(
                self.layers(), self.config, contents=contents, cache=self.cache
            )
            issues = [i for i in report.issues if i.code not in UNLOADABLE]
            failing = sorted({i.position.file for i in issues})
            if not failing:
                break
            fresh = [f for f in failing if f not in rejected]
            if fresh:
                for file in fresh:
                    rejected[file] = tuple(i for i in issues if i.position.file == file)
                    contents[file] = self.good.get(file)
                continue
            changed = [
                f for f, c in contents.items() if f not in rejected and c != self.good.get(f)
            ]
            for file in changed:
                rejected[file] = (_held_back(file, issues),)
                contents[file] = self.good.get(file)
            if not changed:
                contents.update(dict.fromkeys(failing))
        applied = {f: c for f, c in contents.items() if c is not None}
        return Validated(report, rejected, applied)

    def accept(self, validated: Validated) -> None:
        """Remember the applied contents as each file's last good version."""
        self.good = dict(validated.applied)


def _held_back(file: str, issues: list[Issue]) -> Issue:
    """The issue of a valid file held back because applying it breaks another file."""
    broken = issues[0]
    return Issue(
        Position(file, 1, 1),
        (),
        "reload.held_back",
        f"Held back: with this file's change, {broken.position} fails "
        f"({broken.message}). Fix both files together.",
    )
