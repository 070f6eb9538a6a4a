"""Out-of-process plugins against a bare msgpack round trip over a Unix socket to a child.

Three figures, each next to its floor from the same run:

- ``exists()`` round trip through an isolated memory IO manager's proxy, p50 and p99,
  against a bare length-prefixed msgpack request/reply to a spawned child (targets 1.5x
  and 3x);
- 1 MB ``store`` + ``load`` throughput through the proxy against the same bytes over the
  bare socket (at least half: ratio 2x);
- time from asking for an isolated plugin to its first answer, against a bare child's
  spawn and first answer plus the plugin's own import time (ratio 1x).

Round trips and throughput run with this process and both children on one CPU, so the
figures compare the code paths, not the scheduler's cross-CPU wake-ups.
"""

from __future__ import annotations

import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]

from bench._common import Result, print_results
from flowstone_host.loading.isolation import spawn_plugin

MEMORY_IO = "flowstone_host.plugins.memory_io:MemoryIOManager"
ROUND_TRIPS = 4000
BLOCKS = 8
PAYLOAD = b"\xab" * (1 << 20)
TRANSFERS = 60
STARTS = 15

_HEADER = struct.Struct(">I")

# The floor's child: the least a msgpack-over-socket plugin server can do.
_FLOOR_CHILD = """\
import socket, struct, sys
import msgpack
sock = socket.socket(fileno=int(sys.argv[1]))
header = struct.Struct(">I")
def recv_exact(n):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            sys.exit(0)
        got += k
    return buf
store = {}
while True:
    (size,) = header.unpack(recv_exact(4))
    op, key, data = msgpack.unpackb(recv_exact(size))
    if op == "exists":
        out = key in store
    elif op == "store":
        store[key] = data
        out = None
    else:
        out = store.get(key)
    payload = msgpack.packb(out, use_bin_type=True)
    sock.sendall(header.pack(len(payload)) + payload)
"""


class _BareChild:
    """A spawned child answering length-prefixed msgpack requests: the floor."""

    def __init__(self) -> None:
        self.sock, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _FLOOR_CHILD, str(child.fileno())], pass_fds=(child.fileno(),)
        )
        child.close()

    def call(self, op: str, key: str, data: Any = None) -> Any:
        payload = msgpack.packb([op, key, data], use_bin_type=True)
        self.sock.sendall(_HEADER.pack(len(payload)) + payload)
        (size,) = _HEADER.unpack(self._recv_exact(4))
        return msgpack.unpackb(self._recv_exact(size))

    def _recv_exact(self, n: int) -> bytearray:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            got += self.sock.recv_into(view[got:])
        return buf

    def close(self) -> None:
        self.sock.close()
        self.proc.wait()


def _latencies(call: Callable[[], Any], n: int) -> list[int]:
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return samples


def _percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def _round_trips(proxy: Any, bare: _BareChild) -> list[Result]:
    measured: list[int] = []
    floor: list[int] = []
    for _ in range(BLOCKS):  # interleaved, so drift hits both alike
        floor += _latencies(lambda: bare.call("exists", "orders"), ROUND_TRIPS // BLOCKS)
        measured += _latencies(lambda: proxy.exists("orders", None), ROUND_TRIPS // BLOCKS)
    return [
        Result(
            "isolated exists() p50 vs bare msgpack",
            _percentile(measured, 0.5),
            _percentile(floor, 0.5),
            "us",
            1.5,
        ),
        Result(
            "isolated exists() p99 vs bare msgpack",
            _percentile(measured, 0.99),
            _percentile(floor, 0.99),
            "us",
            3.0,
        ),
    ]


def _throughput(proxy: Any, bare: _BareChild) -> Result:
    def through_proxy() -> None:
        proxy.store("blob", PAYLOAD, None)
        proxy.load("blob", None)

    def through_socket() -> None:
        bare.call("store", "blob", PAYLOAD)
        bare.call("load", "blob")

    def mb_per_s(step: Callable[[], None]) -> float:
        start = time.perf_counter()
        for _ in range(TRANSFERS // BLOCKS):
            step()
        return 2 * (TRANSFERS // BLOCKS) * len(PAYLOAD) / (time.perf_counter() - start) / 1e6

    measured, floor = [], []
    for _ in range(BLOCKS):
        floor.append(mb_per_s(through_socket))
        measured.append(mb_per_s(through_proxy))
    return Result(
        "isolated 1 MB store+load vs bare socket",
        statistics.median(measured),
        statistics.median(floor),
        "MB/s",
        0.5,  # at least half the bare socket's rate
        higher_is_better=True,
    )


def _import_time_s() -> float:
    code = (
        "import time; t = time.perf_counter(); import flowstone_host.plugins.memory_io; "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def _first_answer() -> Result:
    def isolated() -> float:
        start = time.perf_counter()
        proxy = spawn_plugin("IOManager", MEMORY_IO, name="bench-start")
        proxy.exists("orders", None)
        elapsed = time.perf_counter() - start
        proxy.close()
        return elapsed

    def bare() -> float:
        start = time.perf_counter()
        child = _BareChild()
        child.call("exists", "orders")
        elapsed = time.perf_counter() - start
        child.close()
        return elapsed

    # Interleaved, so a burst of load elsewhere on the machine hits all three alike.
    rounds = [(isolated(), bare(), _import_time_s()) for _ in range(STARTS)]
    measured = statistics.median(r[0] for r in rounds)
    floor = statistics.median(r[1] for r in rounds)
    imports = statistics.median(r[2] for r in rounds)
    return Result(
        "isolated first answer vs bare child + import",
        measured * 1000,
        (floor + imports) * 1000,
        "ms",
        1.0,
    )


def main() -> bool:
    # One CPU for this process and both children (they inherit it): on a shared machine a
    # cross-CPU wake-up costs 20-50 us at random, which would drown what is measured here.
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        proxy = spawn_plugin("IOManager", MEMORY_IO, name="bench")
        bare = _BareChild()
        try:
            for _ in range(500):  # warm both up
                proxy.exists("orders", None)
                bare.call("exists", "orders")
            results = [*_round_trips(proxy, bare), _throughput(proxy, bare)]
        finally:
            proxy.close()
            bare.close()
    finally:
        os.sched_setaffinity(0, cpus)
    results.append(_first_answer())
    return print_results("process isolation", results)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
