"""The item reader conformance tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..contracts.item_reader import ItemReader
from ..contracts.types import Batch
from ..errors import NotSupported, ValidationError
from ._checks import PluginChecks, assert_json_round_trip, expect_error

__all__ = ["ItemReaderContract"]

MakeReader = Callable[[list[Any]], ItemReader]


def read_batches(reader: ItemReader, batch_size: int, max_reads: int) -> list[Batch]:
    """Read until ``done`` and return every batch; fail if ``done`` never comes."""
    batches: list[Batch] = []
    while not batches or not batches[-1].done:
        assert len(batches) < max_reads, f"no done batch after {max_reads} reads"
        batch = reader.read(batch_size)
        assert isinstance(batch, Batch), f"read() returned {batch!r}, not a Batch"
        batches.append(batch)
    return batches


def items_of(batches: list[Batch]) -> list[Any]:
    """Return the items of ``batches``, in order."""
    return [item for batch in batches for item in batch.items]


class ItemReaderContract(PluginChecks):
    """Checks every invariant of :class:`~flowstone_host.ItemReader`.

    Subclass it in a test module, naming the subclass ``Test...``, and define one fixture:

    - ``make_item_reader``: a function from a list of items to a new reader over exactly
      those items. It is called again with the same list to build a fresh reader for the
      restore tests, as the host does when it resumes a run.

    Override ``reader_items`` (default: 23 small dicts) when your source holds only some
    kinds of items; the checkpoint and restore tests are skipped when ``checkpoint()`` raises
    ``NotSupported``.

    Example::

        class TestCsvReader(ItemReaderContract):
            @pytest.fixture
            def make_item_reader(self, tmp_path):
                def make(items):
                    path = tmp_path / "items.csv"
                    write_csv(path, items)
                    return CsvReader({"path": str(path)}, {})
                return make
    """

    contract_abc = ItemReader

    @pytest.fixture
    def reader_items(self) -> list[Any]:
        """The items of the source; at least eight, for the restore cut points."""
        return [{"id": i, "name": f"item-{i}"} for i in range(23)]

    @pytest.fixture
    def new_reader(
        self, make_item_reader: MakeReader, reader_items: list[Any]
    ) -> Iterator[Callable[[], ItemReader]]:
        """Build readers over ``reader_items``; each is closed when the test ends."""
        readers: list[ItemReader] = []

        def new() -> ItemReader:
            readers.append(make_item_reader(list(reader_items)))
            return readers[-1]

        yield new
        for reader in readers:
            reader.close()

    @pytest.fixture
    def _plugin_under_test(self, new_reader: Callable[[], ItemReader]) -> ItemReader:
        return new_reader()

    @pytest.fixture
    def max_reads(self, reader_items: list[Any]) -> int:
        """Reads allowed before a reader that never says ``done`` fails."""
        return 2 * len(reader_items) + 10

    @staticmethod
    def checkpoint(reader: ItemReader) -> dict[str, Any]:
        """Return a checkpoint after its JSON round trip; skip if checkpoints are unsupported."""
        try:
            checkpoint = reader.checkpoint()
        except NotSupported:
            pytest.skip(f"{type(reader).__name__} does not checkpoint")
        assert isinstance(checkpoint, dict), f"checkpoint() returned {checkpoint!r}, not a dict"
        assert_json_round_trip(checkpoint, "checkpoint()")
        persisted: dict[str, Any] = json.loads(json.dumps(checkpoint))
        return persisted

    @pytest.mark.parametrize("batch_size", [1, 3, 7, 100])
    def test_reads_every_item_once_in_order(
        self,
        new_reader: Callable[[], ItemReader],
        reader_items: list[Any],
        batch_size: int,
        max_reads: int,
    ) -> None:
        read = items_of(read_batches(new_reader(), batch_size, max_reads))
        assert read == reader_items

    @pytest.mark.parametrize("batch_size", [1, 3, 7])
    def test_batches_hold_at_most_batch_size_items(
        self, new_reader: Callable[[], ItemReader], batch_size: int, max_reads: int
    ) -> None:
        sizes = [len(b.items) for b in read_batches(new_reader(), batch_size, max_reads)]
        assert max(sizes) <= batch_size, f"batch sizes {sizes} exceed {batch_size}"

    def test_empty_source_reads_done(self, make_item_reader: MakeReader, max_reads: int) -> None:
        reader = make_item_reader([])
        try:
            assert items_of(read_batches(reader, 5, max_reads)) == []
        finally:
            reader.close()

    def test_read_after_done_returns_empty_done_batch(
        self, new_reader: Callable[[], ItemReader], max_reads: int
    ) -> None:
        reader = new_reader()
        read_batches(reader, 100, max_reads)
        for _ in range(2):
            batch = reader.read(5)
            assert list(batch.items) == [] and batch.done is True, f"read after done: {batch!r}"

    @pytest.mark.parametrize("batch_size", [0, -1])
    def test_batch_size_below_one_raises_validation_error(
        self, new_reader: Callable[[], ItemReader], batch_size: int
    ) -> None:
        with expect_error(ValidationError):
            new_reader().read(batch_size)

    def test_count_is_none_or_exact(
        self, new_reader: Callable[[], ItemReader], reader_items: list[Any]
    ) -> None:
        reader = new_reader()
        before = reader.count()
        reader.read(3)
        after = reader.count()
        for count in (before, after):
            assert count is None or count == len(reader_items), (
                f"count() is {count!r}: expected None or {len(reader_items)} (the total)"
            )

    def test_close_may_be_called_twice(self, new_reader: Callable[[], ItemReader]) -> None:
        reader = new_reader()
        reader.read(3)
        reader.close()
        reader.close()

    def test_checkpoint_is_json_serialisable(
        self, new_reader: Callable[[], ItemReader], max_reads: int
    ) -> None:
        reader = new_reader()
        self.checkpoint(reader)
        reader.read(3)
        self.checkpoint(reader)
        read_batches(reader, 7, max_reads)
        self.checkpoint(reader)

    def test_checkpoint_does_not_move_the_position(
        self, new_reader: Callable[[], ItemReader], reader_items: list[Any], max_reads: int
    ) -> None:
        reader = new_reader()
        first = list(reader.read(3).items)
        self.checkpoint(reader)
        self.checkpoint(reader)
        assert first + items_of(read_batches(reader, 3, max_reads)) == reader_items

    @pytest.mark.parametrize("cut", [0, 1, 2, 5, "done"])
    def test_restore_resumes_with_no_item_lost_or_repeated(
        self,
        new_reader: Callable[[], ItemReader],
        reader_items: list[Any],
        max_reads: int,
        cut: int | str,
    ) -> None:
        reader = new_reader()
        if cut == "done":
            before = items_of(read_batches(reader, 3, max_reads))
        else:
            before = [item for _ in range(int(cut)) for item in reader.read(3).items]
        checkpoint = self.checkpoint(reader)
        resumed = new_reader()
        resumed.restore(checkpoint)
        after = items_of(read_batches(resumed, 5, max_reads))
        assert before + after == reader_items, (
            f"read {len(before)} items, checkpointed, restored a fresh reader and read "
            f"{len(after)} more; items were lost or repeated"
        )

    def test_restore_chains_across_several_readers(
        self, new_reader: Callable[[], ItemReader], reader_items: list[Any], max_reads: int
    ) -> None:
        read: list[Any] = []
        reader = new_reader()
        for _ in range(4):
            read.extend(reader.read(2).items)
            checkpoint = self.checkpoint(reader)
            reader = new_reader()
            reader.restore(checkpoint)
        assert read + items_of(read_batches(reader, 4, max_reads)) == reader_items
