"""Test credentials through the official SDK, as Twilio's "Test Credentials" page uses them
(twilio-contract.md, "Test credentials (magic numbers)"): ``Client(test_sid, test_token)``
sends from ``+15005550006`` and buys ``+15005550006``; the magic numbers give their errors;
nothing is stored, and every other resource is refused with 20003.

warbler shows an account's test credentials at ``/warbler/v1/Accounts/{Sid}/TestCredentials``
(Twilio shows them in its console).
"""

from __future__ import annotations

import requests

from helpers import twilio_error


def fetch_test_credentials(server, account_sid: str, auth: tuple[str, str]) -> tuple[str, str]:
    response = requests.get(f"{server.url}/warbler/v1/Accounts/{account_sid}/TestCredentials", auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["test_account_sid"], body["test_auth_token"]


def test_the_sdks_test_credential_examples_run_unchanged(client, client_for, server):
    test_sid, test_token = fetch_test_credentials(server, server.account_sid, (server.account_sid, server.auth_token))
    test = client_for(test_sid, test_token)

    message = test.messages.create(body="All in the game, yo", from_="+15005550006", to="+14108675310")
    assert message.sid.startswith("SM")
    assert message.status == "queued"
    assert message.account_sid == test_sid

    number = test.incoming_phone_numbers.create(phone_number="+15005550006")
    assert number.phone_number == "+15005550006"
    assert number.account_sid == test_sid

    for from_, to, code in [
        ("+15005550001", "+14108675310", 21212),
        ("+15005550007", "+14108675310", 21606),
        ("+15005550008", "+14108675310", 21611),
        ("+15005550006", "+15005550001", 21211),
        ("+15005550006", "+15005550002", 21612),
        ("+15005550006", "+15005550003", 21408),
        ("+15005550006", "+15005550004", 21610),
        ("+15005550006", "+15005550009", 21614),
    ]:
        with twilio_error(400, code):
            test.messages.create(body="x", from_=from_, to=to)
    with twilio_error(400, 21422):
        test.incoming_phone_numbers.create(phone_number="+15005550000")
    with twilio_error(400, 21421):
        test.incoming_phone_numbers.create(phone_number="+15005550001")
    with twilio_error(400, 21452):
        test.incoming_phone_numbers.create(area_code="533")

    # Nothing was stored on the live account; test credentials reach nothing else.
    assert message.sid not in [m.sid for m in client.messages.list(limit=200)]
    assert "+15005550006" not in [n.phone_number for n in client.incoming_phone_numbers.list()]
    with twilio_error(401, 20003):
        test.messages.list()
    with twilio_error(401, 20003):
        test.api.v2010.accounts(test_sid).fetch()


def test_a_subaccounts_test_credentials_are_its_own(client, client_for, server):
    sub = client.api.v2010.accounts.create(friendly_name="Development")
    test_sid, test_token = fetch_test_credentials(server, sub.sid, (sub.sid, sub.auth_token))
    assert test_sid != sub.sid
    parent_view = fetch_test_credentials(server, sub.sid, (server.account_sid, server.auth_token))
    assert parent_view == (test_sid, test_token)
    message = client_for(test_sid, test_token).messages.create(body="hi", from_="+15005550006", to="+14108675310")
    assert message.account_sid == test_sid
