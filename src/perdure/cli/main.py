"""Entry point of the `perdure` command: global options and the command registry."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from perdure import __version__
from perdure.cli.render import CliError, show_error

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from perdure.cli import deployments, explain, invocations, invoke, server, services
    from perdure.cli.api import add_connection_options

    parser = argparse.ArgumentParser(
        prog="perdure",
        description="Durable execution in Python, wire-compatible with Restate.",
    )
    parser.add_argument("--version", action="version", version=f"perdure {__version__}")
    add_connection_options(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    server.register(commands)
    deployments.register(commands)
    services.register(commands)
    invocations.register(commands)
    invoke.register(commands)
    explain.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    run: Command | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return run(args)
    except CliError as error:
        return show_error(error)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (`| head`) went away: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
