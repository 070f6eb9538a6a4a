"""The IO manager contract: where asset outputs are stored, by (asset, partition)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from ..errors import NotSupported
from .plugin import Plugin

__all__ = ["IOManager", "Partition"]

#: A partition value: ``None`` (unpartitioned), ``str``, ``int``, ``datetime.date``,
#: ``datetime.datetime``, a tuple of these, or a mapping of ``str`` to these. See
#: :mod:`flowstone_host.partitions` for the canonical string key of each.
Partition = Any


class IOManager(Plugin):
    """Stores and loads asset outputs by ``(asset, partition)``.

    Invariants an implementation must keep (``flowstone_host.testing.IOManagerContract``
    checks each one):

    - ``store`` then ``load`` of the same ``(asset, partition)`` returns a value equal to the
      one stored; a later ``store`` replaces it (the last write wins, never a stale value).
    - ``exists`` is true exactly between a ``store`` and a ``delete`` of that partition.
    - ``load`` of something never stored, or deleted, raises :class:`~flowstone_host.NotFound`.
    - ``delete`` of a missing partition is not an error.
    - Partitions and assets are independent: writing one never changes another.
    - ``list_partitions`` returns partition *values* equal to those stored (a ``date`` comes
      back as a ``date``, a tuple as a tuple), each once, in no particular order.
    - Methods are safe to call from several threads at once.

    ``**opts`` carries the asset's ``io_config`` overrides for this one call; an
    implementation ignores keys it does not know.
    """

    @abstractmethod
    def load(self, asset: str, partition: Partition, **opts: Any) -> Any:
        """Return the value stored for ``(asset, partition)``.

        Raises:
            NotFound: nothing is stored there.
        """

    @abstractmethod
    def store(self, asset: str, data: Any, partition: Partition, **opts: Any) -> None:
        """Store ``data`` for ``(asset, partition)``, replacing any earlier value.

        Raises:
            ValidationError: the backend cannot hold this kind of value.
        """

    @abstractmethod
    def exists(self, asset: str, partition: Partition, **opts: Any) -> bool:
        """Return whether a value is stored for ``(asset, partition)``, without loading it.

        Raises:
            Unavailable: the backend could not be reached.
        """

    @abstractmethod
    def delete(self, asset: str, partition: Partition, **opts: Any) -> None:
        """Remove the value for ``(asset, partition)``; a missing one is not an error.

        Raises:
            Unavailable: the backend could not be reached.
        """

    def list_partitions(self, asset: str, **opts: Any) -> list[Partition]:
        """Return the partitions stored for ``asset`` (optional).

        Raises:
            NotSupported: the default, for managers that cannot list.
        """
        raise NotSupported(f"{type(self).__name__} cannot list partitions")
