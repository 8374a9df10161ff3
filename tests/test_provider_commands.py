"""`orchestrator providers` and `providers check`: keys' state, never values; one call each.

Real ``orchestrator`` processes on a project whose providers point at a local
server standing in for Alpaca and Massive.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from workflow_project import make_project, orchestrator, project_config

ALPACA_SECRET = "canaryAlpacaSecret000000"
KEYS = {
    "ALPACA_API_KEY_ID": "PKCANARYKEYID0000",
    "ALPACA_API_SECRET_KEY": ALPACA_SECRET,
    "MASSIVE_API_KEY": "canaryMassive00000",
}


@pytest.fixture
def project(tmp_path: Path, httpserver: HTTPServer) -> Path:
    url = httpserver.url_for("").rstrip("/")
    config = project_config()
    config["providers"] = {
        "alpaca": {"data_url": url, "trading_url": url},
        "massive": {"base_url": url},
    }
    config["universe"] = {"symbols": ["AAPL", "MSFT"]}
    config["tasks"]["prices_daily"]["provider"] = ["alpaca", "massive"]
    return make_project(tmp_path / "p", config)


def test_the_list_says_which_keys_are_set_and_never_shows_one(project: Path) -> None:
    env = {"ALPACA_API_KEY_ID": KEYS["ALPACA_API_KEY_ID"], "ALPACA_API_SECRET_KEY": ALPACA_SECRET}
    result = orchestrator(project, "providers", env={**env, "MASSIVE_API_KEY": ""})
    assert result.returncode == 0, result.stderr
    alpaca = result.stdout.split("alpaca:", 1)[1].split("massive:", 1)[0]
    assert "used by: prices_daily" in alpaca
    assert "ALPACA_API_KEY_ID set, ALPACA_API_SECRET_KEY set" in alpaca
    assert "MASSIVE_API_KEY missing" in result.stdout
    assert not any(value in result.stdout + result.stderr for value in env.values())


def test_check_makes_one_authenticated_call_per_provider_in_use(
    project: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(
        "/v2/account", headers={"APCA-API-KEY-ID": KEYS["ALPACA_API_KEY_ID"]}
    ).respond_with_json({"status": "ACTIVE", "account_number": "PA000000"})
    httpserver.expect_request(
        "/v1/marketstatus/now", headers={"Authorization": f"Bearer {KEYS['MASSIVE_API_KEY']}"}
    ).respond_with_json({"market": "closed", "serverTime": "2026-11-28T10:00:00-05:00"})
    result = orchestrator(project, "providers", "check", env=KEYS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "ok      alpaca: keys accepted (account ACTIVE), feed iex",
        "ok      massive: key accepted (market closed)",
    ]
    assert len(httpserver.log) == 2


def test_check_says_what_to_fix_when_a_key_is_refused(
    project: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/v1/marketstatus/now").respond_with_json(
        {"status": "ERROR", "request_id": "x", "error": "Unknown API Key"}, status=401
    )
    result = orchestrator(project, "providers", "check", "massive", env=KEYS)
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith("FAILED  massive: HTTP 401 (Unknown API Key)")
    assert "set MASSIVE_API_KEY in the environment or .env" in line
    assert KEYS["MASSIVE_API_KEY"] not in result.stdout + result.stderr
