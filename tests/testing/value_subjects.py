"""IO managers for the kit's value, case, torn-write, close and schema checks.

The correct ones (``DictValuesIOManager``, ``AtomicFileIOManager``) pass every check; each
broken variant changes one thing, the way real plugins go wrong.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from flowstone_host import IOManager, NotFound, Unavailable, ValidationError, partition_key
from flowstone_host.partitions import parse_partition_key

JSON_TYPES = frozenset({"none", "bool", "int", "big_int", "float", "str", "list", "dict"})


class DictValuesIOManager(IOManager):
    """Correct: keeps deep copies in a dict; refuses calls once closed."""

    contract_version = "1.0.0"
    config_schema: ClassVar[Mapping[str, Any]] = {"copy": {"type": "boolean", "default": True}}

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._data: dict[tuple[str, str], Any] = {}
        self._closed = False

    def _key(self, asset: str, partition: Any) -> tuple[str, str]:
        if self._closed:
            raise Unavailable(f"{type(self).__name__} is closed")
        return asset, partition_key(partition)

    def encode(self, data: Any) -> Any:
        return copy.deepcopy(data)

    def decode(self, stored: Any) -> Any:
        return copy.deepcopy(stored)

    def load(self, asset: str, partition: Any, **opts: Any) -> Any:
        try:
            return self.decode(self._data[self._key(asset, partition)])
        except KeyError:
            raise NotFound(f"Nothing stored for asset {asset!r}, {partition!r}") from None

    def store(self, asset: str, data: Any, partition: Any, **opts: Any) -> None:
        self._data[self._key(asset, partition)] = self.encode(data)

    def exists(self, asset: str, partition: Any, **opts: Any) -> bool:
        return self._key(asset, partition) in self._data

    def delete(self, asset: str, partition: Any, **opts: Any) -> None:
        self._data.pop(self._key(asset, partition), None)

    def list_partitions(self, asset: str, **opts: Any) -> list[Any]:
        self._key(asset, None)
        return [parse_partition_key(key) for name, key in list(self._data) if name == asset]

    def close(self) -> None:
        self._closed = True


class NaiveJsonIOManager(DictValuesIOManager):
    """Broken: ``json.dumps`` / ``json.loads``, declaring nothing: ``{1: 7.0}`` loads as
    ``{"1": 7.0}``, tuples as lists, and bytes raise a TypeError."""

    def encode(self, data: Any) -> Any:
        return json.dumps(data)

    def decode(self, stored: Any) -> Any:
        return json.loads(stored)


class SilentJsonIOManager(NaiveJsonIOManager):
    """Broken: declares JSON's types, but lets ``json.dumps`` change int keys and tuples."""

    value_types = JSON_TYPES

    def encode(self, data: Any) -> Any:
        try:
            return json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"not JSON: {exc}") from None


def _lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


class TupleToListIOManager(DictValuesIOManager):
    """Broken: a codec that gives tuples back as lists (as msgpack or JSON would)."""

    def encode(self, data: Any) -> Any:
        return _lists(data)

    def decode(self, stored: Any) -> Any:
        return copy.deepcopy(stored)


class CaseFoldingIOManager(DictValuesIOManager):
    """Broken: keys folded to lower case, as on a case-insensitive file system."""

    def _key(self, asset: str, partition: Any) -> tuple[str, str]:
        asset, key = super()._key(asset, partition)
        return asset.lower(), key.lower()

    def list_partitions(self, asset: str, **opts: Any) -> list[Any]:
        return [parse_partition_key(k) for a, k in list(self._data) if a == asset.lower()]


class CloseBreaksIOManager(DictValuesIOManager):
    """Broken: ``close()`` drops the dict, so later calls raise AttributeError/TypeError,
    and a second ``close()`` raises."""

    def close(self) -> None:
        if self._data is None:
            raise RuntimeError("already closed")
        self._data = None  # type: ignore[assignment]


class LambdaSchemaIOManager(DictValuesIOManager):
    """Broken: a lambda in ``config_schema``: not plain data, uncheckable out of process."""

    config_schema: ClassVar[Mapping[str, Any]] = {
        "copy": {"type": "boolean", "default": True, "coerce": lambda v: v in ("yes", True)}
    }


def _refuse_changes(value: Any) -> None:
    """Refuse what JSON would change without a word: tuples and non-str keys."""
    if isinstance(value, tuple):
        raise ValidationError("JSON would give a tuple back as a list")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"JSON would turn the {type(key).__name__} key into a str")
            _refuse_changes(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_changes(item)


class AtomicFileIOManager(IOManager):
    """Correct: one JSON file per value, written to a temporary file then renamed."""

    contract_version = "1.0.0"
    value_types = JSON_TYPES
    config_schema: ClassVar[Mapping[str, Any]] = {
        "root": {"type": "string", "nullable": True, "default": None},
    }

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self.root = Path(self.config["root"] or tempfile.mkdtemp(prefix="kit-subject-"))
        self._lock = threading.Lock()

    def path(self, asset: str, partition: Any) -> Path:
        return self.root / partition_key(asset) / f"{partition_key(partition)}.json"

    def load(self, asset: str, partition: Any, **opts: Any) -> Any:
        try:
            return json.loads(self.path(asset, partition).read_text("utf-8"))
        except FileNotFoundError:
            raise NotFound(f"Nothing stored for asset {asset!r}, {partition!r}") from None

    def store(self, asset: str, data: Any, partition: Any, **opts: Any) -> None:
        _refuse_changes(data)
        try:
            text = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"Asset {asset!r}: not JSON ({exc})") from None
        path = self.path(asset, partition)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.write(path, data, text)

    def write(self, path: Path, data: Any, text: str) -> None:
        fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)

    def exists(self, asset: str, partition: Any, **opts: Any) -> bool:
        return self.path(asset, partition).is_file()

    def delete(self, asset: str, partition: Any, **opts: Any) -> None:
        self.path(asset, partition).unlink(missing_ok=True)

    def list_partitions(self, asset: str, **opts: Any) -> list[Any]:
        folder = self.root / partition_key(asset)
        return [parse_partition_key(p.stem) for p in folder.glob("*.json")]


class NonAtomicFileIOManager(AtomicFileIOManager):
    """Broken: ``json.dump`` straight into the final file: a reader sees it half written."""

    def write(self, path: Path, data: Any, text: str) -> None:
        with path.open("w", encoding="utf-8") as file:
            json.dump(data, file)
