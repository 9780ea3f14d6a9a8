"""Text forms of durations, sizes and listen addresses, as operators write them.

Pure functions (text in, value or ValueError out) used by the config loader and by the ingress
(`?delay=`). Durations take ISO 8601 (`PT10S`), friendly (`500ms`, `1h 30m`, `2 days`) and
clock (`01:30:00`) forms.
"""

from __future__ import annotations

import re

_UNIT_NS = {
    "w": 7 * 86_400 * 10**9,
    "d": 86_400 * 10**9,
    "h": 3_600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "ns": 1,
}
_UNIT_NAMES = {
    "w": ("w", "wk", "wks", "week", "weeks"),
    "d": ("d", "day", "days"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "s": ("s", "sec", "secs", "second", "seconds"),
    "ms": ("ms", "msec", "msecs", "millisecond", "milliseconds"),
    "us": ("us", "µs", "μs", "usec", "usecs", "microsecond", "microseconds"),
    "ns": ("ns", "nsec", "nsecs", "nanosecond", "nanoseconds"),
}
_UNIT_OF = {name: unit for unit, names in _UNIT_NAMES.items() for name in names}
_CALENDAR = ("y", "yr", "yrs", "year", "years", "mo", "mos", "month", "months")
_FRIENDLY_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zµμ]+)\s*,?\s*", re.IGNORECASE)
_HMS = re.compile(r"(\d+):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_ISO = re.compile(
    r"P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<mo>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:[.,]\d+)?)S)?)?",
    re.IGNORECASE,
)
DURATION_EXAMPLES = "PT10S, P1DT2H, 500ms, 10s, 1h 30m, 2 days or 01:30:00"


def parse_duration_ms(text: str) -> int:
    """A duration as Restate accepts it (jiff's ISO 8601 and friendly formats), in ms.

    Days are 24 hours and weeks 7 days; years and months are refused (their length varies),
    and so are negative durations. Raises ValueError with the reason.

    >>> parse_duration_ms("PT1S"), parse_duration_ms("1h 30m"), parse_duration_ms("60 sec")
    (1000, 5400000, 60000)
    """
    value = text.strip()
    if value == "0":
        return 0
    if value.startswith("-") or value.lower().endswith(" ago"):
        raise ValueError("negative durations are not allowed")
    if value[:1] in ("P", "p", "+"):
        return _iso_ms(value.lstrip("+"))
    total_ns = 0
    rest = value
    hms = None
    pos = 0
    while pos < len(rest):
        match = _FRIENDLY_PART.match(rest, pos)
        if match is None:
            hms = _HMS.fullmatch(rest, pos)
            if hms is None:
                if re.fullmatch(r"\d+(\.\d+)?", rest[pos:].strip()):
                    raise ValueError(f"'{rest[pos:]}' has no unit (e.g. {rest[pos:]}s)")
                raise ValueError(f"cannot read '{rest[pos:]}' as a duration")
            break
        unit_name = match.group(2).lower()
        if unit_name in _CALENDAR:
            raise ValueError("use units of weeks or smaller (months and years vary in length)")
        unit = _UNIT_OF.get(unit_name)
        if unit is None:
            raise ValueError(f"unknown unit '{match.group(2)}'")
        amount = float(match.group(1))
        if amount == float("inf"):
            raise ValueError(f"'{match.group(1)[:20]}...' is too large a number")
        total_ns += round(amount * _UNIT_NS[unit])
        pos = match.end()
    if hms is not None:
        hours, minutes, seconds, fraction = hms.groups()
        if int(minutes) > 59 or int(seconds) > 59:
            raise ValueError(f"'{hms.group(0)}' is not a valid HH:MM:SS time")
        total_ns += (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * 10**9
        if fraction:
            total_ns += int(fraction.ljust(9, "0"))
    elif pos == 0:
        raise ValueError("empty duration")
    return total_ns // 10**6


def _iso_ms(value: str) -> int:
    match = _ISO.fullmatch(value)
    if match is None or value.upper() in ("P", "PT") or value.upper().endswith("T"):
        raise ValueError(f"'{value}' is not an ISO 8601 duration")
    parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v}
    if any(v == float("inf") for v in parts.values()):
        raise ValueError(f"'{value[:20]}...' has too large a number")
    if parts.get("y") or parts.get("mo"):
        raise ValueError("use units of weeks or smaller (months and years vary in length)")
    seconds = (
        parts.get("w", 0) * 7 * 86_400
        + parts.get("d", 0) * 86_400
        + parts.get("h", 0) * 3_600
        + parts.get("m", 0) * 60
        + parts.get("s", 0)
    )
    return round(seconds * 1000)


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_size(text: str) -> int:
    """A byte count: 1048576, 512KiB, 10MiB, 1MB (decimal), 1GiB. Raises ValueError.

    >>> parse_size("10MiB")
    10485760
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"'{text}' is not a size")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def parse_bind(text: str) -> tuple[str, int]:
    """'HOST:PORT', '[IPv6]:PORT' or a bare 'PORT' (on 127.0.0.1). Raises ValueError.

    >>> parse_bind("0.0.0.0:8080"), parse_bind("[::1]:0"), parse_bind("9070")
    (('0.0.0.0', 8080), ('::1', 0), ('127.0.0.1', 9070))
    """
    value = text.strip()
    if value.isdigit():
        host, port = "127.0.0.1", value
    else:
        host, sep, port = value.rpartition(":")
        if not sep or not host:
            raise ValueError(f"'{text}' is not HOST:PORT (for example 127.0.0.1:8080)")
        if host.startswith("["):
            if not host.endswith("]"):
                raise ValueError(f"'{text}': an IPv6 host is written in brackets, [::1]:8080")
            host = host[1:-1]
        elif ":" in host:
            raise ValueError(f"'{text}': write an IPv6 host in brackets, [::1]:8080")
    if not port.isdigit() or not 0 <= int(port) <= 65_535:
        raise ValueError(f"'{text}': the port must be a number from 0 to 65535")
    return host, int(port)
