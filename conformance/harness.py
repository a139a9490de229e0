"""Plumbing for the SDK conformance suite: a validating HTTP client for twilio-python, a recorder
of violations and exchanges, and a launcher for the warbler binary.

Tests do not use this module directly; ``conftest.py`` turns it into fixtures.
"""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from oas import Validator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BINARY = REPO_ROOT / "target" / "debug" / "warbler"

# Every domain the SDK may call; all are pointed at the server under test.
SDK_DOMAINS = ("api", "messaging", "monitor", "iam", "content")


# ---------------------------------------------------------------------------------------------
# recording


@dataclass
class Exchange:
    method: str
    url: str
    params: Any
    data: Any
    username: Optional[str]
    status: int
    content_type: str
    body: str

    def format(self, limit: int = 2000) -> str:
        lines = [f"> {self.method} {self.url}" + (f"  (auth user {self.username})" if self.username else "  (no auth)")]
        if self.params:
            lines.append(f">   query: {self.params}")
        if self.data:
            lines.append(f">   form:  {self.data}")
        body = self.body if len(self.body) <= limit else self.body[:limit] + f"... [{len(self.body)} chars]"
        lines.append(f"< {self.status} {self.content_type}")
        if body:
            lines.append(f"< {body}")
        return "\n".join(lines)


_SID_RE = re.compile(r"\b([A-Z]{2})[0-9a-fA-F]{32}\b")


def _problem_key(problem: str) -> str:
    """What makes a problem the same bug on another response: the offending field's name and
    the message, with sids, quoted values and list indexes blanked."""
    _, _, detail = problem.partition("): ")
    path, sep, message = (detail or problem).partition(": ")
    if sep and path.startswith("$"):
        detail = re.split(r"[.\]]", path)[-1] + ": " + message
    key = _SID_RE.sub(r"\1*", detail or problem)
    key = re.sub(r"'[^']*'", "'*'", key)
    return re.sub(r"\[\d+\]", "[*]", key)


@dataclass
class Recorder:
    """Violations and recent exchanges; ``conftest`` clears it before each test.

    ``violations`` holds one entry per offending response: its new problems (ones already
    reported for an earlier response are only counted, in ``repeats``) and the exchange."""

    violations: list[str] = field(default_factory=list)
    exchanges: deque = field(default_factory=lambda: deque(maxlen=40))
    seen: set = field(default_factory=set)
    repeats: int = 0

    def clear(self) -> None:
        self.violations.clear()
        self.exchanges.clear()
        self.seen.clear()
        self.repeats = 0

    def add(self, problems: list[str], exchange: Optional["Exchange"] = None) -> None:
        fresh = []
        for problem in problems:
            key = _problem_key(problem)
            if key in self.seen:
                self.repeats += 1
            else:
                self.seen.add(key)
                fresh.append(problem)
        if fresh:
            text = "\n".join(fresh)
            if exchange is not None:
                text += "\n" + _indent(exchange.format(limit=600))
            self.violations.append(text)

    def report(self) -> str:
        text = "\n\n".join(self.violations)
        if self.repeats:
            text += f"\n\n(+ {self.repeats} repeat(s) of the problems above on other responses)"
        return text


RECORDER = Recorder()
_VALIDATOR: Optional[Validator] = None


def shared_validator() -> Validator:
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = Validator()
    return _VALIDATOR


# ---------------------------------------------------------------------------------------------
# HTTP client


class LeftServerUnderTest(AssertionError):
    """The SDK was about to send a request somewhere else than the server under test."""


class ValidatingHttpClient(TwilioHttpClient):
    """twilio-python's own HTTP client, plus: every response is checked against the OpenAPI specs
    (see ``oas.py``), every exchange is recorded, and requests may only go to ``base_url``
    (a stray ``https://*.twilio.com`` URL, e.g. a v1 ``next_page_url``, would otherwise reach the
    real Twilio)."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        recorder: Optional[Recorder] = None,
        validator: Optional[Validator] = None,
        timeout: float = 30.0,
        **kwargs: Any,
    ):
        super().__init__(timeout=timeout, **kwargs)
        if self.session is not None:
            self.session.trust_env = False  # no HTTP(S)_PROXY / .netrc for 127.0.0.1
        self.base_url = base_url.rstrip("/") if base_url else None
        self.recorder = recorder if recorder is not None else RECORDER
        self.validator = validator if validator is not None else shared_validator()

    def request(
        self,
        method: str,
        url: str,
        params: Optional[dict] = None,
        data: Optional[dict] = None,
        headers: Optional[dict] = None,
        auth: Optional[tuple] = None,
        timeout: Optional[float] = None,
        allow_redirects: bool = False,
    ):
        if self.base_url and not (url == self.base_url or url.startswith(self.base_url + "/")):
            msg = f"{method} {url}: the SDK tried to leave the server under test ({self.base_url})"
            self.recorder.add([msg])
            raise LeftServerUnderTest(msg)
        response = super().request(
            method, url, params=params, data=data, headers=headers, auth=auth, timeout=timeout,
            allow_redirects=allow_redirects,
        )
        headers_in = dict(response.headers or {})
        content_type = next((v for k, v in headers_in.items() if k.lower() == "content-type"), "")
        exchange = Exchange(
            method=method.upper(),
            url=url,
            params=params,
            data=data,
            username=auth[0] if auth else None,
            status=response.status_code,
            content_type=content_type,
            body=response.text or "",
        )
        self.recorder.exchanges.append(exchange)
        problems = self.validator.check(method, url, response.status_code, response.text, headers_in, base_url=self.base_url)
        if problems:
            self.recorder.add(problems, exchange)
        return response


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def make_client(
    base_url: str,
    username: str,
    password: str,
    account_sid: Optional[str] = None,
    recorder: Optional[Recorder] = None,
) -> Client:
    """An official SDK client whose every domain points at ``base_url``.

    ``username``/``password`` are an account sid + auth token, or an API key sid + secret (then
    pass ``account_sid``, as with the real SDK)."""
    client = Client(
        username,
        password,
        account_sid=account_sid,
        http_client=ValidatingHttpClient(base_url=base_url, recorder=recorder),
        # A non-empty mapping, so the SDK does not read TWILIO_* from os.environ
        # (TWILIO_REGION / TWILIO_EDGE would rewrite 127.0.0.1 into 127.us1.0.1).
        environment={"WARBLER_CONFORMANCE": "1"},
    )
    for domain in SDK_DOMAINS:
        getattr(client, domain).base_url = base_url
    return client


# ---------------------------------------------------------------------------------------------
# server under test


def random_account_sid() -> str:
    return "AC" + secrets.token_hex(16)


def random_auth_token() -> str:
    return secrets.token_hex(16)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_psql() -> str:
    candidates = [os.environ.get("PSQL"), shutil.which("psql")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise RuntimeError("psql not found (set PSQL=/path/to/psql)")


def _psql(server_url: str, sql: str) -> None:
    subprocess.run(
        [find_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server_url, "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def create_postgres_database(server_url: str, prefix: str = "conf") -> tuple[str, Callable[[], None]]:
    """Create a fresh database on the server of ``server_url``; return its URL and a dropper."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        _psql(server_url, f'CREATE DATABASE "{name}"')
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"CREATE DATABASE {name} on {server_url} failed: {e.stderr.strip()}") from e
    parts = urlsplit(server_url)
    db_url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

    def drop() -> None:
        try:
            _psql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass

    return db_url, drop


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class WarblerServer:
    url: str
    account_sid: str
    auth_token: str
    database_url: str
    log_path: Path
    process: subprocess.Popen
    cleanups: list = field(default_factory=list)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 200) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> Optional[int]:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.cleanups.clear()
        return self.process.returncode


def start_server(
    database: str,
    workdir: Path,
    log_path: Path,
    binary: Optional[Path] = None,
    ready_timeout: float = 60.0,
    config: Optional[Path] = None,
) -> WarblerServer:
    """Spawn ``warbler serve`` on a free port with a fresh database and wait for ``/healthz``.

    ``database`` is ``sqlite`` (a new file in ``workdir``) or a PostgreSQL server URL (a new
    database is created on that server and dropped at ``stop()``). ``config``: a TOML file
    passed as ``--config``."""
    binary = Path(binary or os.environ.get("WARBLER_BIN") or DEFAULT_BINARY)
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"warbler binary not found at {binary} (run `cargo build` or set WARBLER_BIN)")

    cleanups: list = []
    if database == "sqlite":
        db_file = Path(workdir) / "warbler.db"
        database_url = f"sqlite://{db_file}"
    elif database.startswith(("postgres://", "postgresql://")):
        database_url, drop = create_postgres_database(database)
        cleanups.append(drop)
    else:
        raise RuntimeError(f"CONFORMANCE_DATABASE must be 'sqlite' or a postgres:// URL, got {database!r}")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    account_sid, auth_token = random_account_sid(), random_auth_token()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env.update(
        WARBLER_ACCOUNT_SID=account_sid,
        WARBLER_AUTH_TOKEN=auth_token,
        WARBLER_PUBLIC_URL=url,
        RUST_BACKTRACE="1",
    )
    env.setdefault("RUST_LOG", "info")
    # The suite makes a few hundred requests a second with one credential (e.g. 120 creates,
    # then paging); per-credential rate limiting is not what it tests.
    env.setdefault("WARBLER_RATE_LIMIT_PER_SECOND", "0")
    # Every test calls from 127.0.0.1: the deliberate 401s of a session count against one
    # address's failed-authentication allowance (20 by default; the suite stays under it today,
    # but the backoff is not what it tests).
    env.setdefault("WARBLER_FAILED_AUTH_LIMIT", "0")
    # The webhook receivers of test_webhooks.py listen on 127.0.0.1, and retries should come
    # within a test's patience.
    env.setdefault("WARBLER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    env.setdefault("WARBLER_WEBHOOK_RETRY_BASE_MS", "300")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")
    cmd = [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--database-url", database_url]
    if config is not None:
        cmd += ["--config", str(config)]
    log.write(("$ " + " ".join(cmd) + "\n").encode())
    log.flush()
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    log.close()
    server = WarblerServer(url, account_sid, auth_token, database_url, log_path, process, cleanups)

    deadline = time.monotonic() + ready_timeout
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if not server.alive():
            code = server.stop()
            raise RuntimeError(f"warbler exited with status {code} before becoming ready:\n{server.log_tail()}")
        try:
            with _NO_PROXY_OPENER.open(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return server
                last_error = f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            last_error = f"HTTP {e.code}"
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last_error = str(e)
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"warbler not ready after {ready_timeout}s ({last_error}):\n{server.log_tail()}")


def json_body(exchange: Exchange) -> Any:
    return json.loads(exchange.body) if exchange.body else None
