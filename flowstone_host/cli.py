"""The ``flowstone-host`` command line: one function per subcommand, argparse only."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

__all__ = ["main"]

DEFAULT_CONFIG = "config/host.yaml"
TOKEN_ENV = "FLOWSTONE_ADMIN_TOKEN"

Command = Callable[[argparse.Namespace], int]
# A string: argparse._SubParsersAction is not subscriptable at runtime before Python 3.12.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_command(
    sub: Subparsers, name: str, func: Command, *, help: str, description: str
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``func``, with the options every command shares."""
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help=f"host config file (default: {DEFAULT_CONFIG})",
    )
    parser.set_defaults(func=func)
    return parser


def _add_run(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "run",
        _run,
        help="run the host daemon in the foreground",
        description=(
            "Run the host in the foreground (systemd style) on --config: load every manifest\n"
            "in the plugins folder, watch it and reload on change, serve the admin API\n"
            "(/healthz, /readyz, /status, /metrics, POST /reload) and log structured lines.\n"
            "SIGHUP reloads; SIGTERM or SIGINT stops cleanly (exit 0), a second one at once.\n"
            "A broken manifest is rejected and the rest still loads; an invalid host config\n"
            "exits 2 with its errors."
        ),
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text: readable lines (default); json: one JSON object per line",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING, ERROR")
    parser.add_argument(
        "--admin-listen",
        metavar="HOST:PORT",
        help="override admin.listen from the host config; port 0 picks a free port",
    )


def _run(args: argparse.Namespace) -> int:
    from .errors import FlowStoneError
    from .host.daemon import Daemon
    from .host.logs import configure_logging

    configure_logging(args.log_format, args.log_level)
    try:
        daemon = Daemon(_host_config(args), admin_listen=args.admin_listen)
    except FlowStoneError as exc:
        print(f"flowstone-host run: {exc.message}", file=sys.stderr)
        return 2
    try:
        return daemon.run()
    except FlowStoneError as exc:  # e.g. the admin port is taken
        print(f"flowstone-host run: {exc.message}", file=sys.stderr)
        return 1


def _host_config(args: argparse.Namespace) -> Any:
    """Read ``--config``; the built-in defaults when the default path does not exist."""
    from pathlib import Path

    from .manifest.host_config import HostConfig, read_host_config

    if args.config == DEFAULT_CONFIG and not Path(DEFAULT_CONFIG).exists():
        return HostConfig.defaults()
    return read_host_config(args.config)


def _add_validate(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "validate",
        _validate,
        help="check manifests: shape, cross-references and plugin config",
        description=(
            "Check manifest files and folders as one set, without running any plugin.\n"
            "With no PATH, read the host config's plugins folder and its overlays.\n\n"
            "Exit codes: 0 valid, 1 invalid, 2 usage error (bad option, missing path,\n"
            "invalid host config)."
        ),
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="manifest files or folders")
    parser.add_argument("--format", choices=["text", "json"], default="text")


def _read_manifests(args: argparse.Namespace) -> Any:
    """Return ``(host config, validation report)`` of ``args.paths`` (default: the plugins
    folder and overlays), or ``None`` after printing why they cannot be read."""
    from .errors import FlowStoneError
    from .manifest.validate import load_manifests, validate_paths

    try:
        host = _host_config(args)
        return host, validate_paths(args.paths, host) if args.paths else load_manifests(host)
    except FlowStoneError as exc:
        print(f"flowstone-host {args.command}: error: {exc.message}", file=sys.stderr)
        return None


def _validate(args: argparse.Namespace) -> int:
    read = _read_manifests(args)
    if read is None:
        return 2
    _, report = read
    print(report.to_json() if args.format == "json" else report.to_text())
    return 0 if report.ok else 1


def _add_check(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "check",
        _check,
        help="load, set up, health-check and tear down every declaration",
        description=(
            "Load every plugin declaration the way the daemon would (sandbox policy, import\n"
            "probe, version checks, constructor, resource setup), health-check it and tear it\n"
            "down again, printing one line per declaration. With no PATH, read the host\n"
            "config's plugins folder and its overlays.\n\n"
            "Exit codes: 0 all good, 1 any manifest invalid or declaration failed or\n"
            "unhealthy, 2 usage error."
        ),
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="manifest files or folders")


def _check(args: argparse.Namespace) -> int:
    from .host.check import check_declarations
    from .host.health import HealthChecker
    from .loading.loader import PluginLoader
    from .manifest.plugin_config import UNLOADABLE

    read = _read_manifests(args)
    if read is None:
        return 2
    host, report = read
    for issue in report.issues:
        if issue.code not in UNLOADABLE:  # those get a FAILED line of their own below
            print(issue.to_text())
    health = HealthChecker(list, None, host.health.timeout_s)
    failed = 0
    for result in check_declarations(report.manifests, PluginLoader(host.sandbox), health):
        print(result.to_text(), flush=True)
        failed += not result.ok
    total = len(report.manifests.declarations) + len(report.manifests.unloadable)
    errors = sum(issue.code not in UNLOADABLE for issue in report.issues)
    print(f"{total - failed} of {total} declaration(s) OK; {errors} manifest error(s)")
    return 0 if report.ok and not failed else 1


def _add_schema(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "schema",
        _schema,
        help="print the JSON Schema of manifests",
        description=(
            "Print the JSON Schema (Draft 2020-12) of one manifest document, or of one\n"
            "document of KIND, as one self-contained file for editors and CI tools."
        ),
    )
    parser.add_argument("kind", nargs="?", metavar="KIND", help="e.g. Asset, IOManager")


def _schema(args: argparse.Namespace) -> int:
    import json

    from .errors import NotFound
    from .manifest.schema import bundled_schema

    try:
        print(json.dumps(bundled_schema(args.kind), indent=2))
    except NotFound as exc:
        print(f"flowstone-host schema: error: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _add_plugins(sub: Subparsers) -> None:
    add_command(
        sub,
        "plugins",
        _plugins,
        help="list installed plugins per namespace, with versions and compatibility",
        description=(
            "List every entry point in the flowstone.* namespaces with its distribution,\n"
            "version, contract version and whether this host can run it. Each plugin is\n"
            "imported in a throwaway probe process, never in this one."
        ),
    )


def _plugins(args: argparse.Namespace) -> int:
    from .errors import FlowStoneError
    from .manifest.plugin_listing import list_plugins

    try:
        host = _host_config(args)
    except FlowStoneError as exc:
        print(f"flowstone-host plugins: error: {exc.message}", file=sys.stderr)
        return 2
    for line in list_plugins(host):
        print(line)
    return 0


def _add_config(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "config",
        _config_show,
        help="show the merged, redacted config of a declaration or asset",
        description=(
            "config show [NAME] [--kind KIND] | --asset ASSET [--explain]\n\n"
            "Print the config a declaration or asset would get: plugin defaults, then\n"
            "spec.config (and overlays), then the asset's override. Secrets and values\n"
            "from the environment are redacted. --explain names the layer of each key."
        ),
    )
    parser.add_argument("action", choices=["show"])
    parser.add_argument("name", nargs="?", help="declaration name (all when absent)")
    parser.add_argument("--kind", help="declaration kind, when NAME is used by several")
    parser.add_argument("--asset", help="show the IO (and reader) config of this asset")
    parser.add_argument("--explain", action="store_true", help="say which layer set each key")


def _config_show(args: argparse.Namespace) -> int:
    from .errors import FlowStoneError
    from .manifest.explain import show_config
    from .manifest.validate import load_manifests

    try:
        report = load_manifests(_host_config(args))
    except FlowStoneError as exc:
        print(f"flowstone-host config: error: {exc.message}", file=sys.stderr)
        return 2
    try:
        options = {"kind": args.kind, "asset": args.asset, "explain": args.explain}
        print(show_config(report, args.name, **options))
    except FlowStoneError as exc:
        print(f"flowstone-host config: error: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _add_admin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--admin",
        metavar="URL",
        help="the daemon's admin API, e.g. http://127.0.0.1:8787 (default: admin.listen "
        "in --config)",
    )
    parser.add_argument(
        "--token",
        help=f"admin token for POST requests (default: ${TOKEN_ENV}, then admin.token in "
        "--config; prefer those, since arguments show in the process list)",
    )


def _admin_target(args: argparse.Namespace) -> tuple[str, str | None]:
    """Return the admin URL and token: options, then the environment, then --config."""
    from .host.admin_client import listen_url

    token: str | None = args.token or os.environ.get(TOKEN_ENV)
    if args.admin:
        return str(args.admin), token
    admin = _host_config(args).admin
    return listen_url(admin.listen), token or admin.token or None


def _ask_daemon(args: argparse.Namespace, method: str, path: str, timeout: float) -> int:
    from .errors import FlowStoneError
    from .host.admin_client import AdminClient

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


def _add_status(sub: Subparsers) -> None:
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


def _add_reload(sub: Subparsers) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="flowstone-host",
        description="Host FlowStone plugins declared in YAML manifests.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (
        _add_run,
        _add_validate,
        _add_check,
        _add_schema,
        _add_plugins,
        _add_config,
        _add_status,
        _add_reload,
    ):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
