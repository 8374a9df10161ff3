"""The pipeline configuration: loading, validation and the typed model.

``config.yaml`` is checked in three steps before anything runs, and the first
problem stops with one ``ConfigError`` naming the file, the key and what is
wrong:

1. YAML syntax, with duplicate keys rejected (PyYAML would silently keep the
   last one, so a task pasted twice would lose its first settings);
2. the JSON schema ``config.schema.json`` (unknown keys, types, ranges);
3. rules a schema cannot say: yellow below green, an unknown collector, a
   missing or non-executable script, a calendar that does not exist, a
   ``market.timezone`` that is not the calendar's, ``needs:`` naming an unknown
   task or one of another family, a cycle.

Defaults are written once, in the schema, and filled from it
(``with_defaults``). The validated mapping becomes a frozen ``Config`` holding
the ``Pipeline`` model. Snakemake runs hand the
runner the same settings through an *effective config* JSON file written
under ``state/run/`` (it carries ``--config`` overrides too), so a task never
re-validates YAML on its own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from orchestrator.database import StoreURL, store_url
from orchestrator.errors import ConfigError
from orchestrator.files import write_atomically
from orchestrator.market_calendar import calendar_exists
from orchestrator.pipeline import Freshness, Pipeline, RetryPolicy, TaskConfig, TaskResources

SCHEMA_PATH = Path(__file__).with_name("config.schema.json")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)$")
# Fixed, relative to the working directory: rules name their targets
# "state/targets/..." literally, and `snakemake -d DIR` moves the whole tree.
STATE_DIR = "state"


def parse_duration(value: float | int | str) -> float:
    """Seconds in ``value``: a number of seconds, or ``"90s"``, ``"5m"``, ``"24h"``, ``"2d"``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a duration (a number of seconds, 0 or more)")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration")
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration (use seconds or 30s, 5m, 24h, 2d)")
    return float(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]


def parse_clock_time(value: str) -> time:
    """``HH:MM`` or ``HH:MM:SS`` as a ``time``."""
    return time.fromisoformat(value)


# -- the model ------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """The validated configuration; paths are absolute."""

    source: str
    base_dir: Path
    calendar_name: str
    timezone: str  # the calendar's own zone (``market.timezone`` may only repeat it)
    provider: Mapping[str, Any]  # the synthetic market's settings, or the default's name
    state_dir: Path
    daily_cores: int
    daily_start_time: time
    loop_interval_seconds: float
    settle_seconds: float
    keep_sessions: int
    pipeline: Pipeline
    session: date | None = None
    now: datetime | None = None
    # Real providers' settings (their defaults filled in) and the universe they collect.
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    universe: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def status_store(self) -> StoreURL:
        """``stores.status``: a SQLite file (the default ``state/status.db``) or PostgreSQL."""
        return store_url(self.raw["stores"]["status"], self.base_dir)

    @property
    def market_store(self) -> StoreURL:
        """``stores.market``: a SQLite file (the default ``state/market.db``) or PostgreSQL."""
        return store_url(self.raw["stores"]["market"], self.base_dir)

    @property
    def status_db(self) -> Path:
        """The status store's SQLite file (``state/status.db`` when it is on PostgreSQL)."""
        return self.status_store.path or self.state_dir / "status.db"

    @property
    def market_db(self) -> Path:
        """The market store's SQLite file (``state/market.db`` when it is on PostgreSQL)."""
        return self.market_store.path or self.state_dir / "market.db"

    @property
    def targets_dir(self) -> Path:
        return self.state_dir / "targets"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def locks_dir(self) -> Path:
        return self.state_dir / "locks"

    @property
    def limits_db(self) -> Path:
        """The providers' shared rate-limit buckets (every process of this machine)."""
        return self.cache_dir / "rate_limits.db"

    def provider_settings(self, task: TaskConfig) -> list[dict[str, Any]]:
        """What ``task``'s collector is given: each provider's settings, in chain order."""
        chain = []
        for name in task.providers:
            if name == "synthetic":
                chain.append({**self.provider, "name": "synthetic"})
            else:
                chain.append(
                    {
                        **self.providers[name],
                        "name": name,
                        "symbols": list(self.universe),
                        "limits_db": str(self.limits_db),
                        "cache_dir": str(self.cache_dir),
                    }
                )
        return chain

    @property
    def runs_dir(self) -> Path:
        """Per-run bookkeeping of Snakemake runs (their failure markers)."""
        return self.state_dir / "run" / "runs"


# -- loading --------------------------------------------------------------------


@functools.cache
def _strict_loader() -> type:
    """A SafeLoader that refuses duplicate keys instead of keeping the last.

    Built on first use: importing PyYAML costs the health monitor's fast path
    (which reads a cached, already validated config) time it does not need.
    LibYAML's parser where PyYAML has it: a tenth of the pure-Python one's
    time (0.1 s a read of config.yaml, and each intraday tick reads it).
    """
    import yaml

    class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if key in mapping:
                line = key_node.start_mark.line + 1
                raise ConfigError(loader.name, str(key), f"duplicate key on line {line}")
            mapping[key] = loader.construct_object(value_node, deep=True)
        return mapping

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse ``path`` strictly; syntax errors and duplicate keys become ``ConfigError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(path, "", f"cannot read the file ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            path,
            "",
            f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}): save it as UTF-8",
        ) from None
    import yaml

    try:
        loader = _strict_loader()(text)
        loader.name = str(path)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(path, "", f"YAML syntax error at {where}: {error.problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(path, "", "the top level must be a mapping of keys")
    return data


def _dotted(parts: Iterable[object]) -> str:
    return ".".join(str(part) for part in parts)


def _schema_error(source: str, config: Mapping[str, Any]) -> ConfigError | None:
    import jsonschema

    schema = _schema()
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    duration_schema = schema["$defs"]["duration"]
    delay_schema = schema["$defs"]["delay"]
    # best_match descends into a oneOf's branches; a bad duration reads better as a whole.
    parent = error.parent
    if parent is not None and parent.schema.get("oneOf") in (
        duration_schema["oneOf"],
        delay_schema["oneOf"],
    ):
        error = parent
    key = _dotted(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return ConfigError(source, _dotted([*error.absolute_path, extra[0]]), "unknown key")
    if error.validator == "oneOf" and error.schema.get("oneOf") == duration_schema["oneOf"]:
        return ConfigError(
            source,
            key,
            f"{error.instance!r} is not a positive duration (seconds, or 30s, 5m, 24h, 2d)",
        )
    if error.validator == "oneOf" and error.schema.get("oneOf") == delay_schema["oneOf"]:
        return ConfigError(
            source, key, f"{error.instance!r} is not a wait (seconds, 0 or more, or 30s, 5m)"
        )
    if error.validator == "oneOf":
        return ConfigError(source, key, "needs exactly one of `collector` or `script`")
    if error.validator == "required":
        return ConfigError(source, key or "(top level)", error.message)
    return ConfigError(source, key or "(top level)", error.message)


def with_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with every default of the schema filled in.

    The schema is the one place defaults are written (as Snakemake's own
    ``validate(..., set_default=True)`` does it): each ``properties`` entry
    with a ``default`` is set where missing, recursively. Task settings that
    inherit from ``defaults:`` carry no default of their own in the schema.
    """
    import copy

    import jsonschema

    base = jsonschema.Draft202012Validator

    def fill_properties(
        validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]
    ) -> Iterable[Any]:
        if validator.is_type(instance, "object"):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    filler = jsonschema.validators.extend(base, {"properties": fill_properties})
    filled = copy.deepcopy(dict(raw))
    filler(_schema()).validate(filled)
    return filled


@functools.cache
def _schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text()))


def check_needs(source: str, tasks: Mapping[str, Mapping[str, Any]]) -> None:
    """Every ``needs:`` names another task of the same family, and they form no cycle."""
    from graphlib import CycleError, TopologicalSorter

    for name, task in tasks.items():
        for need in task.get("needs", ()):
            key = f"tasks.{name}.needs"
            if need == name:
                raise ConfigError(source, key, f"{name!r} cannot need itself")
            if need not in tasks:
                raise ConfigError(
                    source, key, f"{need!r} is not a task (tasks: {', '.join(tasks)})"
                )
            if tasks[need]["family"] != task["family"]:
                other = tasks[need]["family"]
                raise ConfigError(
                    source,
                    key,
                    f"{need!r} is {'an' if other == 'intraday' else 'a'} {other} task, and "
                    f"{task['family']} tasks "
                    f"can only need {task['family']} tasks (intraday tasks read daily data "
                    "from the market database)",
                )
    graph = {name: task.get("needs", ()) for name, task in tasks.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        cycle = list(reversed(error.args[1]))[:-1]
        # Start at the task that comes first in the file, so the message is stable.
        first = min(range(len(cycle)), key=lambda i: list(tasks).index(cycle[i]))
        cycle = [*cycle[first:], *cycle[:first], cycle[first]]
        raise ConfigError(
            source,
            f"tasks.{cycle[0]}.needs",
            f"the needs form a cycle: {' -> '.join(cycle)} (each needs the next)",
        ) from None


def _check_script(source: str, where: str, script_text: str, base_dir: Path) -> None:
    import os

    script = Path(script_text)
    script = script if script.is_absolute() else base_dir / script
    if not script.is_file():
        raise ConfigError(source, f"{where}.script", f"no such file {script}")
    if script.suffix != ".py" and not os.access(script, os.X_OK):
        raise ConfigError(
            source,
            f"{where}.script",
            f"{script} is not executable (chmod +x it, or use a .py file, run with Python)",
        )


def _check_semantics(source: str, config: Mapping[str, Any], base_dir: Path) -> str:
    """Rules a schema cannot say; returns the calendar's timezone."""
    import importlib.util

    from orchestrator.market_calendar import load_calendar

    market = config.get("market", {})
    calendar_name = market.get("calendar", "XNYS")
    cache_dir = base_dir / STATE_DIR / "cache"
    if not calendar_exists(calendar_name, cache_dir):
        raise ConfigError(source, "market.calendar", f"unknown exchange calendar {calendar_name!r}")
    zone = str(load_calendar(calendar_name, cache_dir).tz)
    if "timezone" in market and market["timezone"] != zone:
        raise ConfigError(
            source,
            "market.timezone",
            f"{market['timezone']!r} is not the {calendar_name} calendar's timezone {zone!r}; "
            "remove the key (the calendar has its zone) or set it to that",
        )
    thresholds = [
        (f"tasks.{name}.freshness", task.get("freshness")) for name, task in config["tasks"].items()
    ] + [
        (f"defaults.freshness.{family}", freshness)
        for family, freshness in config.get("defaults", {}).get("freshness", {}).items()
    ]
    for where, freshness in thresholds:
        if freshness:
            green, yellow = parse_duration(freshness["green"]), parse_duration(freshness["yellow"])
            if yellow < green:
                raise ConfigError(
                    source, f"{where}.yellow", f"{freshness['yellow']!r} is below green"
                )
    for name, task in config["tasks"].items():
        where = f"tasks.{name}"
        if name in ("daily", "intraday"):
            raise ConfigError(
                source,
                where,
                f"{name!r} is the name of a Snakefile target: name the task otherwise",
            )
        if "collector" in task:
            module = f"collectors.{task['collector']}"
            if importlib.util.find_spec(module) is None:
                raise ConfigError(
                    source, f"{where}.collector", f"no collector module {module} in collectors/"
                )
        if "script" in task:
            _check_script(source, where, task["script"], base_dir)
        if task["family"] == "daily" and ("interval" in task or "hours" in task):
            key = "interval" if "interval" in task else "hours"
            raise ConfigError(source, f"{where}.{key}", "only intraday tasks have slots and hours")
        if task.get("shards", 1) > 1:
            _check_sharding(source, name, task, config["tasks"])
        if "interval" in task:
            seconds = parse_duration(task["interval"])
            if seconds < 60 or seconds % 60 or 86400 % seconds:
                raise ConfigError(
                    source, f"{where}.interval", "must be whole minutes that divide a day (1m, 5m)"
                )
    check_needs(source, config["tasks"])
    _check_providers(source, config, base_dir)
    for key, url in config.get("stores", {}).items():
        try:
            store_url(url, base_dir)
        except ValueError as error:
            raise ConfigError(source, f"stores.{key}", str(error)) from None
    if "session" in config:
        try:
            date.fromisoformat(config["session"])
        except ValueError:
            raise ConfigError(source, "session", f"{config['session']!r} is not a date") from None
    if "now" in config:
        try:
            moment = datetime.fromisoformat(config["now"])
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ConfigError(source, "now", "must be ISO 8601 with a UTC offset")
        wall = datetime.now(UTC)
        if moment > wall:
            raise ConfigError(
                source,
                "now",
                f"{config['now']} is later than the wall clock ({wall:%Y-%m-%dT%H:%M:%SZ}): "
                "the clock may be replayed into the past, never ahead",
            )
    return zone


def _check_sharding(
    source: str, name: str, task: Mapping[str, Any], tasks: Mapping[str, Any]
) -> None:
    """A sharded task is daily, and its join rule's name is no task's."""
    from orchestrator.pipeline import JOIN_RULE_SUFFIX

    if task["family"] != "daily":
        raise ConfigError(
            source,
            f"tasks.{name}.shards",
            "only daily tasks can be sharded (an intraday tick would pay every shard job's "
            "start-up each minute)",
        )
    join = f"{name}{JOIN_RULE_SUFFIX}"
    if join in tasks:
        raise ConfigError(
            source,
            f"tasks.{join}",
            f"{join!r} is the name of the rule joining {name}'s shards: name the task otherwise",
        )


def _task_providers(task: Mapping[str, Any], default: str) -> tuple[str, ...]:
    named = task.get("provider", default)
    return (named,) if isinstance(named, str) else tuple(named)


def _check_providers(source: str, config: Mapping[str, Any], base_dir: Path) -> None:
    """Each task's providers serve its kind of data; a real provider has a universe."""
    from collectors.providers.registry import COLLECTOR_KINDS, PROVIDERS, providers_serving

    default = config.get("provider", {}).get("name", "synthetic")
    real = False
    for name, task in config["tasks"].items():
        kind = COLLECTOR_KINDS.get(task.get("collector", ""))
        chain = _task_providers(task, default)
        real = real or (task.get("collector") is not None and chain != ("synthetic",))
        for provider in chain:
            if kind is not None and kind not in PROVIDERS[provider].serves:
                key = f"tasks.{name}.provider" if "provider" in task else "provider.name"
                raise ConfigError(
                    source,
                    key,
                    f"{provider} does not serve {kind} (what the {task['collector']} collector "
                    f"needs); providers that do: {', '.join(providers_serving(kind))}",
                )
    if real or "universe" in config:
        universe_symbols(source, config.get("universe") or {}, base_dir)


def universe_symbols(source: str, universe: Mapping[str, Any], base_dir: Path) -> tuple[str, ...]:
    """The configured symbols: ``universe.symbols`` and those of ``universe.symbols_file``."""
    symbols = list(universe.get("symbols", []))
    if "symbols_file" in universe:
        path = base_dir / universe["symbols_file"]
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise ConfigError(
                source, "universe.symbols_file", f"cannot read {path} ({reason})"
            ) from None
        for number, line in enumerate(lines, 1):
            symbol = line.split("#", 1)[0].strip()
            if not symbol:
                continue
            if not re.fullmatch(r"[A-Z][A-Z0-9.\-]{0,9}", symbol):
                raise ConfigError(
                    source,
                    "universe.symbols_file",
                    f"{path} line {number}: {symbol!r} is not a ticker symbol",
                )
            symbols.append(symbol)
    if not symbols:
        raise ConfigError(
            source,
            "universe",
            "real providers collect the symbols you name: set universe.symbols "
            "(e.g. [AAPL, MSFT, SPY]) or universe.symbols_file",
        )
    return tuple(dict.fromkeys(symbols))


def _task_model(
    name: str, task: Mapping[str, Any], defaults: Mapping[str, Any], default_provider: str
) -> TaskConfig:
    """One task of a defaults-filled config; unset settings inherit from ``defaults:``."""
    retry = {**defaults["retry"], **task.get("retry", {})}
    resources = {**defaults["resources"], **task.get("resources", {})}
    freshness = task.get("freshness") or defaults["freshness"][task["family"]]
    intraday = task["family"] == "intraday"
    return TaskConfig(
        name=name,
        family=task["family"],
        needs=tuple(task["needs"]),
        collector=task.get("collector"),
        script=task.get("script"),
        args=tuple(task["args"]),
        critical=bool(task.get("critical", defaults["critical"])),
        max_runtime_seconds=parse_duration(
            task.get("max_runtime_seconds", defaults["max_runtime_seconds"])
        ),
        retry=RetryPolicy(
            attempts=int(retry["attempts"]),
            backoff_seconds=tuple(parse_duration(v) for v in retry["backoff_seconds"]),
        ),
        freshness=Freshness(
            green=parse_duration(freshness["green"]),
            yellow=parse_duration(freshness["yellow"]),
            clock=freshness["clock"],
            data_time_sql=freshness.get("data_time_sql"),
            database=freshness.get("database"),
        ),
        # A daily task's period is its whole session.
        interval_seconds=int(parse_duration(task["interval"])) if intraday else 86400,
        hours=tuple(task["hours"]) if intraday else ("regular",),
        not_before=parse_clock_time(task["not_before"]) if "not_before" in task else None,
        options=dict(task["options"]),
        providers=_task_providers(task, default_provider),
        python=task.get("python", defaults.get("python")),
        label=task.get("label"),
        workdir=task.get("workdir"),
        resources=TaskResources(
            mem_mb=resources.get("mem_mb"),
            cpus_per_task=resources.get("cpus_per_task"),
            slurm_partition=resources.get("slurm_partition"),
        ),
        shards=int(task["shards"]),
    )


def _model(raw: Mapping[str, Any], source: str, base_dir: Path) -> Config:
    """The ``Config`` of a validated, defaults-filled mapping."""
    pipeline = Pipeline(
        {
            name: _task_model(name, task, raw["defaults"], raw["provider"]["name"])
            for name, task in raw["tasks"].items()
        }
    )
    return Config(
        source=source,
        base_dir=base_dir,
        calendar_name=raw["market"]["calendar"],
        timezone=raw["market"]["timezone"],
        provider=dict(raw["provider"]),
        state_dir=base_dir / STATE_DIR,
        daily_cores=int(raw["daily"]["cores"]),
        daily_start_time=parse_clock_time(raw["daily"]["start_time"]),
        loop_interval_seconds=float(raw["intraday"]["loop_interval_seconds"]),
        settle_seconds=_settle_seconds(raw["intraday"], pipeline),
        keep_sessions=int(raw["intraday"]["keep_sessions"]),
        pipeline=pipeline,
        session=date.fromisoformat(raw["session"]) if "session" in raw else None,
        now=datetime.fromisoformat(raw["now"]) if "now" in raw else None,
        providers=_real_providers(raw),
        universe=(
            universe_symbols(source, raw["universe"], base_dir) if raw.get("universe") else ()
        ),
        raw=dict(raw),
    )


# A script's source is unknown: it gets the delay of a real provider.
DEFAULT_SETTLE_SECONDS = 2.0


def _settle_seconds(intraday: Mapping[str, Any], pipeline: Pipeline) -> float:
    """``intraday.settle_seconds``, else the longest delay of the intraday tasks' providers.

    The synthetic market's bar is final as its minute ends; a real provider
    serves it final a moment later (``ProviderInfo.bar_settle_seconds``).
    """
    if "settle_seconds" in intraday:
        return float(intraday["settle_seconds"])
    from collectors.providers.registry import PROVIDERS

    delays = [
        PROVIDERS[name].bar_settle_seconds
        if task.collector and name in PROVIDERS
        else DEFAULT_SETTLE_SECONDS
        for task in pipeline
        if task.family == "intraday"
        for name in task.providers
    ]
    return max(delays, default=DEFAULT_SETTLE_SECONDS)


def _real_providers(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every real provider's settings: the registry's defaults under the config's own."""
    from collectors.providers.registry import PROVIDERS

    return {
        name: {**info.defaults, **raw.get("providers", {}).get(name, {})}
        for name, info in PROVIDERS.items()
        if name != "synthetic"
    }


def schema_stamp(base_dir: Path) -> Path:
    """The file that remembers the last config content the schema accepted in a project."""
    return Path(base_dir) / STATE_DIR / "run" / "schema-accepted.json"


def _content_key(raw: Mapping[str, Any]) -> str | None:
    """A digest of ``raw`` and the schema, the same whatever the keys' order; ``None`` if
    it has keys that are not all text (no sorting them)."""
    try:
        # default=repr: a date and its text are different contents to the schema.
        canonical = json.dumps(raw, sort_keys=True, default=repr)
    except TypeError:
        return None
    return _blake2b_hex(canonical.encode(), SCHEMA_PATH.read_bytes())


def _schema_accepted(raw: Mapping[str, Any], source: str, stamp: Path | None) -> dict[str, Any]:
    """A copy of ``raw`` with the schema's defaults filled in, once the schema accepts it.

    Importing jsonschema costs about 0.3 s, more than the rest of a workflow's
    parse. With a ``stamp``, the last content accepted is remembered with its
    filled copy (as JSON, the form every task reads its config in), so one
    content is checked once: by ``orchestrator``, not again by the Snakemake
    run it starts, nor by each parse of an unchanged workflow. A new content
    replaces it; one the schema refuses is never remembered.
    """
    # A pinned clock moves with every run of a replay (``orchestrator`` hands its
    # Snakemake run the moment it has reached): as text, all the schema asks of it, it
    # is left out of the content and put back, and _check_semantics checks it in full.
    clock = {"now": raw["now"]} if isinstance(raw.get("now"), str) else {}
    content = {name: value for name, value in raw.items() if name not in clock}
    key = _content_key(content) if stamp is not None else None
    if stamp is not None and key is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            remembered = json.loads(stamp.read_text())
            if remembered["key"] == key:
                return {**remembered["filled"], **clock}
    error = _schema_error(source, raw)
    if error is not None:
        raise error
    filled = with_defaults(content)
    if stamp is None or key is None:
        return {**filled, **clock}
    text = json.dumps({"key": key, "filled": filled}, default=str)
    with contextlib.suppress(OSError):  # a read-only state folder: check again next time
        write_atomically(stamp, text)
    return {**json.loads(text)["filled"], **clock}


def build_config(
    raw: Mapping[str, Any],
    source: str,
    base_dir: Path | None = None,
    stamp: Path | None = None,
) -> Config:
    """Validate ``raw`` (the parsed YAML plus overrides), fill its defaults, build the model.

    Relative paths (``state_dir``, scripts) are taken from ``base_dir``, by
    default the current directory, as Snakemake does. With a ``stamp``
    (``schema_stamp``), content the schema accepted last time is not checked
    against it again; the checks outside the schema always run.
    """
    base = Path(base_dir or Path.cwd()).resolve()
    filled = _schema_accepted(raw, source, stamp)
    filled["market"]["timezone"] = _check_semantics(source, raw, base)
    return _model(filled, source, base)


def load_config(
    path: Path | str, overrides: Mapping[str, Any] | None = None, stamp: Path | None = None
) -> Config:
    """Read, validate and model the config file at ``path``."""
    raw = read_yaml(Path(path))
    raw.update(overrides or {})
    return build_config(raw, str(path), stamp=stamp)


# -- the effective config handed to tasks -----------------------------------


def _blake2b_hex(*parts: bytes) -> str:
    try:  # hashlib.blake2b without hashlib's OpenSSL import (~2 ms on the health path)
        from _blake2 import blake2b
    except ImportError:
        from hashlib import blake2b
    digest = blake2b(digest_size=8)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _effective_payload(config: Config) -> str:
    return json.dumps(
        {"source": config.source, "base_dir": str(config.base_dir), "raw": config.raw},
        # Not sorted: the tasks' order is the config's (health and the summary list them so).
        default=str,
    )


def write_effective_config(config: Config) -> Path:
    """Write ``config`` as JSON under ``state/run/`` and return the file's path.

    The name carries a content hash, so concurrent runs with the same
    settings share one file and runs with different settings never clash.
    """
    payload = _effective_payload(config)
    path = config.state_dir / "run" / f"config-{_blake2b_hex(payload.encode())}.json"
    if not path.exists():
        write_atomically(path, payload)
    return path


def read_effective_config(path: Path | str) -> Config:
    """The ``Config`` stored by ``write_effective_config`` (validated when written)."""
    payload = json.loads(Path(path).read_text())
    return _model(payload["raw"], payload["source"], Path(payload["base_dir"]))


def load_config_cached(path: Path | str) -> Config:
    """``load_config``, validating each distinct file content only once.

    For the health monitor, which must start in a few hundredths of a
    second: jsonschema and PyYAML cost more than that. A stamp
    ``state/run/validated-<hash>.json`` (hash of the file's bytes, the
    schema, the path and the working directory) holds the validated
    model; without one, ``load_config`` validates fully (``ConfigError``
    on a problem) and writes it. Checks outside the file (a collector that
    disappeared) are not repeated on the fast path: the monitor runs no task.
    """
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError:
        return load_config(path)  # raises the ConfigError naming the file
    base = Path.cwd().resolve()
    digest = _blake2b_hex(content, SCHEMA_PATH.read_bytes(), str(path).encode(), str(base).encode())
    stamp = base / STATE_DIR / "run" / f"validated-{digest}.json"
    try:
        return read_effective_config(stamp)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    # Stamped for the schema too: the workflow's parse of the same content skips it.
    config = load_config(path, stamp=schema_stamp(base))
    with contextlib.suppress(OSError):  # a read-only state folder: validate next time too
        write_atomically(stamp, _effective_payload(config))
    return config
