"""The ``table`` format: one real PostgreSQL table per asset, one slice of rows per partition.

Invariants:

- An asset's table has the value's columns, then ``_partition`` (the canonical partition
  key) and ``_row`` (the row's position), so any SQL client reads it as a normal table:
  ``SELECT * FROM <schema>.<asset> WHERE _partition = '...'``. It is ``PARTITION BY LIST
  (_partition)``: each stored partition is its own slice table (``<asset>__<digest>``, the
  digest of the asset's table name and the key), attached for exactly that key, so a lookup
  by ``_partition`` reads that slice alone and no index has to be kept up per row.
- A store replaces its partition's rows inside the caller's transaction: the rows are
  COPYed into a new slice (the key is the column's DEFAULT and CHECK there, never sent per
  row), then the old slice is dropped and the new one attached in its place. Readers see
  the old rows or the new, never half of either; the asset's table is locked only for that
  swap at the end. The caller locks the partition's catalog row first, so concurrent stores
  of one partition serialize.
- Loading returns the rows in their stored order with the stored Arrow schema (pandas
  metadata included, so a DataFrame comes back as one).
- Columns must map to PostgreSQL types (integers, floats, booleans, strings, dates,
  timestamps); anything else is refused with a ValidationError naming the arrow format.
- A table whose columns differ from a new value's (or that is not partitioned by
  ``_partition``) is replaced only when it holds no other partition; otherwise the store is
  refused.
"""

from __future__ import annotations

import hashlib
import importlib
import io
from typing import Any

from ...errors import ValidationError
from ._formats import pyarrow

__all__ = ["drop_rows", "load_rows", "slice_name", "store_rows", "table_name"]

RESERVED = ("_partition", "_row")
_MAX_IDENTIFIER = 63
_BATCH_ROWS = 65_536


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


def slice_name(name: str, pk: str) -> str:
    """Return the slice table holding partition ``pk`` of table ``name`` (at most 58 bytes)."""
    digest = hashlib.sha256(f"{name}\0{pk}".encode()).hexdigest()[:24]
    prefix = name.encode()[:32].decode(errors="ignore")
    return f"{prefix}__{digest}"


def _existing(conn: Any, schema: str, name: str) -> list[tuple[str, str]] | None:
    """The columns of ``schema.name`` (reserved ones left out), ``None`` if there is no such
    table; a table not partitioned by ``_partition`` (an older layout) answers ``[("", "")]``,
    which no value's columns equal."""
    # A scan of pg_class, not to_regclass: the latter's name cache can miss a table another
    # transaction created after this one first looked.
    row = conn.execute(
        "SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        [schema, name],
    ).fetchone()
    if row is None:
        return None
    if row[1] != "p":
        return [("", "")]
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [row[0]],
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows if name not in RESERVED]


def _definition(columns: list[tuple[str, str]], partition: Any) -> Any:
    """The column list of an asset's table (``partition`` is empty) or of a slice."""
    from psycopg import sql

    defined: list[Any] = [
        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(kind)) for n, kind in columns
    ]
    defined.append(sql.SQL('_partition text COLLATE "C" NOT NULL {}').format(partition))
    defined.append(sql.SQL("_row bigint NOT NULL"))
    return sql.SQL(", ").join(defined)


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
    conn.execute(
        sql.SQL("CREATE TABLE {} ({}) PARTITION BY LIST (_partition)").format(
            ident, _definition(columns, sql.SQL(""))
        )
    )


def _positions(pa: Any, rows: int) -> Any:
    try:
        numpy = importlib.import_module("numpy")
    except ImportError:  # pyarrow runs without numpy; a range is slower, not wrong
        return pa.array(range(rows), pa.int64())
    return pa.array(numpy.arange(rows, dtype=numpy.int64))


def _copy_in(conn: Any, target: Any, table: Any) -> None:
    """COPY ``table``'s rows, then their positions as ``_row``, into ``target`` as CSV.

    pyarrow encodes batch after batch (C speed, no Python per row) while a psycopg thread
    sends the previous one to the server.
    """
    from psycopg import sql
    from psycopg.copy import QueuedLibpqWriter

    pa = pyarrow()
    full = table.append_column("_row", _positions(pa, table.num_rows))
    names = sql.SQL(", ").join(sql.Identifier(n) for n in full.column_names)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, names)
    options = pa.csv.WriteOptions(include_header=False, batch_size=_BATCH_ROWS)
    sink = io.BytesIO()
    with (
        conn.cursor() as cursor,
        cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy,
        pa.csv.CSVWriter(sink, full.schema, write_options=options) as writer,
    ):
        for batch in full.to_batches(max_chunksize=_BATCH_ROWS):
            writer.write_batch(batch)
            copy.write(sink.getvalue())
            sink.seek(0)
            sink.truncate()


def store_rows(conn: Any, schema: str, name: str, pk: str, table: Any) -> None:
    """Replace partition ``pk`` of table ``schema.name`` by the rows of ``table``.

    Runs inside the caller's transaction.

    Raises:
        ValidationError: a column type the format cannot hold, or a clash of columns.
    """
    from psycopg import sql

    pa = pyarrow()
    columns = _columns(pa, table.schema)
    _ensure_table(conn, schema, name, columns, pk)
    final = slice_name(name, pk)
    fresh = sql.Identifier(schema, f"{final}_new")
    key = sql.Literal(pk)
    own = sql.SQL("DEFAULT {} CHECK (_partition = {})").format(key, key)
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(fresh, _definition(columns, own)))
    if table.num_rows:
        _copy_in(conn, fresh, table)
    # The swap: the asset's table is locked from here to the commit, a moment.
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, final)))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(fresh, sql.Identifier(final)))
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
            sql.Identifier(schema, name), sql.Identifier(schema, final), key
        )
    )


def drop_rows(conn: Any, schema: str, name: str, pk: str) -> None:
    """Remove partition ``pk`` from table ``schema.name`` (its slice), if it is there."""
    from psycopg import sql

    target = sql.Identifier(schema, slice_name(name, pk))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))


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
