"""The only module of the operator commands that prints: tables, JSON, errors with hints.

Everything here but `show`, `show_json` and `show_error` is pure (values in, strings out), so
the shape of every screen is unit-tested without a terminal.

>>> print(table(["ID", "STATUS"], [["inv_1", "running"], ["inv_22", "completed"]]))
ID      STATUS
inv_1   running
inv_22  completed
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

# Exit codes of every operator command.
EXIT_OK = 0
EXIT_FAILED = 1  # the server refused the request, or the invocation failed
EXIT_USAGE = 2  # bad arguments (argparse uses 2 as well)
EXIT_UNREACHABLE = 3  # no server answered at the URL

# A cell longer than this is cut with an ellipsis: tables stay one line per row.
MAX_CELL = 60


class CliError(Exception):
    """A failure the user sees as one sentence, a hint naming the fix, and an exit code.

    >>> str(CliError("Service 'X' not found.", hint="Register it."))
    "Service 'X' not found."
    """

    def __init__(
        self, message: str, *, hint: str = "", exit_code: int = EXIT_FAILED, status: int = 0
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        self.status = status  # the HTTP status the server answered, 0 when none


# --- pure formatting ---------------------------------------------------------------------------


def cut(text: str, width: int = MAX_CELL) -> str:
    """One line of at most `width` characters.

    >>> cut("a\\nb"), cut("x" * 10, 5)
    ('a b', 'xxxx…')
    """
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; `None` shows as '-'."""
    cells = [[cut("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [list(headers), *cells]
    ]
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """'name: value' lines with the values aligned; pairs whose value is None are left out.

    >>> print(fields([("id", "dp_1"), ("uri", "http://x"), ("gone", None)]))
    id:  dp_1
    uri: http://x
    """
    shown = [(k, v) for k, v in pairs if v is not None]
    width = max((len(k) for k, _ in shown), default=0) + 2
    return "\n".join(f"{(k + ':').ljust(width)}{v}" for k, v in shown)


_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def duration(ms: int) -> str:
    """A duration in the two largest units that matter.

    >>> duration(93_000), duration(450), duration(0), duration(90_061_000)
    ('1m 33s', '450ms', '0s', '1d 1h')
    """
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].endswith("ms"):
        parts.pop()
    return " ".join(parts)


def parse_timestamp(text: str | None) -> int | None:
    """The admin API's RFC 3339 times as milliseconds since the epoch (None stays None).

    >>> parse_timestamp("1970-01-01T00:00:01.500Z")
    1500
    """
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return round(moment.timestamp() * 1000)


def relative(ms: int | None, now_ms: int) -> str:
    """A moment relative to now: 'in 3s', '2m 5s ago', 'now'.

    >>> relative(5_000, 2_000), relative(0, 125_000), relative(1_000, 1_200)
    ('in 3s', '2m 5s ago', 'now')
    """
    if ms is None:
        return "-"
    delta = ms - now_ms
    if abs(delta) < 1000:
        return "now"
    return f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"


def when(text: str | None, now_ms: int) -> str:
    """An API timestamp as 'HH:MM:SS (in 3s)'; the date is shown only when it is not today.

    >>> when("1970-01-01T00:00:05.000Z", 2_000)
    '00:00:05 UTC (in 3s)'
    """
    ms = parse_timestamp(text)
    if ms is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    today = datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC).date()
    shown = moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M:%S")
    return f"{shown} UTC ({relative(ms, now_ms)})"


def error_text(error: CliError) -> str:
    """An error as the user reads it on stderr.

    >>> error_text(CliError("No server.", hint="Start one."))
    'error: No server.\\n  hint: Start one.'
    """
    text = f"error: {error.message}"
    if error.hint:
        text += f"\n  hint: {error.hint}"
    return text


def json_text(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False)


# --- printing ------------------------------------------------------------------------------------


def show(text: str, stream: TextIO | None = None) -> None:
    """Print a screen (a table, fields, a diagnosis) to stdout."""
    print(text, file=stream or sys.stdout)


def show_json(document: Any, stream: TextIO | None = None) -> None:
    """Print a document as indented JSON: the `--json` output of every read command."""
    print(json_text(document), file=stream or sys.stdout)


def show_error(error: CliError, stream: TextIO | None = None) -> int:
    """Print an error with its hint to stderr; answer the exit code to use."""
    print(error_text(error), file=stream or sys.stderr)
    return error.exit_code


def now_ms() -> int:
    return int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
