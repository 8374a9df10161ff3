"""The child process that runs one built-in collector once.

The runner starts ``python -m orchestrator.collector_process --context FILE
--now T`` for each attempt of a task whose config names a ``collector``; FILE
holds the run's whole context (written once by the runner, so this process
reads no config). This module builds the ``CollectContext``, calls
``collectors.<name>.collect``, and turns the outcome into the runner's
protocol: a JSON result in ``ORCHESTRATOR_RESULT_FILE`` and an exit code
(``orchestrator.errors.TaskExit``):

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

from orchestrator.errors import ConfigError, PermanentError, TaskExit, TransientError
from orchestrator.logs import log_to_stderr
from orchestrator.market_calendar import load_calendar
from orchestrator.secrets import redact
from orchestrator.state_check import damaged_database

logger = logging.getLogger(__name__)


def _write_result(result: dict[str, Any]) -> None:
    path = os.environ.get("ORCHESTRATOR_RESULT_FILE")
    if path:
        Path(path).write_text(json.dumps(result, default=str))


def _is_transient_sqlite(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()  # "busy or unreachable": a PostgreSQL server (database.py)
    return "locked" in text or "busy" in text


def run_collector(context_file: Path, now: datetime) -> int:
    from collectors.context import CollectContext
    from orchestrator.sharding import Shard

    saved = json.loads(context_file.read_text())
    context = CollectContext(
        task=saved["task"],
        session=date.fromisoformat(saved["session"]),
        as_of=datetime.fromisoformat(saved["as_of"]),
        now=now,
        market_db=saved["market_db"],  # a SQLite file or a PostgreSQL URL
        calendar=load_calendar(saved["calendar"], Path(saved["calendar_cache"])),
        provider_settings=saved["provider"],
        options=saved["options"],
        slot=saved["slot"],
        shard=Shard(*saved["shard"]) if saved.get("shard") else None,
    )
    module = importlib.import_module(f"collectors.{saved['collector']}")
    result = module.collect(context)
    _write_result(
        {
            "records_processed": result.records_processed,
            "rows_rejected": result.rows_rejected,
            "data_as_of": result.data_as_of.isoformat() if result.data_as_of else None,
            "details": dict(result.details),
        }
    )
    return TaskExit.OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.collector_process")
    parser.add_argument("--context", required=True, type=Path, help="written by the runner")
    parser.add_argument("--now", required=True, type=datetime.fromisoformat)
    args = parser.parse_args(argv)
    log_to_stderr()
    try:
        return run_collector(args.context, args.now)
    except TransientError as error:
        _write_result({"error": redact(str(error)), "retry_after_seconds": error.retry_after})
        return TaskExit.TRANSIENT
    except (ConnectionError, TimeoutError) as error:
        _write_result({"error": redact(f"{type(error).__name__}: {error}")})
        return TaskExit.TRANSIENT
    except sqlite3.OperationalError as error:
        _write_result({"error": redact(f"database: {error}")})
        return TaskExit.TRANSIENT if _is_transient_sqlite(error) else TaskExit.SOFTWARE
    except sqlite3.DatabaseError as error:
        damage = damaged_database(Path(os.environ.get("ORCHESTRATOR_MARKET_DB", "")), error)
        _write_result({"error": redact(str(damage or f"database: {error}"))})
        return TaskExit.CONFIG if damage else TaskExit.SOFTWARE
    except ConfigError as error:
        _write_result({"error": redact(str(error))})
        return TaskExit.CONFIG
    except PermanentError as error:
        _write_result({"error": redact(str(error))})
        return TaskExit.DATA
    except Exception as error:  # a bug: keep the traceback in the task's log
        traceback.print_exc()
        _write_result({"error": redact(f"{type(error).__name__}: {error}")})
        return TaskExit.SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
