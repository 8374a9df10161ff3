"""``orchestrator providers``: what each provider serves, whether its keys are set, and a check.

- ``providers`` lists every provider: the kinds of data it serves, the tasks
  of this config that use it, and each environment variable it needs, *set*
  or *missing* (never a value);
- ``providers check [NAME]`` makes one cheap authenticated call per real
  provider the config uses (or NAME) and says ok, or what to fix;
- ``providers record NAME --symbols A,B --out DIR`` (for a maintainer with
  keys) saves the real responses of a small run, keys scrubbed, so the test
  fixtures can be refreshed from the real API and compared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from orchestrator.config import Config
from orchestrator.errors import OrchestratorError, UsageError
from orchestrator.secrets import redact


def list_providers(config: Config) -> str:
    """Per provider: what it is, the kinds it serves, the tasks using it, its keys' state."""
    from collectors.providers.registry import COLLECTOR_KINDS, PROVIDERS

    blocks = []
    for name, info in PROVIDERS.items():
        used_by = [
            task.name
            for task in config.pipeline
            if task.collector in COLLECTOR_KINDS and name in task.providers
        ]
        keys = ", ".join(
            f"{credential.variable} {'set' if credential.value() else 'missing'}"
            for credential in info.credentials
        )
        blocks.append(
            f"{name}: {info.about}\n"
            f"  serves:  {', '.join(sorted(info.serves))}\n"
            f"  used by: {', '.join(used_by) or '-'}\n"
            f"  keys:    {keys or 'none needed'}"
        )
    return "\n".join(blocks)


def real_provider_settings(config: Config, name: str) -> dict[str, Any]:
    """The settings a task using ``name`` would hand its provider."""
    if name not in config.providers:
        known = ", ".join(sorted(config.providers))
        raise UsageError(f"{name!r} is not a real provider (real providers: {known})")
    return {
        **config.providers[name],
        "name": name,
        "symbols": list(config.universe) or ["SPY"],
        "limits_db": str(config.limits_db),
        "cache_dir": str(config.cache_dir),
    }


def check_providers(config: Config, only: str | None) -> tuple[str, bool]:
    """One line per provider checked, and whether all were ok."""
    from collectors.providers import get_provider
    from orchestrator.market_calendar import load_calendar

    used = sorted({name for task in config.pipeline for name in task.providers} - {"synthetic"})
    names = [only] if only else used
    if not names:
        return "no task uses a real provider (every task's provider is synthetic)", True
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    lines, ok = [], True
    for name in names:
        try:
            provider = get_provider(real_provider_settings(config, name), calendar)
            lines.append(f"ok      {provider.check()}")  # type: ignore[attr-defined]
        except UsageError:
            raise
        except OrchestratorError as error:
            ok = False
            message = redact(str(error))
            lines.append(f"FAILED  {message if message.startswith(name) else f'{name}: {message}'}")
    return "\n".join(lines), ok


def record_responses(config: Config, name: str, symbols: list[str], out: Path) -> list[Path]:
    """Run a small fetch of each kind ``name`` serves, saving every JSON response, scrubbed."""
    from datetime import UTC, datetime, timedelta

    from collectors.providers import get_provider
    from collectors.providers.registry import PROVIDERS
    from orchestrator.market_calendar import load_calendar

    calendar = load_calendar(config.calendar_name, config.cache_dir)
    settings = {**real_provider_settings(config, name), "symbols": symbols}
    provider = get_provider(settings, calendar)
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def save(response: Any, *_: Any, **__: Any) -> None:
        path = re.sub(r"[^A-Za-z0-9]+", "_", response.request.path_url.split("?")[0]).strip("_")
        target = out / f"{len(saved) + 1:03d}_{path[:80]}.json"
        try:
            body = json.dumps(response.json(), indent=2)
        except ValueError:
            body = json.dumps({"status": response.status_code, "text": response.text[:2000]})
        target.write_text(redact(body) + "\n")
        saved.append(target)

    provider.http.session.hooks["response"].append(save)  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    last = calendar.previous_session(now.astimezone(calendar.tz).date())
    sessions = calendar.sessions_in_range(last - timedelta(days=10), last)[-5:]
    month_ago = sessions[0] - timedelta(days=25)
    hours = calendar.hours(last)
    # One small call of each kind the provider serves.
    calls = {
        "universe": lambda: provider.universe(now),
        "daily_bars": lambda: provider.daily_bars(symbols, sessions),
        "intraday_bars": lambda: provider.intraday_bars(
            symbols, last, hours.open, hours.open + timedelta(minutes=30)
        ),
        "news": lambda: provider.news(symbols, sessions[0], now),
        "fundamentals": lambda: provider.fundamentals(symbols, month_ago, now),
        "insider_trades": lambda: provider.insider_trades(symbols, month_ago, now),
        "analyst_ratings": lambda: provider.analyst_ratings(symbols, month_ago, now),
        "economic_series": lambda: provider.economic_series(month_ago, now),
        "options_chain": lambda: provider.options_chain(symbols, last, now),
        "earnings": lambda: provider.earnings_calendar(symbols, month_ago, now),
    }
    for kind in sorted(PROVIDERS[name].serves):
        calls[kind]()
    return saved
