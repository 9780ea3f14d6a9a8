"""The server's one frozen Config: flags > environment > TOML file > defaults, all validated.

Every setting has one row in `SETTINGS`: its Config field, its flag, its environment variable,
its TOML key and its parser. A value that cannot be used is refused at start with a
`ConfigError` naming where it came from (flag, variable or file), what was given and what is
accepted, so a typo fails when the server starts, not at 3 a.m.

A TOML file may use the flat keys or group them in tables, which are joined with "-":

    ingress-bind = "127.0.0.1:8080"
    max-body-size = "10MiB"
    [retry]
    initial-interval = "500ms"
    max-attempts = "unlimited"
    [retention]
    journal = "1d"
"""

from __future__ import annotations

import hmac
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from perdure.server.config_text import (
    DURATION_EXAMPLES,
    parse_bind,
    parse_duration_ms,
    parse_size,
)
from perdure.server.registry import Defaults, RetryPolicy

# Requests larger than this are refused with 413 before they are read whole. 10 MiB is
# Restate's order of magnitude for ingress payloads and far above typical JSON inputs; raise it
# with --max-body-size for services that take files.
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
# A larger limit would let one request pin that much memory while it is read.
MAX_BODY_LIMIT = 1024 * 1024 * 1024

_DEFAULT_RETRY = RetryPolicy()
_DEFAULTS = Defaults()

CONFIG_FILE_ENV = "PERDURE_CONFIG"


# A bearer token shorter than this is refused: it could be guessed. 16 characters of
# `secrets.token_urlsafe` carry 96 bits.
MIN_TOKEN_LENGTH = 16
# Long enough for any generated token or JWT, short enough that it fits a request header.
MAX_TOKEN_LENGTH = 4096
TOKEN_EXAMPLE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class ConfigError(ValueError):
    """A setting has a value Perdure cannot use; the message says which, why, and the fix."""


class Secret:
    """A bearer token: never shown by repr/str, compared in constant time.

    >>> token = Secret("correct-horse-battery-staple")
    >>> token, str(token)
    (Secret('********'), '********')
    >>> token.matches(b"correct-horse-battery-staple"), token.matches(b"guess")
    (True, False)
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value.encode("ascii")

    def matches(self, candidate: bytes) -> bool:
        """Whether `candidate` is this token, in time that does not depend on where they differ."""
        return hmac.compare_digest(candidate, self._value)

    def reveal(self) -> str:
        """The token itself, for the one place that must send it (a client's header)."""
        return self._value.decode("ascii")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.matches(other._value)

    def __hash__(self) -> int:
        return hash(Secret)  # equal secrets hash alike without the hash depending on the value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything `perdure server` can be told. Build it with `load`, not by hand.

    >>> Config().ingress_bind
    ('127.0.0.1', 8080)
    """

    ingress_bind: tuple[str, int] = ("127.0.0.1", 8080)
    admin_bind: tuple[str, int] = ("127.0.0.1", 9070)
    data_dir: Path = Path("perdure-data")
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retry_initial_interval_ms: int = _DEFAULT_RETRY.initial_interval_ms
    retry_factor: float = _DEFAULT_RETRY.factor
    retry_max_interval_ms: int = _DEFAULT_RETRY.max_interval_ms
    retry_max_attempts: int | None = _DEFAULT_RETRY.max_attempts
    retry_on_max_attempts: str = _DEFAULT_RETRY.on_max_attempts
    journal_retention_ms: int = _DEFAULTS.journal_retention_ms
    idempotency_retention_ms: int = _DEFAULTS.idempotency_retention_ms
    workflow_retention_ms: int = _DEFAULTS.workflow_completion_retention_ms
    inactivity_timeout_ms: int = _DEFAULTS.inactivity_timeout_ms
    abort_timeout_ms: int = _DEFAULTS.abort_timeout_ms
    # At most this many attempts open at once; the rest wait, shown as `ready` (None: no limit).
    invoker_concurrency_limit: int | None = None
    log_level: str = "info"
    # The Ed25519 key (PKCS#8 PEM) that signs requests to deployments (Restate's request
    # identity); None: the data directory's own key, created on the first start.
    request_identity_private_key: Path | None = None
    # Bearer tokens: when set, every request to that API must carry `Authorization: Bearer
    # <token>` (health checks excepted). A *_file setting names a file holding the token, so
    # the secret need not appear in argv or the environment; `load` reads it into the token.
    ingress_token: Secret | None = None
    ingress_token_file: Path | None = None
    admin_token: Secret | None = None
    admin_token_file: Path | None = None

    def registry_defaults(self) -> Defaults:
        """The server-wide defaults the registry applies under each manifest's own options."""
        return Defaults(
            retry=RetryPolicy(
                initial_interval_ms=self.retry_initial_interval_ms,
                factor=self.retry_factor,
                max_interval_ms=self.retry_max_interval_ms,
                max_attempts=self.retry_max_attempts,
                on_max_attempts=self.retry_on_max_attempts,
            ),
            journal_retention_ms=self.journal_retention_ms,
            idempotency_retention_ms=self.idempotency_retention_ms,
            workflow_completion_retention_ms=self.workflow_retention_ms,
            inactivity_timeout_ms=self.inactivity_timeout_ms,
            abort_timeout_ms=self.abort_timeout_ms,
        )


# --- value parsers: (raw value, where it came from) -> value ---------------------------------

Parser = Callable[[Any], Any]


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a string, got {value!r}")
    return str(value)


def _bind(value: Any) -> tuple[str, int]:
    return parse_bind(_text(value))


def _duration(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value == 0:
            return 0
        raise ValueError(f"{value!r} has no unit; write e.g. '{value}ms' or '{value}s'")
    try:
        return parse_duration_ms(_text(value))
    except ValueError as exc:
        raise ValueError(
            f"'{value}' is not a duration ({exc}); write e.g. {DURATION_EXAMPLES}"
        ) from None


def _positive_duration(value: Any) -> int:
    ms = _duration(value)
    if ms <= 0:
        raise ValueError(f"must be longer than zero, got '{value}'")
    return ms


def _body_size(value: Any) -> int:
    size = value if isinstance(value, int) and not isinstance(value, bool) else None
    if size is None:
        try:
            size = parse_size(_text(value))
        except ValueError:
            raise ValueError(
                f"'{value}' is not a size; write e.g. 10MiB, 512KiB or 1048576"
            ) from None
    if not 1024 <= size <= MAX_BODY_LIMIT:
        raise ValueError(f"must be between 1KiB and 1GiB, got {value!r}")
    return size


def _factor(value: Any) -> float:
    try:
        factor = float(_text(value))
    except ValueError:
        raise ValueError(f"'{value}' is not a number") from None
    if not 1.0 <= factor <= 100.0:
        raise ValueError(f"must be from 1.0 to 100.0, got {factor}")
    return factor


def _count_or_unlimited(value: Any) -> int | None:
    text = _text(value).strip().lower()
    if text in ("unlimited", "infinite", "none"):
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"must be a whole number of at least 1, or 'unlimited'; got '{value}'")
    return int(text)


def _choice(*allowed: str, aliases: Mapping[str, str] | None = None) -> Parser:
    def parse(value: Any) -> str:
        text = _text(value).strip().lower()
        text = (aliases or {}).get(text, text)
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}; got '{value}'")
        return text

    return parse


def _path(value: Any) -> Path:
    text = _text(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return Path(text).expanduser()


def check_token(text: str) -> None:
    """Raises ValueError if `text` cannot be a bearer token; the message never quotes it.

    >>> check_token("short")
    Traceback (most recent call last):
    ...
    ValueError: the token is 5 characters long; use at least 16 ...
    """
    if len(text) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the token is {len(text)} characters long; use at least {MIN_TOKEN_LENGTH} "
            f"(make one with {TOKEN_EXAMPLE})"
        )
    if len(text) > MAX_TOKEN_LENGTH:
        raise ValueError(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
    for position, char in enumerate(text, 1):
        if not "!" <= char <= "~":
            raise ValueError(
                f"the token has a space, a control or a non-ASCII character at position "
                f"{position}; use printable ASCII only, as HTTP headers carry it "
                f"(make one with {TOKEN_EXAMPLE})"
            )


def _token(value: Any) -> Secret:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    check_token(value.strip())
    return Secret(value.strip())


@dataclass(frozen=True, slots=True)
class Setting:
    field: str
    key: str  # the flag without "--" and the TOML key
    env: str
    parse: Parser
    doc: str

    @property
    def flag(self) -> str:
        return "--" + self.key


SETTINGS: tuple[Setting, ...] = (
    Setting("ingress_bind", "ingress-bind", "PERDURE_INGRESS_BIND", _bind, "ingress HOST:PORT"),
    Setting("admin_bind", "admin-bind", "PERDURE_ADMIN_BIND", _bind, "admin API HOST:PORT"),
    Setting("data_dir", "data-dir", "PERDURE_DATA_DIR", _path, "where the database lives"),
    Setting(
        "max_body_bytes", "max-body-size", "PERDURE_MAX_BODY_SIZE", _body_size, "request limit"
    ),
    Setting(
        "retry_initial_interval_ms",
        "retry-initial-interval",
        "PERDURE_RETRY_INITIAL_INTERVAL",
        _positive_duration,
        "first wait between attempts",
    ),
    Setting("retry_factor", "retry-factor", "PERDURE_RETRY_FACTOR", _factor, "backoff growth"),
    Setting(
        "retry_max_interval_ms",
        "retry-max-interval",
        "PERDURE_RETRY_MAX_INTERVAL",
        _positive_duration,
        "longest wait between attempts",
    ),
    Setting(
        "retry_max_attempts",
        "retry-max-attempts",
        "PERDURE_RETRY_MAX_ATTEMPTS",
        _count_or_unlimited,
        "attempts before giving up ('unlimited' allowed)",
    ),
    Setting(
        "retry_on_max_attempts",
        "retry-on-max-attempts",
        "PERDURE_RETRY_ON_MAX_ATTEMPTS",
        _choice("pause", "kill"),
        "what happens when attempts run out",
    ),
    Setting(
        "journal_retention_ms",
        "retention-journal",
        "PERDURE_JOURNAL_RETENTION",
        _duration,
        "how long completed journals are kept",
    ),
    Setting(
        "idempotency_retention_ms",
        "retention-idempotency",
        "PERDURE_IDEMPOTENCY_RETENTION",
        _duration,
        "how long idempotency keys are remembered",
    ),
    Setting(
        "workflow_retention_ms",
        "retention-workflow",
        "PERDURE_WORKFLOW_RETENTION",
        _duration,
        "how long completed workflows are kept",
    ),
    Setting(
        "inactivity_timeout_ms",
        "inactivity-timeout",
        "PERDURE_INACTIVITY_TIMEOUT",
        _duration,  # 0 is Restate's "always suspend" mode, used by its SDK test suite
        "silence before an attempt is asked to suspend (0s: at once)",
    ),
    Setting(
        "abort_timeout_ms",
        "abort-timeout",
        "PERDURE_ABORT_TIMEOUT",
        _positive_duration,
        "wait after that before the attempt is aborted",
    ),
    Setting(
        "invoker_concurrency_limit",
        "invoker-concurrency-limit",
        "PERDURE_INVOKER_CONCURRENCY_LIMIT",
        _count_or_unlimited,
        "attempts open at once; the others wait as 'ready' (default: unlimited)",
    ),
    Setting(
        "log_level",
        "log-level",
        "PERDURE_LOG_LEVEL",
        _choice("debug", "info", "warning", "error", aliases={"warn": "warning", "trace": "debug"}),
        "debug, info, warning or error",
    ),
    Setting(
        "request_identity_private_key",
        "request-identity-private-key",
        "PERDURE_REQUEST_IDENTITY_PRIVATE_KEY",
        _path,
        "Ed25519 private key (PKCS#8 PEM) that signs requests to deployments "
        "(default: request-identity.pem in the data directory, created on first start)",
    ),
    Setting(
        "ingress_token",
        "ingress-token",
        "PERDURE_INGRESS_TOKEN",
        _token,
        "bearer token every ingress request must carry (default: none, the ingress is open)",
    ),
    Setting(
        "ingress_token_file",
        "ingress-token-file",
        "PERDURE_INGRESS_TOKEN_FILE",
        _path,
        "file holding the ingress token (keeps it out of argv and the environment)",
    ),
    Setting(
        "admin_token",
        "admin-token",
        "PERDURE_ADMIN_TOKEN",
        _token,
        "bearer token every admin API request must carry (default: none, the API is open)",
    ),
    Setting(
        "admin_token_file",
        "admin-token-file",
        "PERDURE_ADMIN_TOKEN_FILE",
        _path,
        "file holding the admin token",
    ),
)

_BY_NAME: dict[str, Setting] = {}
for _setting in SETTINGS:
    _BY_NAME[_setting.field] = _setting
    _BY_NAME[_setting.key.replace("-", "_")] = _setting

ENV_VARS = {s.field: s.env for s in SETTINGS}


def _apply(setting: Setting, raw: Any, source: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}-{key}" if prefix else key
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


# TOML tables read naturally with these shorter names inside them.
_TOML_ALIASES = {
    "timeouts-inactivity": "inactivity-timeout",
    "timeouts-abort": "abort-timeout",
}


def _from_file(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file {path}: {exc.strerror or exc}; check the path given "
            f"to --config (or {CONFIG_FILE_ENV})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, raw in _flatten(document).items():
        name = _TOML_ALIASES.get(key.replace("_", "-"), key.replace("_", "-"))
        setting = _BY_NAME.get(name.replace("-", "_"))
        if setting is None:
            known = ", ".join(s.key for s in SETTINGS)
            raise ConfigError(f"{path}: unknown setting '{key}'; the settings are: {known}")
        values[setting.field] = _apply(setting, raw, f"{path}: {key}")
    return values


def load(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Config:
    """The Config from `flags` (None values are "not given") over `env` over the TOML file.

    The file is `config_file`, else the file named by PERDURE_CONFIG, else none.

    >>> load({"ingress_bind": "127.0.0.1:0"}, env={}).ingress_bind
    ('127.0.0.1', 0)
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    file = config_file if config_file is not None else env.get(CONFIG_FILE_ENV) or None
    if file is not None:
        values.update(_from_file(Path(file)))
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw is not None and raw.strip() != "":
            values[setting.field] = _apply(setting, raw, setting.env)
    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        named = _BY_NAME.get(name.replace("-", "_").lstrip("_"))
        if named is None:
            raise ConfigError(f"unknown setting '{name}'")
        values[named.field] = _apply(named, raw, named.flag)
    config = _read_token_files(replace(Config(), **values))
    _check_together(config)
    return config


def _read_token_files(config: Config) -> Config:
    """Each *_token_file read into its token; given both ways, the token is ambiguous."""
    for which in ("ingress", "admin"):
        token_setting = _BY_NAME[f"{which}_token"]
        file_setting = _BY_NAME[f"{which}_token_file"]
        path: Path | None = getattr(config, file_setting.field)
        if path is None:
            continue
        if getattr(config, token_setting.field) is not None:
            raise ConfigError(
                f"the {which} token is given twice, as a value ({token_setting.flag} / "
                f"{token_setting.env}) and as a file ({file_setting.flag} / {file_setting.env}); "
                "keep one"
            )
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not ASCII text"
            raise ConfigError(
                f"cannot read the {which} token from {path} ({reason or exc}); fix "
                f"{file_setting.flag} / {file_setting.env}"
            ) from None
        try:
            check_token(text)
        except ValueError as exc:
            raise ConfigError(f"{path} ({file_setting.flag}): {exc}") from None
        values: dict[str, Any] = {token_setting.field: Secret(text)}
        config = replace(config, **values)
    return config


def _check_together(config: Config) -> None:
    """Rules that involve several settings, checked on the final values."""
    ingress, admin = config.ingress_bind, config.admin_bind
    if ingress == admin and ingress[1] != 0:
        raise ConfigError(
            f"the ingress and the admin API both bind {ingress[0]}:{ingress[1]}; give one of them "
            "another port with --ingress-bind / PERDURE_INGRESS_BIND or --admin-bind / "
            "PERDURE_ADMIN_BIND"
        )
    if config.retry_max_interval_ms < config.retry_initial_interval_ms:
        raise ConfigError(
            f"the retry max interval ({config.retry_max_interval_ms} ms) is shorter than the "
            f"initial interval ({config.retry_initial_interval_ms} ms); raise "
            "--retry-max-interval or lower --retry-initial-interval"
        )
    if config.data_dir.exists() and not config.data_dir.is_dir():
        raise ConfigError(
            f"the data directory {config.data_dir} is a file; point --data-dir / "
            "PERDURE_DATA_DIR at a directory (it is created if missing)"
        )
    if config.ingress_token is not None and config.ingress_token == config.admin_token:
        # One token for both would let anyone allowed to call handlers administer the server.
        raise ConfigError(
            "the ingress token and the admin token are the same; give the admin API a token of "
            f"its own (make one with {TOKEN_EXAMPLE})"
        )
    key = config.request_identity_private_key
    if key is not None and not key.is_file():
        raise ConfigError(
            f"the request identity key {key} does not exist; fix --request-identity-private-key "
            "/ PERDURE_REQUEST_IDENTITY_PRIVATE_KEY or leave it unset"
        )


def unknown_env_vars(env: Mapping[str, str] | None = None) -> list[str]:
    """PERDURE_* variables no setting reads: likely typos, worth a warning at start."""
    env = os.environ if env is None else env
    known = {s.env for s in SETTINGS} | {CONFIG_FILE_ENV}
    return sorted(k for k in env if k.startswith("PERDURE_") and k not in known)


def describe() -> list[tuple[str, str, str, str]]:
    """(flag, environment variable, default, what it does) for every setting, for --help."""
    defaults = Config()
    rows = []
    for setting in SETTINGS:
        default = getattr(defaults, setting.field)
        rows.append((setting.flag, setting.env, str(default), setting.doc))
    return rows


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ENV_VARS",
    "MIN_TOKEN_LENGTH",
    "SETTINGS",
    "Config",
    "ConfigError",
    "Secret",
    "check_token",
    "load",
    "parse_bind",
    "parse_duration_ms",
    "parse_size",
    "unknown_env_vars",
]

assert {s.field for s in SETTINGS} == {f.name for f in fields(Config)}
