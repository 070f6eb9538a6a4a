"""Tables in and out of pyarrow: a pandas DataFrame stored comes back a DataFrame.

Invariants:

- pyarrow is imported lazily through :func:`pyarrow` (a missing extra is a ConfigError).
- :func:`to_table` accepts a ``pyarrow.Table``, a ``pyarrow.RecordBatch`` or a pandas
  ``DataFrame`` and marks the schema with which one it was (``flowstone.kind``);
  :func:`from_table` reads the mark and gives back the same kind, without the mark.
  Anything else is refused with a ValidationError naming the type.
"""

from __future__ import annotations

import sys
from typing import Any

from ...errors import ValidationError
from ..aws._client import require

__all__ = ["KIND_KEY", "from_table", "pq", "pyarrow", "to_table"]

#: The schema metadata key naming the kind of table that was stored.
KIND_KEY = b"flowstone.kind"


def pyarrow() -> Any:
    """Return the ``pyarrow`` module, or raise a ConfigError naming the ``parquet`` extra."""
    return require("pyarrow")


def pq() -> Any:
    """Return ``pyarrow.parquet``, or raise a ConfigError naming the ``parquet`` extra."""
    return require("pyarrow.parquet")


def _is_dataframe(value: Any) -> bool:
    pandas = sys.modules.get("pandas")  # a DataFrame exists only if pandas was imported
    return pandas is not None and isinstance(value, pandas.DataFrame)


def to_table(value: Any, what: str) -> Any:
    """Return ``value`` as a pyarrow Table whose schema records its original kind.

    Raises:
        ValidationError: ``value`` is not a table.
    """
    pa = pyarrow()
    if _is_dataframe(value):
        table, kind = pa.Table.from_pandas(value), b"pandas"
    elif isinstance(value, pa.RecordBatch):
        table, kind = pa.Table.from_batches([value]), b"arrow"
    elif isinstance(value, pa.Table):
        table, kind = value, b"arrow"
    else:
        raise ValidationError(
            f"{what}: expected a pyarrow Table or a pandas DataFrame, got "
            f"{type(value).__name__}. Store tables here, or use a json or pickle format.",
            details={"type": type(value).__name__},
        )
    metadata = dict(table.schema.metadata or {})
    metadata[KIND_KEY] = kind
    return table.replace_schema_metadata(metadata)


def from_table(table: Any) -> Any:
    """Return ``table`` as the kind :func:`to_table` recorded (a DataFrame or a Table)."""
    metadata = dict(table.schema.metadata or {})
    kind = metadata.pop(KIND_KEY, b"arrow")
    table = table.replace_schema_metadata(metadata or None)
    return table.to_pandas() if kind == b"pandas" else table
