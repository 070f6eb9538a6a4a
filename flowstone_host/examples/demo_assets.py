"""The demo pipeline's callables (``plugins.d/20-demo-pipeline.yaml``).

Every asset callable takes a run context first: ``compute(ctx, **inputs)`` with inputs
keyed by dependency name, ``item(ctx, item)``, ``gather(ctx, results)``,
``join(ctx, results)`` and ``router(ctx, **inputs)`` returning a branch name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    "standard_report",
    "sum_orders",
]

_ORDERS: tuple[dict[str, Any], ...] = (
    {"id": 1, "customer": "ada", "lines": [{"sku": "A", "qty": 2, "price": 3.5}]},
    {"id": 2, "customer": "brian", "lines": [{"sku": "B", "qty": 1, "price": 12.0}]},
    {"id": 3, "customer": "ada", "lines": [{"sku": "A", "qty": 1, "price": 3.5}]},
)


def orders(ctx: Any) -> list[dict[str, Any]]:
    """Return the raw orders (a fixed sample)."""
    return [dict(order) for order in _ORDERS]


def order_totals(ctx: Any, orders: list[dict[str, Any]]) -> dict[int, float]:
    """Return each order's total."""
    return {o["id"]: sum(line["qty"] * line["price"] for line in o["lines"]) for o in orders}


def order_lines(config: Mapping[str, Any], deps: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """Item source of the custom reader: every order line, tagged with its order id."""
    for order in _ORDERS:
        for line in order["lines"]:
            yield {"order": order["id"], **line}


def enrich(ctx: Any, item: Mapping[str, Any]) -> dict[str, Any]:
    """Add the line amount to one scattered item."""
    return {**item, "amount": item["qty"] * item["price"]}


def collect(ctx: Any, results: Mapping[str, Any]) -> list[Any]:
    """Gather the enriched lines in key order."""
    return [results[key] for key in sorted(results)]


def count_orders(ctx: Any, order_totals: Mapping[int, float]) -> int:
    """Parallel branch: how many orders."""
    return len(order_totals)


def sum_orders(ctx: Any, order_totals: Mapping[int, float]) -> float:
    """Parallel branch: the revenue."""
    return float(sum(order_totals.values()))


def join_stats(ctx: Any, results: Mapping[str, Any]) -> dict[str, Any]:
    """Join the parallel branches into one summary."""
    count, revenue = results.get("count", 0), results.get("revenue", 0.0)
    return {"orders": count, "revenue": revenue, "average": revenue / count if count else 0.0}


def pick_report(ctx: Any, order_stats: Mapping[str, Any]) -> str:
    """Router: the high-value report when revenue is above 20, else the standard one."""
    return "high_value" if order_stats["revenue"] > 20 else "standard"


def standard_report(ctx: Any, order_stats: Mapping[str, Any]) -> str:
    """One line about the orders."""
    return f"{order_stats['orders']} orders, revenue {order_stats['revenue']:.2f}"


def high_value_report(ctx: Any, order_stats: Mapping[str, Any]) -> str:
    """One line about the orders, flagged."""
    return "HIGH VALUE: " + standard_report(ctx, order_stats)
