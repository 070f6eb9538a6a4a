"""Length-prefixed frames over a socket, with a size cap and a deadline on every wait.

A frame is a 4-byte big-endian length followed by that many bytes. A peer announcing a
frame over the cap is a protocol violation, raised before anything is read. The socket
is non-blocking; every wait is a ``poll`` on the socket and, on the host side, on a pidfd
of the child, so a child that dies while a grandchild still holds its end of the socket
is noticed all the same.
"""

from __future__ import annotations

import math
import select
import socket
import struct
import time

__all__ = [
    "DEFAULT_MAX_FRAME",
    "Channel",
    "ChannelClosed",
    "ChannelError",
    "ChannelTimeout",
    "ProtocolViolation",
]

#: The default frame size cap: 64 MiB.
DEFAULT_MAX_FRAME = 64 * 1024 * 1024

_HEADER = struct.Struct(">I")
_SMALL = 1 << 16


class ChannelError(Exception):
    """The channel cannot carry the frame (base of the failures below)."""


class ChannelClosed(ChannelError):
    """The peer closed its end or its process exited."""


class ChannelTimeout(ChannelError):
    """The deadline passed before the frame went through."""


class ProtocolViolation(ChannelError):
    """The peer broke the framing: a frame over the size cap."""


class Channel:
    """Send and receive whole frames on one connected stream socket.

    Args:
        sock: A connected stream socket; it is made non-blocking.
        max_frame: The largest frame accepted or sent, in bytes.
        watch_fd: A file descriptor that turns readable when the peer is gone (a pidfd),
            or ``None``.
    """

    def __init__(self, sock: socket.socket, *, max_frame: int, watch_fd: int | None = None) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.max_frame = max_frame
        self._watch_fd = watch_fd
        self._pending = bytearray()
        self._scratch_view = memoryview(bytearray(_SMALL))
        self._poll_in = self._poller(select.POLLIN)
        self._poll_out = self._poller(select.POLLOUT)

    def _poller(self, events: int) -> select.poll:
        poller = select.poll()
        poller.register(self.sock.fileno(), events)
        if self._watch_fd is not None:
            poller.register(self._watch_fd, select.POLLIN)
        return poller

    def send(self, payload: bytes, deadline: float | None = None) -> None:
        """Send one frame.

        Args:
            payload: The frame's bytes.
            deadline: ``time.monotonic()`` value to give up at; ``None`` waits forever.

        Raises:
            ProtocolViolation: ``payload`` is over the cap (nothing was sent).
            ChannelClosed: the peer is gone.
            ChannelTimeout: the peer stopped reading until the deadline.
        """
        if len(payload) > self.max_frame:
            raise ProtocolViolation(
                f"frame of {len(payload)} bytes is over the cap of {self.max_frame}"
            )
        view = memoryview(_HEADER.pack(len(payload)) + payload)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                self._wait(self._poll_out, deadline)
            except OSError as exc:  # EPIPE, ECONNRESET
                raise ChannelClosed(f"peer closed the channel: {exc}") from None

    def recv(self, deadline: float | None = None) -> bytes | bytearray:
        """Receive one frame.

        Raises:
            ProtocolViolation: the peer announced a frame over the cap.
            ChannelClosed: the peer is gone.
            ChannelTimeout: no whole frame arrived before the deadline.
        """
        (size,) = _HEADER.unpack(self._read(_HEADER.size, deadline))
        if size > self.max_frame:
            raise ProtocolViolation(
                f"peer announced a frame of {size} bytes, over the cap of {self.max_frame}"
            )
        return self._read(size, deadline)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.sock.close()

    def _read(self, size: int, deadline: float | None) -> bytes | bytearray:
        pending = self._pending
        if len(pending) < size and size - len(pending) > _SMALL:
            return self._read_large(size, deadline)
        while len(pending) < size:
            pending += self._scratch_view[: self._recv_into(self._scratch_view, deadline)]
        frame = bytes(pending[:size])
        del pending[:size]
        return frame

    def _read_large(self, size: int, deadline: float | None) -> bytearray:
        # Straight into the frame's own buffer: no copies of large payloads.
        frame = bytearray(size)
        view = memoryview(frame)
        got = len(self._pending)
        view[:got] = self._pending
        self._pending.clear()
        while got < size:
            got += self._recv_into(view[got:], deadline)
        return frame

    def _recv_into(self, view: memoryview, deadline: float | None) -> int:
        while True:
            # Poll first: a reply is rarely there yet, and a failed recv costs more.
            self._wait(self._poll_in, deadline)
            try:
                received = self.sock.recv_into(view)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ChannelClosed(f"peer closed the channel: {exc}") from None
            if not received:
                raise ChannelClosed("peer closed the channel")
            return received

    def _wait(self, poller: select.poll, deadline: float | None) -> None:
        timeout_ms = (
            None if deadline is None else max(0, math.ceil((deadline - time.monotonic()) * 1000))
        )
        ready = dict(poller.poll(timeout_ms))
        if not ready:
            raise ChannelTimeout("deadline passed")
        sock_events = ready.get(self.sock.fileno(), 0)
        if sock_events and not sock_events & select.POLLNVAL:
            return  # ready, or hung up: the next recv/send tells which
        raise ChannelClosed("peer process exited")
