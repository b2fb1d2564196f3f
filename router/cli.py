"""Command line: `python -m router serve | check-config`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from .config import load_config
from .errors import SwitchboardError


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .api.app import build_api
    from .service import Service, ServiceOptions, describe

    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        pass
    config = load_config(args.config)
    options = ServiceOptions(
        redis_url=args.redis_url or os.environ.get("SWITCHBOARD_REDIS_URL") or None,
        data_dir=Path(args.data_dir),
        appendfsync=args.appendfsync,
        config_path=Path(args.config),
    )
    service = Service(config, options)
    app = build_api(service, reload_on_sighup=True)

    async def announce(app: web.Application) -> None:
        print(describe(service, args.host, args.port), flush=True)

    app.on_startup.append(announce)
    # aiohttp handles SIGINT/SIGTERM: in-flight requests finish, then on_cleanup
    # stops the timers and the embedded server.
    web.run_app(app, host=args.host, port=args.port, print=None, shutdown_timeout=10)
    return 0


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
    serve.set_defaults(func=_serve)
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=_check_config)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        code: int = args.func(args)
        return code
    except SwitchboardError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
