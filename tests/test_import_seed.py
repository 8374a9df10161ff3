"""``orchestrator import-seed``: the Master Orchestrator's dependency_graph.yaml moved in.

Fixtures (tests/fixtures/seed/): an 11-task graph as the seed's README shows
it, a 12-task one of a later version (float tiers, an ``&`` in a name, two
intraday tasks running the same script), a 20-task one kept where the seed
keeps it (``master_orchestrator/``, beside ``data_collectors/``) with a 5-step
backoff and notifications carrying secrets, and graphs the import must refuse.
The stub collectors behave like the seed's scripts: they print "Inserted 85
records", write no result file, exit 1 on ``--fail`` (or ``SEED_STUB_FAIL``)
and hang on ``--hang``.

The fast tests call ``run_import`` (or the CLI) on a temp project; the slow
ones import the 11-task graph and then run it for real: ``--daily``,
``--intraday --once``, ``--health``, ``--update-stale``.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import wait_for
from workflow_project import PROJECT, daily_sentinel, make_project, orchestrator, project_config

from orchestrator import seed_import
from orchestrator.config import load_config
from orchestrator.errors import ConfigError, UsageError
from orchestrator.seed_import import human_duration, run_import, task_name

SEED = PROJECT / "tests" / "fixtures" / "seed"
GRAPH_11 = SEED / "dependency_graph_11.yaml"
GRAPH_12 = SEED / "dependency_graph_12.yaml"
GRAPH_20 = SEED / "master_orchestrator" / "dependency_graph.yaml"
SMTP_PASSWORD = "hunter2-SEED-SMTP-SECRET"
SLACK_SECRET = "SEEDSLACKSECRET"
SESSION = "2026-11-27"
MORNING = "2026-11-27T10:00:00-05:00"  # the day after Thanksgiving: a half day, closes 13:00
DAILY_11 = {
    "asset_collection": "Asset Collection",
    "fundamental_data": "Fundamental Data",
    "insider_trading": "Insider Trading",
    "economic_indicators": "Economic Indicators",
    "news_events": "News Events",
    "sentiment_analysis": "Sentiment Analysis",
    "ml_features_aggregation": "ML Features Aggregation",
    "generate_trading_signals": "Generate Trading Signals",
}
INTRADAY_11 = {
    "price_data": "Price Data",
    "ml_features_refresh": "ML Features Refresh",
    "intraday_signals": "Intraday Signals",
}
SHIPPED_TASKS = tuple(project_config()["tasks"])


def config_without_tasks() -> dict:
    config = project_config()
    config["tasks"] = {}
    return config


@pytest.fixture
def project(tmp_path, calendar_cache, monkeypatch):
    """A project folder holding the shipped config.yaml, as the working directory."""
    root = make_project(tmp_path / "project")
    shutil.copytree(calendar_cache, root / "state" / "cache")
    monkeypatch.chdir(root)  # as the CLI does: relative paths are the project's
    return root


@pytest.fixture
def empty_project(tmp_path, calendar_cache, monkeypatch):
    """A project whose config.yaml has every setting but no task yet."""
    root = make_project(tmp_path / "project", config_without_tasks())
    shutil.copytree(calendar_cache, root / "state" / "cache")
    monkeypatch.chdir(root)
    return root


def import_seed(project: Path, seed: Path, *, dry_run=False, merge=False, root=None) -> str:
    return run_import(
        project / "config.yaml",
        seed,
        scripts_root=root,
        dry_run=dry_run,
        merge_duplicates=merge,
    )


def tasks_of(project: Path) -> dict:
    return yaml.safe_load((project / "config.yaml").read_text())["tasks"]


def backups(project: Path) -> list[Path]:
    return sorted(project.glob("config.yaml.bak-*"))


def write_seed(folder: Path, text: str) -> Path:
    """A small seed file of a test's own, beside a copy of the stub collectors."""
    shutil.copytree(SEED / "data_collectors", folder / "data_collectors", dirs_exist_ok=True)
    path = folder / "dependency_graph.yaml"
    path.write_text(text)
    return path


# -- small conversions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed_name", "expected"),
    [
        ("News & Sentiment", "news_sentiment"),
        ("ML Features Aggregation", "ml_features_aggregation"),
        ("Level 2 Quotes", "level_2_quotes"),
        ("  Dividends & Splits  ", "dividends_splits"),
        ("2nd Pass", "task_2nd_pass"),
        ("Daily", "daily_task"),  # the Snakefile's own target rule
        ("Économie", "economie"),
        ("&&&", "task"),
    ],
)
def test_a_seed_name_becomes_a_valid_task_name(seed_name, expected):
    assert task_name(seed_name) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(300, "5m"), (86400, "1d"), (7200, "2h"), (23400, "6.5h"), (45, "45s"), (90, "90s")],
)
def test_durations_are_written_in_the_units_config_yaml_uses(seconds, text):
    assert human_duration(seconds) == text


# -- importing the three graphs ----------------------------------------------------------


def test_the_11_task_graph_is_imported_with_a_backup_and_the_config_loads(empty_project):
    before = (empty_project / "config.yaml").read_text()
    report = import_seed(empty_project, GRAPH_11)

    [backup] = backups(empty_project)
    assert backup.read_text() == before
    assert f"Backup of the previous file: {backup}" in report
    assert "drops comments: the backup keeps them" in report
    config = load_config(empty_project / "config.yaml")
    tasks = config.pipeline.tasks
    assert {name: task.label for name, task in tasks.items()} == {**DAILY_11, **INTRADAY_11}
    for name, label in {**DAILY_11, **INTRADAY_11}.items():
        assert f"  {name}" in report and label in report
    assert tasks["ml_features_aggregation"].needs == (
        "fundamental_data",
        "news_events",
        "sentiment_analysis",
    )
    assert tasks["asset_collection"].critical is True
    assert tasks["asset_collection"].max_runtime_seconds == 120
    assert str(tasks["generate_trading_signals"].not_before) == "09:35:00"
    assert tasks["price_data"].interval_seconds == 60
    assert tasks["ml_features_refresh"].interval_seconds == 300
    assert tasks["ml_features_refresh"].hours == ("regular",)
    assert tasks["ml_features_refresh"].args == ("--incremental",)
    script = Path(tasks["asset_collection"].script)
    assert script == SEED / "data_collectors" / "01_collect_assets.py"
    # The retry policy became the defaults'.
    assert tasks["news_events"].retry.attempts == 3
    assert tasks["news_events"].retry.backoff_seconds == (10, 30, 60)
    # Thresholds went to the tasks whose source they describe, with the right clock.
    assert tasks["price_data"].freshness.green == 300
    assert tasks["price_data"].freshness.clock == "market"
    assert tasks["fundamental_data"].freshness.yellow == 172800
    assert tasks["fundamental_data"].freshness.clock == "wall"
    assert tasks["sentiment_analysis"].freshness.green == 3600
    # ml_features (15m/30m) is kept fresh by the intraday refresh, not the daily aggregation.
    assert tasks["ml_features_refresh"].freshness.yellow == 1800
    assert "ml_features_aggregation keeps its family's default" in report
    assert "clock: market (prices change only while the market trades)" in report
    assert "warning: news_events runs every session but turns red 2h after a run" in report
    assert "market_hours.*" in report
    assert "Keys ignored" not in report  # every key of this file has a meaning here


def test_the_12_task_graph_merges_into_the_shipped_config_and_keeps_its_tasks(project):
    before = tasks_of(project)
    report = import_seed(project, GRAPH_12)

    after = tasks_of(project)
    for name in SHIPPED_TASKS:
        assert after[name] == before[name]  # the user's tasks, untouched
    assert "and the 15 tasks config.yaml had, kept as they were" in report
    # Names the shipped config already has are suffixed, and the needs follow.
    assert after["fundamentals_seed"]["label"] == "Fundamentals"
    assert "'fundamentals' is already a task of config.yaml" in report
    assert "fundamentals_seed" in after["ml_features_aggregation"]["needs"]
    assert after["intraday_signals_seed"]["needs"] == ["price_data_seed", "volume_data"]
    # An "&" in a name, float tiers, daily args, a task without a time.
    assert after["news_sentiment"]["label"] == "News & Sentiment"
    assert after["earnings_data"]["needs"] == ["options_data"]
    assert "not_before" not in after["earnings_data"]
    assert after["options_data"]["args"] == ["--expiries", "4"]
    assert after["intraday_signals_seed"]["hours"] == ["pre", "regular", "post"]
    # Option prices change only in market hours: a day of wall time is one session.
    assert after["options_data"]["freshness"] == {
        "green": "6.5h",
        "yellow": "13h",
        "clock": "market",
    }
    assert "counted in sessions of market time" in report
    # One task, two sources: the first is attached, the second reported.
    assert after["news_sentiment"]["freshness"]["green"] == "1h"
    assert "news_sentiment already has the thresholds of news: not attached" in report
    assert "crypto_prices (green 300s, yellow 900s): matches no task: not imported" in report
    assert (
        "'Price Data' and 'Volume Data' run the same script with the same args "
        "(02_collect_price_data.py): both kept" in report
    )
    assert "pre_market: the seed says 07:00-09:30; the calendar's 04:00-09:30 apply" in report
    assert "retry_on_failure" in report
    config = yaml.safe_load((project / "config.yaml").read_text())
    assert config["defaults"]["retry"] == {"attempts": 2, "backoff_seconds": [5]}
    assert "was: 3 attempts, waits 10s, 30s, 60s" in report
    assert "inherit it too: assets, prices_daily" in report
    assert len(load_config(project / "config.yaml").pipeline.tasks) == 15 + 12


def test_merge_duplicates_runs_the_shared_script_once(project):
    report = import_seed(project, GRAPH_12, merge=True)
    after = tasks_of(project)
    assert "volume_data" not in after
    merged = after["price_data_seed"]
    assert merged["label"] == "Price Data + Volume Data"
    assert merged["critical"] is True
    assert after["intraday_signals_seed"]["needs"] == ["price_data_seed"]
    assert "merged into one task" in report
    assert "Would import" not in report and "Imported 11 tasks" in report
    load_config(project / "config.yaml")


@pytest.mark.parametrize("alerting", [False, True])
def test_the_20_task_graph_keeps_its_secrets_out_of_config_yaml(project, monkeypatch, alerting):
    # Alerting (issue 13) may or may not have landed: the report says what to do in both.
    monkeypatch.setattr(seed_import, "alerting_available", lambda: alerting)
    report = import_seed(project, GRAPH_20)

    text = (project / "config.yaml").read_text()
    for secret in (SMTP_PASSWORD, SLACK_SECRET):
        assert secret not in text
        assert secret not in report
        assert all(secret not in backup.read_text() for backup in backups(project))
    assert "notifications" not in yaml.safe_load(text)
    assert "notifications.email.smtp_password: a secret, written nowhere and not shown" in report
    assert "notifications.slack.webhook_url: a secret, written nowhere and not shown" in report
    assert (
        'ORCHESTRATOR_ALERT_URLS="mailtos://USER:PASSWORD@smtp.example.com:587'
        "?from=pipeline@example.com&to=trader@example.com "
        'slack://TOKEN_A/TOKEN_B/TOKEN_C/#trading-alerts"' in report
    )
    assert "notifications.email.smtp_server = 'smtp.example.com'" in report
    assert ("NOT imported" in report) is not alerting
    assert ("`orchestrator alerts test`" in report) is alerting
    # The scripts are beside master_orchestrator/, as in the seed's own layout.
    assert "the seed file's parent folder, where its scripts are" in report
    config = load_config(project / "config.yaml")
    imported = [t for t in config.pipeline if t.label is not None]
    assert len(imported) == 20
    assert config.pipeline.tasks["asset_collection"].retry.backoff_seconds == (5, 15, 30, 60, 120)
    assert config.pipeline.tasks["asset_collection"].retry.attempts == 5
    assert "the last of the 5 waits [5, 15, 30, 60, 120] is never used" in report
    # The intraday task's need of a daily task is dropped, and said.
    assert config.pipeline.tasks["options_flow"].needs == ("price_data_seed",)
    assert "'Options Flow' (intraday) depended on 'Options Data' (daily): dropped" in report
    for ignored in (
        "retry_policy.network_timeout_seconds",
        "retry_policy.connection_retry_delay",
        "daily_schedule[5].description",
        "freshness_thresholds.red",
        "version",
        "database",
    ):
        assert f"  {ignored} " in report
    assert "ml_features_aggregation needs: fundamental_data, insider_trading" in report


def test_a_dry_run_prints_the_tasks_and_changes_nothing(project):
    config_file = project / "config.yaml"
    before = config_file.read_bytes(), config_file.stat().st_mtime_ns
    report = import_seed(project, GRAPH_11, dry_run=True)
    assert (config_file.read_bytes(), config_file.stat().st_mtime_ns) == before
    assert backups(project) == []
    assert report.startswith("Would import 11 tasks")
    assert "Dry run: nothing was written." in report
    shown = report.split("Resulting tasks (what config.yaml would hold under tasks:):\n")[1]
    entries = yaml.safe_load(shown.split("\nand:\n")[0])
    assert set(entries) == {
        *DAILY_11,
        "price_data_seed",
        "ml_features_refresh",
        "intraday_signals_seed",
    }
    assert entries["asset_collection"]["not_before"] == "09:30:00"


def test_importing_again_replaces_the_tasks_imported_before(empty_project):
    import_seed(empty_project, GRAPH_11)
    first = tasks_of(empty_project)
    report = import_seed(empty_project, GRAPH_11)
    assert tasks_of(empty_project) == first  # no `_seed` or `_2` copies
    assert "imported before from this seed (same label), so replaced in place" in report
    assert len(backups(empty_project)) == 2  # two imports within a second: two backups


def test_a_new_config_is_written_when_there_is_none(empty_project):
    (empty_project / "config.yaml").unlink()
    report = import_seed(empty_project, GRAPH_11)
    assert "(a new file)" in report
    assert backups(empty_project) == []
    assert len(load_config(empty_project / "config.yaml").pipeline.tasks) == 11


def test_scripts_inside_the_project_are_written_relative_to_it(empty_project):
    shutil.copytree(SEED, empty_project / "old_system")
    report = import_seed(empty_project, empty_project / "old_system" / "dependency_graph_11.yaml")
    script = tasks_of(empty_project)["asset_collection"]["script"]
    assert script == "old_system/data_collectors/01_collect_assets.py"
    assert "written relative to the project" in report


def test_a_virtual_environment_beside_the_scripts_is_their_interpreter(empty_project, tmp_path):
    seed = write_seed(tmp_path / "old", GRAPH_11.read_text())
    python = tmp_path / "old" / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(shutil.which("python3") or "/usr/bin/python3")
    report = import_seed(empty_project, seed)
    assert tasks_of(empty_project)["asset_collection"]["python"] == str(python)
    assert f"with {python} (the virtual environment in the scripts' folder)" in report


def test_an_unquoted_time_is_read_back_as_a_time(empty_project, tmp_path):
    # Unquoted, YAML reads 10:15:00 as the number 36900.
    seed = write_seed(
        tmp_path / "old",
        "daily_schedule:\n"
        "  - {name: Late, script: data_collectors/01_collect_assets.py, time: 10:15:00}\n"
        "  - {name: Early, script: data_collectors/01_collect_assets.py, time: 9:31}\n",
    )
    import_seed(empty_project, seed)
    tasks = tasks_of(empty_project)
    assert tasks["late"]["not_before"] == "10:15:00"
    assert tasks["early"]["not_before"] == "09:31:00"


# -- refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        (
            "refused_unknown_dependency.yaml",
            "'ML Features Aggregation' depends on 'Fundamentals Data', which is no task",
        ),
        (
            "refused_higher_tier.yaml",
            "'News Events' (tier 2) depends on 'Sentiment Analysis' (tier 3), a higher tier",
        ),
        (
            "refused_same_tier.yaml",
            "'Sentiment Analysis' (tier 2) depends on 'News Events' (tier 2), the same tier",
        ),
        (
            "refused_cycle.yaml",
            "the dependencies form a cycle: 'News Events' -> 'Sentiment Analysis' -> "
            "'ML Features Aggregation' -> 'News Events'",
        ),
    ],
)
def test_a_broken_graph_is_refused_naming_the_task_and_its_dependency(project, fixture, message):
    before = (project / "config.yaml").read_bytes()
    result = orchestrator(project, "import-seed", str(SEED / fixture))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert str(SEED / fixture) in result.stderr
    assert (project / "config.yaml").read_bytes() == before
    assert backups(project) == []


@pytest.mark.parametrize(
    ("seed_text", "key", "message"),
    [
        (
            "intraday_schedule:\n"
            "  - {name: Prices, script: data_collectors/02_collect_price_data.py,"
            " interval_minutes: 7}\n",
            "intraday_schedule[0].interval_minutes",
            "slots are whole minutes that divide a day",
        ),
        (
            "daily_schedule:\n"
            "  - {name: Assets, script: data_collectors/01_collect_assets.py,"
            " args: [--api-key, abc123]}\n",
            "daily_schedule[0].args",
            "--api-key passes a secret on the command line",
        ),
        (
            "daily_schedule:\n  - {name: Assets, script: data_collectors/99_gone.py}\n",
            "daily_schedule[0].script",
            "no such script",
        ),
        (
            "daily_schedule:\n"
            "  - {name: Assets, script: data_collectors/01_collect_assets.py}\n"
            "  - {name: Assets, script: data_collectors/03_collect_fundamentals.py}\n",
            "daily_schedule[1].name",
            "'Assets' is also the name of daily_schedule[0]",
        ),
        (
            "daily_schedule:\n"
            "  - {name: Assets, script: data_collectors/01_collect_assets.py, tier: high}\n",
            "daily_schedule[0].tier",
            "'high' is not a number",
        ),
        ("retry_policy: {max_attempts: 3}\n", "", "nothing to import"),
    ],
)
def test_a_seed_the_config_cannot_express_is_refused(project, tmp_path, seed_text, key, message):
    seed = write_seed(tmp_path / "old", seed_text)
    before = (project / "config.yaml").read_bytes()
    with pytest.raises(ConfigError) as raised:
        import_seed(project, seed)
    assert raised.value.key == key
    assert message in raised.value.problem
    assert (project / "config.yaml").read_bytes() == before
    assert backups(project) == []


def test_a_wrong_scripts_root_is_refused_with_what_to_pass(project, tmp_path):
    with pytest.raises(ConfigError, match="pass --scripts-root DIR") as raised:
        import_seed(project, GRAPH_11, root=tmp_path)
    assert "01_collect_assets.py" in raised.value.problem
    with pytest.raises(UsageError, match="no such folder"):
        import_seed(project, GRAPH_11, root=tmp_path / "missing")


def test_a_config_that_does_not_load_as_it_is_is_refused_before_anything(project):
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["tasks"]["news"]["needs"] = ["nonexistent"]
    (project / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(ConfigError, match="does not load as it is") as raised:
        import_seed(project, GRAPH_11)
    assert raised.value.key == "tasks.news.needs"
    assert backups(project) == []


def test_the_cli_prints_the_report_and_never_the_password(project):
    result = orchestrator(project, "import-seed", str(GRAPH_20))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Imported 20 tasks")
    assert SMTP_PASSWORD not in result.stdout + result.stderr
    assert SMTP_PASSWORD not in (project / "config.yaml").read_text()
    check = orchestrator(project, "--check-config")
    assert check.returncode == 0, check.stderr
    assert "valid (35 tasks)" in check.stdout


def test_the_cli_dry_run_with_a_scripts_root_and_merging_changes_nothing(project):
    before = (project / "config.yaml").read_bytes()
    result = orchestrator(
        project,
        "import-seed",
        str(GRAPH_12),
        "--scripts-root",
        str(SEED),
        "--merge-duplicates",
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Would import 11 tasks")
    assert f"Scripts: from {SEED} (--scripts-root)" in result.stdout
    assert "label: Price Data + Volume Data" in result.stdout
    assert (project / "config.yaml").read_bytes() == before
    assert backups(project) == []


# -- end to end -----------------------------------------------------------------------


def set_clock(project: Path, now: str, **defaults) -> None:
    """Pin the project's clock (and set defaults) in its config.yaml."""
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["now"] = now
    config["defaults"].update(defaults)
    (project / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def set_task(project: Path, name: str, **settings) -> None:
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["tasks"][name].update(settings)
    (project / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def sentinel(project: Path, task: str) -> dict:
    return json.loads(daily_sentinel(project, SESSION, task).read_text())


@pytest.fixture
def imported_project(tmp_path, calendar_cache):
    """A project running only the 11 imported tasks, its clock after their start times."""
    project = make_project(tmp_path / "p", config_without_tasks())
    shutil.copytree(calendar_cache, project / "state" / "cache")
    result = orchestrator(project, "import-seed", str(GRAPH_11))
    assert result.returncode == 0, result.stderr
    set_clock(project, MORNING)  # 10:00, after every not_before (09:30 to 09:35)
    return project


@pytest.mark.slow
def test_the_imported_graph_runs_daily_intraday_health_and_update_stale(imported_project):
    project = imported_project
    plan = orchestrator(project, "--daily", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    for task in DAILY_11:
        assert f"rule {task}:" in plan.stdout
    assert not (project / "state" / "targets").exists()

    daily = orchestrator(project, "--daily")
    assert daily.returncode == 0, daily.stdout + daily.stderr
    assert "8/8 tasks built, 680 records" in daily.stdout
    for task in DAILY_11:
        record = sentinel(project, task)
        assert record["status"] == "success"
        assert record["records_processed"] == 85
        assert record["records_counted_from"] == "output"  # "Inserted 85 records"
    with sqlite3.connect(project / "state" / "status.db") as db:
        rows = dict(
            db.execute("SELECT task_name, last_records_processed FROM data_pipeline_status")
        )
    assert rows == dict.fromkeys(DAILY_11, 85)

    set_clock(project, "2026-11-27T10:07:10-05:00")
    tick = orchestrator(project, "--intraday", "--once")
    assert tick.returncode == 0, tick.stdout + tick.stderr
    slots = project / "state" / "targets" / "intraday" / SESSION
    price = json.loads((slots / "price_data" / "1007.json").read_text())
    assert price["status"] == "success"
    assert price["records_processed"] == 85
    assert json.loads((slots / "intraday_signals" / "1005.json").read_text())["status"] == (
        "success"
    )

    health = orchestrator(project, "--health")
    assert health.returncode == 0, health.stdout  # all green
    assert "news_events (News Events)" in health.stdout  # the seed's name, shown
    assert "11 healthy, 0 stale, 0 critical, 0 unknown" in health.stdout
    fresh = orchestrator(project, "--update-stale", "--dry-run")
    assert fresh.returncode == 0, fresh.stderr
    assert "Nothing is stale at or beyond yellow." in fresh.stdout

    # 12:30: news and sentiment (the seed's 1h/2h, wall clock) are red; the market-clock
    # intraday sources are stale too, and the half day's market is still open.
    set_clock(project, "2026-11-27T12:30:00-05:00")
    before = {t: daily_sentinel(project, SESSION, t).stat().st_mtime_ns for t in DAILY_11}
    health = orchestrator(project, "--health")
    assert health.returncode == 2
    stale = orchestrator(project, "--update-stale", "--dry-run")
    assert stale.returncode == 0, stale.stderr
    assert "news_events (daily):" in stale.stdout
    assert "sentiment_analysis (daily):" in stale.stdout
    assert "asset_collection (daily)" not in stale.stdout
    red_only = orchestrator(project, "--update-stale", "--min-staleness", "red", "--dry-run")
    assert red_only.returncode == 0, red_only.stderr
    assert "news_events (daily):" in red_only.stdout
    assert "sentiment_analysis (daily):" in red_only.stdout
    after = {t: daily_sentinel(project, SESSION, t).stat().st_mtime_ns for t in DAILY_11}
    assert after == before


@pytest.mark.slow
def test_the_seeds_loop_command_lines_run_the_imported_graph(imported_project):
    """``--intraday --interval 60`` and ``--full``, as the seed's users start them."""
    project = imported_project
    assert orchestrator(project, "--daily").returncode == 0
    set_clock(project, "2026-11-27T10:07:10-05:00")
    slot = project / "state" / "targets" / "intraday" / SESSION / "price_data" / "1007.json"
    log = project / "state" / "logs" / "orchestrator.log"
    for command in (("--intraday", "--interval", "60"), ("--full",)):
        slot.unlink(missing_ok=True)
        loop = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "--project", str(project), *command],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(slot.exists, within=120, what=f"{' '.join(command)} to build a slot")
            wait_for(lambda: "intraday tick" in log.read_text(), what="the tick to be logged")
        finally:
            loop.send_signal(signal.SIGTERM)
            out, err = loop.communicate(timeout=60)
        assert loop.returncode == 0, (command, out[-800:], err[-800:])
        assert "intraday loop stopped" in err, (command, err[-800:])
        assert json.loads(slot.read_text())["records_processed"] == 85


@pytest.mark.slow
def test_a_failing_and_a_hanging_imported_script_fail_alone(imported_project):
    project = imported_project
    set_clock(project, MORNING, retry={"attempts": 1, "backoff_seconds": [0]})
    set_task(project, "news_events", args=["--hang"], max_runtime_seconds=1)
    # Their scripts exit 1 on failure; the stub does when its name is in SEED_STUB_FAIL.
    result = orchestrator(project, "--daily", env={"SEED_STUB_FAIL": "03_collect_fundamentals"})
    assert result.returncode == 1
    with sqlite3.connect(project / "state" / "status.db") as db:
        rows = db.execute("SELECT task_name, status, last_error_message FROM data_pipeline_status")
        status = {name: (state, error) for name, state, error in rows}
    assert status["fundamental_data"] == (
        "FAILED",
        "ERROR - fundamentals: the provider returned HTTP 500",  # their last stderr line
    )
    assert status["news_events"] == ("FAILED", "timed out after 1 s; process group killed")
    # A failed non-critical task leaves no sentinel (the next run retries it); what needs
    # it runs degraded, the rest as usual.
    assert not daily_sentinel(project, SESSION, "fundamental_data").exists()
    aggregation = sentinel(project, "ml_features_aggregation")
    assert aggregation["status"] == "degraded"
    assert set(aggregation["degraded_inputs"]) == {"fundamental_data", "news_events"}
    assert sentinel(project, "insider_trading")["status"] == "success"
    assert "6/8 tasks built" in result.stdout
