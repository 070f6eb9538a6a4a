"""Read an asset's ``partitions`` as written in YAML into a :class:`.PartitionsDef`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from .base import PartitionsDef
from .dimensions import Dimensions
from .static import StaticPartitions
from .time_windows import DAILY, HOURLY, TimeWindows

__all__ = ["partitions_def"]


def partitions_def(spec: Any) -> PartitionsDef | None:
    """Return the definition of an asset's ``partitions`` as written (see the module
    docstring); ``None`` for ``None``; a definition as it is.

    Raises:
        ValidationError: a shape or value that defines no partitions; the message says
            what to write.
    """
    if spec is None or isinstance(spec, PartitionsDef):
        return spec
    if isinstance(spec, Mapping):
        window = _window(spec)
        if window is not None:
            return window
        if not spec:
            raise ValidationError("A partition mapping needs at least one dimension.")
        dims: list[tuple[str, PartitionsDef]] = []
        for name, body in spec.items():
            definition: PartitionsDef | None = None
            if isinstance(body, Mapping):
                definition = _window(body)
            if definition is None:
                if isinstance(body, Mapping | str | bytes):
                    raise ValidationError(
                        f"Dimension {name!r} is a list of values, {{daily: {{...}}}} or "
                        "{hourly: {...}}."
                    )
                definition = _static(body)
            dims.append((str(name), definition))
        return Dimensions(dims)
    if isinstance(spec, str | bytes):
        raise ValidationError("Partitions are a list, a date range or a mapping of dimensions.")
    return _static(spec)


def _static(values: Any) -> StaticPartitions:
    values = tuple(values)
    if not values:
        raise ValidationError("A partition list needs at least one value.")
    return StaticPartitions(values)


def _window(spec: Mapping[str, Any]) -> TimeWindows | None:
    if len(spec) != 1:
        return None
    ((unit, body),) = spec.items()
    if unit not in (DAILY, HOURLY) or not isinstance(body, Mapping):
        return None
    unknown = set(body) - {"start", "end", "timezone"}
    if unknown or "start" not in body:
        raise ValidationError(
            f"A {unit} range is {{start, end, timezone}} with start required"
            + (f"; remove {', '.join(sorted(map(str, unknown)))}" if unknown else "")
            + "."
        )
    return TimeWindows(unit, body["start"], body.get("end"), body.get("timezone") or "UTC")
