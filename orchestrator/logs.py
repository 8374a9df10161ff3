"""One log format for every process of the pipeline.

``YYYY-MM-DD HH:MM:SS - LEVEL - message``: the CLI and the loop log to the
console and to a rotating ``state/logs/orchestrator.log``; runners and
collectors log to stderr, which each rule sends to its own task log. A
runner's milestones (a retry and its wait, a not-before wait, what a run
built or why it failed) are logged with ``extra=CONSOLE`` and also go to its
stdout, which Snakemake shows on the console while the run happens.
"""

from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

FORMAT = "%(asctime)s - %(levelname)s - %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_LOG_BYTES = 5_000_000
LOG_BACKUPS = 5
CONSOLE = {"console": True}  # extra= of a record the console shows as well as the log


def log_to_stderr() -> None:
    """For task processes: everything to stderr (the task's log file)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=FORMAT, datefmt=DATE_FORMAT)


def log_to_task_log_and_console() -> None:
    """For runners: everything to stderr (the task's log), milestones to stdout too."""
    log_to_stderr()
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter(FORMAT, datefmt=DATE_FORMAT))
    console.addFilter(lambda record: getattr(record, "console", False))
    logging.getLogger().addHandler(console)


def log_to_console_and_file(logs_dir: Path) -> None:
    """For the CLI: the console, plus ``logs_dir/orchestrator.log`` rotated at 5 MB."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [
        logging.StreamHandler(sys.stderr),
        RotatingFileHandler(
            logs_dir / "orchestrator.log", maxBytes=MAX_LOG_BYTES, backupCount=LOG_BACKUPS
        ),
    ]
    formatter = logging.Formatter(FORMAT, datefmt=DATE_FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)
