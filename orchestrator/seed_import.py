"""Moving in from the Master Orchestrator: its ``dependency_graph.yaml`` merged into config.yaml.

``orchestrator import-seed PATH/dependency_graph.yaml [--scripts-root DIR] [--dry-run]
[--merge-duplicates]`` calls ``run_import``. It reads the seed's file (every
version seen in the wild: integer or float tiers, daily ``time`` and ``args``
present or not, the later ``retry_policy`` keys, ``notifications``), turns each
of its tasks into a ``script:`` task of this project, checks the graph the way
the old runner should have (a dependency on an unknown task, or on one in the
same or a higher tier, or a cycle, is refused naming both ends), validates the
merged configuration with ``config.build_config`` and only then writes it,
after a backup of the old file beside it. It returns the report the CLI
prints: every task mapped, every key used, every key ignored and why.

Mapping rules (the report repeats the ones that applied):

- ``name`` becomes a task name in lowercase snake_case ("News & Sentiment" is
  ``news_sentiment``); the original is kept as ``label`` (shown on the
  dashboard). Names that would clash get ``_2``, ``_3``; the Snakefile's own
  targets (``daily``, ``intraday``) get ``_task``.
- A name already in config.yaml: a task imported before from the same seed
  task (same ``label``, a ``script:`` task) is replaced, so importing again
  after editing the seed updates it; any other task is left alone and the
  imported one is suffixed ``_seed`` (``_seed_2``, ...).
- ``script`` is taken relative to ``--scripts-root`` (default: the seed file's
  folder, or its parent when the scripts are there, as in the seed's own
  layout ``master_orchestrator/`` beside ``data_collectors/``); it is written
  relative to the project when inside it, else absolute.
- daily ``time`` becomes ``not_before``; ``tier`` is only checked and gives the
  display order; ``dependencies`` become ``needs`` (a dependency on a task of
  the other family is dropped and reported: here intraday tasks read daily data
  from the database); intraday ``interval_minutes`` becomes ``interval``,
  ``market_hours_only: false`` the hours ``[pre, regular, post]``.
- ``retry_policy`` becomes ``defaults.retry`` (``retry_on_failure: false``: one
  attempt).
- ``freshness_thresholds`` are attached to the task whose name (or script)
  holds the source's words; sources whose data changes only while the market
  is open get ``clock: market``, thresholds of a day or more then counted in
  sessions.
- Intraday tasks running the same script with the same args are reported;
  ``--merge-duplicates`` makes one task of them (the first, every slot any of
  them had, in the hours of all, critical if any was).
- ``notifications`` are not imported (alerting is not built); secrets in them
  are never written, and never printed.
- A virtual environment in the scripts' folder (``.venv``, ``venv``, ``env``)
  becomes the tasks' ``python:``.
"""

from __future__ import annotations

import copy
import json
import keyword
import math
import re
import shlex
import shutil
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from orchestrator.config import SCHEMA_PATH, Config, build_config, parse_duration, read_yaml
from orchestrator.errors import ConfigError, UsageError
from orchestrator.files import write_atomically

FAMILY_LISTS = {"daily": "daily_schedule", "intraday": "intraday_schedule"}
COMMON_KEYS = ("name", "script", "tier", "dependencies", "max_runtime_seconds", "critical", "args")
TASK_KEYS = {
    "daily": (*COMMON_KEYS, "time"),
    "intraday": (*COMMON_KEYS, "interval_minutes", "market_hours_only"),
}
# What each key of a seed task becomes here, for the report's "keys used".
KEY_MEANINGS = {
    "name": "the task name (lowercase snake_case) and its `label`",
    "script": "`script` (the seed's path, from the scripts root)",
    "time": "`not_before`: the task starts no earlier than this exchange time "
    "(some old daily runners ignored it)",
    "tier": "checked (a dependency must be in a lower tier), then only the display order",
    "dependencies": "`needs`",
    "max_runtime_seconds": "`max_runtime_seconds` (the whole process group is killed)",
    "critical": "`critical` (a failure stops its dependents; else they run degraded)",
    "args": "`args`, passed to the script (some old daily runners ignored them)",
    "interval_minutes": "`interval`",
    "market_hours_only": "`hours` (false: pre, regular and post)",
}
# Keys of the other family's tasks, when found on a task of this one.
WRONG_FAMILY_REASONS = {
    "time": "an intraday task runs every interval, not at a time of day",
    "interval_minutes": "a daily task runs once per session, not every few minutes",
    "market_hours_only": "a daily task runs once per session, whatever the hours",
}
# The Snakefile's own target rules: a task of that name would replace them.
RESERVED_NAMES = frozenset({"daily", "intraday"})
HOURS_ORDER = ("pre", "regular", "post")
# Length of each scope of a normal session, for counting day-scale thresholds in sessions.
SCOPE_SECONDS = {"pre": 5.5 * 3600, "regular": 6.5 * 3600, "post": 4 * 3600}
DAY = 86400
# The scopes of the XNYS calendar, to compare the seed's market_hours with.
XNYS_HOURS = {
    "pre_market": ("04:00", "09:30"),
    "regular": ("09:30", "16:00"),
    "post_market": ("16:00", "20:00"),
}
# Words of a source whose data changes only while the market is open, and why.
MARKET_CLOCK_WORDS = {
    "price": "prices change only while the market trades",
    "volume": "volume accrues only while the market trades",
    "quote": "quotes change only while the market trades",
    "bar": "bars are made only while the market trades",
    "tick": "ticks come only while the market trades",
    "intraday": "intraday data is made only in market hours",
    "option": "option prices change only while the market trades",
    "feature": "features are computed from prices",
    "signal": "signals are computed from prices",
}
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|key|webhook|credential)", re.I)
_SECRET_ARG = re.compile(r"^--?[\w-]*(password|passwd|secret|token|api[_-]?key)[\w-]*(=.*)?$", re.I)
_URL_CREDENTIALS = re.compile(r"://[^/\s:@]*:[^/\s@]*@")  # scheme://user:password@host
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_VENV_PYTHONS = (".venv/bin/python", "venv/bin/python", "env/bin/python")


@dataclass
class SeedTask:
    """One task of the seed's file, its fields checked; ``name``/``needs`` once mapped."""

    family: str
    where: str  # "daily_schedule[3]": the key errors and the report name
    seed_name: str
    script: Path  # absolute
    args: list[str]
    tier: float | None
    dependencies: list[str]  # seed names
    max_runtime_seconds: float | None
    critical: bool | None
    not_before: str | None = None
    interval_minutes: int | None = None
    hours: list[str] | None = None
    merged: list[str] = field(default_factory=list)  # seed names merged into this one
    name: str = ""
    needs: list[str] = field(default_factory=list)
    freshness: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return " + ".join([self.seed_name, *self.merged])


class KeyLog:
    """The seed's keys: which were used (by pattern, counted) and which ignored, and why."""

    def __init__(self) -> None:
        self.used: dict[str, list[Any]] = {}  # pattern -> [meaning, count]
        self.ignored: list[tuple[str, str]] = []

    def use(self, pattern: str, meaning: str) -> None:
        self.used.setdefault(pattern, [meaning, 0])[1] += 1

    def ignore(self, path: str, why: str) -> None:
        self.ignored.append((path, why))


# -- small conversions ------------------------------------------------------------


def task_name(seed_name: str) -> str:
    """A valid task name (lowercase snake_case) made from a seed task's free-text name."""
    text = unicodedata.normalize("NFKD", seed_name).encode("ascii", "ignore").decode()
    name = "_".join(re.findall(r"[a-z0-9]+", text.lower())) or "task"
    if name[0].isdigit():
        name = f"task_{name}"
    if name in RESERVED_NAMES or keyword.iskeyword(name):
        name = f"{name}_task"
    return name


def human_duration(seconds: float) -> str:
    """``300`` as ``5m``, ``23400`` as ``6.5h``: the form config.yaml uses."""
    for unit, size in (("d", DAY), ("h", 3600)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds >= 3600 and (seconds * 2) % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def _words(text: str) -> frozenset[str]:
    """The words of a name, lowercased and singular, to match sources with tasks."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = set()
    for word in re.findall(r"[a-z]+", ascii_text):
        if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "news")):
            word = word[:-1]
        words.add(word)
    return frozenset(words)


def _clock_time(value: object, seed_path: Path, key: str) -> str:
    """A seed ``time`` as ``HH:MM:SS``.

    Unquoted, YAML reads ``10:15:00`` as the number 36900 (base 60) and
    ``9:30`` as 570: numbers are turned back into times.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        seconds = value * 60 if value < 24 * 60 else value  # 9:30 -> 570 (minutes)
        hour, minute, second = seconds // 3600, seconds % 3600 // 60, seconds % 60
    else:
        match = _CLOCK.match(str(value).strip())
        if not match:
            raise ConfigError(seed_path, key, f"{value!r} is not a time of day (HH:MM:SS)")
        hour, minute, second = (int(part or 0) for part in match.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise ConfigError(seed_path, key, f"{value!r} is not a time of day (HH:MM:SS)")
    return f"{hour:02d}:{minute:02d}:{second:02d}"


def _positive_number(value: object, seed_path: Path, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(seed_path, key, f"{value!r} is not a positive number of seconds")
    return float(value)


def _number_text(value: float) -> int | float:
    """A whole number as an int (``120``, not ``120.0``) in config.yaml."""
    return int(value) if float(value).is_integer() else value


# -- reading the seed's tasks -------------------------------------------------------


def _seed_list(seed: Mapping[str, Any], family: str, seed_path: Path) -> list[dict[str, Any]]:
    key = FAMILY_LISTS[family]
    items = seed.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConfigError(seed_path, key, "must be a list of tasks (each with name and script)")
    return items


def _scripts_root(
    seed: Mapping[str, Any], seed_path: Path, explicit: Path | None
) -> tuple[Path, str]:
    """Where the seed's script paths start, and how it was chosen (for the report)."""
    if explicit is not None:
        root = explicit.expanduser().resolve()
        if not root.is_dir():
            raise UsageError(f"--scripts-root {explicit}: no such folder")
        return root, "--scripts-root"
    folder = seed_path.resolve().parent
    scripts = [
        str(item.get("script", ""))
        for family in FAMILY_LISTS
        for item in _seed_list(seed, family, seed_path)
    ]
    relative = [s for s in scripts if s and not Path(s).is_absolute()]
    if all((folder / s).is_file() for s in relative):
        return folder, "the seed file's folder"
    if all((folder.parent / s).is_file() for s in relative):
        return folder.parent, "the seed file's parent folder, where its scripts are"
    return folder, "the seed file's folder"


def _dependencies(value: object, seed_path: Path, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(seed_path, key, "must be a list of task names")
    return list(dict.fromkeys(value))


def _args(value: object, seed_path: Path, key: str) -> list[str]:
    if value is None:
        return []
    args = shlex.split(value) if isinstance(value, str) else value
    if not isinstance(args, list) or any(isinstance(a, dict | list) for a in args):
        raise ConfigError(seed_path, key, "must be a list of arguments")
    texts = [str(arg) for arg in args]
    for arg in texts:
        if _SECRET_ARG.match(arg):
            raise ConfigError(
                seed_path,
                key,
                f"{arg.split('=')[0]} passes a secret on the command line, which config.yaml "
                "would then hold: have the script read it from the environment (or .env) and "
                "remove it from the args",
            )
    return texts


def _seed_task(
    item: Mapping[str, Any], family: str, where: str, root: Path, seed_path: Path, log: KeyLog
) -> SeedTask:
    """One seed task with its fields checked; its keys logged as used or ignored."""
    pattern = f"{FAMILY_LISTS[family]}[]"
    for required in ("name", "script"):
        if not isinstance(item.get(required), str) or not item[required].strip():
            raise ConfigError(seed_path, f"{where}.{required}", "is missing (text is needed)")
    for key in item:
        if key in TASK_KEYS[family]:
            meaning = KEY_MEANINGS[key]
            if key == "args" and family == "intraday":
                meaning = "`args`, passed to the script"
            log.use(f"{pattern}.{key}", meaning)
        elif key in WRONG_FAMILY_REASONS:
            log.ignore(f"{where}.{key}", WRONG_FAMILY_REASONS[key])
        else:
            log.ignore(f"{where}.{key}", "not a key of the seed's format: nothing to map it to")
    script = Path(item["script"]).expanduser()
    tier = item.get("tier")
    if tier is not None and (isinstance(tier, bool) or not isinstance(tier, int | float)):
        raise ConfigError(seed_path, f"{where}.tier", f"{tier!r} is not a number")
    critical = item.get("critical")
    if critical is not None and not isinstance(critical, bool):
        raise ConfigError(seed_path, f"{where}.critical", f"{critical!r} is not true or false")
    runtime = item.get("max_runtime_seconds")
    task = SeedTask(
        family=family,
        where=where,
        seed_name=item["name"].strip(),
        script=script if script.is_absolute() else root / script,
        args=_args(item.get("args"), seed_path, f"{where}.args"),
        tier=None if tier is None else float(tier),
        dependencies=_dependencies(item.get("dependencies"), seed_path, f"{where}.dependencies"),
        max_runtime_seconds=None
        if runtime is None
        else _positive_number(runtime, seed_path, f"{where}.max_runtime_seconds"),
        critical=critical,
    )
    if family == "daily" and item.get("time") is not None:
        task.not_before = _clock_time(item["time"], seed_path, f"{where}.time")
    if family == "intraday":
        minutes = item.get("interval_minutes", 1)
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int | float)
            or minutes < 1
            or not float(minutes).is_integer()
            or (24 * 60) % int(minutes)
        ):
            raise ConfigError(
                seed_path,
                f"{where}.interval_minutes",
                f"{minutes!r}: slots are whole minutes that divide a day (1, 5, 15, 30, 60)",
            )
        task.interval_minutes = int(minutes)
        market_hours_only = item.get("market_hours_only", True)
        if not isinstance(market_hours_only, bool):
            raise ConfigError(
                seed_path, f"{where}.market_hours_only", f"{market_hours_only!r} is not a boolean"
            )
        task.hours = ["regular"] if market_hours_only else list(HOURS_ORDER)
    return task


def _seed_tasks(
    seed: Mapping[str, Any], seed_path: Path, root: Path, log: KeyLog
) -> list[SeedTask]:
    tasks = []
    for family, list_key in FAMILY_LISTS.items():
        for index, item in enumerate(_seed_list(seed, family, seed_path)):
            tasks.append(_seed_task(item, family, f"{list_key}[{index}]", root, seed_path, log))
    if not tasks:
        raise ConfigError(
            seed_path, "", "no daily_schedule or intraday_schedule tasks: nothing to import"
        )
    seen: dict[tuple[str, str], SeedTask] = {}
    for task in tasks:
        other = seen.setdefault((task.family, task.seed_name), task)
        if other is not task:
            raise ConfigError(
                seed_path,
                f"{task.where}.name",
                f"{task.seed_name!r} is also the name of {other.where}: dependencies name "
                "tasks, so each name must be unique",
            )
    missing = [task for task in tasks if not task.script.is_file()]
    if missing:
        listed = ", ".join(f"{t.script} ({t.where})" for t in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ConfigError(
            seed_path,
            f"{missing[0].where}.script",
            f"no such script: {listed}{more}; pass --scripts-root DIR, the folder the seed's "
            f"script paths start from (looked in {root})",
        )
    return tasks


# -- the graph ----------------------------------------------------------------------


def _find(tasks: list[SeedTask], name: str, family: str) -> SeedTask | None:
    """The task ``name``: of ``family`` first (names are unique within a family)."""
    same = [t for t in tasks if t.seed_name == name and t.family == family]
    other = [t for t in tasks if t.seed_name == name and t.family != family]
    found = same or other
    return found[0] if found else None


def check_graph(tasks: list[SeedTask], seed_path: Path) -> list[str]:
    """Refuse unknown dependencies, dependencies not in a lower tier, and cycles.

    Dependencies on a task of the other family are dropped (here a daily and
    an intraday run never wait on each other): the notes returned say which.
    """
    notes = []
    for task in tasks:
        key = f"{task.where}.dependencies"
        kept = []
        for name in task.dependencies:
            if name == task.seed_name:
                raise ConfigError(seed_path, key, f"{task.seed_name!r} depends on itself")
            other = _find(tasks, name, task.family)
            if other is None:
                raise ConfigError(
                    seed_path,
                    key,
                    f"{task.seed_name!r} depends on {name!r}, which is no task of the file "
                    "(the old runner skipped such a task forever): correct the name",
                )
            if other.family != task.family:
                notes.append(
                    f"{task.seed_name!r} ({task.family}) depended on {name!r} ({other.family}): "
                    f"dropped; {task.family} tasks can only need {task.family} tasks "
                    "(intraday tasks read daily data from the database, and the daily run "
                    "does not wait for the intraday loop), so it may run before that task "
                    "has finished today"
                )
                continue
            if task.tier is not None and other.tier is not None and other.tier >= task.tier:
                where = "the same tier" if other.tier == task.tier else "a higher tier"
                raise ConfigError(
                    seed_path,
                    key,
                    f"{task.seed_name!r} (tier {task.tier:g}) depends on {name!r} "
                    f"(tier {other.tier:g}), {where}: a dependency must be in a lower tier "
                    "(the old runner skipped such a task forever); fix the tiers or the "
                    "dependency",
                )
            kept.append(name)
        task.dependencies = kept
    check_cycles(tasks, seed_path)
    return notes


def check_cycles(tasks: list[SeedTask], seed_path: Path) -> None:
    for family in FAMILY_LISTS:
        members = [t for t in tasks if t.family == family]
        graph = {t.seed_name: t.dependencies for t in members}
        try:
            TopologicalSorter(graph).prepare()
        except CycleError as error:
            cycle = list(reversed(error.args[1]))
            first = next(t for t in members if t.seed_name == cycle[0])
            path = " -> ".join(repr(name) for name in cycle)
            raise ConfigError(
                seed_path,
                f"{first.where}.dependencies",
                f"the dependencies form a cycle: {path} (each depends on the next): "
                "remove one of them",
            ) from None


def find_duplicates(tasks: list[SeedTask]) -> list[list[SeedTask]]:
    """Groups of intraday tasks running the same script with the same args."""
    groups: dict[tuple[Path, tuple[str, ...]], list[SeedTask]] = {}
    for task in tasks:
        if task.family == "intraday":
            groups.setdefault((task.script.resolve(), tuple(task.args)), []).append(task)
    return [group for group in groups.values() if len(group) > 1]


def merge_duplicate_tasks(tasks: list[SeedTask], groups: list[list[SeedTask]]) -> list[SeedTask]:
    """One task per group: the first, run as often, as long and in every hour any needed."""
    dropped: dict[str, str] = {}
    for first, *others in groups:
        for other in others:
            first.merged.append(other.seed_name)
            first.interval_minutes = min(first.interval_minutes or 1, other.interval_minutes or 1)
            first.hours = [
                h for h in HOURS_ORDER if h in {*(first.hours or []), *(other.hours or [])}
            ]
            first.critical = bool(first.critical) or bool(other.critical)
            runtimes = [t.max_runtime_seconds for t in (first, other) if t.max_runtime_seconds]
            first.max_runtime_seconds = max(runtimes) if runtimes else None
            first.dependencies += [d for d in other.dependencies if d not in first.dependencies]
            dropped[other.seed_name] = first.seed_name
    kept = [t for t in tasks if not (t.family == "intraday" and t.seed_name in dropped)]
    for task in kept:
        if task.family == "intraday":
            renamed = [dropped.get(name, name) for name in task.dependencies]
            task.dependencies = [n for n in dict.fromkeys(renamed) if n != task.seed_name]
    return kept


# -- names --------------------------------------------------------------------------


def _imported_before(entry: Mapping[str, Any], label: str) -> bool:
    return isinstance(entry, dict) and entry.get("label") == label and "script" in entry


def assign_names(tasks: list[SeedTask], existing: Mapping[str, Any]) -> tuple[list[str], set[str]]:
    """Give each task its name; returns the report's notes and the existing names replaced."""
    notes = []
    replaced: set[str] = set()
    taken: set[str] = set()
    for task in tasks:
        base = task_name(task.seed_name)
        name, number = base, 2
        while name in taken:  # two seed names making the same task name
            name, number = f"{base}_{number}", number + 1
        if name != base:
            notes.append(f"{task.seed_name!r}: {base!r} is taken by another seed task: {name!r}")
        if name in existing and not _imported_before(existing[name], task.label):
            clash = name
            name, number = f"{clash}_seed", 2
            while name in taken or (
                name in existing and not _imported_before(existing[name], task.label)
            ):
                name, number = f"{clash}_seed_{number}", number + 1
            notes.append(
                f"{task.seed_name!r}: {clash!r} is already a task of config.yaml (not "
                f"imported from this seed task), so it is imported as {name!r}"
            )
        if name in existing:
            replaced.add(name)
        task.name = name
        taken.add(name)
    if replaced:
        notes.append(
            "imported before from this seed (same label), so replaced in place: "
            + ", ".join(t.name for t in tasks if t.name in replaced)
        )
    return notes, replaced


def map_needs(tasks: list[SeedTask]) -> None:
    """Each task's ``needs``: its dependencies' new names (all known: ``check_graph``)."""
    names = {(t.family, t.seed_name): t.name for t in tasks}
    for task in tasks:
        task.needs = [names[(task.family, dependency)] for dependency in task.dependencies]


# -- freshness ----------------------------------------------------------------------


def read_thresholds(
    seed: Mapping[str, Any], seed_path: Path, log: KeyLog
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Source -> {green, yellow} in seconds, from either shape the seed's versions use.

    ``green: {source: s}, yellow: {source: s}`` (the README's) or
    ``source: {green: s, yellow: s}``. Returns notes on what could not be used.
    """
    section = seed.get("freshness_thresholds") or {}
    if not isinstance(section, dict):
        raise ConfigError(seed_path, "freshness_thresholds", "must be a mapping")
    found: dict[str, dict[str, Any]] = {}
    for key, value in section.items():
        if key in ("green", "yellow") and isinstance(value, dict):
            for source, seconds in value.items():
                found.setdefault(str(source), {})[key] = seconds
                log.use(f"freshness_thresholds.{key}.*", "the matching task's `freshness`")
        elif key == "red":
            log.ignore("freshness_thresholds.red", "beyond yellow is red: nothing to set")
        elif isinstance(value, dict) and ({"green", "yellow"} & set(value)):
            for level in ("green", "yellow"):
                if level in value:
                    found.setdefault(str(key), {})[level] = value[level]
            log.use("freshness_thresholds.*.green/yellow", "the matching task's `freshness`")
        else:
            log.ignore(f"freshness_thresholds.{key}", "neither green, yellow nor a source")
    thresholds: dict[str, dict[str, float]] = {}
    notes = []
    for source, levels in found.items():
        try:
            seconds = {level: parse_duration(levels[level]) for level in ("green", "yellow")}
        except KeyError as missing:
            notes.append(f"{source}: has no {missing.args[0]} threshold: not imported")
            continue
        except ValueError as error:
            notes.append(f"{source}: {error}: not imported")
            continue
        if min(seconds.values()) <= 0 or seconds["yellow"] < seconds["green"]:
            notes.append(
                f"{source}: green {levels['green']}, yellow {levels['yellow']} (yellow must "
                "be above green, both above 0): not imported"
            )
            continue
        thresholds[source] = seconds
    return thresholds, notes


def _candidates(source: str, tasks: list[SeedTask]) -> list[SeedTask]:
    """Tasks a source describes: its words are the task's name, or among its name's words,
    or among its script's; with tasks of both families, those that can keep it fresh."""
    words = _words(source)
    names = {id(t): [_words(n) for n in (t.seed_name, *t.merged)] for t in tasks}
    exact = [t for t in tasks if words in names[id(t)]]
    by_name = [t for t in tasks if any(words <= w for w in names[id(t)])]
    by_script = [t for t in tasks if words <= _words(t.script.stem)]
    return exact or by_name or by_script


def attach_thresholds(
    thresholds: Mapping[str, Mapping[str, float]], tasks: list[SeedTask]
) -> list[str]:
    """Give each matched task its source's thresholds; the report's lines about them."""
    lines = []
    for source, seconds in thresholds.items():
        shown = f"green {seconds['green']:g}s, yellow {seconds['yellow']:g}s"
        matched = _candidates(source, tasks)
        families = {t.family for t in matched}
        if len(families) > 1:
            # A source checked within a day needs a task that runs within a day: the
            # intraday one; a slower source is the daily task's.
            family = "intraday" if seconds["yellow"] < DAY else "daily"
            others = [t.name for t in matched if t.family != family]
            matched = [t for t in matched if t.family == family]
            lines.append(
                f"{source}: describes {', '.join(others)} too; its thresholds ({shown}) fit "
                f"the {family} task, so {', '.join(others)} "
                f"{'keeps its' if len(others) == 1 else 'keep their'} family's default"
            )
        if not matched:
            lines.append(
                f"{source} ({shown}): matches no task: not imported (add a `freshness:` to "
                "the task that writes that data)"
            )
            continue
        for task in matched:
            if task.freshness is not None:
                lines.append(
                    f"{source} ({shown}): {task.name} already has the thresholds of "
                    f"{task.freshness['source']}: not attached"
                )
                continue
            task.freshness = _freshness(source, seconds, task)
            lines.append(_freshness_line(task))
    return lines


def _freshness(source: str, seconds: Mapping[str, float], task: SeedTask) -> dict[str, Any]:
    """The task's ``freshness:`` (with the source's name and the reasons, removed on writing)."""
    words = _words(source)
    why = next((MARKET_CLOCK_WORDS[w] for w in MARKET_CLOCK_WORDS if w in words), None)
    if why is None and task.family == "intraday":
        why = "an intraday task collects only in its hours"
    entry: dict[str, Any] = {"source": source, "seconds": dict(seconds), "why": why}
    if why is None:
        entry.update(
            green=human_duration(seconds["green"]), yellow=human_duration(seconds["yellow"])
        )
        entry["clock"] = "wall"
        return entry
    # Market time stops when the market closes: a day of wall time is one session of the
    # task's hours; below a session, wall time and market time run alike.
    session = sum(SCOPE_SECONDS[h] for h in (task.hours or ["regular"]))
    for level in ("green", "yellow"):
        wall = seconds[level]
        market = wall if wall <= session else math.ceil(wall / DAY) * session
        entry[level] = human_duration(market)
    entry["clock"] = "market"
    return entry


def _freshness_line(task: SeedTask) -> str:
    fresh = task.freshness or {}
    seconds = fresh["seconds"]
    line = f"{fresh['source']} -> {task.name}: green {fresh['green']}, yellow {fresh['yellow']}"
    if fresh["clock"] == "market":
        line += f", clock: market ({fresh['why']})"
        converted = [
            f"{level} {seconds[level]:g}s"
            for level in ("green", "yellow")
            if parse_duration(fresh[level]) != seconds[level]
        ]
        if converted:
            line += (
                f"; the seed's {' and '.join(converted)} of wall time are counted in sessions "
                "of market time (a day is one session)"
            )
    else:
        line += ", clock: wall (the data can change at any hour)"
    # The age a source reaches just before its next run, in its own clock.
    if task.family == "intraday":
        between_runs: float = (task.interval_minutes or 1) * 60
    elif fresh["clock"] == "wall":
        between_runs = DAY
    else:
        between_runs = SCOPE_SECONDS["regular"]
    if parse_duration(fresh["yellow"]) < between_runs:
        line += (
            f"\n    warning: {task.name} runs every "
            f"{'session' if task.family == 'daily' else human_duration(between_runs)} but turns "
            f"red {fresh['yellow']} after a run: --health will show it red until its next run, "
            "and --update-stale will re-run it; widen the thresholds if that is not meant"
        )
    return line


# -- the rest of the seed's file -------------------------------------------------------


def read_retry(
    seed: Mapping[str, Any], seed_path: Path, log: KeyLog
) -> tuple[dict[str, Any] | None, list[str]]:
    """``defaults.retry`` from ``retry_policy`` (or None), and notes."""
    policy = seed.get("retry_policy")
    if policy is None:
        return None, []
    if not isinstance(policy, dict):
        raise ConfigError(seed_path, "retry_policy", "must be a mapping")
    retry: dict[str, Any] = {}
    notes = []
    for key, value in policy.items():
        where = f"retry_policy.{key}"
        if key == "max_attempts":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
                raise ConfigError(seed_path, where, f"{value!r}: attempts are 1 to 20")
            retry["attempts"] = value
            log.use(where, "`defaults.retry.attempts` (attempts in all, the first included)")
        elif key == "backoff_seconds":
            given = value if isinstance(value, list) else [value]
            if not given or any(
                isinstance(w, bool) or not isinstance(w, int | float) or w < 0 for w in given
            ):
                raise ConfigError(seed_path, where, f"{value!r} is not a list of seconds")
            retry["backoff_seconds"] = [_number_text(w) for w in given]
            log.use(where, "`defaults.retry.backoff_seconds` (the last wait repeats)")
        elif key == "retry_on_failure":
            log.use(where, "false: one attempt (the old runners ignored it; here it counts)")
        elif key == "network_timeout_seconds":
            log.ignore(
                where,
                "the orchestrator makes no network calls for your scripts (they keep their "
                "own timeouts); the hard limit of an attempt is the task's max_runtime_seconds",
            )
        elif key == "connection_retry_delay":
            log.ignore(where, "a retry waits defaults.retry.backoff_seconds")
        else:
            log.ignore(where, "not a key of the seed's retry_policy")
    if policy.get("retry_on_failure") is False:
        retry["attempts"] = 1
        notes.append("retry_on_failure is false: one attempt, no retries")
    if not retry:
        return None, notes
    attempts: int | None = retry.get("attempts")
    waits: list[Any] | None = retry.get("backoff_seconds")
    if attempts and waits and len(waits) > attempts - 1:
        unused = len(waits) - (attempts - 1)
        notes.append(
            f"{attempts} attempts make {attempts - 1} retries: "
            + (
                f"the last of the {len(waits)} waits {waits} is"
                if unused == 1
                else f"the last {unused} of the {len(waits)} waits {waits} are"
            )
            + " never used"
        )
    return retry, notes


def check_market_hours(
    seed: Mapping[str, Any], seed_path: Path, config: Config, log: KeyLog
) -> list[str]:
    """Compare the seed's ``market_hours`` with the calendar's, which decide here."""
    section = seed.get("market_hours")
    if section is None:
        return []
    if not isinstance(section, dict):
        raise ConfigError(seed_path, "market_hours", "must be a mapping")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    notes = []
    # The same instants, in winter and in summer: two names of one zone agree on both.
    sample = datetime(2026, 1, 15, 17, tzinfo=UTC), datetime(2026, 7, 15, 16, tzinfo=UTC)
    calendar_zone = ZoneInfo(config.timezone)
    for scope, hours in section.items():
        where = f"market_hours.{scope}"
        if scope not in XNYS_HOURS or not isinstance(hours, dict):
            log.ignore(where, "not regular, pre_market or post_market")
            continue
        log.use(
            "market_hours.*",
            f"compared with the {config.calendar_name} calendar's hours, which apply",
        )
        zone = str(hours.get("timezone") or config.timezone)
        try:
            same_zone = all(
                m.astimezone(ZoneInfo(zone)).utcoffset() == m.astimezone(calendar_zone).utcoffset()
                for m in sample
            )
        except (ZoneInfoNotFoundError, ValueError):
            same_zone = False
        if not same_zone:
            notes.append(
                f"{where}.timezone {zone!r} is not the calendar's {config.timezone!r}: every "
                f"time here is {config.timezone} time (not_before included); check them"
            )
        seed_hours = (str(hours.get("start", "")), str(hours.get("end", "")))
        if config.calendar_name == "XNYS" and seed_hours != XNYS_HOURS[scope]:
            start, end = XNYS_HOURS[scope]
            notes.append(
                f"{where}: the seed says {seed_hours[0]}-{seed_hours[1]}; the calendar's "
                f"{start}-{end} apply (and its half days and holidays)"
            )
    return notes


def alerting_available() -> bool:
    """Whether this install sends alerts (its config.yaml has an ``alerts:`` section)."""
    return "alerts" in json.loads(SCHEMA_PATH.read_text()).get("properties", {})


def _first(settings: Mapping[str, Any], *keys: str) -> Any:
    return next((settings[key] for key in keys if settings.get(key) not in (None, "")), None)


def alert_urls(section: Mapping[str, Any]) -> list[str]:
    """apprise URLs for the seed's e-mail and Slack settings, secrets left as placeholders."""
    urls = []
    email = section.get("email")
    if isinstance(email, dict) and email.get("enabled", True) is not False:
        server = _first(email, "smtp_server", "smtp_host", "server", "host") or "SERVER"
        port = _first(email, "smtp_port", "port") or 587
        sender = _first(email, "sender", "from", "from_address", "from_email") or "SENDER"
        to = _first(email, "recipients", "to", "recipient", "to_addresses") or "ADDRESS"
        to_text = ",".join(map(str, to)) if isinstance(to, list) else str(to)
        urls.append(f"mailtos://USER:PASSWORD@{server}:{port}?from={sender}&to={to_text}")
    slack = section.get("slack")
    if isinstance(slack, dict) and slack.get("enabled", True) is not False:
        channel = str(_first(slack, "channel") or "")
        urls.append("slack://TOKEN_A/TOKEN_B/TOKEN_C" + (f"/{channel}" if channel else ""))
    return urls


def read_notifications(seed: Mapping[str, Any], log: KeyLog) -> list[str]:
    """What becomes of the seed's notifications; secrets named by key, never by value."""
    section = seed.get("notifications")
    if section is None:
        return []
    if not isinstance(section, dict):
        log.ignore("notifications", "not a mapping")
        return []
    alerting = alerting_available()
    secrets: list[str] = []
    settings: list[str] = []

    def walk(value: object, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}")
            return
        key = path.rsplit(".", 1)[-1]
        if _SECRET_KEY.search(key) or (isinstance(value, str) and _URL_CREDENTIALS.search(value)):
            secrets.append(path)
            log.ignore(path, "a secret: never written to config.yaml (nor shown here)")
        else:
            settings.append(f"{path} = {value!r}")
            log.ignore(
                path,
                "destinations belong in ORCHESTRATOR_ALERT_URLS (see Notifications)"
                if alerting
                else "alerting is not built yet (issue 13): not imported",
            )

    walk(section, "notifications")
    if alerting:
        lines = [
            "Not copied into config.yaml: alerts go through apprise to the destinations in "
            "ORCHESTRATOR_ALERT_URLS (the environment or .env, never config.yaml: they carry "
            "passwords and tokens); when to alert is config.yaml's `alerts:` (its defaults "
            "apply). The seed's settings:",
        ]
    else:
        lines = [
            "NOT imported: this orchestrator has no e-mail or Slack alerts yet (issue 13 plans "
            "them, their destinations read from ORCHESTRATOR_ALERT_URLS in the environment or "
            ".env, never from config.yaml). Until then, run `orchestrator --health` from cron "
            "or your monitor (exit 1 yellow, 2 red). The seed's settings, for then:",
        ]
    lines += [f"  {line}" for line in settings]
    lines += [f"  {path}: a secret, written nowhere and not shown" for path in secrets]
    urls = alert_urls(section)
    if urls:
        lines += [
            "Set in the environment or .env (not config.yaml), for these destinations "
            "(apprise URLs; see apprise's documentation for the options):",
            f'  ORCHESTRATOR_ALERT_URLS="{" ".join(urls)}"',
            "  with USER and PASSWORD the SMTP login (the seed's smtp_password) and "
            "TOKEN_A/TOKEN_B/TOKEN_C the three parts of the Slack webhook URL's path"
            + ("; then `orchestrator alerts test`" if alerting else ""),
        ]
    if secrets:
        lines.append(
            "  the seed file still holds its secrets in plain text: keep that file private"
        )
    return lines


# -- the merged config -------------------------------------------------------------


def _script_text(script: Path, project: Path) -> str:
    resolved = script.resolve()
    if resolved.is_relative_to(project):
        return str(resolved.relative_to(project))
    return str(resolved)


def config_entry(
    task: SeedTask, project: Path, python: str | None, workdir: str | None = None
) -> dict[str, Any]:
    """The task's entry under ``tasks:`` in config.yaml."""
    entry: dict[str, Any] = {"family": task.family, "label": task.label}
    if task.needs:
        entry["needs"] = list(task.needs)
    entry["script"] = _script_text(task.script, project)
    if task.args:
        entry["args"] = list(task.args)
    if python:
        entry["python"] = python
    if workdir:  # their project root: the working directory and PYTHONPATH they had
        entry["workdir"] = workdir
    if task.not_before:
        entry["not_before"] = task.not_before
    if task.family == "intraday":
        entry["interval"] = f"{task.interval_minutes}m"
        entry["hours"] = list(task.hours or ["regular"])
    if task.max_runtime_seconds is not None:
        entry["max_runtime_seconds"] = _number_text(task.max_runtime_seconds)
    if task.critical is not None:
        entry["critical"] = task.critical
    if task.freshness is not None:
        entry["freshness"] = {key: task.freshness[key] for key in ("green", "yellow", "clock")}
    return entry


def _read_existing(config_path: Path) -> tuple[dict[str, Any], bool]:
    """The current config.yaml (or an empty one), and whether the file exists."""
    if not config_path.exists():
        return {"tasks": {}}, False
    raw = read_yaml(config_path)
    if raw.get("tasks") is None:
        raw["tasks"] = {}
    if not isinstance(raw["tasks"], dict):
        raise ConfigError(config_path, "tasks", "must be a mapping of tasks")
    return raw, True


def _validate_existing(raw: Mapping[str, Any], config_path: Path, project: Path) -> None:
    if not raw["tasks"]:
        return  # nothing to check yet: the merged config is checked in full
    try:
        build_config(raw, str(config_path), project)
    except ConfigError as error:
        raise ConfigError(
            error.path,
            error.key,
            f"{error.problem} (config.yaml does not load as it is: fix it, then import again)",
        ) from None


def _interpreter(root: Path) -> str | None:
    """A virtual environment's Python in the scripts' folder: the one their runner used."""
    for relative in _VENV_PYTHONS:
        candidate = root / relative
        if candidate.is_file():
            return str(candidate)
    return None


def _retry_text(retry: Mapping[str, Any]) -> str:
    waits = ", ".join(f"{w:g}s" for w in retry.get("backoff_seconds", []))
    return f"{retry.get('attempts', 3)} attempts, waits {waits or '-'}"


def _retry_lines(
    retry: dict[str, Any] | None, notes: list[str], raw: dict[str, Any], imported: set[str]
) -> list[str]:
    """Set ``defaults.retry`` in ``raw``; the report's lines about it."""
    if retry is None:
        return ["no retry_policy: defaults.retry of config.yaml applies", *notes]
    defaults = raw.setdefault("defaults", {})
    before = {"attempts": 3, "backoff_seconds": [10, 30, 60], **(defaults.get("retry") or {})}
    after = {**before, **retry}
    defaults["retry"] = {"attempts": after["attempts"], "backoff_seconds": after["backoff_seconds"]}
    lines = [f"defaults.retry: {_retry_text(after)} (retry_policy)"]
    if before != after:
        inheriting = [
            name
            for name, task in raw["tasks"].items()
            if name not in imported and not (isinstance(task, dict) and "retry" in task)
        ]
        lines.append(f"  was: {_retry_text(before)}")
        if inheriting:
            lines.append(
                f"  tasks already in config.yaml that set no retry of their own inherit it too: "
                f"{', '.join(inheriting)}"
            )
    return lines + notes


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


TABLE_HEADER = ["task", "label", "family", "needs", "timeout", "critical", "interval", "hours"]
NEEDS_WIDTH = 40  # longer lists of needs go below the table, so it stays readable


def _task_rows(tasks: list[SeedTask], config: Config) -> list[str]:
    rows = [[*TABLE_HEADER, "not_before"]]
    long_needs = []
    for task in tasks:
        model = config.pipeline.tasks[task.name]
        needs = ", ".join(task.needs) or "-"
        if len(needs) > NEEDS_WIDTH:
            long_needs.append(f"  {task.name} needs: {needs}")
            needs = f"{len(task.needs)} tasks, below"
        intraday = task.family == "intraday"
        rows.append(
            [
                task.name,
                task.label,
                task.family,
                needs,
                f"{model.max_runtime_seconds:g}s"
                + (" (default)" if task.max_runtime_seconds is None else ""),
                ("yes" if model.critical else "no")
                + (" (default)" if task.critical is None else ""),
                f"{model.interval_seconds // 60}m" if intraday else "-",
                ", ".join(model.hours) if intraday else "-",
                task.not_before or "-",
            ]
        )
    return _table(rows) + long_needs


def _backup(config_path: Path) -> Path:
    stamp = datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
    backup = config_path.with_name(f"{config_path.name}.bak-{stamp}")
    number = 2
    while backup.exists():  # two imports within a second
        backup = config_path.with_name(f"{config_path.name}.bak-{stamp}-{number}")
        number += 1
    shutil.copy2(config_path, backup)
    return backup


# -- the command ---------------------------------------------------------------------

SEED_SECTIONS = (
    *FAMILY_LISTS.values(),
    "market_hours",
    "freshness_thresholds",
    "retry_policy",
    "notifications",
)


@dataclass
class ImportPlan:
    """Everything an import decided: the merged config, and what the report says of it."""

    seed_path: Path
    config_path: Path
    project: Path
    root: Path
    root_reason: str
    tasks: list[SeedTask]
    merged: dict[str, Any]  # the whole config.yaml to write
    entries: dict[str, dict[str, Any]]  # the imported tasks' entries
    config: Config  # the merged config, validated
    existed: bool
    kept: list[str]  # tasks of config.yaml left as they were
    python: str | None
    log: KeyLog
    sections: dict[str, list[str]]  # report section title -> its lines


def plan_import(
    config_path: Path, seed_path: Path, scripts_root: Path | None, merge_duplicates: bool
) -> ImportPlan:
    """Read and check the seed, map its tasks, merge and validate; write nothing."""
    project = Path.cwd().resolve()
    seed = read_yaml(seed_path)
    log = KeyLog()
    for key in seed:
        if key not in SEED_SECTIONS:
            log.ignore(str(key), "not a key of the seed's format: nothing to map it to")
    root, root_reason = _scripts_root(seed, seed_path, scripts_root)
    tasks = _seed_tasks(seed, seed_path, root, log)
    dependency_notes = check_graph(tasks, seed_path)
    duplicates = find_duplicates(tasks)
    duplicate_lines = [_duplicate_line(group, merge_duplicates) for group in duplicates]
    if merge_duplicates and duplicates:
        tasks = merge_duplicate_tasks(tasks, duplicates)
        check_cycles(tasks, seed_path)  # a merge can close a cycle
    # Tiers are a display order: config order within a family follows them.
    tasks.sort(key=lambda t: (t.family != "daily", t.tier if t.tier is not None else math.inf))

    raw, existed = _read_existing(config_path)
    _validate_existing(raw, config_path, project)
    name_notes, replaced = assign_names(tasks, raw["tasks"])
    map_needs(tasks)
    thresholds, threshold_notes = read_thresholds(seed, seed_path, log)
    freshness_lines = attach_thresholds(thresholds, tasks) + threshold_notes
    retry, retry_notes = read_retry(seed, seed_path, log)
    python = _interpreter(root)

    # Scripts outside the project run in their own project's root, as their runner ran them.
    workdir = None if root.resolve().is_relative_to(project) else str(root.resolve())
    entries = {task.name: config_entry(task, project, python, workdir) for task in tasks}
    merged = copy.deepcopy(raw)
    merged["tasks"].update(entries)  # a replaced task keeps its place, new ones come last
    retry_lines = _retry_lines(retry, retry_notes, merged, set(entries))
    try:
        config = build_config(merged, str(config_path), project)
    except ConfigError as error:
        raise ConfigError(
            error.path,
            error.key,
            f"{error.problem} (the imported config would not load; nothing was written)",
        ) from None
    no_threshold = [t.name for t in tasks if t.freshness is None]
    if no_threshold:
        freshness_lines.append(
            "no threshold in the seed, so their family's default (defaults.freshness): "
            + ", ".join(no_threshold)
        )
    freshness_lines.append(
        "freshness is measured from each task's last successful run (the seed's own database "
        "is not read: give a task freshness.data_time_sql and freshness.database to measure "
        "its newest stored row instead)"
    )
    sections = {
        "Names and dependencies": name_notes + dependency_notes,
        "Duplicates": duplicate_lines,
        "Freshness (from freshness_thresholds)": freshness_lines,
        "Retry": retry_lines,
        "Market hours": check_market_hours(seed, seed_path, config, log),
        "Notifications": read_notifications(seed, log),
    }
    return ImportPlan(
        seed_path=seed_path,
        config_path=config_path,
        project=project,
        root=root,
        root_reason=root_reason,
        tasks=tasks,
        merged=merged,
        entries=entries,
        config=config,
        existed=existed,
        kept=[name for name in raw["tasks"] if name not in replaced],
        python=python,
        log=log,
        sections=sections,
    )


def _duplicate_line(group: list[SeedTask], merging: bool) -> str:
    names = " and ".join(repr(t.seed_name) for t in group)
    command = " ".join([group[0].script.name, *group[0].args])
    outcome = (
        f"merged into one task (every {min(t.interval_minutes or 1 for t in group)}m, in the "
        "hours of both)"
        if merging
        else "both kept (pass --merge-duplicates to run it once)"
    )
    return f"{names} run the same script with the same args ({command}): {outcome}"


def write_config(plan: ImportPlan) -> Path | None:
    """Back up config.yaml beside it, then write the merged one; the backup's path."""
    import yaml

    backup = _backup(plan.config_path) if plan.existed else None
    header = (
        f"# Written by `orchestrator import-seed {plan.seed_path}` on "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M}.\n"
        + (f"# The previous file, with its comments, is {backup.name}.\n" if backup else "")
    )
    text = yaml.safe_dump(plan.merged, sort_keys=False, allow_unicode=True)
    write_atomically(plan.config_path, header + text)
    return backup


def render_report(plan: ImportPlan, dry_run: bool, backup: Path | None) -> str:
    """The report: every task mapped, what else was decided, every key used and ignored."""
    import yaml

    verb = "Would import" if dry_run else "Imported"
    where = plan.config_path if plan.existed else f"{plan.config_path} (a new file)"
    lines = [f"{verb} {len(plan.tasks)} tasks from {plan.seed_path} into {where}."]
    if dry_run:
        lines.append("Dry run: nothing was written.")
    elif backup is not None:
        lines.append(
            f"Backup of the previous file: {backup}. config.yaml was rewritten by a YAML "
            "writer, which drops comments: the backup keeps them."
        )
    inside = plan.root.is_relative_to(plan.project)
    lines.append(
        f"Scripts: from {plan.root} ({plan.root_reason}), written "
        + ("relative to the project." if inside else "as absolute paths (outside the project).")
    )
    lines += ["", "Tasks (config order; the needs decide the run order):"]
    lines += _task_rows(plan.tasks, plan.config)
    if plan.kept:
        lines.append(
            f"  and the {len(plan.kept)} tasks config.yaml had, kept as they were (they run "
            f"too: remove those the imported ones replace): {', '.join(plan.kept)}"
        )
    for title, section in plan.sections.items():
        if section:
            lines += ["", f"{title}:", *(f"  {line}" for line in section)]
    lines += ["", "Keys used:"]
    used = plan.log.used.items()
    lines += _table([[pattern, f"({count})", meaning] for pattern, (meaning, count) in used])
    if plan.log.ignored:
        lines += ["", "Keys ignored:", *_table([[p, why] for p, why in plan.log.ignored])]
    lines += ["", "How the scripts run:"]
    lines.append(
        f"  with {plan.python} (the virtual environment in the scripts' folder)"
        if plan.python
        else f"  with this orchestrator's Python ({sys.executable}), unless you set "
        "defaults.python (or python: per task) to the interpreter that ran them"
    )
    inside = plan.root.resolve().is_relative_to(plan.project)
    folder = plan.project if inside else plan.root.resolve()
    lines.append(
        f"  in {folder}, which is also first on PYTHONPATH"
        + ("" if inside else " (their own project root: workdir: on each task), as before")
    )
    lines.append(
        "  exit 0 is success, any other status a failure (retried); records are counted from "
        'their output ("Inserted 85 records")'
    )
    if dry_run:
        lines += ["", "Resulting tasks (what config.yaml would hold under tasks:):"]
        lines += [
            "  " + line for line in yaml.safe_dump(plan.entries, sort_keys=False).splitlines()
        ]
        retry = plan.merged.get("defaults", {}).get("retry")
        if retry is not None:
            retry_yaml = yaml.safe_dump({"defaults": {"retry": retry}}, sort_keys=False)
            lines += ["and:", *("  " + line for line in retry_yaml.splitlines())]
    lines += [
        "",
        "Next: `orchestrator --check-config`, `orchestrator graph`, `orchestrator --daily "
        "--dry-run`, then `orchestrator --daily` and `orchestrator --intraday`.",
    ]
    return "\n".join(lines)


def run_import(
    config_path: Path,
    seed_path: Path,
    *,
    scripts_root: Path | None,
    dry_run: bool,
    merge_duplicates: bool,
) -> str:
    """Merge the seed's tasks into ``config_path``; the report to print.

    Relative script paths are written relative to the project folder, the
    working directory (the CLI changes to it), as ``load_config`` reads them.
    Refused cases raise ``ConfigError`` (naming the seed's key) or ``UsageError``;
    nothing is written then, nor with ``dry_run``.
    """
    plan = plan_import(Path(config_path), Path(seed_path), scripts_root, merge_duplicates)
    backup = None if dry_run else write_config(plan)
    return render_report(plan, dry_run, backup)
