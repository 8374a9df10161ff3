"""The project's exception tree.

Every error a user can cause (bad config, bad command line, a calendar date
out of range) or a task can meet (provider down, bad data) is an
``OrchestratorError``; the CLI prints its message as one sentence and exits
non-zero instead of showing a traceback. Whether a task failure is worth
retrying is decided by the class alone: ``TransientError`` is retried,
``PermanentError`` is not.
"""

from __future__ import annotations


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
