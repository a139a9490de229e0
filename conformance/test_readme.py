"""Every ```python block of README.md runs as printed against a fresh warbler, so the docs cannot
rot. Convention (stated in the README): the blocks run in order as one program, with ``"AC…"``,
``"…"`` and ``http://127.0.0.1:8080`` replaced by the server's main account SID, auth token and
URL. A block that should not run uses another info string (``text``, ``sh``…).
"""

from __future__ import annotations

import os
import re

import pytest

from harness import REPO_ROOT, start_server

README = REPO_ROOT / "README.md"
PLACEHOLDER_URL = "http://127.0.0.1:8080"


def code_blocks(text: str, language: str) -> list[tuple[int, str]]:
    """(line number of the block's first line, code) of every ```language block."""
    blocks = []
    for match in re.finditer(rf"^```{language}\n(.*?)^```$", text, re.M | re.S):
        line = text.count("\n", 0, match.start(1)) + 1
        blocks.append((line, match.group(1)))
    return blocks


def with_server(code: str, server) -> str:
    return (
        code.replace('"AC…"', f'"{server.account_sid}"')
        .replace('"…"', f'"{server.auth_token}"')
        .replace(PLACEHOLDER_URL, server.url)
    )


@pytest.fixture
def fresh_server(tmp_path):
    """A warbler of its own: the README walks through a fresh install (demo inventory, no
    numbers bought yet)."""
    database = os.environ.get("CONFORMANCE_DATABASE", "sqlite")
    log = REPO_ROOT / "target" / "conformance-logs" / f"warbler-readme-{os.getpid()}.log"
    srv = start_server(database, tmp_path, log)
    yield srv
    srv.stop()


def run_as_readme(blocks: list[tuple[int, str]], server) -> dict:
    """Runs the blocks in one namespace; a failure's traceback names README.md and its line."""
    namespace: dict = {"__name__": "readme"}
    for line, code in blocks:
        padded = "\n" * (line - 1) + with_server(code, server)
        exec(compile(padded, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    return namespace


def banner_snippet(log: str, header: str) -> str:
    """The indented code printed after the banner line starting with ``header``."""
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    code = []
    for line in lines[start:]:
        if line and not line.startswith("    "):
            break
        code.append(line[4:])
    return "\n".join(code).strip("\n") + "\n"


def test_the_readme_has_python_blocks():
    blocks = code_blocks(README.read_text(), "python")
    assert len(blocks) >= 2, "the README's Python setup and walkthrough blocks were not found"
    assert all(PLACEHOLDER_URL in code for _, code in blocks[:1])


def test_every_readme_python_block_runs(fresh_server):
    namespace = run_as_readme(code_blocks(README.read_text(), "python"), fresh_server)
    # The walkthrough's end state, as its last comment says.
    falcon, msg = namespace["falcon"], namespace["msg"]
    assert msg.status == "accepted"
    assert falcon.messages(msg.sid).fetch().to == "+14155550199"
    assert namespace["update"].body == "Hi traveller, flight FF 17 is on time."


def test_the_banner_prints_the_readme_snippet_and_it_reaches_every_domain(fresh_server, monkeypatch):
    printed = banner_snippet(fresh_server.log_tail(400), "Point twilio-python")
    first_block = code_blocks(README.read_text(), "python")[0][1]
    assert printed == with_server(first_block, fresh_server)
    # TWILIO_REGION / TWILIO_EDGE turn api.twilio.com into api.dublin.ie1.twilio.com: still
    # *.twilio.com, still rewritten.
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    namespace: dict = {"__name__": "banner"}
    exec(compile(printed, "banner", "exec"), namespace)  # noqa: S102 - warbler's own output
    client = namespace["client"]
    sid = fresh_server.account_sid
    assert client.api.v2010.accounts(sid).fetch().sid == sid
    assert isinstance(client.messaging.v1.services.list(limit=1), list)
    assert client.monitor.v1.alerts.list(limit=1) == []
    assert client.iam.v1.get_api_keys.list(account_sid=sid) == []
