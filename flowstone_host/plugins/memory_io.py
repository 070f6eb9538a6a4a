"""The in-memory IO manager: the embedded default, and the fallback for ``default``."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from ..contracts.io_manager import IOManager, Partition
from ..errors import NotFound
from ..partitions import parse_partition_key, partition_key

__all__ = ["MemoryIOManager"]


class MemoryIOManager(IOManager):
    """Keeps values in a dict in this process; thread-safe, lost when the process exits.

    Every operation is one dict operation (``list_partitions`` copies the keys in one), and
    those are atomic in CPython, with or without the GIL, so no lock is taken.

    Values are stored as given (no copy) unless the config sets ``copy: true``, in which
    case each store and load deep-copies, so callers cannot change stored data in place.
    An asset's ``io_config`` reaches each call as ``**opts`` and overrides the config for
    that call: ``copy`` given there wins over the declaration's.
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {"copy": {"type": "boolean", "default": False}}

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._copy = bool(self.config.get("copy", False))
        self._data: dict[tuple[str, str], Any] = {}

    def load(self, asset: str, partition: Partition, **opts: Any) -> Any:
        key = (asset, partition_key(partition))
        try:
            value = self._data[key]
        except KeyError:
            raise NotFound(
                f"No stored value for asset {asset!r}, partition {key[1]!r}; materialize it first.",
                asset=asset,
                partition=key[1],
            ) from None
        return copy.deepcopy(value) if opts.get("copy", self._copy) else value

    def store(self, asset: str, data: Any, partition: Partition, **opts: Any) -> None:
        key = (asset, partition_key(partition))
        self._data[key] = copy.deepcopy(data) if opts.get("copy", self._copy) else data

    def exists(self, asset: str, partition: Partition, **opts: Any) -> bool:
        return (asset, partition_key(partition)) in self._data

    def delete(self, asset: str, partition: Partition, **opts: Any) -> None:
        self._data.pop((asset, partition_key(partition)), None)

    def list_partitions(self, asset: str, **opts: Any) -> list[Partition]:
        keys = [key for name, key in list(self._data) if name == asset]
        return [parse_partition_key(key) for key in keys]
