"""The ``s3`` IO manager: one object per ``(asset, partition)`` in a bucket.

Objects live at ``s3://{bucket}/{prefix}/{asset}/{partition key}.{ext}``, the partition key
being :func:`flowstone_host.partitions.partition_key` (``~n`` for an unpartitioned asset)
and the extension the format's. Invariants:

- A store is one PUT (or one multipart upload, above ``multipart_threshold_mb``): S3 makes
  it visible whole or not at all, and the last write wins.
- ``load`` of a missing object raises ``NotFound`` naming the asset and the partition; a
  missing bucket is a ``ConfigError``; throttling and 5xx are retryable ``Unavailable``.
- ``list_partitions`` pages through ``ListObjectsV2`` (1,000 keys a page) and returns each
  partition once, whatever format it was stored in.
- Credentials given in config are never shown (see :mod:`._client`).
- boto3 clients are thread-safe, so one client serves every thread.
"""

from __future__ import annotations

import io
import re
from typing import Any, ClassVar

from ...contracts.io_manager import IOManager, Partition
from ...contracts.types import Health
from ...errors import NotFound, StorageError, ValidationError
from ...partitions import parse_partition_key, partition_key
from ._client import CLIENT_SCHEMA, checked_config, make_client, public_config, require, translate
from ._formats import FORMATS, Format, get_format

__all__ = ["S3IOManager"]

MB = 1024 * 1024
_ASSET = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_asset_name(asset: str) -> str:
    """Return ``asset`` if it is safe as one path segment (no ``/``, no leading dot).

    Raises:
        ValidationError: it is not.
    """
    if not isinstance(asset, str) or not _ASSET.fullmatch(asset):
        raise ValidationError(
            f"Asset name {asset!r} cannot be a path segment: use letters, digits, '_', '.', '-'.",
            asset=str(asset),
        )
    return asset


class S3IOManager(IOManager):
    """Stores asset values as objects in S3 or any S3-compatible store.

    Config (besides the client keys shared by the AWS plugins: ``endpoint_url``,
    ``region_name``, ``profile_name``, credentials, ``addressing_style``, retries and
    timeouts):
        bucket: The bucket (required).
        prefix: A key prefix under which every asset lives (default: none).
        format: ``json`` (default), ``parquet``, ``arrow`` or ``pickle``; a call's
            ``format`` option (an asset's ``io_config``) overrides it.
        allow_pickle: Opt in to the pickle format (only here: an asset cannot opt in).
        multipart_threshold_mb: Values at least this large go up as a multipart upload.
        multipart_chunksize_mb: Part size of a multipart upload.
        max_concurrency: Parts uploaded at once.
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {
        **CLIENT_SCHEMA,
        "bucket": {"type": "string", "required": True, "empty": False},
        "prefix": {"type": "string", "default": ""},
        "format": {"type": "string", "allowed": sorted(FORMATS), "default": "json"},
        "allow_pickle": {"type": "boolean", "default": False},
        "multipart_threshold_mb": {"type": "number", "min": 5, "default": 64},
        "multipart_chunksize_mb": {"type": "number", "min": 5, "default": 16},
        "max_concurrency": {"type": "integer", "min": 1, "default": 8},
    }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        checked = checked_config("s3", self.config_schema, config)
        public, secrets = public_config(checked)
        super().__init__(public)
        self.bucket: str = public["bucket"]
        self.prefix = public["prefix"].strip("/") + "/" if public["prefix"].strip("/") else ""
        self._allow_pickle = bool(public["allow_pickle"])
        self._format = get_format(public["format"], self._allow_pickle)
        self.value_types = self._format.value_types
        self._threshold = int(public["multipart_threshold_mb"] * MB)
        self._client = make_client("s3", public, secrets)
        transfer = require("boto3.s3.transfer")
        self._transfer = transfer.TransferConfig(
            multipart_threshold=self._threshold,
            multipart_chunksize=int(public["multipart_chunksize_mb"] * MB),
            max_concurrency=int(public["max_concurrency"]),
        )

    def __repr__(self) -> str:
        return f"S3IOManager(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def object_key(self, asset: str, partition: Partition, **opts: Any) -> str:
        """Return the object key of ``(asset, partition)`` in the format ``opts`` selects."""
        extension = self._format_of(opts).extension
        return f"{self.prefix}{check_asset_name(asset)}/{partition_key(partition)}.{extension}"

    def _format_of(self, opts: dict[str, Any]) -> Format:
        name = opts.get("format")
        return self._format if name is None else get_format(str(name), self._allow_pickle)

    @staticmethod
    def _culprit(asset: str, partition: Partition) -> tuple[str, dict[str, Any]]:
        key = partition_key(partition)
        return f"asset {asset!r}, partition {key!r}", {"asset": asset, "partition": key}

    def load(self, asset: str, partition: Partition, **opts: Any) -> Any:
        fmt, key = self._format_of(opts), self.object_key(asset, partition, **opts)
        what, context = self._culprit(asset, partition)
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            error = translate(exc, what, bucket=self.bucket, key=key, **context)
            if isinstance(error, NotFound):
                error = NotFound(
                    f"No stored value for {what} (s3://{self.bucket}/{key}); materialize it first.",
                    bucket=self.bucket,
                    key=key,
                    **context,
                )
            raise error from exc
        try:
            return fmt.decode(body)
        except Exception as exc:
            raise StorageError(
                f"s3://{self.bucket}/{key} ({what}) is not valid {fmt.name}: {exc}", **context
            ) from exc

    def store(self, asset: str, data: Any, partition: Partition, **opts: Any) -> None:
        fmt, key = self._format_of(opts), self.object_key(asset, partition, **opts)
        what, context = self._culprit(asset, partition)
        body = fmt.encode(data, what)
        try:
            if len(body) >= self._threshold:
                self._client.upload_fileobj(
                    io.BytesIO(body),
                    self.bucket,
                    key,
                    ExtraArgs={"ContentType": fmt.content_type},
                    Config=self._transfer,
                )
            else:
                self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType=fmt.content_type
                )
        except Exception as exc:
            raise translate(exc, what, bucket=self.bucket, key=key, **context) from exc

    def exists(self, asset: str, partition: Partition, **opts: Any) -> bool:
        key = self.object_key(asset, partition, **opts)
        what, context = self._culprit(asset, partition)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            error = translate(exc, what, bucket=self.bucket, key=key, **context)
            if isinstance(error, NotFound):
                return False
            raise error from exc
        return True

    def delete(self, asset: str, partition: Partition, **opts: Any) -> None:
        key = self.object_key(asset, partition, **opts)
        what, context = self._culprit(asset, partition)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            error = translate(exc, what, bucket=self.bucket, key=key, **context)
            if not isinstance(error, NotFound):
                raise error from exc

    def list_partitions(self, asset: str, **opts: Any) -> list[Partition]:
        folder = f"{self.prefix}{check_asset_name(asset)}/"
        extensions = {fmt.extension for fmt in FORMATS.values()}
        found: dict[str, Partition] = {}
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder, Delimiter="/"
            )
            for page in pages:
                for entry in page.get("Contents", ()):
                    stem, _, extension = entry["Key"][len(folder) :].rpartition(".")
                    if extension in extensions and stem not in found:
                        found[stem] = _parse_or_none(stem)
        except Exception as exc:
            raise translate(exc, f"asset {asset!r}", bucket=self.bucket, asset=asset) from exc
        return [value for value in found.values() if value is not _NOT_A_KEY]

    def health_check(self) -> Health:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            return Health.unhealthy(str(translate(exc, f"bucket {self.bucket!r}")))
        return Health.ok(bucket=self.bucket)

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()


_NOT_A_KEY = object()


def _parse_or_none(stem: str) -> Any:
    """Return the partition whose key is ``stem``; a foreign object's name gives a sentinel."""
    try:
        return parse_partition_key(stem)
    except ValidationError:
        return _NOT_A_KEY
