"""The demo pipeline's callables (``plugins.d/20-demo-pipeline.yaml``).

The data is ``orders.csv``, shipped next to this module: one order line per row. Every
asset callable takes a run context first: ``compute(ctx, **inputs)`` with inputs keyed by
dependency name, ``item(ctx, item)``, ``gather(ctx, results)``, ``join(ctx, results)`` and
``router(ctx, **inputs)`` returning a branch name. ``orders`` is partitioned by day;
assets that read it unpartitioned receive ``{day: rows}``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

__all__ = [
    "collect",
    "count_orders",
    "enrich",
    "high_value_report",
    "join_stats",
    "order_lines",
    "order_totals",
    "orders",
    "pick_report",
    "read_rows",
    "standard_report",
    "sum_orders",
]


def read_rows() -> list[dict[str, Any]]:
    """Return every row of the bundled ``orders.csv``, typed."""
    text = resources.files(__package__).joinpath("orders.csv").read_text(encoding="utf-8")
    return [
        {
            "order": int(row["order"]),
            "day": row["day"],
            "customer": row["customer"],
            "sku": row["sku"],
            "qty": int(row["qty"]),
            "price": float(row["price"]),
        }
        for row in csv.DictReader(io.StringIO(text))
    ]


def orders(ctx: Any) -> list[dict[str, Any]]:
    """Return the order lines of the partition's day."""
    return [row for row in read_rows() if row["day"] == ctx.partition]


def order_totals(ctx: Any, orders: Mapping[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Return each order's total (read from every day's partition), keyed by order id."""
    totals: dict[str, float] = {}
    for rows in orders.values():
        for row in rows:
            key = str(row["order"])
            totals[key] = round(totals.get(key, 0.0) + row["qty"] * row["price"], 2)
    return totals


def order_lines(config: Mapping[str, Any], deps: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """Item source of the custom reader: every line of ``orders.csv``, numbered."""
    for number, row in enumerate(read_rows(), start=1):
        yield {"scatter_key": f"line-{number:05d}", **row}


def enrich(ctx: Any, item: Mapping[str, Any]) -> dict[str, Any]:
    """Add the line amount to one scattered item."""
    return {**item, "amount": round(item["qty"] * item["price"], 2)}


def collect(ctx: Any, results: Mapping[str, Any]) -> list[Any]:
    """Gather the enriched lines in key order."""
    return [results[key] for key in sorted(results)]


def count_orders(ctx: Any, order_totals: Mapping[str, float], **_: Any) -> int:
    """Parallel branch: how many orders."""
    return len(order_totals)


def sum_orders(ctx: Any, enriched_lines: list[Mapping[str, Any]], **_: Any) -> float:
    """Parallel branch: the revenue, from the enriched lines."""
    return round(float(sum(line["amount"] for line in enriched_lines)), 2)


def join_stats(ctx: Any, results: Mapping[str, Any]) -> dict[str, Any]:
    """Join the parallel branches into one summary; a failed optional branch counts 0."""
    count = results.get("count", 0)
    count = count if isinstance(count, int) else 0
    revenue = results["revenue"]
    return {"orders": count, "revenue": revenue, "average": revenue / count if count else 0.0}


def pick_report(ctx: Any, order_stats: Mapping[str, Any]) -> str:
    """Router: the high-value report when the average order is above 40, else standard."""
    return "high_value" if order_stats["average"] > 40 else "standard"


def standard_report(ctx: Any, order_stats: Mapping[str, Any]) -> str:
    """One line about the orders."""
    return (
        f"{order_stats['orders']} orders, revenue {order_stats['revenue']:.2f}, "
        f"average {order_stats['average']:.2f}"
    )


def high_value_report(ctx: Any, order_stats: Mapping[str, Any]) -> str:
    """One line about the orders, flagged."""
    return "HIGH VALUE: " + standard_report(ctx, order_stats)
