"""boto3 clients from plugin config, secrets kept out of sight, botocore errors normalized.

Invariants:

- boto3 is imported only by :func:`make_client` (and :func:`translate` on a botocore
  exception, which exists only once boto3 was imported): ``import flowstone_host`` and
  importing the plugin modules stay free of it.
- Credentials given in config live in a :class:`Secret` whose ``repr`` and ``str`` are
  ``'***'``; :func:`public_config` replaces them in the config a plugin keeps, so they
  appear in no error, repr or log line of ours.
- Without credentials or an endpoint in config, boto3's standard chain applies
  (environment, ``AWS_ENDPOINT_URL``, shared files, instance roles).
- :func:`translate` maps every botocore error to a :class:`FlowStoneError`: throttling and
  5xx are retryable (``Unavailable`` / ``Timeout``), access problems are
  ``PermissionDenied``, a missing bucket or table is a ``ConfigError``, a missing key is
  ``NotFound``; none of them is retryable except the first two kinds.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import Any

from ...errors import (
    ConfigError,
    FlowStoneError,
    NotFound,
    PermissionDenied,
    StorageError,
    Timeout,
    Unavailable,
    ValidationError,
    normalize,
)
from .. import _extras as extras

__all__ = [
    "CLIENT_SCHEMA",
    "SECRET_KEYS",
    "Secret",
    "checked_config",
    "make_client",
    "public_config",
    "require",
    "translate",
]

#: Config keys whose values are secrets: never shown.
SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
REDACTED = "***"

#: The cerberus schema shared by every AWS plugin: how to reach the service.
CLIENT_SCHEMA: dict[str, Any] = {
    "endpoint_url": {"type": "string", "nullable": True, "default": None},
    "region_name": {"type": "string", "nullable": True, "default": None},
    "profile_name": {"type": "string", "nullable": True, "default": None},
    "aws_access_key_id": {"type": "string", "nullable": True, "default": None},
    "aws_secret_access_key": {"type": "string", "nullable": True, "default": None},
    "aws_session_token": {"type": "string", "nullable": True, "default": None},
    "addressing_style": {
        "type": "string",
        "allowed": ["auto", "virtual", "path"],
        "default": "auto",
    },
    "max_attempts": {"type": "integer", "min": 1, "default": 5},
    "connect_timeout_s": {"type": "number", "min": 0, "default": 10},
    "read_timeout_s": {"type": "number", "min": 0, "default": 60},
    "max_pool_connections": {"type": "integer", "min": 1, "default": 16},
}

require = extras.require


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` are ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret, to hand to boto3 and nowhere else."""
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__


def public_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Secret]]:
    """Split ``config`` into a copy with secrets redacted, and the secrets themselves."""
    public, secrets = dict(config), {}
    for key in SECRET_KEYS:
        value = public.get(key)
        if value:
            secrets[key] = Secret(str(value))
            public[key] = REDACTED
    return public, secrets


def checked_config(plugin: str, schema: Mapping[str, Any], config: Any) -> dict[str, Any]:
    """Validate ``config`` against ``schema`` and fill defaults, as the host does.

    The host has usually done this already; doing it again lets a plugin be built directly
    (tests, notebooks) with the same defaults. Unknown keys are kept.

    Raises:
        ConfigError: the config does not match the schema (secrets are not echoed).
    """
    cerberus = require("cerberus")
    validator = cerberus.Validator(dict(schema), allow_unknown=True)
    if not validator.validate(dict(config or {})):
        raise ConfigError(
            f"Invalid config for the {plugin} plugin: {validator.errors}",
            details={"errors": validator.errors},
        )
    document: dict[str, Any] = validator.document
    return document


def make_client(service: str, config: Mapping[str, Any], secrets: Mapping[str, Secret]) -> Any:
    """Build a boto3 client for ``service`` from the shared client config.

    Raises:
        ConfigError: boto3 is missing, or the profile or region is unusable.
    """
    require("boto3")
    _register_normalize_rules()
    botocore_config = require("botocore.config")
    client_config = botocore_config.Config(
        retries={"max_attempts": int(config.get("max_attempts", 5)), "mode": "standard"},
        connect_timeout=config.get("connect_timeout_s", 10),
        read_timeout=config.get("read_timeout_s", 60),
        max_pool_connections=int(config.get("max_pool_connections", 16)),
        s3={"addressing_style": config.get("addressing_style", "auto")},
    )
    try:
        with _SESSIONS_LOCK:  # building clients from one session is not thread-safe
            return _session(config.get("profile_name") or None).client(
                service,
                region_name=config.get("region_name") or None,
                endpoint_url=config.get("endpoint_url") or None,
                config=client_config,
                **{key: secret.reveal() for key, secret in secrets.items()},
            )
    except Exception as exc:
        raise translate(exc) from exc


_SESSIONS: dict[str | None, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(profile: str | None) -> Any:
    """Return the boto3 session of ``profile``, shared so clients share loaded API models.

    Credentials given in config go to each client, never to the shared session, so
    plugins with different credentials do not see each other's.
    """
    if profile not in _SESSIONS:
        _SESSIONS[profile] = require("boto3").session.Session(profile_name=profile)
    return _SESSIONS[profile]


_THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "SlowDown",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalError",
    }
)
_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "UnrecognizedClientException",
        "AllAccessDisabled",
    }
)
_MISSING = frozenset({"NoSuchKey", "NotFound", "404"})
_MISSING_CONTAINER = frozenset({"NoSuchBucket", "ResourceNotFoundException"})


def translate(exc: BaseException, what: str = "", **context: Any) -> FlowStoneError:
    """Return the FlowStoneError for a botocore exception (others go through ``normalize``).

    Args:
        exc: The exception raised by a boto3 call.
        what: The culprit, for the message ("asset 'orders', partition '2024-01-01'").
        **context: Keyword context for the error (asset, partition, bucket, table, ...).
    """
    if isinstance(exc, FlowStoneError):
        return exc
    exceptions = require("botocore.exceptions")
    if isinstance(exc, exceptions.ClientError):
        return _client_error(exc, what, context)
    if isinstance(exc, exceptions.BotoCoreError):
        return _botocore_error(exc, exceptions, context)
    return normalize(exc)


def _client_error(exc: Any, what: str, context: dict[str, Any]) -> FlowStoneError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    text = f"{what}: {exc}" if what else str(exc)
    details = {"aws_code": code, "http_status": status}
    if code in _MISSING or (status == 404 and code not in _MISSING_CONTAINER):
        return NotFound(f"Nothing stored for {what or 'this key'} ({code or status}).", **context)
    if code in _MISSING_CONTAINER:
        return ConfigError(
            f"{text}. The bucket or table does not exist: create it or fix the config.",
            details=details,
            **context,
        )
    if code in _DENIED or status == 403:
        return PermissionDenied(
            f"{text}. Check the credentials and the IAM policy.", details=details, **context
        )
    if code in {"RequestTimeout", "RequestTimeoutException"}:
        return Timeout(text, details=details, **context)
    if code in _THROTTLED or status >= 500:
        return Unavailable(text, details=details, **context)
    if code in {"ValidationException", "InvalidArgument", "InvalidRequest"}:
        return ValidationError(text, details=details, **context)
    return StorageError(text, details=details, **context)


def _botocore_error(exc: Any, exceptions: Any, context: dict[str, Any]) -> FlowStoneError:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return ConfigError(
            f"{text}. Set the AWS_* environment variables, a profile, or credentials in "
            "the plugin config.",
            **context,
        )
    if isinstance(exc, exceptions.NoRegionError | exceptions.ProfileNotFound):
        return ConfigError(f"{text}. Set region_name or AWS_DEFAULT_REGION.", **context)
    if isinstance(exc, exceptions.ReadTimeoutError | exceptions.ConnectTimeoutError):
        return Timeout(text, **context)
    if isinstance(exc, exceptions.EndpointConnectionError | exceptions.ConnectionClosedError):
        return Unavailable(text, **context)
    if isinstance(exc, exceptions.HTTPClientError):
        return Unavailable(text, **context)
    if isinstance(exc, exceptions.ParamValidationError):
        return ValidationError(text, **context)
    return StorageError(text, **context)


def _register_normalize_rules() -> None:
    """Teach ``normalize`` botocore's exceptions, once boto3 is importable."""
    try:
        exceptions = importlib.import_module("botocore.exceptions")
    except ImportError:  # pragma: no cover - the extra is absent; nothing to teach
        return
    normalize.register(exceptions.ClientError)(translate)  # type: ignore[attr-defined]
    normalize.register(exceptions.BotoCoreError)(translate)  # type: ignore[attr-defined]
