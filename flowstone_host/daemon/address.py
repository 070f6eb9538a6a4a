"""Admin listen addresses: parsing ``host:port`` and the URL a local client uses."""

from __future__ import annotations

from ..errors import ConfigError

__all__ = ["local_url", "parse_listen"]

#: What a listen address looks like, for error messages (the default is in the schema).
_EXAMPLE_LISTEN = "127.0.0.1:8787"


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:8787"`` for IPv6) into its host and port.

    Raises:
        ConfigError: The host is missing or the port is not a number in 0..65535.
    """
    host, sep, port = listen.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(
            f"Admin listen address {listen!r} is not 'host:port' (e.g. {_EXAMPLE_LISTEN!r}; "
            "port 0 picks a free port; give 0.0.0.0 explicitly to listen everywhere)."
        )
    return host, int(port)


def local_url(host: str, port: int) -> str:
    """Return the URL a client on this machine uses for a server bound to ``host:port``."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
