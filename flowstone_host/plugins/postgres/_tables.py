"""The ``table`` format: one real PostgreSQL table per asset, one slice of rows per partition.

Invariants:

- An asset's table has the value's columns, then ``_partition`` (the canonical partition
  key, indexed) and ``_row`` (the row's position), so any SQL client reads it as a normal
  table: ``SELECT * FROM <schema>.<asset> WHERE _partition = '...'``.
- A store replaces its partition's rows inside the caller's transaction: ``DELETE`` then
  ``COPY``; readers see the old rows or the new, never half of either. The caller locks
  the partition's catalog row first, so concurrent stores of one partition serialize.
- Loading returns the rows in their stored order with the stored Arrow schema (pandas
  metadata included, so a DataFrame comes back as one).
- Columns must map to PostgreSQL types (integers, floats, booleans, strings, dates,
  timestamps); anything else is refused with a ValidationError naming the arrow format.
- A table whose columns differ from a new value's is replaced only when it holds no other
  partition; otherwise the store is refused.
"""

from __future__ import annotations

import importlib
import io
from typing import Any

from ...errors import ValidationError
from ._formats import pyarrow

__all__ = ["load_rows", "store_rows", "table_name"]

RESERVED = ("_partition", "_row")
_MAX_IDENTIFIER = 63


def table_name(asset: str, opts: dict[str, Any]) -> str:
    """Return the table holding ``asset`` (``table`` option, else the asset's name).

    Raises:
        ValidationError: the name is longer than PostgreSQL allows.
    """
    name = str(opts.get("table") or asset)
    if not name or len(name.encode()) > _MAX_IDENTIFIER:
        raise ValidationError(
            f"Table name {name!r} for asset {asset!r} must be 1-63 bytes; set io_config "
            "'table' to a shorter name."
        )
    return name


def _pg_type(pa: Any, field: Any) -> str:
    t, types = field.type, pa.types
    checks = [
        (types.is_boolean, "boolean"),
        (lambda x: types.is_int8(x) or types.is_int16(x) or types.is_uint8(x), "smallint"),
        (lambda x: types.is_int32(x) or types.is_uint16(x), "integer"),
        (lambda x: types.is_int64(x) or types.is_uint32(x), "bigint"),
        (types.is_float32, "real"),
        (types.is_float64, "double precision"),
        (lambda x: types.is_string(x) or types.is_large_string(x), "text"),
        (types.is_date32, "date"),
    ]
    for check, name in checks:
        if check(t):
            return name
    if types.is_timestamp(t):
        return "timestamp with time zone" if t.tz else "timestamp without time zone"
    raise ValidationError(
        f"Column {field.name!r} has type {t}, which the table format cannot hold; use the "
        "arrow format for this value.",
        details={"column": field.name, "type": str(t)},
    )


def _columns(pa: Any, schema: Any) -> list[tuple[str, str]]:
    columns = [(field.name, _pg_type(pa, field)) for field in schema]
    clash = [name for name, _ in columns if name in RESERVED]
    if clash or len({name for name, _ in columns}) != len(columns):
        raise ValidationError(
            f"Columns must be unique and not named {' or '.join(RESERVED)}: {schema.names!r}."
        )
    return columns


def _existing(conn: Any, schema: str, name: str) -> list[tuple[str, str]] | None:
    # A scan of pg_class, not to_regclass: the latter's name cache can miss a table another
    # transaction created after this one first looked.
    row = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        [schema, name],
    ).fetchone()
    if row is None:
        return None
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [row[0]],
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows if name not in RESERVED]


def _ensure_table(
    conn: Any, schema: str, name: str, columns: list[tuple[str, str]], pk: str
) -> None:
    from psycopg import sql

    if _existing(conn, schema, name) == columns:
        return
    ident = sql.Identifier(schema, name)
    qualified = ident.as_string(conn)
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"table:{qualified}"])
    existing = _existing(conn, schema, name)  # again, under the lock
    if existing == columns:
        return
    if existing is not None:
        other = conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE _partition <> %s LIMIT 1").format(ident), [pk]
        ).fetchone()
        if other is not None:
            raise ValidationError(
                f"Table {qualified} holds other partitions with columns {existing!r}; the new "
                f"value has {columns!r}. Store the same columns, or delete the other partitions."
            )
        conn.execute(sql.SQL("DROP TABLE {}").format(ident))
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns
    )
    extra = sql.SQL('_partition text COLLATE "C" NOT NULL, _row bigint NOT NULL')
    body = sql.SQL(", ").join([definition, extra]) if columns else extra
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, body))
    # On the partition alone: its entries deduplicate, so COPY maintains it cheaply.
    conn.execute(sql.SQL("CREATE INDEX ON {} (_partition)").format(ident))


def _positions(pa: Any, rows: int) -> Any:
    try:
        numpy = importlib.import_module("numpy")
    except ImportError:  # pyarrow runs without numpy; a range is slower, not wrong
        return pa.array(range(rows), pa.int64())
    return pa.array(numpy.arange(rows, dtype=numpy.int64))


def store_rows(conn: Any, schema: str, name: str, pk: str, table: Any) -> None:
    """Replace partition ``pk`` of table ``schema.name`` by the rows of ``table``.

    Runs inside the caller's transaction.

    Raises:
        ValidationError: a column type the format cannot hold, or a clash of columns.
    """
    from psycopg import sql

    pa = pyarrow()
    columns = _columns(pa, table.schema)
    ident = sql.Identifier(schema, name)
    _ensure_table(conn, schema, name, columns, pk)
    conn.execute(sql.SQL("DELETE FROM {} WHERE _partition = %s").format(ident), [pk])
    if table.num_rows == 0:
        return
    rows = table.num_rows
    full = table.append_column("_partition", pa.repeat(pa.scalar(pk, pa.string()), rows))
    full = full.append_column("_row", _positions(pa, rows))
    names = sql.SQL(", ").join(sql.Identifier(n) for n in full.column_names)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(ident, names)
    with conn.cursor().copy(copy_sql) as copy:
        for batch in full.to_batches(max_chunksize=65_536):
            sink = io.BytesIO()
            pa.csv.write_csv(batch, sink, pa.csv.WriteOptions(include_header=False))
            copy.write(sink.getbuffer())


def load_rows(conn: Any, schema: str, name: str, pk: str, arrow_schema: Any) -> Any:
    """Return partition ``pk`` of ``schema.name`` as a pyarrow table of ``arrow_schema``."""
    from psycopg import sql

    pa = pyarrow()
    ident = sql.Identifier(schema, name)
    names = sql.SQL(", ").join(sql.Identifier(n) for n in arrow_schema.names)
    query = sql.SQL(
        "COPY (SELECT {} FROM {} WHERE _partition = {} ORDER BY _row) TO STDOUT (FORMAT csv)"
    ).format(names if arrow_schema.names else sql.SQL("1"), ident, sql.Literal(pk))
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    sink = io.BytesIO()
    with conn.cursor().copy(query) as copy:
        for chunk in copy:
            sink.write(chunk)
    if sink.tell() == 0 or not arrow_schema.names:
        return arrow_schema.empty_table()
    sink.seek(0)
    convert = pa.csv.ConvertOptions(
        column_types=dict(zip(arrow_schema.names, arrow_schema.types, strict=True)),
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )
    read = pa.csv.ReadOptions(column_names=arrow_schema.names, block_size=1 << 24)
    table = pa.csv.read_csv(sink, read_options=read, convert_options=convert)
    return table.cast(arrow_schema)
