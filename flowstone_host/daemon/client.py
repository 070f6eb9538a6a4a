"""The client side of the admin API, used by ``flowstone-host status`` and ``reload``."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, FlowStoneError, Timeout, Unavailable
from .address import local_url, parse_listen

__all__ = ["AdminClient", "AdminReply", "listen_url"]


def listen_url(listen: str) -> str:
    """Return the URL a client on this machine uses for a daemon configured on ``listen``.

    Raises:
        ConfigError: ``listen`` is malformed or uses port 0, which only the daemon knows.
    """
    host, port = parse_listen(listen)
    if port == 0:
        raise ConfigError(
            f"Admin listen address {listen!r} uses port 0, a free port chosen when the daemon "
            "starts; pass --admin with the address the daemon logged."
        )
    return local_url(host, port)


@dataclass(frozen=True, slots=True)
class AdminReply:
    """A JSON answer of the admin API (``/metrics``, the one text endpoint, is not fetched)."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the token to another address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class AdminClient:
    """Talk to a running daemon's admin API (``flowstone-host status`` and ``reload``).

    Args:
        url: Base URL such as ``http://127.0.0.1:8787`` (``host:port`` alone is accepted).
        token: Bearer token sent with ``POST`` requests.
        timeout: Seconds to wait for an answer; a reload can take a while.

    Raises:
        ConfigError: ``url`` is not an http(s) URL.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        url = url if "://" in url else f"http://{url}"
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise ConfigError(f"Admin URL {url!r} is not an http:// URL with a host.")
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        # Proxies from the environment would see the token; the daemon is local anyway.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects)

    def get(self, path: str) -> AdminReply:
        """``GET path`` and return the answer, whatever its status.

        Raises:
            Unavailable: Nothing answers at the URL, or what answers is not the admin API.
            Timeout: The daemon did not answer in time.
        """
        return self._request("GET", path)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> AdminReply:
        """``POST path`` with the token (and ``body`` as JSON) and return the answer,
        whatever its status.

        Raises:
            Unavailable: Nothing answers at the URL, or what answers is not the admin API.
            Timeout: The daemon did not answer in time.
        """
        return self._request("POST", path, body)

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> AdminReply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if method == "POST" and self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                self._check_server(response.headers.get("Server"))
                return AdminReply(response.status, self._json(response.read()))
        except urllib.error.HTTPError as exc:
            with exc:
                self._check_server(exc.headers.get("Server"))
                return AdminReply(exc.code, self._json(exc.read()))
        except (http.client.HTTPException, ConnectionResetError) as exc:
            raise self._not_admin(f"it does not speak HTTP: {type(exc).__name__}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise self._unreachable(exc) from exc

    def _check_server(self, server: str | None) -> None:
        # The admin API names itself in every answer's Server header.
        if not (server or "").startswith("flowstone-host"):
            raise self._not_admin(
                f"its Server header is {server!r}" if server else "no Server header"
            )

    def _not_admin(self, why: str) -> Unavailable:
        return Unavailable(
            f"Something answers at {self.url}, but it is not a flowstone-host admin API "
            f"({why}). Another program holds that port: point --admin at the daemon's "
            "address, or change admin.listen."
        )

    def _json(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Unavailable(
                f"What answers at {self.url} is not a flowstone-host admin API (no JSON object)."
            )
        return body

    def _unreachable(self, exc: OSError) -> FlowStoneError:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            return Timeout(f"The daemon at {self.url} did not answer within {self._timeout:g} s.")
        return Unavailable(
            f"No flowstone-host daemon is running at {self.url} ({reason}). Start it with "
            "'flowstone-host run --config PATH', or point --admin at the address it logged."
        )
