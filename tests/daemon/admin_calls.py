"""Helpers for the admin API tests: one request over a real socket, and its answer."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from flowstone_host.daemon.admin import AdminServer


def call(
    server: AdminServer,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send one request with http.client; return status, headers and body."""
    conn = http.client.HTTPConnection(*server.address, timeout=30)  # only reached on a fault
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def raw(server: AdminServer, data: bytes) -> bytes:
    """Send ``data`` as is and return everything the server sends until it closes."""
    with socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(data)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def status_and_json(answer: bytes) -> tuple[int, Any]:
    """Split a raw HTTP/1.1 answer into its status code and its JSON body."""
    head, _, body = answer.partition(b"\r\n\r\n")
    version, status = head.split(b" ")[:2]
    assert version == b"HTTP/1.1"
    return int(status), json.loads(body)


def error_code(body: bytes) -> str:
    code: str = json.loads(body)["error"]["code"]
    return code
