"""Fixtures for the SDK conformance suite.

- ``server`` (session): ``target/debug/warbler serve`` on a free port with a fresh database,
  chosen by ``CONFORMANCE_DATABASE``: ``sqlite`` (default; a temp file) or a PostgreSQL server
  URL such as ``postgres://postgres@127.0.0.1:55432/postgres`` (a new database per session).
  Main-account credentials are random per run. ``WARBLER_BIN`` overrides the binary.
- ``client``: the official ``twilio.rest.Client`` for the main account, every domain pointed at
  the server, every response validated against Twilio's OpenAPI specs.
- ``client_for(username, password, account_sid=None)``: the same for other credentials
  (a subaccount's sid + token, or an API key's sid + secret + account sid).

Any spec violation seen during a test fails that test (see ``oas.py`` for what is checked).
On failure the last HTTP exchanges are attached to the report, and the tail of warbler's log
is printed at the end of the run (full log: ``target/conformance-logs/``).
"""

from __future__ import annotations

import os

import pytest

# Before anything imports twilio: these would redirect or re-authenticate the SDK.
for _var in [v for v in os.environ if v.startswith("TWILIO_")]:
    del os.environ[_var]

from harness import REPO_ROOT, RECORDER, WarblerServer, make_client, start_server  # noqa: E402

_STATE: dict = {"server": None, "failed": False}


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> WarblerServer:
    database = os.environ.get("CONFORMANCE_DATABASE", "sqlite")
    label = "sqlite" if database == "sqlite" else "postgres"
    log_path = REPO_ROOT / "target" / "conformance-logs" / f"warbler-{label}.log"
    srv = start_server(database, tmp_path_factory.mktemp("warbler"), log_path)
    _STATE["server"] = srv
    yield srv
    code = srv.stop()
    if code not in (0, None, -15):
        _STATE["failed"] = True
        _STATE["exit"] = code


@pytest.fixture
def client(server):
    yield make_client(server.url, server.account_sid, server.auth_token)
    if not server.alive():
        pytest.fail(f"warbler exited during the test (status {server.process.returncode}):\n{server.log_tail(80)}")


@pytest.fixture
def client_for(server):
    def factory(username: str, password: str, account_sid: str | None = None):
        return make_client(server.url, username, password, account_sid=account_sid)

    return factory


@pytest.fixture
def main_sid(server) -> str:
    return server.account_sid


@pytest.fixture(autouse=True)
def _spec_violations():
    """Start each test with a clean slate; ``pytest_runtest_makereport`` fails it on violations."""
    RECORDER.clear()
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        if RECORDER.violations:
            if report.passed:
                # The test's own assertions held, but the responses broke the contract.
                report.outcome = "failed"
                report.longrepr = f"Responses violate Twilio's OpenAPI contract:\n\n{RECORDER.report()}"
            else:
                report.sections.append(("OpenAPI violations", RECORDER.report()))
        elif report.failed and RECORDER.exchanges:
            shown = list(RECORDER.exchanges)[-6:]
            report.sections.append((f"last {len(shown)} HTTP exchanges", "\n\n".join(e.format() for e in shown)))
    if report.failed:
        _STATE["failed"] = True
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    srv = _STATE.get("server")
    if srv is None:
        return
    if _STATE["failed"] or exitstatus != 0:
        terminalreporter.section("warbler log (tail)")
        terminalreporter.write_line(srv.log_tail(150))
    if "exit" in _STATE:
        terminalreporter.write_line(f"warbler exited with status {_STATE['exit']} at shutdown")
    terminalreporter.write_line(f"warbler log: {srv.log_path}")
