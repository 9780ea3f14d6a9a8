"""`perdure server` (the server alone) and `perdure dev FILE` (server and services in one process).

Every server flag comes from `perdure.server.config.SETTINGS`, so a setting has one flag, one
environment variable and one TOML key, and `--help` lists them all.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import signal
import socket
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import ModuleType
from typing import Any

from perdure.server.config import SETTINGS, Config, ConfigError, load, unknown_env_vars

log = logging.getLogger("perdure.cli")

# `perdure dev` serves the services here when the port is free: a stable address keeps the
# deployment registered across restarts, so invocations in flight resume on the new process.
DEFAULT_SERVICE_PORT = 9080


def register(commands: Any) -> None:
    server = commands.add_parser(
        "server",
        help="run the Perdure server (ingress, admin API, durable storage)",
        description="Run the Perdure server: Restate's ingress API, admin API and service "
        "protocol, with invocations, journals and state in SQLite.",
    )
    _add_settings(server)
    server.set_defaults(run=run_server)

    dev = commands.add_parser(
        "dev",
        help="run a server and the services of FILE in one process, registered and ready",
        description="Embedded mode: start a Perdure server, serve the services defined in FILE "
        "next to it, register them, and print the requests to try.",
    )
    dev.add_argument("file", type=Path, help="a Python file defining perdure services")
    dev.add_argument(
        "--service-port",
        type=int,
        default=DEFAULT_SERVICE_PORT,
        help=f"port of the services' endpoint (default {DEFAULT_SERVICE_PORT}, else a free one)",
    )
    _add_settings(dev)
    dev.set_defaults(run=run_dev)


def _add_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML file with settings")
    group = parser.add_argument_group("settings (flag > environment variable > file > default)")
    for setting in SETTINGS:
        group.add_argument(
            setting.flag,
            dest=setting.field,
            metavar="VALUE",
            default=None,
            help=f"{setting.doc} [{setting.env}]",
        )


def _config(args: argparse.Namespace) -> Config:
    flags = {s.field: getattr(args, s.field, None) for s in SETTINGS}
    return load(flags, config_file=args.config)


def _setup_logging(config: Config) -> None:
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # At debug level these print every header they encode or decode: request-identity JWTs and
    # a deployment's credentials (additional_headers) would end up in the log.
    for name in ("hpack", "h2", "hypercorn.error", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger(name).level))
    for name in unknown_env_vars():
        log.warning("environment variable %s is not a Perdure setting (typo?)", name)
    _warn_exposure(config)


_LOOPBACK = ("127.", "::1", "localhost")


def _warn_exposure(config: Config) -> None:
    """Says which APIs need a token, and warns about an open API on a non-loopback address.

    Never logs a token: only whether one is set.
    """
    for name, bind, token, setting in (
        ("ingress", config.ingress_bind, config.ingress_token, "--ingress-token"),
        ("admin API", config.admin_bind, config.admin_token, "--admin-token"),
    ):
        if token is not None:
            log.info("the %s requires a bearer token", name)
        elif not bind[0].startswith(_LOOPBACK):
            log.warning(
                "the %s listens on %s without a token: anyone who can reach it can use it; "
                "set %s (see SECURITY.md)",
                name,
                bind[0],
                setting,
            )


def run_server(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"perdure server: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config)
    from perdure.server import http

    return http.run(_serve(config))


async def _serve(config: Config, after_ready: Callable[[Any], Any] | None = None) -> int:
    from perdure.server.app import DataDirectoryInUse, PerdureServer
    from perdure.server.http import BindError
    from perdure.server.identity import IdentityKeyError

    try:
        server = PerdureServer(config)
    except (DataDirectoryInUse, IdentityKeyError) as exc:
        print(f"perdure: {exc}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    ready = asyncio.Event()
    try:
        run = asyncio.create_task(server.run(lambda _bound: ready.set()))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            waiter.cancel()
            await run
            return 0
        if after_ready is not None:
            await after_ready(server)
        await run
    except BindError as exc:
        print(f"perdure: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


# --- perdure dev ---------------------------------------------------------------------------


def load_services(file: Path) -> list[Any]:
    """The service definitions of `file`: its `services` list, else every one it defines."""
    from perdure.sdk.service import Definition

    if not file.is_file():
        raise SystemExit(f"perdure dev: {file} does not exist")
    module = _import_file(file)
    declared = getattr(module, "services", None)
    if declared is not None:
        found = [d for d in declared if isinstance(d, Definition)]
    else:
        found = [v for v in vars(module).values() if isinstance(v, Definition)]
    if not found:
        raise SystemExit(
            f"perdure dev: {file} defines no services; create perdure.Service / VirtualObject / "
            "Workflow objects at module level (or list them in `services = [...]`)"
        )
    return found


def _import_file(file: Path) -> ModuleType:
    name = f"perdure_dev_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise SystemExit(f"perdure dev: cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(file.resolve().parent))
    spec.loader.exec_module(module)
    return module


def _service_port(host: str, wanted: int) -> int:
    """`wanted` if it can be bound on `host`, else a free port."""
    for port in (wanted, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise SystemExit(f"perdure dev: no free port on {host}")


def run_dev(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"perdure dev: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config)
    services = load_services(args.file)
    from perdure.server import http

    port = _service_port("127.0.0.1", args.service_port)
    return http.run(_serve(config, lambda server: _serve_services(server, services, port)))


async def _serve_services(server: Any, services: list[Any], port: int) -> None:
    import httpx

    from perdure.sdk.serving import serve_async

    endpoint = asyncio.create_task(
        serve_async(services, port=port, shutdown_trigger=server.wait_stopping)
    )
    uri = f"http://127.0.0.1:{port}"
    admin = "http://{}:{}".format(*server.bound.admin)
    ingress = "http://{}:{}".format(*server.bound.ingress)
    config = server.config
    auth = {}
    if config.admin_token is not None:
        auth["authorization"] = f"Bearer {config.admin_token.reveal()}"
    async with httpx.AsyncClient(timeout=10, headers=auth) as client:
        for _ in range(100):
            with suppress(httpx.TransportError):
                answer = await client.post(f"{admin}/deployments", json={"uri": uri, "force": True})
                break
            await asyncio.sleep(0.05)
        else:
            raise SystemExit(f"perdure dev: the services' endpoint {uri} did not start")
    if answer.status_code >= 300:
        server.stop()
        print(f"perdure dev: registering {uri} failed: {answer.text}", file=sys.stderr)
        await endpoint
        return
    print(_banner(services, ingress, admin, uri, config), flush=True)
    await endpoint


def _banner(
    services: list[Any], ingress: str, admin: str, uri: str, config: Config | None = None
) -> str:
    """What `perdure dev` prints once ready. With tokens set, the curl lines send them from
    the environment variables, never spelled out (the banner may end up in a log)."""
    ingress_auth = admin_auth = ""
    if config is not None and config.ingress_token is not None:
        ingress_auth = ' -H "Authorization: Bearer $PERDURE_INGRESS_TOKEN"'
    if config is not None and config.admin_token is not None:
        admin_auth = ' -H "Authorization: Bearer $PERDURE_ADMIN_TOKEN"'
    lines = [
        "",
        f"Perdure is running. Ingress {ingress}, admin {admin}, services at {uri}.",
        "Try:",
    ]
    for definition in services:
        for handler in definition:
            key = "/Ada" if definition.service_type != "SERVICE" else ""
            path = f"{ingress}/{definition.name}{key}/{handler.name}"
            data = " --json '\"Ada\"'" if handler.takes_input else ""
            lines.append(f"  curl{ingress_auth} {path}{data}")
    lines.append(f"Inspect: curl{admin_auth} {admin}/invocations   Stop: Ctrl-C")
    return "\n".join(lines)
