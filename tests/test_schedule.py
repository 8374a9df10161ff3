"""Scheduler entries (launchd, cron, systemd) and the two wrapper scripts."""

from __future__ import annotations

import configparser
import os
import plistlib
import re
import shutil
import signal
import stat
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator import schedule
from orchestrator.config import Config, build_config
from orchestrator.errors import UsageError
from tests.helpers import fixture

ROOT = Path(__file__).resolve().parents[1]
WRAPPERS = ("run-daily", "run-intraday")
YEAR = date(2026, 1, 1)
WEEKDAYS = (1, 2, 3, 4, 5)
SHIFTED = (2, 3, 4, 5, 6)

# Expected daily firing times, (hour, minute) -> local weekdays, for 09:30 New York.
EXPECTED = {
    "America/New_York": {(9, 30): WEEKDAYS},
    "Europe/London": {(13, 30): WEEKDAYS, (14, 30): WEEKDAYS},  # DST dates differ
    "Asia/Tokyo": {(22, 30): WEEKDAYS, (23, 30): WEEKDAYS},  # no DST in Tokyo
    "UTC": {(13, 30): WEEKDAYS, (14, 30): WEEKDAYS},
    "Australia/Sydney": {(23, 30): WEEKDAYS, (0, 30): SHIFTED, (1, 30): SHIFTED},
    "Asia/Kolkata": {(19, 0): WEEKDAYS, (20, 0): WEEKDAYS},
}


def make_config(base_dir: Path, start: time = time(9, 30)) -> Config:
    """A one-task config in ``base_dir``, its daily start time set directly (seconds too)."""
    raw = {"tasks": {"job": {"family": "daily", "script": fixture("succeed.py")}}}
    return replace(
        build_config(raw, str(base_dir / "config.yaml"), base_dir), daily_start_time=start
    )


def make_project(path: Path, fake_wrappers: bool = False) -> Path:
    """A project folder with the real wrappers (or trivial ones) under scripts/."""
    (path / "scripts").mkdir(parents=True)
    for name in WRAPPERS:
        target = path / "scripts" / name
        if fake_wrappers:
            target.write_text(f'#!/bin/sh\necho "{name} ran in $PWD"\n')
        else:
            shutil.copy(ROOT / "scripts" / name, target)
        target.chmod(0o755)
    return path


@pytest.fixture
def project(tmp_path: Path, calendar_cache: Path) -> Path:
    shutil.copytree(calendar_cache, tmp_path / "project" / "state" / "cache")
    return make_project(tmp_path / "project")


# -- local times ----------------------------------------------------------------


@pytest.mark.parametrize("zone", sorted(EXPECTED))
def test_daily_local_times_per_machine_zone(project: Path, zone: str) -> None:
    times = schedule.daily_local_times(make_config(project), zone, start=YEAR)
    assert {(t.hour, t.minute): t.weekdays for t in times} == EXPECTED[zone]


def test_london_gets_the_earlier_hour_only_in_the_dst_mismatch_weeks(project: Path) -> None:
    config = make_config(project)

    def hours(start: date, days: int) -> set[tuple[int, int]]:
        times = schedule.daily_local_times(config, "Europe/London", start=start, days=days)
        return {(t.hour, t.minute) for t in times}

    # US clocks moved on 8 March 2026, UK clocks on 29 March: three weeks at 13:30.
    assert hours(date(2026, 3, 9), 19) == {(13, 30)}
    assert hours(date(2026, 4, 6), 30) == {(14, 30)}
    assert hours(date(2026, 3, 2), 5) == {(14, 30)}


def test_start_time_with_seconds_is_rounded_up_to_the_minute(project: Path) -> None:
    config = make_config(project, start=time(9, 30, 30))
    times = schedule.daily_local_times(config, "America/New_York", start=YEAR)
    assert [(t.hour, t.minute) for t in times] == [(9, 31)]


def test_intraday_keep_alive_covers_the_local_days_of_exchange_weekdays(project: Path) -> None:
    config = make_config(project)
    assert schedule.intraday_local_weekdays(config, "America/New_York", YEAR) == WEEKDAYS
    assert schedule.intraday_local_weekdays(config, "Asia/Tokyo", YEAR) == (1, 2, 3, 4, 5, 6)
    assert schedule.intraday_local_weekdays(config, "Pacific/Honolulu", YEAR) == (0, 1, 2, 3, 4, 5)


def test_machine_zone_is_read_from_localtime_by_link_or_by_rules(tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    linked.symlink_to("/usr/share/zoneinfo/Europe/London")
    assert schedule.machine_zone(linked) == ZoneInfo("Europe/London")

    copied = tmp_path / "copied"
    shutil.copy("/usr/share/zoneinfo/Europe/London", copied)
    zone = schedule.machine_zone(copied)
    summer, winter = datetime(2026, 7, 1, 12, tzinfo=UTC), datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert summer.astimezone(zone).utcoffset() == timedelta(hours=1)  # its DST rules kept
    assert winter.astimezone(zone).utcoffset() == timedelta(0)

    fixed = schedule.machine_zone(tmp_path / "missing")
    assert fixed == datetime.now(UTC).astimezone().tzinfo  # the current offset only


def test_unknown_zone_is_a_usage_error(project: Path) -> None:
    with pytest.raises(UsageError, match="Mars/Olympus"):
        schedule.daily_local_times(make_config(project), "Mars/Olympus")


# -- cron -----------------------------------------------------------------------


def _field(text: str, low: int, high: int) -> set[int]:
    """Values of one numeric cron field: ``*``, ``*/N``, ``A``, ``A-B``, comma lists."""
    if text == "*":
        return set(range(low, high + 1))
    if match := re.fullmatch(r"\*/([0-9]+)", text):
        return set(range(low, high + 1, int(match.group(1))))
    values: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        assert match, f"bad cron field part {part!r} in {text!r}"
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        assert low <= first <= last <= high, f"{text!r} outside {low}-{high}"
        values.update(range(first, last + 1))
    return values


def parse_cron(text: str) -> list[tuple[tuple[set[int], ...] | str, str]]:
    """``(fields or "@reboot", command)`` for every entry; fails on a malformed line."""
    entries: list[tuple[tuple[set[int], ...] | str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("@"):
            special, command = line.split(" ", 1)
            assert special == "@reboot"
            entries.append((special, command))
            continue
        parts = line.split(None, 5)
        assert len(parts) == 6, f"not 5 fields and a command: {line!r}"
        minute, hour, dom, month, dow, command = parts
        fields = (
            _field(minute, 0, 59),
            _field(hour, 0, 23),
            _field(dom, 1, 31),
            _field(month, 1, 12),
            {day % 7 for day in _field(dow, 0, 7)},
        )
        entries.append((fields, command))
    return entries


def cron_fires(fields: tuple[set[int], ...], local: datetime) -> bool:
    minute, hour, dom, month, dow = fields
    return (
        local.minute in minute
        and local.hour in hour
        and local.day in dom
        and local.month in month
        and local.isoweekday() % 7 in dow
    )


def daily_starts_and_retries(text: str) -> tuple[list[Any], list[Any]]:
    starts, retries = text.split("# Retries")
    return tuple(  # type: ignore[return-value]
        [fields for fields, command in parse_cron(part) if "run-daily" in command]
        for part in (starts, retries.split("\n", 1)[1])
    )


@pytest.mark.parametrize("zone", sorted(EXPECTED))
def test_cron_daily_lines_fire_at_every_exchange_start(project: Path, zone: str) -> None:
    config = make_config(project)
    text = schedule.crontab_block(config, zone, start=YEAR)
    daily, _ = daily_starts_and_retries(text)
    assert {(min(f[1]), min(f[0])) for f in daily} == set(EXPECTED[zone])
    exchange, local = ZoneInfo("America/New_York"), ZoneInfo(zone)
    for offset in range(365):
        day = YEAR + timedelta(days=offset)
        start = datetime.combine(day, time(9, 30), exchange).astimezone(local)
        firing = sum(cron_fires(fields, start) for fields in daily)
        assert firing == (1 if day.weekday() < 5 else 0), f"{day} {start}"


@pytest.mark.parametrize("zone", sorted(EXPECTED))
def test_cron_retries_a_missed_or_failed_daily_run_until_mid_afternoon(
    project: Path, zone: str
) -> None:
    text = schedule.crontab_block(make_config(project), zone, start=YEAR)
    _, retries = daily_starts_and_retries(text)
    exchange, local = ZoneInfo("America/New_York"), ZoneInfo(zone)
    every = timedelta(minutes=schedule.DAILY_RETRY_MINUTES)
    for offset in range(0, 365, 3):
        day = YEAR + timedelta(days=offset)
        start = datetime.combine(day, time(9, 30), exchange)
        if day.weekday() >= 5:
            continue
        for retry in range(1, schedule.DAILY_RETRY_COUNT + 1):
            moment = (start + retry * every).astimezone(local)
            assert any(cron_fires(fields, moment) for fields in retries), f"{moment}"
            between = moment + timedelta(minutes=7)
            assert not any(cron_fires(fields, between) for fields in retries), f"{between}"
        last = (start + schedule.DAILY_RETRY_COUNT * every).astimezone(exchange)
        assert last.time() == time(15, 15)  # before the close


def test_cron_block_commands_and_header(project: Path) -> None:
    config = make_config(project)
    text = schedule.crontab_block(config, "Europe/London", start=YEAR)
    assert "CRON_TZ" not in text
    assert "exchange calendar" in text and "DST" in text and "holidays" in text
    lines = text.splitlines()
    marker = schedule.crontab_marker(config)
    assert lines[0] == f"# BEGIN {marker}" and lines[-1] == f"# END {marker}"
    entries = parse_cron(text)
    logs = project.resolve() / "state" / "logs"
    for _fields, command in entries:
        assert f"{project.resolve()}/scripts/run-" in command
        assert re.search(rf">> {re.escape(str(logs))}/\S+\.log 2>&1$", command)
    intraday = [(fields, cmd) for fields, cmd in entries if "run-intraday" in cmd]
    assert ("@reboot", intraday[-1][1]) in intraday
    every_five = [fields for fields, _ in intraday if fields != "@reboot"]
    assert len(every_five) == 1
    assert every_five[0][0] == set(range(0, 60, 5))  # type: ignore[index]
    assert every_five[0][4] == {1, 2, 3, 4, 5, 6}  # type: ignore[index]


def test_cron_commands_run_from_a_path_with_space_and_percent(tmp_path: Path) -> None:
    project = make_project(tmp_path / "my project %d", fake_wrappers=True)
    text = schedule.crontab_block(make_config(project), "UTC", start=YEAR)
    for _fields, command in parse_cron(text):
        assert re.search(r"(?<!\\)%", command) is None, "unescaped % would end the command"
        # cron turns `\%` into `%` and hands the rest to /bin/sh
        subprocess.run(["sh", "-c", command.replace("\\%", "%")], cwd=tmp_path, check=True)
    logs = project / "state" / "logs"
    assert f"run-daily ran in {tmp_path}" in (logs / schedule.DAILY_LOG).read_text()
    assert "run-intraday ran" in (logs / schedule.INTRADAY_LOG).read_text()


def test_crontab_install_command_replaces_only_this_projects_block(
    project: Path, tmp_path: Path
) -> None:
    config = make_config(project)
    block = tmp_path / "block.crontab"
    block.write_text(schedule.crontab_block(config, "UTC", start=YEAR))
    current = tmp_path / "current.crontab"
    current.write_text("MAILTO=me\n0 3 * * * /usr/bin/backup\n")
    command = schedule.crontab_install_command(config, block)
    assert command.startswith("(crontab -l 2>/dev/null |") and command.endswith("| crontab -")
    simulated = command.replace("crontab -l 2>/dev/null", f"cat {current}").replace(
        "| crontab -", f"> {tmp_path}/next.crontab"
    )
    for _ in range(2):  # idempotent
        subprocess.run(["sh", "-c", simulated], check=True)
        shutil.copy(tmp_path / "next.crontab", current)
    result = current.read_text()
    assert result.startswith("MAILTO=me\n0 3 * * * /usr/bin/backup\n")
    assert result.count("# BEGIN market-pipeline") == 1
    assert result.endswith(block.read_text())


# -- launchd --------------------------------------------------------------------


def test_launchd_plists(project: Path) -> None:
    config = make_config(project)
    plists = {
        name: plistlib.loads(data)
        for name, data in schedule.launchd_plists(config, "Europe/London", YEAR).items()
    }
    assert set(plists) == {"com.market-pipeline.daily.plist", "com.market-pipeline.intraday.plist"}
    daily = plists["com.market-pipeline.daily.plist"]
    intraday = plists["com.market-pipeline.intraday.plist"]
    root = project.resolve()
    for job, wrapper, log in (
        (daily, "run-daily", schedule.DAILY_LOG),
        (intraday, "run-intraday", schedule.INTRADAY_LOG),
    ):
        program = Path(job["ProgramArguments"][0])
        assert program.is_absolute() and program == root / "scripts" / wrapper
        assert os.access(program, os.X_OK)
        assert job["WorkingDirectory"] == str(root)
        assert job["StandardOutPath"] == job["StandardErrorPath"] == str(root / "state/logs" / log)
    assert daily["Label"] == "com.market-pipeline.daily"
    assert daily["RunAtLoad"] is True and "KeepAlive" not in daily
    intervals = {(i["Weekday"], i["Hour"], i["Minute"]) for i in daily["StartCalendarInterval"]}
    assert intervals == {(day, hour, 30) for day in WEEKDAYS for hour in (13, 14)}
    assert intraday["Label"] == "com.market-pipeline.intraday"
    assert intraday["RunAtLoad"] is True and intraday["KeepAlive"] is True
    assert "StartCalendarInterval" not in intraday


def test_launchd_weekdays_shift_past_local_midnight(project: Path) -> None:
    plist = plistlib.loads(
        schedule.launchd_plists(make_config(project), "Australia/Sydney", YEAR)[
            "com.market-pipeline.daily.plist"
        ]
    )
    intervals = {(i["Weekday"], i["Hour"], i["Minute"]) for i in plist["StartCalendarInterval"]}
    assert {(day, 0, 30) for day in SHIFTED} <= intervals
    assert (1, 0, 30) not in intervals  # a Monday 00:30 in Sydney is Sunday in New York


# -- systemd --------------------------------------------------------------------


def read_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_systemd_units(project: Path) -> None:
    texts = schedule.systemd_units(make_config(project))
    units = {name: read_unit(text) for name, text in texts.items()}
    assert set(units) == {
        "market-pipeline-daily.service",
        "market-pipeline-daily.timer",
        "market-pipeline-intraday.service",
    }
    root = project.resolve()
    daily = units["market-pipeline-daily.service"]["Service"]
    assert daily["Type"] == "oneshot"
    assert daily["ExecStart"] == f'"{root}/scripts/run-daily"'
    assert daily["WorkingDirectory"] == str(root)
    assert (daily["Restart"], daily["RestartSec"]) == ("on-failure", "900")  # retried in-session
    timer = units["market-pipeline-daily.timer"]
    assert timer["Timer"]["OnCalendar"] == "Mon..Fri *-*-* 09:30:00 America/New_York"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
    intraday = units["market-pipeline-intraday.service"]
    assert intraday["Service"]["ExecStart"] == f'"{root}/scripts/run-intraday"'
    assert intraday["Service"]["Restart"] == "always"
    assert intraday["Service"]["RestartSec"] == "30"
    assert intraday["Install"]["WantedBy"] == "default.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_accepts_the_units(tmp_path: Path) -> None:
    project = make_project(tmp_path / "a project %i")  # quoting and % escaping too
    config = make_config(project, start=time(9, 30, 15))
    paths = schedule.install("systemd", config, tmp_path / "units", echo=lambda _: None)
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, paths)], capture_output=True, text=True
    )
    if result.returncode and "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "market-pipeline" not in result.stderr, result.stderr
    calendar = read_unit(paths[1].read_text())["Timer"]["OnCalendar"]
    assert calendar.endswith("09:30:15 America/New_York")
    check = subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True)
    assert check.returncode == 0, check.stderr


# -- install --------------------------------------------------------------------


@pytest.mark.parametrize("kind", schedule.KINDS)
def test_install_writes_what_render_returns(project: Path, tmp_path: Path, kind: str) -> None:
    config = make_config(project)
    said: list[str] = []
    dest = tmp_path / "dest"
    paths = schedule.install(kind, config, dest, False, local_zone="UTC", echo=said.append)
    rendered = schedule.render(kind, config, "UTC")
    assert [path.name for path in paths] == list(rendered)
    for path in paths:
        assert path.parent == dest.resolve()
        assert path.read_bytes() == rendered[path.name]
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not list(dest.glob(".*"))  # no temp files left behind
    assert config.logs_dir.is_dir()
    assert any(str(paths[0]) in line for line in said)


@pytest.mark.parametrize(
    ("kind", "default"),
    [
        ("launchd", "home/Library/LaunchAgents"),
        ("systemd", "home/.config/systemd/user"),
        ("cron", "project/state/schedule"),
    ],
)
def test_dry_run_writes_nothing(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, default: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = make_config(project)
    state_before = sorted(config.state_dir.rglob("*"))
    said: list[str] = []
    paths = schedule.install(kind, config, None, True, local_zone="UTC", echo=said.append)
    assert paths and all(path.parent == (tmp_path / default).resolve() for path in paths)
    assert not any(path.exists() for path in paths)
    assert not (tmp_path / "home").exists()
    assert sorted(config.state_dir.rglob("*")) == state_before
    output = "\n".join(said)
    assert all(f"would write {path}" in output for path in paths)


def test_cron_install_prints_lines_and_the_command_but_leaves_the_crontab(
    project: Path, tmp_path: Path
) -> None:
    said: list[str] = []
    config = make_config(project)
    (path,) = schedule.install("cron", config, tmp_path, False, local_zone="UTC", echo=said.append)
    output = "\n".join(said)
    assert path.read_text().rstrip("\n") in output
    assert schedule.crontab_install_command(config, path) in output


def test_install_refuses_unknown_kind_and_missing_wrappers(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with pytest.raises(UsageError, match="unknown scheduler"):
        schedule.install("anacron", config, tmp_path, True)
    with pytest.raises(UsageError, match="run-daily"):
        schedule.install("cron", config, tmp_path, True, echo=lambda _: None)


# -- the wrappers ---------------------------------------------------------------


@pytest.mark.parametrize("name", WRAPPERS)
def test_wrapper_is_an_executable_posix_sh_script(name: str) -> None:
    path = ROOT / "scripts" / name
    assert path.read_text().startswith("#!/bin/sh\n")
    assert os.access(path, os.X_OK)
    assert subprocess.run(["sh", "-n", str(path)]).returncode == 0


FAKE_ORCHESTRATOR = """#!/bin/sh
echo "cwd=$(pwd -P)"
echo "args=$*"
echo "path=${PATH%%:*}"
exit "${FAKE_EXIT:-0}"
"""


@pytest.fixture
def fake_project(project: Path) -> Path:
    venv_bin = project / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "orchestrator").write_text(FAKE_ORCHESTRATOR)
    (venv_bin / "orchestrator").chmod(0o755)
    return project


@pytest.mark.parametrize(
    ("name", "args", "exits"),
    [
        ("run-daily", "--daily --scheduled", {0: 0, 1: 1, 3: 0, 2: 2}),
        ("run-intraday", "--intraday", {0: 0, 1: 1, 3: 0, 2: 2}),
    ],
)
def test_wrapper_runs_the_venv_orchestrator_from_the_project(
    fake_project: Path, tmp_path: Path, name: str, args: str, exits: dict[int, int]
) -> None:
    link = tmp_path / "bin" / name  # called through a symlink, from elsewhere
    link.parent.mkdir()
    link.symlink_to(fake_project / "scripts" / name)
    for code, expected in exits.items():
        env = {"PATH": "/usr/bin:/bin", "FAKE_EXIT": str(code)}
        result = subprocess.run(
            [str(link)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == expected, (code, result.stderr)
        root = fake_project.resolve()
        assert result.stdout.splitlines() == [
            f"cwd={root}",
            f"args={args}",
            f"path={root}/.venv/bin",
        ]


def test_run_intraday_passes_sigterm_to_the_loop(fake_project: Path) -> None:
    (fake_project / ".venv/bin/orchestrator").write_text(
        "#!/bin/sh\n"
        "trap 'echo stopping; exit 7' TERM\n"
        "echo ready\n"
        "while :; do sleep 1 >/dev/null & wait $!; done\n"
    )
    wrapper = subprocess.Popen(
        [str(fake_project / "scripts/run-intraday")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert wrapper.stdout is not None
        assert wrapper.stdout.readline() == "ready\n"
        wrapper.send_signal(signal.SIGTERM)
        output, _ = wrapper.communicate(timeout=30)
    finally:
        wrapper.kill()
    assert output == "stopping\n"
    assert wrapper.returncode == 7


@pytest.mark.parametrize("kind", ["cron", "launchd", "systemd"])
def test_status_and_uninstall_follow_what_install_wrote(
    project: Path, tmp_path: Path, kind: str
) -> None:
    config = make_config(project)
    dest = tmp_path / "dest"
    said: list[str] = []
    assert schedule.status(kind, config, dest, echo=said.append) is False
    assert said and all(line.startswith("missing ") for line in said)

    paths = schedule.install(kind, config, dest, False, echo=lambda _: None)
    said.clear()
    assert schedule.status(kind, config, dest, echo=said.append) is True
    assert said == [f"installed {path}" for path in paths]

    paths[0].write_text(paths[0].read_text() + "# edited by hand\n")
    said.clear()
    assert schedule.status(kind, config, dest, echo=said.append) is False
    assert said[0].startswith(f"outdated  {paths[0]}")

    said.clear()
    assert schedule.uninstall(kind, config, dest, dry_run=True, echo=said.append) == paths
    assert all(path.exists() for path in paths)
    assert schedule.uninstall(kind, config, dest, echo=said.append) == paths
    assert not any(path.exists() for path in paths)
    assert any(line.startswith("  ") for line in said)  # how to unload it from the scheduler
    said.clear()
    assert schedule.uninstall(kind, config, dest, echo=said.append) == []
    assert said[0] == f"no {kind} files of this project are installed"


def test_the_crontab_removal_command_keeps_other_lines(project: Path, tmp_path: Path) -> None:
    config = make_config(project)
    (block,) = schedule.install("cron", config, tmp_path, False, echo=lambda _: None)
    said: list[str] = []
    schedule.uninstall("cron", config, tmp_path, echo=said.append)
    command = said[-1].strip().replace("crontab -l", f"cat {tmp_path / 'crontab'}")
    command = command.removesuffix("| crontab -").strip()
    mine = block.read_text() if block.exists() else schedule.crontab_block(config)
    (tmp_path / "crontab").write_text("0 1 * * * backup\n" + mine + "5 2 * * * other\n")
    kept = subprocess.run(command, shell=True, capture_output=True, text=True, check=True)
    assert kept.stdout == "0 1 * * * backup\n5 2 * * * other\n"
