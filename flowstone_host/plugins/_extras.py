"""Optional extras: a backend's client library is imported when a plugin needs it."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError

__all__ = ["require"]

#: The extra that installs each optional library, by top-level module.
EXTRAS = {
    "boto3": "aws",
    "botocore": "aws",
    "pyarrow": "parquet",
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "procrastinate": "distributed",
}


def require(module: str) -> Any:
    """Import ``module`` (an optional extra's library) or raise a ConfigError naming the extra.

    Raises:
        ConfigError: the library is not installed; the message says what to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module.split(".")[0], module)
        raise ConfigError(
            f"{module} is not installed; install the extra: pip install 'flowstone-host[{extra}]'",
            details={"module": module, "extra": extra},
        ) from None
