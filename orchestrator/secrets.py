"""Provider keys: read from the environment or a git-ignored ``.env``, never stored.

Anything the pipeline writes that could carry a secret (error messages in the
status store, sentinels, logs) goes through ``redact`` first, which replaces
the value of every secret-looking variable with ``***``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
MIN_SECRET_LENGTH = 4


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` pairs of a ``.env`` file (python-dotenv's parser: quotes, ``export``,
    comments); empty when the file is missing."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def load_dotenv(path: Path) -> None:
    """Put ``.env`` values into the environment, never overriding what is set."""
    for key, value in read_dotenv(path).items():
        os.environ.setdefault(key, value)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look like secrets."""
    env = os.environ if environ is None else environ
    found = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(found, key=len, reverse=True)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for value in secret_values(environ):
        text = text.replace(value, "***")
    return text
