"""Command line: `python -m router serve | check-config`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .api.bodies import DEFAULT_BODY_TIMEOUT_S
from .api.requestlog import LOG_FORMATS, configure_logging
from .config import load_config
from .errors import ServerError, SwitchboardError

SHUTDOWN_TIMEOUT_S = 10.0
LOG_LEVELS = ("debug", "info", "warning", "error")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 3600 seconds, got {text}")
    return value


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 1, got {text}")
    return value


def _bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {lo}..{hi}, got {value}")
        return value

    return parse


def _choice(choices: Sequence[str], what: str) -> Callable[[str], str]:
    """Like `choices=`, but also checks a default taken from the environment."""

    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise argparse.ArgumentTypeError(
                f"{what} must be one of {', '.join(choices)}, got {text!r}"
            )
        return text.lower()

    return parse


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .api.app import build_api
    from .api.bodies import BODY_TIMEOUT
    from .api.requestlog import ACCESS_LOGGER, AccessLogger
    from .server.workers import exit_with_parent
    from .service import Service, ServiceOptions, describe

    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        pass
    config = load_config(args.config)  # a bad file fails here, before any process starts
    if args.workers > 1:
        if args.smtp_port is not None:
            raise ServerError("--smtp-port runs in one process: use it without --workers")
        return _supervise(args)
    options = ServiceOptions(
        redis_url=args.redis_url or os.environ.get("SWITCHBOARD_REDIS_URL") or None,
        data_dir=Path(args.data_dir),
        appendfsync=args.appendfsync,
        config_path=Path(args.config),
        maxmemory_mb=args.maxmemory_mb,
        ready_memory_ratio=args.ready_memory,
    )
    service = Service(config, options)
    listener = None
    if args.smtp_port is not None:
        from .api.mail_listener import MailListener

        tenant = args.smtp_tenant or (
            next(iter(config.tenants)) if len(config.tenants) == 1 else None
        )
        if tenant not in config.tenants:
            raise ServerError(
                "--smtp-tenant must name one of the config's tenants: "
                + ", ".join(sorted(config.tenants))
            )
        listener = MailListener(args.host, args.smtp_port, tenant, args.lmtp)
    app = build_api(
        service,
        reload_on_sighup=True,
        max_body_bytes=args.max_body_kib * 1024,
        mail_listener=listener,
    )
    app[BODY_TIMEOUT] = args.body_timeout
    worker = args.worker_of_parent is not None
    if worker:
        exit_with_parent(app, args.worker_of_parent)
    else:

        async def announce(app: web.Application) -> None:
            print(describe(service, args.host, args.port), flush=True)

        app.on_startup.append(announce)
    # aiohttp handles SIGINT/SIGTERM: in-flight requests finish, then on_cleanup
    # stops the timers and the embedded server. It closes a connection that has
    # not sent a whole request head `keepalive_timeout` after it opened or after
    # its previous response: that timer is the header timeout (slowloris).
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        keepalive_timeout=args.header_timeout,
        access_log_class=AccessLogger,
        access_log=logging.getLogger(ACCESS_LOGGER),
        reuse_port=True if worker else None,
    )
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """`--workers N`: this process supervises N `serve` processes on the same port."""
    from .server.embedded import EmbeddedValkey
    from .server.workers import Supervisor, check_port
    from .service import embedded_memory
    from .store.connection import redact_url

    if args.port == 0:
        raise ServerError("--workers needs a fixed --port: each worker would pick its own")
    check_port(args.host, args.port)
    command = [
        sys.executable,
        "-m",
        "router",
        "serve",
        f"--config={args.config}",
        f"--host={args.host}",
        f"--port={args.port}",
        f"--header-timeout={args.header_timeout}",
        f"--body-timeout={args.body_timeout}",
        f"--max-body-kib={args.max_body_kib}",
        f"--log-format={args.log_format}",
        f"--log-level={args.log_level}",
        f"--ready-memory={args.ready_memory}",
        f"--worker-of-parent={os.getpid()}",
    ]
    url = args.redis_url or os.environ.get("SWITCHBOARD_REDIS_URL") or None
    embedded = None
    if url is None:
        embedded = EmbeddedValkey(
            Path(args.data_dir),
            appendfsync=args.appendfsync,
            extra_config=embedded_memory(args.maxmemory_mb),
        )

    def announce(url: str) -> None:
        base = f"http://{args.host}:{args.port}"
        print(
            f"Switchboard listening on {base} with {args.workers} workers  "
            f"(API: {base}/v1/, health: /healthz; redis: {redact_url(url)})",
            flush=True,
        )

    supervisor = Supervisor(
        command,
        args.workers,
        redis_url=url,
        embedded=embedded,
        stop_timeout_s=SHUTDOWN_TIMEOUT_S + 15,
        on_started=announce,
    )
    return supervisor.run()


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    for tid, tenant in config.tenants.items():
        print(
            f"{args.file}: ok: tenant {tid}: {len(tenant.pools)} pools, {len(tenant.queues)} queues"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m router", description="Switchboard")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", default="config/demo.toml")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--redis-url",
        default=None,
        help="use this server instead of the embedded one (or set SWITCHBOARD_REDIS_URL)",
    )
    serve.add_argument("--data-dir", default="var/valkey", help="embedded server's data directory")
    serve.add_argument("--appendfsync", choices=["everysec", "always", "no"], default="everysec")
    serve.add_argument(
        "--maxmemory-mb",
        type=_bounded_int(0, 1 << 30),
        default=0,
        metavar="MB",
        help="the embedded server's memory limit (noeviction); 0 = none (default)",
    )
    serve.add_argument(
        "--ready-memory",
        type=_ratio,
        default=0.9,
        metavar="R",
        help="/readyz fails once redis uses this share of its memory limit (default 0.9)",
    )
    serve.add_argument(
        "--workers",
        type=_bounded_int(1, 256),
        default=1,
        help="server processes sharing the port (SO_REUSEPORT), supervised by this one",
    )
    serve.add_argument(
        "--smtp-port",
        type=_bounded_int(0, 65535),
        default=None,
        metavar="P",
        help="also take email over SMTP on this port (see --lmtp, --smtp-tenant)",
    )
    serve.add_argument("--lmtp", action="store_true", help="speak LMTP instead of SMTP")
    serve.add_argument(
        "--smtp-tenant", default=None, help="the tenant mail is for (default: the only one)"
    )
    serve.add_argument(
        "--max-body-kib",
        type=_bounded_int(1, 64 * 1024),
        default=256,
        metavar="KIB",
        help="larger request bodies get 413 (default 256)",
    )
    serve.add_argument(
        "--header-timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="close a connection whose request head is not complete after S seconds, "
        "counted from its opening or its previous response (so also the keep-alive idle time)",
    )
    serve.add_argument(
        "--body-timeout",
        type=_seconds,
        default=DEFAULT_BODY_TIMEOUT_S,
        metavar="S",
        help="answer 408 to a request whose body has not arrived after S seconds",
    )
    serve.add_argument(
        "--log-format",
        type=_choice(LOG_FORMATS, "log format"),
        default=os.environ.get("SWITCHBOARD_LOG_FORMAT") or "text",
        metavar="{text,json}",
        help="json: one object per line (or set SWITCHBOARD_LOG_FORMAT)",
    )
    serve.add_argument(
        "--log-level",
        type=_choice(LOG_LEVELS, "log level"),
        default=os.environ.get("SWITCHBOARD_LOG_LEVEL") or "info",
        metavar="{" + ",".join(LOG_LEVELS) + "}",
        help="or set SWITCHBOARD_LOG_LEVEL",
    )
    # the parent of a --workers group passes its pid to each worker it starts
    serve.add_argument("--worker-of-parent", type=int, default=None, help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=_check_config)
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "log_format", "text"), getattr(args, "log_level", "info"))
    try:
        code: int = args.func(args)
        return code
    except SwitchboardError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
