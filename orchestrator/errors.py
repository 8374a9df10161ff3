"""The project's exception tree.

Every error a user can cause (bad config, bad command line, a calendar date
out of range) or a task can meet (provider down, bad data) is an
``OrchestratorError``; the CLI prints its message as one sentence and exits
non-zero instead of showing a traceback. Whether a task failure is worth
retrying is decided by the class alone: ``TransientError`` is retried,
``PermanentError`` is not.

The exit statuses every process of the pipeline uses are here too, next to
the errors they report.
"""

from __future__ import annotations

from enum import IntEnum


class OrchestratorError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(OrchestratorError):
    """The configuration file is unreadable or invalid; names file, key, problem."""

    def __init__(self, path: object, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class CalendarRangeError(OrchestratorError):
    """A date or time lies outside the range the exchange calendar covers."""


class UsageError(OrchestratorError):
    """The command line is wrong (conflicting flags, a date that is not a session)."""


class StateError(OrchestratorError):
    """A file or folder under ``state/`` cannot be used (read-only, not a database)."""


class TaskError(OrchestratorError):
    """A task attempt failed."""


class TransientError(TaskError):
    """A failure that may go away on its own: worth retrying after a pause.

    ``retry_after`` (seconds) is the provider's own hint, e.g. HTTP 429's
    ``Retry-After`` header; the runner waits at least that long.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(TaskError):
    """A failure that retrying cannot fix (bad credentials, bad input, schema change)."""


class DataValidationError(PermanentError):
    """Every row of a batch was rejected, so nothing usable was stored."""


# -- exit statuses -----------------------------------------------------------------


class TaskExit(IntEnum):
    """Exit status of one task attempt, from ``sysexits.h``.

    Built-in collectors exit with these (``collector_process``); user scripts
    may. The runner retries ``TRANSIENT`` (and any status not listed here);
    the others are permanent: retrying bad data, a bug or bad config cannot help.
    """

    OK = 0
    DATA = 65  # EX_DATAERR: bad input
    SOFTWARE = 70  # EX_SOFTWARE: a bug in the collector
    TRANSIENT = 75  # EX_TEMPFAIL: worth retrying
    CONFIG = 78  # EX_CONFIG


PERMANENT_TASK_EXITS = frozenset({TaskExit.DATA, TaskExit.SOFTWARE, TaskExit.CONFIG})


class CommandExit(IntEnum):
    """Exit status of the ``orchestrator`` command (``--health`` has ``HealthExit``)."""

    OK = 0
    FAILED = 1  # a task failed
    USAGE = 2  # bad usage, bad configuration or unusable state
    ALREADY_RUNNING = 3  # another run of the same kind holds the lock
    INTERRUPTED = 130


class HealthExit(IntEnum):
    """Exit status of ``orchestrator --health``, Nagios style."""

    GREEN = 0
    YELLOW = 1  # or unknown: the monitor cannot vouch for a source
    RED = 2
    UNKNOWN = 3  # the check itself could not run
