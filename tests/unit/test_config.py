"""Config: flags > environment > TOML file > defaults, and every bad value refused with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from perdure.server.config import (
    DEFAULT_MAX_BODY_BYTES,
    SETTINGS,
    Config,
    ConfigError,
    load,
    parse_bind,
    parse_duration_ms,
    parse_size,
    unknown_env_vars,
)
from perdure.server.registry import Defaults, RetryPolicy


def test_defaults() -> None:
    config = load(env={})
    assert config == Config()
    assert config.ingress_bind == ("127.0.0.1", 8080)
    assert config.admin_bind == ("127.0.0.1", 9070)
    assert config.data_dir == Path("perdure-data")
    assert config.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 10 * 1024 * 1024
    assert config.log_level == "info" and config.request_identity_private_key is None
    assert config.registry_defaults() == Defaults()


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    file = tmp_path / "perdure.toml"
    file.write_text(
        'ingress-bind = "127.0.0.1:1001"\nadmin-bind = "127.0.0.1:2001"\n'
        'data-dir = "from-file"\nlog-level = "debug"\n'
    )
    env = {"PERDURE_ADMIN_BIND": "127.0.0.1:2002", "PERDURE_DATA_DIR": "from-env"}
    config = load({"data_dir": "from-flag", "ingress_bind": None}, env=env, config_file=file)
    assert config.ingress_bind == ("127.0.0.1", 1001)  # file (the flag was not given)
    assert config.admin_bind == ("127.0.0.1", 2002)  # env over file
    assert config.data_dir == Path("from-flag")  # flag over env
    assert config.log_level == "debug"  # file over default


def test_the_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "p.toml"
    file.write_text('max-body-size = "1MiB"\n')
    assert load(env={"PERDURE_CONFIG": str(file)}).max_body_bytes == 1024 * 1024


def test_toml_tables_group_settings(tmp_path: Path) -> None:
    file = tmp_path / "p.toml"
    file.write_text(
        "[retry]\n"
        'initial-interval = "50ms"\nmax-interval = "PT2S"\nfactor = 1.5\n'
        'max-attempts = "unlimited"\non-max-attempts = "kill"\n'
        "[retention]\n"
        'journal = "0"\nidempotency = "2d"\nworkflow = "1h 30m"\n'
        "[timeouts]\n"
        'inactivity = "30s"\nabort = "5m"\n'
    )
    config = load(env={}, config_file=file)
    assert config.registry_defaults() == Defaults(
        retry=RetryPolicy(50, 1.5, 2000, None, "kill"),
        journal_retention_ms=0,
        idempotency_retention_ms=2 * 86_400_000,
        workflow_completion_retention_ms=5_400_000,
        inactivity_timeout_ms=30_000,
        abort_timeout_ms=300_000,
    )


def test_flag_names_may_use_the_flag_spelling() -> None:
    config = load({"max-body-size": "2MiB", "retry_initial_interval": "1s"}, env={})
    assert config.max_body_bytes == 2 * 1024 * 1024
    assert config.retry_initial_interval_ms == 1000


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"PERDURE_INGRESS_BIND": "localhost"},
            "PERDURE_INGRESS_BIND: 'localhost' is not HOST:PORT",
        ),
        ({"PERDURE_INGRESS_BIND": "1.2.3.4:99999"}, "port must be a number from 0 to 65535"),
        ({"PERDURE_ADMIN_BIND": "::1:9070"}, "brackets"),
        ({"PERDURE_MAX_BODY_SIZE": "lots"}, "write e.g. 10MiB"),
        ({"PERDURE_MAX_BODY_SIZE": "10"}, "between 1KiB and 1GiB"),
        ({"PERDURE_RETRY_INITIAL_INTERVAL": "500"}, "has no unit"),
        ({"PERDURE_RETRY_INITIAL_INTERVAL": "0"}, "longer than zero"),
        ({"PERDURE_RETRY_FACTOR": "0.5"}, "from 1.0 to 100.0"),
        ({"PERDURE_RETRY_MAX_ATTEMPTS": "0"}, "'unlimited'"),
        ({"PERDURE_RETRY_ON_MAX_ATTEMPTS": "explode"}, "pause, kill"),
        ({"PERDURE_JOURNAL_RETENTION": "1 month"}, "weeks or smaller"),
        ({"PERDURE_LOG_LEVEL": "loud"}, "debug, info, warning, error"),
    ],
)
def test_bad_environment_values_name_the_variable_and_the_fix(
    env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(env=env)
    message = str(caught.value)
    assert next(iter(env)) in message
    assert fragment in message


def test_bad_flag_values_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--ingress-bind"):
        load({"ingress_bind": "nowhere"}, env={})
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load({"colour": "blue"}, env={})


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"cannot read the config file .*missing.toml"):
        load(env={}, config_file=missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("ingress-bind = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(env={}, config_file=broken)
    typo = tmp_path / "typo.toml"
    typo.write_text('ingres-bind = "127.0.0.1:1"\n')
    with pytest.raises(ConfigError, match=r"unknown setting 'ingres-bind'.*ingress-bind"):
        load(env={}, config_file=typo)
    wrong_type = tmp_path / "type.toml"
    wrong_type.write_text("ingress-bind = true\n")
    with pytest.raises(ConfigError, match=r"type.toml: ingress-bind: expected a string"):
        load(env={}, config_file=wrong_type)


def test_settings_that_conflict_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"both bind 127\.0\.0\.1:7000"):
        load({"ingress_bind": "127.0.0.1:7000", "admin_bind": "127.0.0.1:7000"}, env={})
    # Two ephemeral ports are two different ports.
    load({"ingress_bind": "127.0.0.1:0", "admin_bind": "127.0.0.1:0"}, env={})
    with pytest.raises(ConfigError, match="max interval"):
        load({"retry_initial_interval": "10s", "retry_max_interval": "1s"}, env={})
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        load({"data_dir": str(file)}, env={})
    with pytest.raises(ConfigError, match="request identity key"):
        load({"request_identity_private_key": str(tmp_path / "nope.pem")}, env={})


def test_empty_environment_values_count_as_unset() -> None:
    assert load(env={"PERDURE_INGRESS_BIND": ""}).ingress_bind == ("127.0.0.1", 8080)


def test_unknown_perdure_variables_are_reported_for_a_warning() -> None:
    env = {"PERDURE_INGRES_BIND": "x", "PERDURE_DATA_DIR": "d", "HOME": "/"}
    assert unknown_env_vars(env) == ["PERDURE_INGRES_BIND"]


def test_every_setting_has_a_distinct_flag_and_variable() -> None:
    assert len({s.key for s in SETTINGS}) == len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert all(s.env.startswith("PERDURE_") for s in SETTINGS)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("PT1S", 1000),
        ("pt1.5s", 1500),
        ("P1W", 604_800_000),
        ("P1DT2H3M4S", 93_784_000),
        ("0", 0),
        ("60 sec", 60_000),
        ("60sec", 60_000),
        ("1h 30m", 5_400_000),
        ("1h, 30m", 5_400_000),
        ("2 days 3 hours", 183_600_000),
        ("1.5s", 1500),
        ("750 milliseconds", 750),
        ("01:30:00", 5_400_000),
        ("1d 00:00:01.5", 86_401_500),
    ],
)
def test_durations_in_restate_formats(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1Y", "P2M", "1 year", "-5s", "5s ago", "5", "5 parsecs", "1:99:00"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


def test_sizes_and_binds() -> None:
    assert parse_size("1048576") == parse_size("1MiB") == parse_size("1 mib") == 1024 * 1024
    assert parse_size("1MB") == 1_000_000
    assert parse_bind("[::]:8080") == ("::", 8080)
    assert parse_bind("0") == ("127.0.0.1", 0)
    with pytest.raises(ValueError):
        parse_size("1 TB")
