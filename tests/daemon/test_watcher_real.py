"""ManifestWatcher driving the real watchdog observer on real folders (Linux inotify)."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowstone_host.daemon.watch_source import WatchdogSource
from flowstone_host.daemon.watcher import ManifestWatcher, Trigger

pytestmark = pytest.mark.skipif(not Path("/proc/sys/fs/inotify").exists(), reason="inotify")

DEBOUNCE_S = 0.1
WAIT_S = 10.0  # generous: only reached when something is wrong


@dataclass(frozen=True)
class Call:
    at: float
    trigger: Trigger
    files: dict[str, bytes]
    busy: frozenset[Path]


class FakeHost:
    """Does what the host does on a trigger: reads every manifest, notes the busy files."""

    watcher: ManifestWatcher  # set before the watcher starts

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.calls: list[Call] = []
        self._cond = threading.Condition()

    def __call__(self, trigger: Trigger) -> None:
        busy = self.watcher.busy()
        call = Call(time.monotonic(), trigger, self.read(), busy)
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def read(self) -> dict[str, bytes]:
        files = {}
        for path in sorted(self.folder.glob("*.yaml")):
            with contextlib.suppress(FileNotFoundError):  # deleted while we listed
                files[path.name] = path.read_bytes()
        return files

    def wait_for(self, check: Callable[[Call], bool]) -> Call:
        """Return the first call (already made or to come) for which ``check`` holds."""
        found: list[Call] = []

        def seen() -> bool:
            found[:] = [c for c in self.calls if check(c)][:1]
            return bool(found)

        with self._cond:
            assert self._cond.wait_for(seen, WAIT_S), self.calls
        return found[0]

    def wait_quiet(self, quiet_s: float = 5 * DEBOUNCE_S) -> list[Call]:
        """Wait until no call came for ``quiet_s``; return every call so far."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            count = len(self.calls)
            time.sleep(quiet_s)
            if len(self.calls) == count:
                return list(self.calls)
        raise AssertionError(f"still triggering after {WAIT_S}s: {len(self.calls)} calls")


Watch = Callable[..., FakeHost]


@pytest.fixture
def plugins_d(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins.d"
    folder.mkdir()
    return folder


@pytest.fixture
def watch() -> Iterator[Watch]:
    watchers: list[ManifestWatcher] = []

    def start(folder: Path, watched: Path | None = None, **kwargs: object) -> FakeHost:
        host = FakeHost(folder)
        options: dict[str, object] = {"debounce_s": DEBOUNCE_S, "rescan_interval_s": None}
        options.update(kwargs)
        host.watcher = ManifestWatcher([watched or folder], host, **options)  # type: ignore[arg-type]
        watchers.append(host.watcher)
        host.watcher.start()
        return host

    yield start
    for watcher in watchers:
        watcher.stop()


def has(name: str, content: bytes) -> Callable[[Call], bool]:
    return lambda call: call.files.get(name) == content


def test_create(watch: Watch, plugins_d: Path) -> None:
    host = watch(plugins_d)
    (plugins_d / "a.yaml").write_bytes(b"a: 1\n")
    host.wait_for(has("a.yaml", b"a: 1\n"))
    assert host.watcher.mode == "inotify"


def test_our_own_reads_trigger_nothing(watch: Watch, plugins_d: Path) -> None:
    (plugins_d / "a.yaml").write_bytes(b"a: 1\n")
    host = watch(plugins_d)
    (plugins_d / "b.yaml").write_bytes(b"b: 1\n")
    host.wait_for(has("b.yaml", b"b: 1\n"))
    assert len(host.wait_quiet()) == 1  # each call reads both files


def test_in_place_edit(watch: Watch, plugins_d: Path) -> None:
    (plugins_d / "a.yaml").write_bytes(b"a: 1\n")
    host = watch(plugins_d)
    (plugins_d / "a.yaml").write_bytes(b"a: 2\n")
    host.wait_for(has("a.yaml", b"a: 2\n"))


def test_delete(watch: Watch, plugins_d: Path) -> None:
    (plugins_d / "a.yaml").write_bytes(b"a: 1\n")
    host = watch(plugins_d)
    (plugins_d / "a.yaml").unlink()
    host.wait_for(lambda call: "a.yaml" not in call.files)


def test_rename(watch: Watch, plugins_d: Path) -> None:
    (plugins_d / "a.yaml").write_bytes(b"a: 1\n")
    host = watch(plugins_d)
    (plugins_d / "a.yaml").rename(plugins_d / "b.yaml")
    host.wait_for(lambda call: call.files == {"b.yaml": b"a: 1\n"})


def test_atomic_save_through_a_temporary_file(
    watch: Watch, plugins_d: Path, tmp_path: Path
) -> None:
    (plugins_d / "a.yaml").write_bytes(b"a: 1\n")
    host = watch(plugins_d)
    (plugins_d / ".a.yaml.swp").write_bytes(b"a: 2\n")
    os.replace(plugins_d / ".a.yaml.swp", plugins_d / "a.yaml")
    host.wait_for(has("a.yaml", b"a: 2\n"))
    # Written elsewhere on the same file system, then renamed in: only a "created" event.
    (tmp_path / "b.yaml").write_bytes(b"b: 1\n")
    os.replace(tmp_path / "b.yaml", plugins_d / "b.yaml")
    host.wait_for(has("b.yaml", b"b: 1\n"))
    assert host.wait_quiet()[-1].busy == frozenset()


def configmap_version(folder: Path, stamp: str, content: bytes) -> None:
    """Write a timestamped dir and point ``..data`` at it, as the kubelet does."""
    (folder / stamp).mkdir()
    (folder / stamp / "c.yaml").write_bytes(content)
    os.symlink(stamp, folder / "..data_tmp")
    os.rename(folder / "..data_tmp", folder / "..data")


def test_kubernetes_configmap_swap(watch: Watch, plugins_d: Path) -> None:
    configmap_version(plugins_d, "..2024_01_01_00_00_00.1", b"c: 1\n")
    os.symlink("..data/c.yaml", plugins_d / "c.yaml")
    host = watch(plugins_d)
    configmap_version(plugins_d, "..2024_01_01_00_01_00.2", b"c: 2\n")
    shutil.rmtree(plugins_d / "..2024_01_01_00_00_00.1")
    host.wait_for(has("c.yaml", b"c: 2\n"))


def test_a_symlinked_folder_is_watched_at_its_target(
    watch: Watch, plugins_d: Path, tmp_path: Path
) -> None:
    link = tmp_path / "link.d"
    link.symlink_to(plugins_d)
    host = watch(plugins_d, watched=link)
    (plugins_d / "a.yaml").write_bytes(b"a: 1\n")
    host.wait_for(has("a.yaml", b"a: 1\n"))


def test_a_file_open_mid_write_is_never_announced_as_ready(watch: Watch, plugins_d: Path) -> None:
    first, second = b"plugins:\n  - name: one\n", b"  - name: two\n"
    manifest = plugins_d / "a.yaml"
    manifest.write_bytes(b"plugins: []\n")
    host = watch(plugins_d)
    with manifest.open("wb") as writer:
        opened_at = time.monotonic()
        writer.write(first)
        writer.flush()
        time.sleep(0.5)  # the pause under test, five debounce periods long
        writer.write(second)
    closed_at = time.monotonic()
    final = host.wait_for(has("a.yaml", first + second))
    assert final.at > closed_at
    for call in host.wait_quiet():
        assert not opened_at < call.at < closed_at, call
        assert call.files["a.yaml"] == first + second or manifest.resolve() in call.busy, call


def test_a_thousand_rapid_writes_trigger_a_few_times_and_last_after_the_end(
    watch: Watch, plugins_d: Path
) -> None:
    manifest = plugins_d / "a.yaml"
    manifest.write_bytes(b"n: start\n")
    host = watch(plugins_d)
    for i in range(1000):
        manifest.write_bytes(f"n: {i}\n".encode())
    last_write_at = time.monotonic()
    host.wait_for(lambda call: call.at > last_write_at)
    calls = host.wait_quiet()
    assert len(calls) < 20
    assert calls[-1].at > last_write_at
    assert calls[-1].files == {"a.yaml": b"n: 999\n"}
    assert calls[-1].busy == frozenset()


def test_polling_source_sees_an_atomic_save(watch: Watch, plugins_d: Path) -> None:
    (plugins_d / "a.yaml").write_bytes(b"a: 1\n")
    host = watch(plugins_d, source=WatchdogSource(polling=True))
    assert host.watcher.mode == "polling"
    (plugins_d / ".a.tmp").write_bytes(b"a: 2\n")
    os.replace(plugins_d / ".a.tmp", plugins_d / "a.yaml")
    host.wait_for(has("a.yaml", b"a: 2\n"))


def test_a_deleted_and_recreated_folder_is_watched_by_polling(
    watch: Watch, plugins_d: Path
) -> None:
    host = watch(plugins_d)
    shutil.rmtree(plugins_d)  # inotify drops the watch with the folder
    deadline = time.monotonic() + WAIT_S
    while host.watcher.health["last_error"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "stopped running" in host.watcher.health["last_error"]
    plugins_d.mkdir()
    (plugins_d / "a.yaml").write_bytes(b"a: 1\n")
    host.wait_for(has("a.yaml", b"a: 1\n"))
    assert host.watcher.mode == "polling"
    (plugins_d / "a.yaml").write_bytes(b"a: 2\n")
    host.wait_for(has("a.yaml", b"a: 2\n"))
