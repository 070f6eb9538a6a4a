"""Where the ``parquet`` IO manager's files live: local disk, or a pyarrow filesystem.

Paths handed to a storage are relative to its root and use ``/``. Invariants:

- On local disk a write goes to a hidden temporary file in the target folder and is then
  renamed over the target (``os.replace``): a reader sees the old file or the new one,
  never a part. Hidden names (a leading ``.``) are skipped by listings and by
  ``pyarrow.dataset``, so a crashed write leaves nothing a reader picks up.
- On an object store (``s3://...``) a write is one object PUT, atomic by itself.
- ``delete`` of a missing file is not an error; on local disk emptied folders are removed.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..aws._client import Secret, require
from ._tables import pq

__all__ = ["ArrowFsStorage", "LocalStorage", "open_storage"]

_WRITE_RETRIES = 5


#: Reads of an object store file before a failure is final (see ``ObjectStorage.read``).
_READ_RETRIES = 6


def _pa() -> Any:
    return require("pyarrow")


def _fs() -> Any:
    return require("pyarrow.fs")


class LocalStorage:
    """Files under a local folder; writes are atomic renames."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.where = str(self.root)

    def write(self, rel: str, table: Any, **options: Any) -> None:
        """Write ``table`` to ``rel`` atomically (temporary name, then rename)."""
        target = self.root / rel
        for attempt in range(_WRITE_RETRIES):
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
            try:
                pq().write_table(table, str(temporary), **options)
                os.replace(temporary, target)
                return
            except FileNotFoundError:  # a concurrent delete pruned the folder: again
                temporary.unlink(missing_ok=True)
                if attempt == _WRITE_RETRIES - 1:
                    raise
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise

    def read(self, rel: str, **options: Any) -> Any:
        """Read the table at ``rel``; FileNotFoundError when it is missing.

        One open file: pyarrow given a path opens it more than once (footer, then row
        groups), and a rename between the opens would mix two versions.
        """
        with open(self.root / rel, "rb") as file:
            return pq().read_table(file, **options)

    def exists(self, rel: str) -> bool:
        """Return whether a file is at ``rel``."""
        return (self.root / rel).is_file()

    def delete(self, rel: str, stop: str) -> None:
        """Remove ``rel`` and the folders it leaves empty, up to ``stop`` (excluded)."""
        target = self.root / rel
        target.unlink(missing_ok=True)
        boundary = self.root / stop
        folder = target.parent
        while folder != boundary and boundary in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): the rest is in use
                return
            folder = folder.parent

    def files(self, rel: str) -> Iterator[str]:
        """Yield the relative paths of the visible files under folder ``rel``."""
        base = self.root / rel
        for folder, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if not name.startswith("."):
                    yield Path(folder, name).relative_to(self.root).as_posix()


class ArrowFsStorage:
    """Files on any filesystem pyarrow knows (``s3://bucket/prefix``, ``gs://``, ...)."""

    def __init__(self, filesystem: Any, base: str, where: str) -> None:
        self.fs, self.base, self.where = filesystem, base.rstrip("/"), where

    def _path(self, rel: str) -> str:
        return f"{self.base}/{rel}" if rel else self.base

    def write(self, rel: str, table: Any, **options: Any) -> None:
        """Write ``table`` to ``rel`` (one object PUT on an object store)."""
        pq().write_table(table, self._path(rel), filesystem=self.fs, **options)

    def read(self, rel: str, **options: Any) -> Any:
        """Read the table at ``rel``; FileNotFoundError when it is missing.

        The object is read whole, then parsed: pyarrow reading it in place makes several
        ranged GETs, and an overwrite between them gives a torn file (``Parquet magic
        bytes not found``). A read that fails anyway (an overwrite between the size and
        the body) is tried again.
        """
        for attempt in range(_READ_RETRIES):
            if not self.exists(rel):
                raise FileNotFoundError(self._path(rel))
            try:
                with self.fs.open_input_stream(self._path(rel)) as stream:
                    body = stream.read()
                return pq().read_table(_pa().BufferReader(body), **options)
            except FileNotFoundError:
                raise
            except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
                if attempt == _READ_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def exists(self, rel: str) -> bool:
        """Return whether a file is at ``rel``."""
        info = self.fs.get_file_info(self._path(rel))
        return bool(info.type == _fs().FileType.File)

    def delete(self, rel: str, stop: str) -> None:
        """Remove ``rel``; a missing file is not an error."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self._path(rel))

    def files(self, rel: str) -> Iterator[str]:
        """Yield the relative paths of the visible files under folder ``rel``."""
        fs_module = _fs()
        selector = fs_module.FileSelector(self._path(rel), recursive=True, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.type == fs_module.FileType.File and not info.base_name.startswith("."):
                yield info.path[len(self.base) + 1 :]


def open_storage(
    root: str, config: Mapping[str, Any], secrets: Mapping[str, Secret]
) -> LocalStorage | ArrowFsStorage:
    """Return the storage for ``root``: a local path, or a URI pyarrow understands.

    For ``s3://`` roots the client keys of the config (``endpoint_url``, ``region_name``,
    credentials) build the S3 filesystem; other URIs go to ``FileSystem.from_uri``.
    """
    scheme = urlsplit(root).scheme
    if "://" not in root or scheme == "file":
        return LocalStorage(root.removeprefix("file://"))
    fs_module = _fs()
    if scheme != "s3":
        filesystem, base = fs_module.FileSystem.from_uri(root)
        return ArrowFsStorage(filesystem, base, root)
    return ArrowFsStorage(_s3_filesystem(fs_module, config, secrets), root[5:], root)


def _s3_filesystem(fs_module: Any, config: Mapping[str, Any], secrets: Mapping[str, Secret]) -> Any:
    options: dict[str, Any] = {}
    endpoint = config.get("endpoint_url") or _boto3_endpoint(config.get("region_name"))
    if endpoint:
        parts = urlsplit(endpoint)
        options["endpoint_override"] = parts.netloc or parts.path
        options["scheme"] = parts.scheme or "https"
    if config.get("region_name"):
        options["region"] = config["region_name"]
    names = {
        "aws_access_key_id": "access_key",
        "aws_secret_access_key": "secret_key",
        "aws_session_token": "session_token",
    }
    options.update({names[key]: secret.reveal() for key, secret in secrets.items()})
    return fs_module.S3FileSystem(**options)


def _boto3_endpoint(region: str | None) -> str | None:
    """Return the S3 endpoint boto3's standard configuration names, if not AWS's own.

    pyarrow's S3 client does not read ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``, or
    a profile's ``endpoint_url``); boto3 does. Asking boto3, when it is installed, makes an
    ``s3://`` root reach the same store as the ``s3`` IO manager with the same settings.
    """
    try:
        boto3 = importlib.import_module("boto3")
    except ImportError:
        return None
    client = boto3.session.Session().client("s3", region_name=region or "us-east-1")
    url = str(client.meta.endpoint_url)
    return None if url.endswith(".amazonaws.com") else url
