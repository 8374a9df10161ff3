"""Secrets: .env reading and redaction of secret-looking environment values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.secrets import load_dotenv, read_dotenv, redact, secret_values


def test_read_dotenv(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# provider keys\n"
        "\n"
        "ALPHA_API_KEY=abc123xyz\n"
        "export BETA_TOKEN = 'tok-9876'\n"
        'GAMMA_SECRET="s3cr3t=with=equals"\n'
        "not a setting\n"
    )
    assert read_dotenv(path) == {
        "ALPHA_API_KEY": "abc123xyz",
        "BETA_TOKEN": "tok-9876",
        "GAMMA_SECRET": "s3cr3t=with=equals",
    }


def test_missing_dotenv_is_empty(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / ".env") == {}


def test_load_dotenv_never_overrides_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ".env"
    path.write_text("ZZ_TEST_API_KEY=from-file\nZZ_TEST_OTHER_KEY=also-from-file\n")
    monkeypatch.setenv("ZZ_TEST_API_KEY", "from-env")
    monkeypatch.delenv("ZZ_TEST_OTHER_KEY", raising=False)
    load_dotenv(path)
    try:
        assert os.environ["ZZ_TEST_API_KEY"] == "from-env"
        assert os.environ["ZZ_TEST_OTHER_KEY"] == "also-from-file"
    finally:
        os.environ.pop("ZZ_TEST_OTHER_KEY", None)


def test_secret_values_pick_secret_names_and_skip_short_values() -> None:
    env = {
        "SYNTH_API_KEY": "canary-123456",
        "db_password": "hunter22",
        "GITHUB_TOKEN": "ghp_abcdef",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI",
        "PATH": "/usr/bin:/bin",
        "EMPTY_KEY": "",
        "TINY_KEY": "abc",
    }
    assert set(secret_values(env)) == {"canary-123456", "hunter22", "ghp_abcdef", "wJalrXUtnFEMI"}


def test_redact_replaces_every_occurrence_longest_first() -> None:
    env = {"SHORT_KEY": "abcd", "LONG_KEY": "abcd-efgh-ijkl"}
    text = "url?k=abcd-efgh-ijkl&other=abcd and abcd-efgh-ijkl again"
    assert redact(text, env) == "url?k=***&other=*** and *** again"


def test_redact_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_API_KEY", "canary-123456")
    assert redact("401 for key canary-123456") == "401 for key ***"
    assert redact("nothing secret here") == "nothing secret here"
