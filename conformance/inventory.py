"""Stocking the operator's number inventory for a test, and waiting on messages.

The session's server is shared by every test, and it starts with a small demo inventory that
other tests may buy from. So a test never relies on the demo numbers: it imports fresh random
numbers of its own through warbler's operator endpoint (``POST /admin/numbers/import``, not
part of Twilio's API, hence plain ``requests`` rather than the SDK), usually with a locality
name unique to the test, so that a search with ``in_locality`` finds exactly its numbers.
"""

from __future__ import annotations

import csv
import io
import random
import secrets
import time
from dataclasses import dataclass
from typing import Iterable, Optional

import requests

CSV_HEADER = ["phone_number", "country", "type", "sms", "mms", "voice", "locality", "region", "postal_code", "route"]

_RNG = random.SystemRandom()
_ISSUED: set[str] = set()  # numbers this process has handed out, so that no two tests share one


@dataclass(frozen=True)
class Stock:
    """One inventory row."""

    phone_number: str
    country: str = "US"
    type: str = "local"
    sms: bool = True
    mms: bool = True
    voice: bool = True
    locality: str = ""
    region: str = ""
    postal_code: str = ""
    route: str = "simulated"

    def row(self) -> list[str]:
        flag = lambda b: "true" if b else "false"  # noqa: E731
        return [self.phone_number, self.country, self.type, flag(self.sms), flag(self.mms), flag(self.voice),
                self.locality, self.region, self.postal_code, self.route]


def unique_locality(prefix: str = "Owlton") -> str:
    """A locality name no other test uses (letters only, as real locality names)."""
    return f"{prefix} {''.join(_RNG.choice('ABCDEFGHJKLMNPQRSTUVWXYZ') for _ in range(8))}"


def _claim(number: str) -> Optional[str]:
    if number in _ISSUED:
        return None
    _ISSUED.add(number)
    return number


def nanp_number(area_code: str = "415", exchange: Optional[str] = None, line: Optional[str] = None) -> str:
    """A fresh, possible +1 number: ``+1 <area> <exchange 2-9xx, never 555> <4 digits>``."""
    while True:
        ex = exchange or str(_RNG.randint(200, 999))
        if ex == "555" and exchange is None:
            continue  # the demo inventory and the magic test numbers live in 555
        ln = line or f"{_RNG.randint(0, 9999):04}"
        number = _claim(f"+1{area_code}{ex}{ln}")
        if number:
            return number
        if exchange and line:
            raise ValueError(f"+1{area_code}{exchange}{line} was already issued")


def gb_mobile_number() -> str:
    """A fresh GB mobile number (+44 71xx-73xx xxxxxx): libphonenumber places parts of 074xx-079xx
    in Guernsey, Jersey or the Isle of Man, and the demo inventory holds 07700 900xxx."""
    while True:
        number = _claim(f"+447{_RNG.randint(100, 399)}{_RNG.randint(0, 999999):06}")
        if number:
            return number


def to_csv(rows: Iterable[Stock | list[str]], header: Optional[list[str]] = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header or CSV_HEADER)
    for row in rows:
        writer.writerow(row.row() if isinstance(row, Stock) else row)
    return out.getvalue()


def post_inventory(server, body: str, auth: Optional[tuple[str, str]] = None) -> requests.Response:
    """``POST /admin/numbers/import`` with a raw CSV body (main account credentials by default)."""
    session = requests.Session()
    session.trust_env = False  # no proxies for 127.0.0.1
    return session.post(
        f"{server.url}/admin/numbers/import",
        data=body.encode(),
        auth=auth or (server.account_sid, server.auth_token),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )


def import_stock(server, rows: Iterable[Stock]) -> list[Stock]:
    """Imports the rows; fails loudly if the server refuses them."""
    rows = list(rows)
    response = post_inventory(server, to_csv(rows))
    assert response.status_code == 201, f"inventory import refused: {response.status_code} {response.text}"
    assert response.json() == {"imported": len(rows)}, response.text
    return rows


def stock_local(server, count: int = 1, area_code: str = "415", locality: Optional[str] = None,
                region: str = "CA", postal_code: str = "94105", **kwargs) -> list[str]:
    """Imports ``count`` fresh local numbers of ``area_code``; returns their E.164 strings."""
    locality = locality or unique_locality()
    rows = [Stock(nanp_number(area_code), locality=locality, region=region, postal_code=postal_code, **kwargs)
            for _ in range(count)]
    return [r.phone_number for r in import_stock(server, rows)]


def buy_fresh_number(server, client, account_sid: Optional[str] = None, area_code: str = "415", **settings):
    """Stocks one fresh local number and buys it with ``client`` (into ``account_sid``'s path if
    given, e.g. the parent buying straight into a subaccount). Returns the SDK instance."""
    (number,) = stock_local(server, 1, area_code=area_code)
    numbers = client.api.v2010.accounts(account_sid).incoming_phone_numbers if account_sid \
        else client.incoming_phone_numbers
    return numbers.create(phone_number=number, **settings)


def random_handset(area_code: str = "208") -> str:
    """A destination for a message: a fresh possible US number (never one of the magic ones)."""
    return nanp_number(area_code)


def tag() -> str:
    return secrets.token_hex(3)


FINAL_STATUSES = {"delivered", "undelivered", "failed", "canceled", "read"}


def wait_for_status(fetch, statuses: Iterable[str], timeout: float = 15.0, interval: float = 0.25):
    """Polls ``fetch()`` (e.g. ``client.messages(sid).fetch``) until the status is one of
    ``statuses`` or a different final one; returns the last instance."""
    wanted = set(statuses)
    deadline = time.monotonic() + timeout
    message = fetch()
    while message.status not in wanted and message.status not in FINAL_STATUSES:
        if time.monotonic() > deadline:
            raise AssertionError(f"message {message.sid} still {message.status!r} after {timeout}s (wanted {sorted(wanted)})")
        time.sleep(interval)
        message = fetch()
    return message
