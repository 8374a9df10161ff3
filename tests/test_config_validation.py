"""Config loading and validation: every bad config stops with one ConfigError.

The error must name the file, the key and the problem, so each case checks all
three. Good configs become a frozen ``Config`` with durations in seconds.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import config as config_module
from orchestrator.config import (
    build_config,
    load_config,
    load_config_cached,
    parse_duration,
    read_effective_config,
    schema_stamp,
    write_effective_config,
)
from orchestrator.errors import ConfigError, UsageError
from orchestrator.pipeline import RetryPolicy

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config.yaml"


def minimal() -> dict[str, Any]:
    return {
        "tasks": {
            "alpha": {"family": "daily", "script": "task.py"},
            "beta": {"family": "intraday", "script": "task.py", "interval": "5m"},
        }
    }


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a script the configs can name (relative to cwd)."""
    (tmp_path / "task.py").write_text("print('ok')\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_yaml(directory: Path, raw: dict[str, Any]) -> Path:
    path = directory / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def scripted_copy_of_shipped(directory: Path) -> Path:
    """The shipped config with every collector swapped for a script."""
    raw = yaml.safe_load(SHIPPED.read_text())
    for task in raw["tasks"].values():
        task.pop("collector", None)
        task["script"] = "task.py"
    return write_yaml(directory, raw)


# -- good configs ---------------------------------------------------------------


def test_shipped_config_loads_with_scripts_in_place_of_collectors(workdir: Path) -> None:
    config = load_config(scripted_copy_of_shipped(workdir))

    assert len(config.pipeline.family("daily")) == 12
    assert [task.name for task in config.pipeline.family("intraday")] == [
        "price_data",
        "intraday_features",
        "intraday_signals",
    ]
    assert config.calendar_name == "XNYS"
    assert config.timezone == "America/New_York"
    assert config.provider["name"] == "synthetic"
    assert config.state_dir == workdir.resolve() / "state"
    assert config.daily_start_time == time(9, 30)
    assert config.keep_sessions == 5

    assets = config.pipeline.task("assets")
    assert assets.critical is True
    assert assets.max_runtime_seconds == 300
    assert assets.retry == RetryPolicy(attempts=3, backoff_seconds=(10.0, 30.0, 60.0))
    assert (assets.freshness.green, assets.freshness.yellow) == (7 * 3600, 14 * 3600)
    assert assets.freshness.clock == "market"

    fundamentals = config.pipeline.task("fundamentals")
    assert fundamentals.critical is False  # from defaults
    assert fundamentals.max_runtime_seconds == 600  # from defaults

    assert config.pipeline.task("earnings").not_before == time(9, 33, 30)
    assert config.pipeline.task("fundamentals").freshness.green == 100 * 86400  # "100d"
    assert config.pipeline.task("options").freshness.clock == "market"

    price = config.pipeline.task("price_data")
    assert price.interval_seconds == 60
    assert price.hours == ("regular",)
    assert price.retry == RetryPolicy(attempts=2, backoff_seconds=(5.0,))
    assert config.pipeline.task("intraday_signals").interval_seconds == 300


def test_shipped_config_loads_as_is_once_collectors_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = yaml.safe_load(SHIPPED.read_text())
    modules = [f"collectors.{task['collector']}" for task in raw["tasks"].values()]
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"collector modules not written yet: {', '.join(missing)}")
    monkeypatch.chdir(ROOT)
    config = load_config(SHIPPED)
    assert config.pipeline.task("assets").collector == "assets"


def test_task_settings_override_defaults(workdir: Path) -> None:
    raw = minimal()
    raw["defaults"] = {
        "max_runtime_seconds": "2m",
        "critical": True,
        "retry": {"attempts": 4, "backoff_seconds": [1, "2s"]},
    }
    raw["tasks"]["beta"].update(critical=False, retry={"attempts": 2})
    raw["tasks"]["alpha"]["retry"] = {"backoff_seconds": [0, "0s", 3]}  # waits may be 0
    config = build_config(raw, "inline")

    alpha, beta = config.pipeline.task("alpha"), config.pipeline.task("beta")
    assert (alpha.critical, alpha.max_runtime_seconds) == (True, 120)
    assert alpha.retry == RetryPolicy(4, (0.0, 0.0, 3.0))
    assert beta.critical is False
    assert beta.retry == RetryPolicy(2, (1.0, 2.0))  # backoff still inherited
    assert beta.interval_seconds == 300


def test_now_and_session_overrides_are_parsed(workdir: Path) -> None:
    path = write_yaml(workdir, minimal())
    config = load_config(path, {"now": "2026-11-20T10:00:00-05:00", "session": "2026-11-19"})
    assert config.now == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert str(config.session) == "2026-11-19"


def test_unknown_task_lookup_names_the_task(workdir: Path) -> None:
    config = build_config(minimal(), "inline")
    with pytest.raises(UsageError, match=r"no task 'gamma' in the config \(tasks: alpha, beta\)"):
        config.pipeline.task("gamma")


def test_effective_config_round_trips(workdir: Path) -> None:
    config = build_config(minimal(), "inline", workdir)
    path = write_effective_config(config)
    assert path.parent == workdir.resolve() / "state" / "run"
    assert write_effective_config(config) == path  # same settings, same file
    again = read_effective_config(path)
    assert again.pipeline == config.pipeline
    assert again.state_dir == config.state_dir
    other = build_config({**minimal(), "now": "2026-11-20T15:00:00+00:00"}, "inline", workdir)
    assert write_effective_config(other) != path
    assert json.loads(path.read_text())["source"] == "inline"


# -- bad configs, as dict edits -------------------------------------------------


def _set(*keys_and_value: Any):  # type: ignore[no-untyped-def]
    *keys, value = keys_and_value

    def edit(raw: dict[str, Any]) -> None:
        target = raw
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value

    return edit


def _drop(*keys: str):  # type: ignore[no-untyped-def]
    def edit(raw: dict[str, Any]) -> None:
        target = raw
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return edit


BAD_CONFIGS = [
    # (id, edit, key named in the message, words of the problem)
    ("unknown-top-level-key", _set("colour", "red"), "colour", "unknown key"),
    (
        "unknown-task-key",
        _set("tasks", "alpha", "timeout", 5),
        "tasks.alpha.timeout",
        "unknown key",
    ),
    (
        "unknown-retry-key",
        _set("tasks", "alpha", "retry", {"tries": 2}),
        "tasks.alpha.retry.tries",
        "unknown key",
    ),
    (
        "wrong-type-critical",
        _set("tasks", "alpha", "critical", "yes"),
        "tasks.alpha.critical",
        "not of type 'boolean'",
    ),
    (
        "wrong-type-attempts",
        _set("tasks", "alpha", "retry", {"attempts": "3"}),
        "tasks.alpha.retry.attempts",
        "not of type 'integer'",
    ),
    ("task-not-a-mapping", _set("tasks", "alpha", "daily"), "tasks.alpha", "not of type 'object'"),
    (
        "negative-timeout",
        _set("tasks", "alpha", "max_runtime_seconds", -5),
        "tasks.alpha.max_runtime_seconds",
        "-5",
    ),
    (
        "zero-timeout",
        _set("tasks", "alpha", "max_runtime_seconds", 0),
        "tasks.alpha.max_runtime_seconds",
        "0",
    ),
    (
        "zero-timeout-with-unit",
        _set("tasks", "alpha", "max_runtime_seconds", "0s"),
        "tasks.alpha.max_runtime_seconds",
        "positive duration",
    ),
    (
        "timeout-not-a-duration",
        _set("tasks", "alpha", "max_runtime_seconds", "ten minutes"),
        "tasks.alpha.max_runtime_seconds",
        "positive duration",
    ),
    (
        "negative-backoff",
        _set("defaults", "retry", {"backoff_seconds": [10, -1]}),
        "defaults.retry.backoff_seconds.1",
        "-1 is not a wait",
    ),
    (
        "backoff-not-a-duration",
        _set("tasks", "alpha", "retry", {"backoff_seconds": ["soon"]}),
        "tasks.alpha.retry.backoff_seconds.0",
        "'soon' is not a wait",
    ),
    (
        "yellow-below-green",
        _set("tasks", "alpha", "freshness", {"green": "2h", "yellow": "1h"}),
        "tasks.alpha.freshness.yellow",
        "below green",
    ),
    (
        "freshness-without-yellow",
        _set("tasks", "alpha", "freshness", {"green": "1h"}),
        "tasks.alpha.freshness",
        "'yellow' is a required property",
    ),
    (
        "unknown-family",
        _set("tasks", "alpha", "family", "weekly"),
        "tasks.alpha.family",
        "'weekly' is not one of",
    ),
    (
        "collector-and-script",
        _set("tasks", "alpha", "collector", "assets"),
        "tasks.alpha",
        "exactly one of `collector` or `script`",
    ),
    (
        "neither-collector-nor-script",
        _drop("tasks", "alpha", "script"),
        "tasks.alpha",
        "exactly one of `collector` or `script`",
    ),
    (
        "missing-script-file",
        _set("tasks", "alpha", "script", "nowhere.py"),
        "tasks.alpha.script",
        "no such file",
    ),
    (
        "unknown-collector",
        _set("tasks", "gamma", {"family": "daily", "collector": "no_such_source"}),
        "tasks.gamma.collector",
        "no collector module collectors.no_such_source",
    ),
    ("interval-zero", _set("tasks", "beta", "interval", 0), "tasks.beta.interval", "0"),
    (
        "interval-zero-minutes",
        _set("tasks", "beta", "interval", "0m"),
        "tasks.beta.interval",
        "positive duration",
    ),
    (
        "interval-not-whole-minutes",
        _set("tasks", "beta", "interval", "90s"),
        "tasks.beta.interval",
        "whole minutes",
    ),
    (
        "interval-not-dividing-a-day",
        _set("tasks", "beta", "interval", "7m"),
        "tasks.beta.interval",
        "whole minutes",
    ),
    (
        "interval-on-daily-task",
        _set("tasks", "alpha", "interval", "5m"),
        "tasks.alpha.interval",
        "only intraday",
    ),
    (
        "unknown-hours-scope",
        _set("tasks", "beta", "hours", ["night"]),
        "tasks.beta.hours.0",
        "'night' is not one of",
    ),
    (
        "not-before-hour-25",
        _set("tasks", "alpha", "not_before", "25:00"),
        "tasks.alpha.not_before",
        "'25:00' does not match",
    ),
    (
        "not-before-one-digit-hour",
        _set("tasks", "alpha", "not_before", "9:30"),
        "tasks.alpha.not_before",
        "'9:30' does not match",
    ),
    (
        "unknown-provider",
        _set("provider", {"name": "bloomberg"}),
        "provider.name",
        "'bloomberg' is not one of",
    ),
    (
        "timezone-not-the-calendars",
        _set("market", "timezone", "Asia/Tokyo"),
        "market.timezone",
        "'Asia/Tokyo' is not the XNYS calendar's timezone 'America/New_York'",
    ),
    (
        "unknown-calendar",
        _set("market", "calendar", "XMARS"),
        "market.calendar",
        "unknown exchange calendar 'XMARS'",
    ),
    ("now-without-offset", _set("now", "2026-11-20T10:00:00"), "now", "UTC offset"),
    ("now-not-a-time", _set("now", "yesterday"), "now", "UTC offset"),
    ("session-not-a-date", _set("session", "2026-13-01"), "session", "not a date"),
    (
        "bad-task-name",
        _set("tasks", "Bad-Name", {"family": "daily", "script": "task.py"}),
        "tasks",
        "'Bad-Name' does not match",
    ),
    ("no-tasks", _set("tasks", {}), "tasks", "should be non-empty"),
    ("cores-zero", _set("daily", "cores", 0), "daily.cores", "minimum"),
    (
        "task-named-like-a-target",
        _set("tasks", "daily", {"family": "daily", "script": "task.py"}),
        "tasks.daily",
        "the name of a Snakefile target",
    ),
    (
        "provider-does-not-serve-the-task",
        _set(
            "tasks", "alpha", {"family": "daily", "collector": "fundamentals", "provider": "alpaca"}
        ),
        "tasks.alpha.provider",
        "alpaca does not serve fundamentals (what the fundamentals collector needs); "
        "providers that do: sec, synthetic",
    ),
    (
        "unknown-provider-in-a-chain",
        _set(
            "tasks", "alpha", {"family": "daily", "collector": "news", "provider": ["alpaca", "x"]}
        ),
        "tasks.alpha.provider.1",
        "'x' is not one of",
    ),
    (
        "provider-url-not-a-url",
        _set("providers", {"alpaca": {"data_url": "data.alpaca.markets"}}),
        "providers.alpaca.data_url",
        "does not match",
    ),
    (
        "unknown-provider-settings",
        _set("providers", {"bloomberg": {}}),
        "providers.bloomberg",
        "unknown key",
    ),
    (
        "real-provider-without-a-universe",
        _set("tasks", "alpha", {"family": "daily", "collector": "assets", "provider": "massive"}),
        "universe",
        "set universe.symbols",
    ),
    (
        "universe-file-missing",
        _set("universe", {"symbols_file": "watchlist.txt"}),
        "universe.symbols_file",
        "cannot read",
    ),
    (
        "universe-symbol-not-a-ticker",
        _set("universe", {"symbols": ["AAPL", "brk b"]}),
        "universe.symbols.1",
        "does not match",
    ),
]


@pytest.mark.parametrize(
    ("edit", "key", "problem"),
    [pytest.param(edit, key, problem, id=case) for case, edit, key, problem in BAD_CONFIGS],
)
def test_bad_config_stops_with_one_config_error(
    workdir: Path, edit: Any, key: str, problem: str
) -> None:
    raw = minimal()
    edit(raw)
    path = write_yaml(workdir, raw)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    error = caught.value
    assert error.path == str(path)
    assert error.key == key
    assert problem in error.problem
    assert str(error).startswith(f"{path}: {key}: ")


def test_the_first_problem_is_reported_alone(workdir: Path) -> None:
    raw = minimal()
    raw["tasks"]["alpha"]["colour"] = "red"
    raw["tasks"]["beta"]["family"] = "weekly"
    with pytest.raises(ConfigError) as caught:
        load_config(write_yaml(workdir, raw))
    assert "\n" not in str(caught.value)


# -- bad configs, as YAML text ----------------------------------------------------


YAML_HEAD = "tasks:\n  alpha:\n    family: daily\n    script: task.py\n"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        pytest.param(
            YAML_HEAD + "  beta: family: daily\n", "", "YAML syntax error at line 5", id="syntax"
        ),
        pytest.param(
            YAML_HEAD + "  alpha:\n    family: intraday\n    script: task.py\n",
            "alpha",
            "duplicate key on line 5",
            id="duplicate-task",
        ),
        pytest.param(
            "tasks:\n  alpha:\n    family: daily\n    family: intraday\n    script: task.py\n",
            "family",
            "duplicate key on line 4",
            id="duplicate-key-in-task",
        ),
        pytest.param("- just\n- a list\n", "", "top level must be a mapping", id="not-a-mapping"),
        pytest.param("", "(top level)", "'tasks' is a required property", id="empty-file"),
    ],
)
def test_bad_yaml_names_file_and_line(workdir: Path, text: str, key: str, problem: str) -> None:
    path = workdir / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.path == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(path) in str(caught.value)


def test_missing_config_file_is_a_config_error(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(workdir / "absent.yaml")


def test_build_config_does_not_change_its_input(workdir: Path) -> None:
    raw = minimal()
    before = copy.deepcopy(raw)
    build_config(raw, "inline")
    assert raw == before


# -- durations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90", 90.0),
        (90, 90.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("5m", 300.0),
        ("24h", 86400.0),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        (" 5 m ", 300.0),
    ],
)
def test_parse_duration(value: Any, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "5x", "m", "-5", "5mm", "5 minutes", "1e3", True, None, [5], -3, float("nan")],
)
def test_parse_duration_rejects(value: Any) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


def test_retry_policy_repeats_its_last_backoff() -> None:
    policy = RetryPolicy(attempts=5, backoff_seconds=(10.0, 30.0))
    assert [policy.delay_before_retry(n) for n in (1, 2, 3, 4)] == [10.0, 30.0, 30.0, 30.0]


def test_real_providers_get_their_defaults_the_universe_and_the_shared_limiter(
    workdir: Path,
) -> None:
    (workdir / "watchlist.txt").write_text("# tech\nAAPL\nMSFT  # also in symbols\n\nNVDA\n")
    raw = minimal()
    raw["tasks"]["prices"] = {
        "family": "daily",
        "collector": "prices_daily",
        "provider": ["massive", "alpaca"],
    }
    raw["providers"] = {"alpaca": {"feed": "sip"}}
    raw["universe"] = {"symbols": ["SPY", "MSFT"], "symbols_file": "watchlist.txt"}
    config = build_config(raw, "inline")
    assert config.universe == ("SPY", "MSFT", "AAPL", "NVDA")
    massive, alpaca = config.provider_settings(config.pipeline.task("prices"))
    assert massive["name"] == "massive" and massive["base_url"] == "https://api.massive.com"
    assert alpaca["feed"] == "sip" and alpaca["data_url"] == "https://data.alpaca.markets"
    assert alpaca["symbols"] == list(config.universe)
    assert alpaca["limits_db"] == str(workdir.resolve() / "state" / "cache" / "rate_limits.db")
    assert alpaca["cache_dir"] == str(workdir.resolve() / "state" / "cache")
    default = config.provider_settings(config.pipeline.task("alpha"))  # names no provider
    assert default == [{"name": "synthetic", "seed": 42, "universe_size": 50}]


def test_the_schema_names_exactly_the_registered_providers() -> None:
    from collectors.providers.registry import PROVIDERS

    schema = json.loads((ROOT / "orchestrator" / "config.schema.json").read_text())
    assert schema["$defs"]["provider_name"]["enum"] == list(PROVIDERS)


def test_the_validated_stamp_keeps_the_tasks_in_their_config_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text("")
    order = ["zeta", "alpha", "mid"]
    raw = {"tasks": {name: {"family": "daily", "script": "job.py"} for name in order}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    first = load_config_cached("config.yaml")  # validates and writes the stamp
    again = load_config_cached("config.yaml")  # read from the stamp
    assert list(first.pipeline.tasks) == list(again.pipeline.tasks) == order


class SchemaChecks:
    """Counts the schema checks ``build_config`` makes (the real check runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = config_module._schema_error

        def counted(source: str, raw: Any) -> ConfigError | None:
            self.count += 1
            return real(source, raw)

        monkeypatch.setattr(config_module, "_schema_error", counted)


def test_content_the_schema_accepted_is_not_checked_against_it_again(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = SchemaChecks(monkeypatch)
    stamp = schema_stamp(workdir)
    unstamped = build_config(minimal(), "pipeline.yaml")
    first = build_config(minimal(), "pipeline.yaml", stamp=stamp)
    reordered = dict(reversed(list(minimal().items())))
    reordered["tasks"] = dict(reversed(list(minimal()["tasks"].items())))
    again = build_config(reordered, "pipeline.yaml", stamp=stamp)
    assert checks.count == 2  # the unstamped build and the first stamped one
    assert again.pipeline == first.pipeline == unstamped.pipeline
    changed = minimal()
    changed["tasks"]["beta"]["interval"] = "15m"
    assert build_config(changed, "pipeline.yaml", stamp=stamp).pipeline.task("beta")
    assert checks.count == 3


def test_content_the_schema_refuses_is_never_remembered(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp = schema_stamp(workdir)
    build_config(minimal(), "pipeline.yaml", stamp=stamp)
    accepted = stamp.read_text()
    bad = minimal()
    bad["tasks"]["alpha"]["colour"] = "red"
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"tasks\.alpha\.colour"):
            build_config(bad, "pipeline.yaml", stamp=stamp)
    assert stamp.read_text() == accepted


def test_the_checks_outside_the_schema_run_on_remembered_content(workdir: Path) -> None:
    stamp = schema_stamp(workdir)
    build_config(minimal(), "pipeline.yaml", stamp=stamp)
    (workdir / "task.py").unlink()
    with pytest.raises(ConfigError, match=r"tasks\.alpha\.script"):
        build_config(minimal(), "pipeline.yaml", stamp=stamp)


def test_a_date_and_its_text_are_different_contents(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = SchemaChecks(monkeypatch)
    stamp = schema_stamp(workdir)
    as_text = {**minimal(), "session": "2026-11-20"}
    as_date = {**minimal(), "session": date(2026, 11, 20)}
    build_config(as_text, "pipeline.yaml", stamp=stamp)
    with pytest.raises(ConfigError, match="session"):
        build_config(as_date, "pipeline.yaml", stamp=stamp)
    assert checks.count == 2


def test_a_replay_whose_clock_moved_is_the_same_content_with_its_own_clock(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = SchemaChecks(monkeypatch)
    stamp = schema_stamp(workdir)
    build_config({**minimal(), "now": "2026-11-20T15:00:00+00:00"}, "pipeline.yaml", stamp=stamp)
    moved = {**minimal(), "now": "2026-11-20T15:00:00.300000+00:00"}
    config = build_config(moved, "pipeline.yaml", stamp=stamp)
    assert checks.count == 1
    assert config.now == datetime(2026, 11, 20, 15, 0, 0, 300000, tzinfo=UTC)
    assert config.raw["now"] == moved["now"]
    with pytest.raises(ConfigError, match=r"now.*UTC offset"):
        build_config({**minimal(), "now": "2026-11-20 15:00"}, "pipeline.yaml", stamp=stamp)
    with pytest.raises(ConfigError, match="now"):
        build_config(
            {**minimal(), "now": datetime(2026, 11, 20, 15, tzinfo=UTC)},
            "pipeline.yaml",
            stamp=stamp,
        )
    assert checks.count == 2  # a clock that is no text is the schema's to refuse
