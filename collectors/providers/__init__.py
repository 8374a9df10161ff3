"""Data providers and the one place that chooses between them.

``provider_for(settings, calendar)`` builds what a task's collector talks to:
one provider, or a ``ProviderChain`` when the task names several. Each entry
of ``settings`` is one provider's settings with its ``name`` (the runner
writes them into the collector's context: the synthetic market's section,
or a real provider's ``providers.<name>`` section with its defaults, the
universe's ``symbols`` and the shared ``limits_db``). What each provider
serves and the keys it needs are in ``collectors.providers.registry``; its
code is imported only here, when a task uses it. A ``faults`` entry wraps the
provider in ``collectors.providers.faulty`` (fault injection for reliability
tests and the soak benchmark).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from collectors.providers.registry import PROVIDERS
from orchestrator.errors import PermanentError

if TYPE_CHECKING:  # this package is imported by config checks: nothing heavy at import
    from collectors.providers.base import Provider
    from orchestrator.market_calendar import MarketCalendar

__all__ = ["PROVIDERS", "get_provider", "provider_for"]


def get_provider(settings: Mapping[str, Any], calendar: MarketCalendar) -> Provider:
    """The provider named by ``settings["name"]`` (default ``synthetic``)."""
    name = str(settings.get("name", "synthetic"))
    info = PROVIDERS.get(name)
    if info is None:
        known = ", ".join(sorted(PROVIDERS))
        raise PermanentError(f"provider.name: unknown provider {name!r} (known: {known})")
    module_name, _, attribute = info.factory.partition(":")
    factory: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        factory = getattr(factory, part)
    provider: Provider = factory(settings, calendar)
    faults = settings.get("faults")
    if faults:
        from collectors.providers.faulty import wrap

        return wrap(provider, faults)
    return provider


def provider_for(
    settings: Mapping[str, Any] | Sequence[Mapping[str, Any]], calendar: MarketCalendar
) -> Provider:
    """One provider for one settings mapping; a per-symbol fallback chain for several."""
    if isinstance(settings, Mapping):
        return get_provider(settings, calendar)
    if len(settings) == 1:
        return get_provider(settings[0], calendar)
    from collectors.providers.chain import ProviderChain

    universe = next((list(s["symbols"]) for s in settings if s.get("symbols")), [])
    chain = ProviderChain([get_provider(s, calendar) for s in settings], universe)
    return cast("Provider", chain)
