"""Entry point of the `perdure` command: global options and the command registry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from perdure import __version__

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from perdure.cli import server

    parser = argparse.ArgumentParser(
        prog="perdure",
        description="Durable execution in Python, wire-compatible with Restate.",
    )
    parser.add_argument("--version", action="version", version=f"perdure {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    server.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    run: Command | None = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
