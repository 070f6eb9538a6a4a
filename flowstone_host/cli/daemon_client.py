"""``flowstone-host status`` and ``reload``: clients of a running daemon's admin API."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .common import Subparsers, add_command, host_config

__all__ = ["register_reload", "register_status"]

TOKEN_ENV = "FLOWSTONE_ADMIN_TOKEN"


def _add_admin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--admin",
        metavar="URL",
        help="the daemon's admin API, e.g. http://127.0.0.1:8787 (default: the address the "
        "daemon wrote to state_dir/daemon.json, then admin.listen in --config)",
    )
    parser.add_argument(
        "--token",
        help=f"admin token for POST requests (default: ${TOKEN_ENV}, then admin.token in "
        "--config; prefer those, since arguments show in the process list)",
    )


def _admin_target(args: argparse.Namespace) -> tuple[str, str | None]:
    """Return the admin URL and token: options, then the environment, then --config.

    Without ``--admin``, the URL is the one a running daemon wrote to its state folder
    (``daemon.json``), else ``admin.listen``.

    Raises:
        Unavailable: the address file is stale (its daemon was killed), or ``admin.listen``
            uses port 0 and no daemon wrote its address.
    """
    from ..daemon.address_file import FILE_NAME, read_address
    from ..daemon.client import listen_url
    from ..errors import Unavailable

    token: str | None = args.token or os.environ.get(TOKEN_ENV)
    if args.admin:
        return str(args.admin), token
    host = host_config(args)
    token = token or host.admin.token or None
    found = read_address(host.state_dir)
    if found is not None and found.alive:
        return found.url, token
    if found is not None:
        raise Unavailable(
            f"The daemon that wrote {found.path} (pid {found.pid}, {found.url}) is no longer "
            "running: it was killed before it could remove the file. Start it again with "
            "'flowstone-host run', or delete the stale file."
        )
    if host.admin.listen.rpartition(":")[2] == "0":
        raise Unavailable(
            f"No daemon address in {host.state_dir / FILE_NAME}: no daemon runs on this "
            "config (admin.listen uses port 0, a port only the running daemon knows). Start "
            "one with 'flowstone-host run', or pass --admin URL."
        )
    return listen_url(host.admin.listen), token


def _ask_daemon(args: argparse.Namespace, method: str, path: str, timeout: float) -> int:
    from ..daemon.client import AdminClient
    from ..errors import FlowStoneError

    try:
        url, token = _admin_target(args)
        client = AdminClient(url, token=token, timeout=timeout)
        reply = client.post(path) if method == "POST" else client.get(path)
    except FlowStoneError as exc:
        print(f"flowstone-host {args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(reply.body, indent=2, sort_keys=True))
    if not reply.ok:
        error = reply.body.get("error")
        reason = f": {error.get('message')}" if isinstance(error, dict) else ""
        print(
            f"flowstone-host {args.command}: failed (HTTP {reply.status}){reason}", file=sys.stderr
        )
    return 0 if reply.ok else 1


def register_status(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "status",
        _status,
        help="show what a running daemon serves (its /status, as JSON)",
        description=(
            "Ask the running daemon's admin API for its status: every declaration with its "
            "plugin, versions and state, rejected files with their errors, and the last "
            "reload. Exits 0 when the daemon answered, 1 when it did not."
        ),
    )
    _add_admin_options(parser)


def _status(args: argparse.Namespace) -> int:
    return _ask_daemon(args, "GET", "/status", timeout=10.0)


def register_reload(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "reload",
        _reload,
        help="make a running daemon reload its manifests now (POST /reload)",
        description=(
            "Ask the running daemon to reload plugins.d now, wait for it, and print the "
            "reload report as JSON. Exits 0 when the reload succeeded, 1 when it failed or "
            "the daemon could not be reached."
        ),
    )
    _add_admin_options(parser)


def _reload(args: argparse.Namespace) -> int:
    return _ask_daemon(args, "POST", "/reload", timeout=120.0)
