"""Data providers and the one place that chooses between them.

``get_provider(settings, calendar)`` reads the config's ``provider`` section.
``name`` picks the implementation; the rest of the section is passed to it.
Credentials for real providers come from the environment (e.g.
``<NAME>_API_KEY``), never from the config; none is built yet. A ``faults``
entry wraps the provider in ``collectors.providers.faulty`` (fault injection
for reliability tests and the soak benchmark).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from collectors.providers.base import Provider
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

__all__ = ["KNOWN_PROVIDERS", "Provider", "get_provider"]


def _synthetic(settings: Mapping[str, Any], calendar: MarketCalendar) -> Provider:
    from collectors.providers.synthetic import SyntheticProvider

    return SyntheticProvider.from_settings(settings, calendar)


# name -> factory; a real provider adds one line here (and reads its key from os.environ).
KNOWN_PROVIDERS: Mapping[str, Callable[[Mapping[str, Any], MarketCalendar], Provider]] = (
    MappingProxyType({"synthetic": _synthetic})
)


def get_provider(settings: Mapping[str, Any], calendar: MarketCalendar) -> Provider:
    """The provider named by ``settings["name"]`` (default ``synthetic``)."""
    name = str(settings.get("name", "synthetic"))
    factory = KNOWN_PROVIDERS.get(name)
    if factory is None:
        known = ", ".join(sorted(KNOWN_PROVIDERS))
        raise PermanentError(f"provider.name: unknown provider {name!r} (known: {known})")
    provider = factory(settings, calendar)
    faults = settings.get("faults")
    if faults:
        from collectors.providers.faulty import wrap

        return wrap(provider, faults)
    return provider
