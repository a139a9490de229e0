"""Accounts and subaccounts through the official SDK, following the seed walkthrough
("Everything You Need to Know About Using Twilio Subaccounts": Owlie Notifications creates a
subaccount for its customer Falcon Flights) and twilio-contract.md section 3.

Every test shares one server; names are unique per test so that list filters stay exact.
"""

from __future__ import annotations

import re
import secrets

import pytest
from twilio.base.exceptions import TwilioRestException

from helpers import ACCOUNT_SID, AUTH_TOKEN, assert_recent, twilio_error


def unique(name: str) -> str:
    return f"{name} {secrets.token_hex(3)}"


def test_main_account_is_its_own_owner(client, main_sid):
    me = client.api.v2010.accounts(main_sid).fetch()

    assert me.sid == main_sid
    assert me.owner_account_sid == main_sid
    assert me.status == "active"
    assert me.type in ("Trial", "Full")
    assert me.uri == f"/2010-04-01/Accounts/{main_sid}.json"
    # The SDK's shortcut for "the account of these credentials" reaches the same resource.
    assert client.api.v2010.account.fetch().sid == main_sid


REQUEST_ID = re.compile(r"^RQ[0-9a-f]{32}$")


def test_every_response_carries_a_request_id(client, server, main_sid):
    # `Client.request` is the SDK's own low-level call; it hands back the headers.
    base = f"{server.url}/2010-04-01/Accounts/{main_sid}"
    found = client.request("GET", f"{base}.json")
    missing = client.request("GET", f"{base}/Messages/SM{'0' * 32}.json")

    assert (found.status_code, missing.status_code) == (200, 404)
    ids = [r.headers["Twilio-Request-Id"] for r in (found, missing)]
    assert all(REQUEST_ID.match(i) for i in ids) and ids[0] != ids[1]


def test_falcon_flights_walkthrough(client, client_for, main_sid):
    # Owlie Notifications creates a subaccount for its customer Falcon Flights.
    falcon = client.api.v2010.accounts.create(friendly_name="FalconFlights")

    assert ACCOUNT_SID.match(falcon.sid) and falcon.sid != main_sid
    assert falcon.friendly_name == "FalconFlights"
    assert falcon.owner_account_sid == main_sid
    assert falcon.status == "active"
    assert falcon.type == "Full"
    assert AUTH_TOKEN.match(falcon.auth_token)
    assert falcon.uri == f"/2010-04-01/Accounts/{falcon.sid}.json"
    assert_recent(falcon.date_created)
    assert falcon.date_updated >= falcon.date_created
    base = f"/2010-04-01/Accounts/{falcon.sid}"
    assert falcon.subresource_uris["keys"] == f"{base}/Keys.json"
    assert falcon.subresource_uris["messages"] == f"{base}/Messages.json"
    assert falcon.subresource_uris["incoming_phone_numbers"] == f"{base}/IncomingPhoneNumbers.json"

    # The subaccount has its own credentials, which reach its own account.
    falcon_client = client_for(falcon.sid, falcon.auth_token)
    me = falcon_client.api.v2010.accounts(falcon.sid).fetch()
    assert me.sid == falcon.sid and me.owner_account_sid == main_sid

    # The parent sees it too: by sid, and in its list filtered by name.
    fetched = client.api.v2010.accounts(falcon.sid).fetch()
    assert (fetched.friendly_name, fetched.status, fetched.auth_token) == ("FalconFlights", "active", falcon.auth_token)
    assert fetched.date_created == falcon.date_created
    assert [a.sid for a in client.api.v2010.accounts.list(friendly_name="FalconFlights")] == [falcon.sid]

    # Rename it.
    renamed = client.api.v2010.accounts(falcon.sid).update(friendly_name="Falcon Flights Inc.")
    assert renamed.sid == falcon.sid
    assert renamed.friendly_name == "Falcon Flights Inc."
    assert renamed.date_updated >= falcon.date_updated
    assert client.api.v2010.accounts(falcon.sid).fetch().friendly_name == "Falcon Flights Inc."
    assert client.api.v2010.accounts.list(friendly_name="FalconFlights") == []
    assert [a.sid for a in client.api.v2010.accounts.list(friendly_name="Falcon Flights Inc.")] == [falcon.sid]
    assert client.api.v2010.accounts.list(friendly_name="Falcon") == []  # exact match only


def test_default_friendly_name(client):
    sub = client.api.v2010.accounts.create()

    # Spec: "defaults to `SubAccount Created at {YYYY-MM-DD HH:MM meridian}`".
    assert re.fullmatch(r"SubAccount Created at \d{4}-\d\d-\d\d \d\d?:\d\d (am|pm|AM|PM)", sub.friendly_name), sub.friendly_name


def test_suspend_and_reactivate(client, client_for):
    sub = client.api.v2010.accounts.create(friendly_name=unique("Suspendable"))
    sub_client = client_for(sub.sid, sub.auth_token)

    suspended = client.api.v2010.accounts(sub.sid).update(status="suspended")
    assert suspended.status == "suspended"

    # A suspended account's own credentials are refused...
    with twilio_error(401, 20003):
        sub_client.api.v2010.accounts(sub.sid).fetch()
    # ...while the parent still sees it, also through the status filter.
    assert client.api.v2010.accounts(sub.sid).fetch().status == "suspended"
    assert sub.sid in [a.sid for a in client.api.v2010.accounts.list(status="suspended")]

    reactivated = client.api.v2010.accounts(sub.sid).update(status="active")
    assert reactivated.status == "active"
    assert sub_client.api.v2010.accounts(sub.sid).fetch().status == "active"


def test_closed_is_final(client, client_for):
    sub = client.api.v2010.accounts.create(friendly_name=unique("Closable"))
    sub_client = client_for(sub.sid, sub.auth_token)

    closed = client.api.v2010.accounts(sub.sid).update(status="closed")
    assert closed.status == "closed"

    with twilio_error(401, 20003):
        sub_client.api.v2010.accounts(sub.sid).fetch()
    assert client.api.v2010.accounts(sub.sid).fetch().status == "closed"
    # Closing is irreversible.
    with twilio_error(400):
        client.api.v2010.accounts(sub.sid).update(status="active")
    assert client.api.v2010.accounts(sub.sid).fetch().status == "closed"


def test_filter_by_status(client, main_sid):
    calm = client.api.v2010.accounts.create(friendly_name=unique("Calm"))
    paused = client.api.v2010.accounts.create(friendly_name=unique("Paused"))
    client.api.v2010.accounts(paused.sid).update(status="suspended")

    suspended = client.api.v2010.accounts.list(status="suspended")
    assert paused.sid in [a.sid for a in suspended]
    assert calm.sid not in [a.sid for a in suspended]
    assert {a.status for a in suspended} == {"suspended"}

    active = client.api.v2010.accounts.list(status="active")
    assert {calm.sid, main_sid} <= {a.sid for a in active}
    assert paused.sid not in [a.sid for a in active]
    assert {a.status for a in active} == {"active"}

    # Both filters at once.
    assert [a.sid for a in client.api.v2010.accounts.list(friendly_name=paused.friendly_name, status="suspended")] == [paused.sid]
    assert client.api.v2010.accounts.list(friendly_name=paused.friendly_name, status="active") == []


def test_subaccount_cannot_create_subaccounts(client, client_for):
    sub = client.api.v2010.accounts.create(friendly_name=unique("Leaf"))
    sub_client = client_for(sub.sid, sub.auth_token)

    with twilio_error(400, 21101):
        sub_client.api.v2010.accounts.create(friendly_name="Grandchild")


def test_subaccount_credentials_stay_inside_the_subaccount(client, client_for, main_sid):
    alpha = client.api.v2010.accounts.create(friendly_name=unique("Alpha"))
    beta = client.api.v2010.accounts.create(friendly_name=unique("Beta"))
    alpha_client = client_for(alpha.sid, alpha.auth_token)

    assert alpha_client.api.v2010.accounts(alpha.sid).fetch().sid == alpha.sid
    with twilio_error(401, 20003):
        alpha_client.api.v2010.accounts(main_sid).fetch()
    with twilio_error(401, 20003):
        alpha_client.api.v2010.accounts(beta.sid).fetch()
    with twilio_error(401, 20003):
        alpha_client.api.v2010.accounts(beta.sid).update(friendly_name="hijacked")
    assert client.api.v2010.accounts(beta.sid).fetch().friendly_name == beta.friendly_name

    # A subaccount's list shows neither its parent nor its siblings.
    visible = {a.sid for a in alpha_client.api.v2010.accounts.list()}
    assert visible <= {alpha.sid}


def test_parent_acts_on_subaccount_paths(client, client_for, server, main_sid):
    sub = client.api.v2010.accounts.create(friendly_name=unique("Managed"))

    # As in Twilio's docs: the main sid and token, with the subaccount's sid as the third argument.
    assert client_for(main_sid, server.auth_token, sub.sid).api.v2010.account.fetch().sid == sub.sid

    # The parent's own credentials create a key inside the subaccount.
    key = client.api.v2010.accounts(sub.sid).new_keys.create(friendly_name="made by parent")
    assert key.secret

    sub_client = client_for(sub.sid, sub.auth_token)
    assert key.sid in [k.sid for k in sub_client.api.v2010.accounts(sub.sid).keys.list()]
    assert key.sid in [k.sid for k in client.api.v2010.accounts(sub.sid).keys.list()]
    assert key.sid not in [k.sid for k in client.api.v2010.accounts(main_sid).keys.list()]
    assert client.api.v2010.accounts(sub.sid).keys(key.sid).fetch().friendly_name == "made by parent"


def test_wrong_credentials_are_refused(client_for, main_sid):
    with twilio_error(401, 20003):
        client_for(main_sid, "0" * 32).api.v2010.accounts(main_sid).fetch()
    with twilio_error(401, 20003):
        client_for("AC" + "0" * 32, "0" * 32).api.v2010.accounts(main_sid).fetch()
    with twilio_error(401, 20003):
        client_for("not-a-sid", "whatever").api.v2010.accounts(main_sid).fetch()
    # Lists fail the same way (the SDK raises a plain TwilioException for a non-200 page).
    with twilio_error(401, 20003):
        client_for(main_sid, "0" * 32).api.v2010.accounts.list()


def test_unknown_account_is_hidden(client):
    # Twilio does not say whether an account you do not own is "not found" or "not yours":
    # either answer is fine, anything else is not.
    try:
        client.api.v2010.accounts("AC" + "0" * 32).fetch()
    except TwilioRestException as e:
        assert (e.status, e.code) in ((404, 20404), (401, 20003)), (e.status, e.code, e.msg)
    else:
        pytest.fail("fetching an unknown account succeeded")


@pytest.mark.slow
def test_auto_paging_returns_every_account_once(client, main_sid):
    tag = secrets.token_hex(3)
    created = {client.api.v2010.accounts.create(friendly_name=f"Paging {tag} {i:03}").sid for i in range(120)}

    listed = [a.sid for a in client.api.v2010.accounts.list(page_size=7)]
    assert len(listed) == len(set(listed)), "an account appeared twice while paging"
    assert created <= set(listed)
    assert main_sid in listed  # the caller's own account is part of its list

    streamed = [a.sid for a in client.api.v2010.accounts.stream(page_size=7)]
    assert sorted(streamed) == sorted(listed)
    assert sorted(a.sid for a in client.api.v2010.accounts.list(page_size=1000)) == sorted(listed)

    limited = [a.sid for a in client.api.v2010.accounts.list(limit=10, page_size=7)]
    assert len(limited) == len(set(limited)) == 10


@pytest.mark.slow
def test_paging_envelope(client):
    for i in range(8):
        client.api.v2010.accounts.create(friendly_name=f"Envelope {i}")

    pages = []
    page = client.api.v2010.accounts.page(page_size=3)
    while page is not None:
        pages.append(page._payload)
        page = page.next_page()

    assert len(pages) >= 3
    for index, payload in enumerate(pages):
        assert payload["page"] == index
        assert payload["page_size"] == 3
        assert payload["start"] == index * 3
        count = len(payload["accounts"])
        assert 1 <= count <= 3
        assert payload["end"] == payload["start"] + count - 1
        for key in ("uri", "first_page_uri"):
            assert payload[key].startswith("/2010-04-01/Accounts.json?"), payload[key]
        assert "PageSize=3" in payload["first_page_uri"] and "Page=0" in payload["first_page_uri"]
    assert pages[0]["previous_page_uri"] is None
    assert pages[-1]["next_page_uri"] is None
    assert all(p["next_page_uri"] for p in pages[:-1])
    assert all(p["previous_page_uri"] for p in pages[1:])

    # Filters survive in the paging links.
    page = client.api.v2010.accounts.page(friendly_name="Envelope 1", page_size=1)
    assert "FriendlyName=Envelope" in page._payload["uri"] and "FriendlyName=Envelope" in page._payload["first_page_uri"]
