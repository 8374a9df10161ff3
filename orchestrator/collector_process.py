"""The child process that runs one built-in collector once.

The runner starts ``python -m orchestrator.collector_process`` for each
attempt of a task whose config names a ``collector``. This module builds the
``CollectContext``, calls ``collectors.<name>.collect``, and turns the outcome
into the runner's protocol: a JSON result in ``ORCHESTRATOR_RESULT_FILE`` and
an exit code from ``sysexits.h``:

- 0 success;
- 75 transient (``TransientError``, a locked database, a connection or
  timeout error): the runner retries;
- 65 bad data (``PermanentError``), 78 bad configuration, 70 a bug: not retried.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sqlite3
import sys
import traceback
from datetime import date, datetime
from pathlib import Path
from typing import Any

from orchestrator.config import read_effective_config
from orchestrator.errors import ConfigError, PermanentError, TransientError
from orchestrator.logs import log_to_stderr
from orchestrator.market_calendar import load_calendar
from orchestrator.secrets import redact
from orchestrator.task_runner import EXIT_CONFIG, EXIT_DATA, EXIT_SOFTWARE, EXIT_TRANSIENT

logger = logging.getLogger(__name__)


def _write_result(result: dict[str, Any]) -> None:
    path = os.environ.get("ORCHESTRATOR_RESULT_FILE")
    if path:
        Path(path).write_text(json.dumps(result, default=str))


def _is_transient_sqlite(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def run_collector(args: argparse.Namespace) -> int:
    from collectors.context import CollectContext

    config = read_effective_config(args.config_json)
    task = config.task(args.task)
    context = CollectContext(
        task=task.name,
        session=args.session,
        as_of=args.as_of,
        now=args.now,
        market_db=config.market_db,
        calendar=load_calendar(config.calendar_name, config.cache_dir),
        provider_settings=config.provider,
        options=task.options,
        slot=args.slot,
    )
    module = importlib.import_module(f"collectors.{task.collector}")
    result = module.collect(context)
    _write_result(
        {
            "records_processed": result.records_processed,
            "rows_rejected": result.rows_rejected,
            "data_as_of": result.data_as_of.isoformat() if result.data_as_of else None,
            "details": dict(result.details),
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.collector_process")
    parser.add_argument("--config-json", required=True, type=Path)
    parser.add_argument("--task", required=True)
    parser.add_argument("--session", required=True, type=date.fromisoformat)
    parser.add_argument("--slot")
    parser.add_argument("--as-of", required=True, type=datetime.fromisoformat)
    parser.add_argument("--now", required=True, type=datetime.fromisoformat)
    args = parser.parse_args(argv)
    log_to_stderr()
    try:
        return run_collector(args)
    except TransientError as error:
        _write_result({"error": redact(str(error)), "retry_after_seconds": error.retry_after})
        return EXIT_TRANSIENT
    except (ConnectionError, TimeoutError) as error:
        _write_result({"error": redact(f"{type(error).__name__}: {error}")})
        return EXIT_TRANSIENT
    except sqlite3.OperationalError as error:
        _write_result({"error": redact(f"database: {error}")})
        return EXIT_TRANSIENT if _is_transient_sqlite(error) else EXIT_SOFTWARE
    except ConfigError as error:
        _write_result({"error": redact(str(error))})
        return EXIT_CONFIG
    except PermanentError as error:
        _write_result({"error": redact(str(error))})
        return EXIT_DATA
    except Exception as error:  # a bug: keep the traceback in the task's log
        traceback.print_exc()
        _write_result({"error": redact(f"{type(error).__name__}: {error}")})
        return EXIT_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
