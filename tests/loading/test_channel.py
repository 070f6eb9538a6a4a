"""The plugin channel's framing on real sockets: split, joined and large frames, both modes."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from flowstone_host.loading.isolation.channel import (
    Channel,
    ChannelClosed,
    ChannelTimeout,
    ProtocolViolation,
)

CAP = 1 << 20


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


@pytest.fixture(params=["host", "child"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[Channel, socket.socket]]:
    """A channel in one mode (the host's polling one, the child's blocking one) and the raw
    socket of its peer."""
    ours, peer = socket.socketpair()
    channel = Channel(ours, max_frame=CAP, blocking=request.param == "child")
    yield channel, peer
    channel.close()
    peer.close()


def deadline(channel: Channel) -> float | None:
    return None if channel._blocking else time.monotonic() + 10


def test_a_frame_sent_a_byte_at_a_time_is_put_together(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    data = frame(b"split" * 100)

    def trickle() -> None:
        for i in range(len(data)):
            peer.sendall(data[i : i + 1])
            if i % 50 == 0:
                time.sleep(0.001)

    writer = threading.Thread(target=trickle)
    writer.start()
    assert channel.recv(deadline(channel)) == b"split" * 100
    writer.join()


def test_frames_joined_in_one_read_come_out_one_by_one(
    pair: tuple[Channel, socket.socket],
) -> None:
    channel, peer = pair
    # 3000 small frames overrun the 64 KiB buffer: frames straddle its end and are moved
    payloads = [str(i).encode() * (i % 40 + 1) for i in range(3000)]
    large = os.urandom(200_000)
    data = b"".join(frame(p) for p in payloads) + frame(large) + frame(b"after")
    writer = threading.Thread(target=peer.sendall, args=(data,))
    writer.start()
    got = [bytes(channel.recv(deadline(channel))) for _ in payloads]
    assert got == payloads
    assert channel.recv(deadline(channel)) == large  # read past the buffered head
    assert channel.recv(deadline(channel)) == b"after"
    writer.join()


def test_what_is_sent_arrives_whole_small_and_large(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    other = Channel(peer, max_frame=CAP)
    large = os.urandom(CAP)  # more than the socket buffer holds: sent in pieces
    got: list[bytes | bytearray] = []
    reader = threading.Thread(
        target=lambda: got.extend(channel.recv(deadline(channel)) for _ in "ab")
    )
    reader.start()
    other.send(b"small", time.monotonic() + 10)
    other.send(large, time.monotonic() + 10)
    reader.join(10)
    assert got == [b"small", large]
    # and the other way: the channel under test sends, its peer's channel reads
    back: list[bytes | bytearray] = []
    reader = threading.Thread(target=lambda: back.append(other.recv(time.monotonic() + 10)))
    reader.start()
    channel.send(large, deadline(channel))
    reader.join(10)
    assert back == [large]


def test_a_frame_over_the_cap_is_a_violation_both_ways(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    with pytest.raises(ProtocolViolation):
        channel.send(b"x" * (CAP + 1), deadline(channel))
    peer.sendall(struct.pack(">I", CAP + 1))
    with pytest.raises(ProtocolViolation, match="over the cap"):
        channel.recv(deadline(channel))


def test_a_peer_closing_mid_frame_closes_the_channel(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    peer.sendall(frame(b"whole")[:6])
    peer.close()
    with pytest.raises(ChannelClosed):
        channel.recv(deadline(channel))


def test_the_blocking_mode_takes_no_deadline() -> None:
    ours, peer = socket.socketpair()
    channel = Channel(ours, max_frame=CAP, blocking=True)
    with pytest.raises(ValueError, match="no deadline"):
        channel.recv(time.monotonic() + 1)
    with pytest.raises(ValueError, match="no deadline"):
        channel.send(b"x", time.monotonic() + 1)
    channel.close()
    peer.close()


def test_a_silent_peer_runs_into_the_deadline() -> None:
    ours, peer = socket.socketpair()
    channel = Channel(ours, max_frame=CAP)
    peer.sendall(frame(b"half")[:5])
    started = time.monotonic()
    with pytest.raises(ChannelTimeout):
        channel.recv(started + 0.2)
    assert time.monotonic() - started < 2
    channel.close()
    peer.close()


def test_a_dead_peer_process_is_noticed_while_another_holds_its_socket() -> None:
    ours, theirs = socket.socketpair()
    # The child passes its end to a grandchild that outlives it, then exits.
    # (The grandchild exits once this test closes its end.)
    grandchild = "import os, sys; os.read(int(sys.argv[1]), 1)"
    code = (
        "import subprocess, sys, time; fd = sys.argv[1]; "
        f"subprocess.Popen([sys.executable, '-c', {grandchild!r}, fd], pass_fds=(int(fd),)); "
        "time.sleep(0.3)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(theirs.fileno())], pass_fds=(theirs.fileno(),)
    )
    theirs.close()
    channel = Channel(ours, max_frame=CAP, watch_fd=os.pidfd_open(child.pid))
    started = time.monotonic()
    with pytest.raises(ChannelClosed, match="exited"):
        channel.recv(started + 20)
    assert time.monotonic() - started < 10
    child.wait()
    channel.close()
