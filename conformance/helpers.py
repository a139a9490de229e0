"""Small assertions shared by the conformance tests."""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
KEY_SID = re.compile(r"^SK[0-9a-f]{32}$")
AUTH_TOKEN = re.compile(r"^[0-9a-f]{32}$")


@contextmanager
def twilio_error(status: int, code: int | None = None):
    """The block must fail with this HTTP status (and Twilio error code, if given).

    twilio-python raises ``TwilioRestException`` for fetch/create/update/delete, but a bare
    ``TwilioException("Unable to fetch page", response)`` when a list page is not a 200: both
    are accepted here. Yields an object whose ``status``, ``code`` and ``message`` are filled in.
    """
    got = SimpleNamespace(status=None, code=None, message=None)
    try:
        yield got
    except TwilioRestException as e:
        got.status, got.code, got.message = e.status, e.code, e.msg
    except TwilioException as e:
        response = e.args[1] if len(e.args) > 1 else None
        if response is None or not hasattr(response, "status_code"):
            raise
        body = json.loads(response.text or "{}")
        got.status, got.code, got.message = response.status_code, body.get("code"), body.get("message")
    else:
        pytest.fail(f"expected HTTP {status}" + (f" / code {code}" if code else "") + ", but the call succeeded")
    want = (status, code) if code is not None else (status,)
    have = (got.status, got.code) if code is not None else (got.status,)
    assert have == want, f"expected HTTP {status} code {code}, got HTTP {got.status} code {got.code}: {got.message}"


def assert_recent(moment: datetime, slack: timedelta = timedelta(minutes=10)) -> None:
    """A date the SDK parsed (so the wire format was right) and that is about now."""
    assert isinstance(moment, datetime), f"the SDK did not parse the date: {moment!r}"
    assert moment.tzinfo is not None
    now = datetime.now(timezone.utc)
    assert now - slack <= moment <= now + slack, f"{moment} is not close to {now}"


def clear_of_utc_midnight(margin_seconds: int = 60) -> None:
    """Waits out the last minute of a UTC day: a test that counts what it did "today" (or this
    month) would otherwise read the next day's empty bucket when midnight falls inside it."""
    left = 86_400 - int(time.time()) % 86_400
    if left <= margin_seconds:
        time.sleep(left + 1)
