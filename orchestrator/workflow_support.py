"""What the Snakemake workflow asks of the engine while it is parsed.

``rules/common.smk`` calls these functions: validating the config, deciding
the current session and intraday slots, naming target paths, and the
end-of-run bookkeeping. They live here, importable and tested, so the rule
files stay declarative.

Target paths are relative to the working directory (``state/targets/...``),
exactly as the rules spell them.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from orchestrator import sentinel
from orchestrator.config import Config, build_config, read_yaml
from orchestrator.errors import CalendarRangeError, ConfigError, OrchestratorError, UsageError
from orchestrator.files import write_atomically
from orchestrator.market_calendar import MarketCalendar

TARGETS = Path("state/targets")


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn an ``OrchestratorError`` into a one-line message and exit status 1.

    Snakemake prints an exception raised while parsing with a traceback;
    ``SystemExit`` it passes through as a plain message.
    """
    try:
        yield
    except OrchestratorError as error:
        sys.exit(f"error: {error}")


def pipeline_config(snakemake_config: Mapping[str, Any], configfiles: Iterable[str]) -> Config:
    """Validate Snakemake's merged ``config`` and return the model.

    The config files are re-read strictly first: Snakemake's own YAML loader
    keeps the last of duplicate keys without a word.
    """
    files = [str(path) for path in configfiles]
    for path in files:
        read_yaml(Path(path))
    return build_config(dict(snakemake_config), files[-1] if files else "config")


def session_of_run(config: Config, calendar: MarketCalendar, now: datetime) -> date:
    """The session a run builds: ``--config session=...`` or the current one."""
    if config.session is None:
        return calendar.current_session(now)
    try:
        is_session = calendar.is_session(config.session)
    except CalendarRangeError as error:
        raise UsageError(f"session {config.session}: {error}") from None
    if not is_session:
        raise UsageError(f"session {config.session} is not a {calendar.name} trading day")
    if config.session > calendar.current_session(now):
        raise UsageError(f"session {config.session} has not started yet")
    return config.session


def daily_target(session: date, task: str) -> str:
    return str(sentinel.daily_target(TARGETS, session, task))


def intraday_target(session: date, task: str, slot: str) -> str:
    return str(sentinel.intraday_target(TARGETS, session, task, slot))


def daily_targets(config: Config, session: date) -> list[str]:
    return [daily_target(session, name) for name in config.family("daily")]


def intraday_targets(config: Config, calendar: MarketCalendar, now: datetime) -> list[str]:
    """The current slot of every intraday task due at ``now``; none when closed.

    A task is due in its hours and in its closing slot (see
    ``MarketCalendar.slot_is_due``).
    """
    targets = []
    for name, task in config.family("intraday").items():
        if calendar.slot_is_due(now, task.hours, task.interval_seconds):
            session = calendar.trading_day(now)
            targets.append(
                intraday_target(session, name, calendar.slot(now, task.interval_seconds))
            )
    return targets


def upstream_slot(config: Config, upstream: str, slot: str) -> str:
    """The slot of ``upstream`` that a dependent's slot reads: floored to its interval."""
    interval = config.task(upstream).interval_seconds
    minutes = int(slot[:2]) * 60 + int(slot[2:])
    floored = minutes - minutes % (interval // 60)
    return f"{floored // 60:02d}{floored % 60:02d}"


def check_rules_match_config(config: Config, rule_names: Iterable[str]) -> None:
    """Every task rule has a config entry and every config entry a rule.

    Called from the Snakefile after the rule files are included and before
    the target rules are defined, so ``rule_names`` are the task rules.
    """
    task_rules = set(rule_names)
    configured = set(config.tasks)
    missing_entries = sorted(task_rules - configured)
    if missing_entries:
        raise ConfigError(
            config.source,
            f"tasks.{missing_entries[0]}",
            "the workflow has this rule but the config has no entry for it",
        )
    missing_rules = sorted(configured - task_rules)
    if missing_rules:
        raise ConfigError(
            config.source, f"tasks.{missing_rules[0]}", "no rule in rules/*.smk builds this task"
        )


_UPSTREAM_TARGET = re.compile(r"targets/(?:daily|intraday)/\{session\}/([a-z_][a-z0-9_]*)[./]")


def task_dependencies(rules: Iterable[Any]) -> dict[str, list[str]]:
    """Each rule's upstream tasks, read from its inputs (the one dependency list).

    An input is a target pattern (``state/targets/daily/{session}/assets.json``)
    or an input function carrying the upstream task's name as ``.task``.
    """
    dependencies = {}
    for rule in rules:
        upstream = []
        for item in rule.input:
            match = _UPSTREAM_TARGET.search(item) if isinstance(item, str) else None
            name = match.group(1) if match else getattr(item, "task", None)
            if name:
                upstream.append(name)
        dependencies[rule.name] = upstream
    return dependencies


def record_dependencies(path: Path, dependencies: Mapping[str, list[str]]) -> None:
    """Keep the dependency map at ``path`` for the health monitor (no Snakemake there)."""
    text = json.dumps(dependencies, indent=2, sort_keys=True)
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    write_atomically(path, text)


def _failed_markers(state_dir: Path) -> Path:
    return Path(state_dir) / "run" / "failed"


def note_failed_sentinel(state_dir: Path, path: Path) -> None:
    """Remember a failed non-critical sentinel, so the end-of-run hook removes it."""
    markers = _failed_markers(state_dir)
    markers.mkdir(parents=True, exist_ok=True)
    marker = markers / (str(path).strip("/").replace("/", "__") + ".failed")
    marker.write_text(str(Path(path).resolve()))


def finish_run(state_dir: Path) -> list[str]:
    """Remove the failed sentinels of non-critical tasks; return their paths.

    A failed non-critical task writes a ``failed`` sentinel so its dependents
    run on the last good data; removing it afterwards makes the next run try
    the task again (and refresh what depends on it).
    """
    removed: list[str] = []
    markers = _failed_markers(state_dir)
    if not markers.is_dir():
        return removed
    for marker in sorted(markers.glob("*.failed")):
        target = Path(marker.read_text())
        record = sentinel.read_sentinel(target)
        if record is not None and record.get("status") == sentinel.FAILED:
            target.unlink(missing_ok=True)
            removed.append(str(target))
        marker.unlink(missing_ok=True)
    return removed


def end_of_run(state_dir: Path) -> None:
    """The workflow's ``onsuccess``/``onerror`` hook.

    Non-critical failures did not stop Snakemake (their dependents ran
    degraded), but the run as a whole must still fail, so this exits with
    status 1 once the failed sentinels are cleared (``SystemExit`` is the one
    exception Snakemake reports without a traceback).
    """
    removed = finish_run(state_dir)
    if removed:
        tasks = ", ".join(sorted(sentinel.parse_target(path)[2] for path in removed))
        sys.exit(
            f"error: non-critical task(s) failed: {tasks}; their dependents ran on the last "
            "good data (degraded). See `orchestrator --health` and the task logs under state/logs/."
        )
