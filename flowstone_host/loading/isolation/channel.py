"""Length-prefixed frames over a socket, with a size cap and a deadline on every wait.

A frame is a 4-byte big-endian length followed by that many bytes. A peer announcing a
frame over the cap is a protocol violation, raised before anything is read.

On the host side every wait has a deadline and watches a pidfd of the child, so a child
that dies while a grandchild still holds its end of the socket is noticed all the same.
A socket call blocks at most :data:`_SLICE_S` (``SO_RCVTIMEO``/``SO_SNDTIMEO``); a wait
that lasts longer, or starts with less than a slice left before its deadline, turns to
``poll`` on the socket and the pidfd. So a deadline is kept within a slice, a dead child
is noticed within one, and a reply that comes within one (nearly every reply) costs a
single ``recv``, not a ``poll`` and a ``recv``. The child's side has no deadlines (its
host's lifeline ends it): its socket calls block.

A round trip of a small call is the hot path of every isolated plugin, so a frame is
sent with one ``send`` (header and payload joined, or one ``sendmsg`` for a large
payload) and read with one ``recv`` into a reused buffer, from which the frame is cut.
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
#: On the host, a socket call blocks at most this long before the wait turns to polling.
_SLICE_S = 0.05


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
        sock: A connected stream socket.
        max_frame: The largest frame accepted or sent, in bytes.
        watch_fd: A file descriptor that turns readable when the peer is gone (a pidfd),
            or ``None``.
        blocking: Block in the socket calls and take no deadlines (the child's side);
            otherwise a socket call blocks at most a slice, then the wait polls, up to
            its deadline.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        max_frame: int,
        watch_fd: int | None = None,
        blocking: bool = False,
    ) -> None:
        sock.setblocking(True)
        if not blocking:  # a socket call waits at most one slice, then the wait polls
            slice_ = struct.pack("@ll", 0, int(_SLICE_S * 1_000_000))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, slice_)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, slice_)
        self.sock = sock
        self.max_frame = max_frame
        self._fd = sock.fileno()
        self._blocking = blocking
        self._watch_fd = watch_fd
        # Received bytes not yet handed out are self._buffer[self._start:self._end].
        self._buffer = bytearray(_SMALL)
        self._view = memoryview(self._buffer)
        self._start = self._end = 0
        self._poll_in = self._poller(select.POLLIN)
        self._poll_out = self._poller(select.POLLOUT)

    def _poller(self, events: int) -> select.poll:
        poller = select.poll()
        poller.register(self._fd, events)
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
        if deadline is not None and self._blocking:
            raise ValueError("a blocking channel takes no deadline")
        size = len(payload)
        if size > self.max_frame:
            raise ProtocolViolation(f"frame of {size} bytes is over the cap of {self.max_frame}")
        if size > _SMALL:  # no copy of a large payload
            self._send_parts([memoryview(_HEADER.pack(size)), memoryview(payload)], deadline)
            return
        data = _HEADER.pack(size) + payload  # joining costs less than a second system call
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:  # EPIPE, ECONNRESET
            raise ChannelClosed(f"peer closed the channel: {exc}") from None
        if sent < len(data):
            self._send_parts([memoryview(data)[sent:]], deadline)

    def _send_parts(self, parts: list[memoryview], deadline: float | None) -> None:
        while parts:
            try:
                sent = self.sock.sendmsg(parts)
            except BlockingIOError:
                self._wait(self._poll_out, deadline)
                continue
            except OSError as exc:
                raise ChannelClosed(f"peer closed the channel: {exc}") from None
            while parts and sent >= len(parts[0]):
                sent -= len(parts.pop(0))
            if parts:
                parts[0] = parts[0][sent:]

    def recv(self, deadline: float | None = None) -> bytes | bytearray:
        """Receive one frame.

        Raises:
            ProtocolViolation: the peer announced a frame over the cap.
            ChannelClosed: the peer is gone.
            ChannelTimeout: no whole frame arrived before the deadline.
        """
        if deadline is not None and self._blocking:
            raise ValueError("a blocking channel takes no deadline")
        if self._end - self._start < _HEADER.size:
            self._fill(_HEADER.size, deadline)
        start = self._start + _HEADER.size
        (size,) = _HEADER.unpack_from(self._buffer, self._start)
        if size > self.max_frame:
            raise ProtocolViolation(
                f"peer announced a frame of {size} bytes, over the cap of {self.max_frame}"
            )
        if size > _SMALL:
            self._start = start
            return self._read_large(size, deadline)
        stop = start + size
        if stop > self._end:
            self._start = start
            self._fill(size, deadline)
            start = self._start
            stop = start + size
        self._start = stop
        return self._buffer[start:stop]

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.sock.close()

    def _fill(self, size: int, deadline: float | None) -> None:
        """Read until ``size`` unread bytes are buffered (``size`` fits the buffer)."""
        if self._start == self._end:
            self._start = self._end = 0
        elif self._start + size > len(self._buffer):  # move the unread bytes to the front
            unread = self._end - self._start
            self._view[:unread] = self._view[self._start : self._end]
            self._start, self._end = 0, unread
        while self._end - self._start < size:
            self._end += self._recv_into(self._view[self._end :], deadline)

    def _read_large(self, size: int, deadline: float | None) -> bytearray:
        # Straight into the frame's own buffer: no copies of large payloads.
        frame = bytearray(size)
        view = memoryview(frame)
        got = min(size, self._end - self._start)
        view[:got] = self._view[self._start : self._start + got]
        self._start += got
        while got < size:
            got += self._recv_into(view[got:], deadline)
        return frame

    def _recv_into(self, view: memoryview, deadline: float | None) -> int:
        # One blocking recv first: a reply within the slice (as a rule) costs one system
        # call. Past the slice, or with less than a slice left, poll the socket and pidfd.
        polling = (
            not self._blocking and deadline is not None and (deadline - time.monotonic() < _SLICE_S)
        )
        while True:
            if polling:
                self._wait(self._poll_in, deadline)
            try:
                received = self.sock.recv_into(view)
            except BlockingIOError:  # the slice passed (SO_RCVTIMEO)
                polling = True
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
        ready = poller.poll(timeout_ms)
        if not ready:
            raise ChannelTimeout("deadline passed")
        for fd, events in ready:
            if fd == self._fd and not events & select.POLLNVAL:
                return  # ready, or hung up: the next recv/send tells which
        raise ChannelClosed("peer process exited")
