"""Messaging Services (messaging v1 ``/v1/Services``) through the official SDK, following the
seed walkthrough's "Create a Messaging Service" and "Add Phone number to Messaging Service"
steps (in Falcon Flights' subaccount, with its own credentials), the onboarding guide's
"A default Messaging Service is automatically generated for your Account upon creation", and
twilio-contract.md section 11.

A service belongs to the account whose credentials call the v1 API (its paths carry no
account), so most tests work in a fresh subaccount, where the list of services is exactly known.
"""

from __future__ import annotations

import re

from helpers import assert_recent, twilio_error
from inventory import buy_fresh_number, tag

SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")
ALPHA_SID = re.compile(r"^AI[0-9a-f]{32}$")
DEFAULT_SERVICE = "Default Messaging Service"
SERVICE_LINKS = {"phone_numbers", "short_codes", "alpha_senders", "messages", "us_app_to_person",
                 "us_app_to_person_usecases", "channel_senders", "destination_alpha_senders"}


def new_subaccount(client, client_for, name: str):
    """A fresh subaccount and an SDK client with its own credentials."""
    sub = client.api.v2010.accounts.create(friendly_name=f"{name} {tag()}")
    return sub, client_for(sub.sid, sub.auth_token)


def assert_default_settings(service) -> None:
    assert (service.sticky_sender, service.mms_converter, service.smart_encoding, service.area_code_geomatch) \
        == (True, True, True, True)
    assert service.validity_period == 36000
    assert service.usecase == "undeclared"
    assert (service.inbound_method, service.fallback_method) == ("POST", "POST")
    assert (service.inbound_request_url, service.fallback_url, service.status_callback) == (None, None, None)
    assert service.scan_message_content == "inherit"
    assert service.us_app_to_person_registered is False
    assert service.use_inbound_webhook_on_number is False


def test_falcon_flights_creates_a_service_and_adds_its_number(client, client_for, server):
    # Falcon Flights' subaccount, holding the number the parent moved to it.
    falcon, falcon_client = new_subaccount(client, client_for, "FalconFlights")
    number = buy_fresh_number(server, client)
    client.incoming_phone_numbers(number.sid).update(account_sid=falcon.sid)

    # "Create a Messaging Service in your newly created subaccount ... use the Account SID and
    # Auth token associated with the subaccount."
    service = falcon_client.messaging.v1.services.create(friendly_name="falconFlightNotifications")

    assert SERVICE_SID.match(service.sid)
    assert service.account_sid == falcon.sid
    assert service.friendly_name == "falconFlightNotifications"
    assert_default_settings(service)
    assert_recent(service.date_created)  # ISO 8601 that the SDK parsed into a datetime
    assert service.date_updated >= service.date_created
    assert service.url == f"{server.url}/v1/Services/{service.sid}"
    assert set(service.links) == SERVICE_LINKS
    assert service.links["phone_numbers"] == f"{server.url}/v1/Services/{service.sid}/PhoneNumbers"
    assert service.links["alpha_senders"] == f"{server.url}/v1/Services/{service.sid}/AlphaSenders"

    fetched = falcon_client.messaging.v1.services(service.sid).fetch()
    assert (fetched.sid, fetched.friendly_name, fetched.date_created) == (service.sid, "falconFlightNotifications", service.date_created)

    # "Add Phone number to Messaging Service": PhoneNumberSid=<PN...>
    added = falcon_client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=number.sid)

    assert added.sid == number.sid
    assert added.account_sid == falcon.sid
    assert added.service_sid == service.sid
    assert added.phone_number == number.phone_number
    assert added.country_code == "US"
    assert {"SMS", "MMS", "Voice"} <= set(added.capabilities)  # an array here, not the 2010 object
    assert added.url == f"{server.url}/v1/Services/{service.sid}/PhoneNumbers/{number.sid}"
    assert_recent(added.date_created)

    members = falcon_client.messaging.v1.services(service.sid).phone_numbers.list()
    assert [m.sid for m in members] == [number.sid]
    member = falcon_client.messaging.v1.services(service.sid).phone_numbers(number.sid).fetch()
    assert (member.phone_number, member.service_sid) == (number.phone_number, service.sid)

    # The service is the subaccount's: the parent's credentials act on the parent's services only.
    assert service.sid not in [s.sid for s in client.messaging.v1.services.list()]
    with twilio_error(404, 20404):
        client.messaging.v1.services(service.sid).fetch()


def test_every_account_has_a_default_service(client, client_for, main_sid):
    defaults = [s for s in client.messaging.v1.services.list() if s.friendly_name == DEFAULT_SERVICE]
    assert len(defaults) == 1
    assert defaults[0].account_sid == main_sid

    sub, sub_client = new_subaccount(client, client_for, "Fresh")
    (service,) = sub_client.messaging.v1.services.list()
    assert service.friendly_name == DEFAULT_SERVICE
    assert service.account_sid == sub.sid
    assert_default_settings(service)
    assert service.sid != defaults[0].sid


def test_auto_paging_returns_every_service_once(client, client_for, server):
    sub, sub_client = new_subaccount(client, client_for, "Pager")
    created = {sub_client.messaging.v1.services.create(friendly_name=f"Route {i:02}").sid for i in range(25)}
    (default,) = [s.sid for s in sub_client.messaging.v1.services.list(page_size=1000) if s.friendly_name == DEFAULT_SERVICE]

    # The SDK follows meta.next_page_url verbatim (it must point at this server).
    listed = [s.sid for s in sub_client.messaging.v1.services.list(page_size=7)]
    assert len(listed) == len(set(listed)), "a service appeared twice while paging"
    assert set(listed) == created | {default}
    assert [s.sid for s in sub_client.messaging.v1.services.stream(page_size=7)] == listed
    assert len(sub_client.messaging.v1.services.list(limit=10, page_size=7)) == 10

    # The v1 envelope.
    page = sub_client.messaging.v1.services.page(page_size=7)
    meta = page._payload["meta"]
    assert meta["key"] == "services" and meta["page"] == 0 and meta["page_size"] == 7
    assert len(page._payload["services"]) == 7
    assert meta["previous_page_url"] is None
    for key in ("url", "first_page_url", "next_page_url"):
        assert meta[key].startswith(f"{server.url}/v1/Services?"), meta[key]
    pages = 1
    while page.next_page() is not None:
        page = page.next_page()
        pages += 1
    assert pages == 4  # 26 services, 7 a page
    assert page._payload["meta"]["next_page_url"] is None


def test_a_number_sits_in_one_service_only(client, client_for, server):
    sub, sub_client = new_subaccount(client, client_for, "Pools")
    number = buy_fresh_number(server, client, account_sid=sub.sid)
    services = sub_client.messaging.v1.services
    first = services.create(friendly_name="Flight alerts")
    second = services.create(friendly_name="Marketing")

    services(first.sid).phone_numbers.create(phone_number_sid=number.sid)
    with twilio_error(400, 80104):  # already in this very service
        services(first.sid).phone_numbers.create(phone_number_sid=number.sid)
    with twilio_error(400, 21712):  # already in another service: remove it there first
        services(second.sid).phone_numbers.create(phone_number_sid=number.sid)
    assert services(second.sid).phone_numbers.list() == []

    # Removed from the first (204), it can join the second.
    assert services(first.sid).phone_numbers(number.sid).delete() is True
    assert services(first.sid).phone_numbers.list() == []
    with twilio_error(404, 20404):
        services(first.sid).phone_numbers(number.sid).fetch()
    services(second.sid).phone_numbers.create(phone_number_sid=number.sid)
    assert [m.sid for m in services(second.sid).phone_numbers.list()] == [number.sid]

    # Deleting a service frees its numbers.
    assert services(second.sid).delete() is True
    with twilio_error(404, 20404):
        services(second.sid).fetch()
    assert second.sid not in [s.sid for s in services.list()]
    services(first.sid).phone_numbers.create(phone_number_sid=number.sid)
    assert [m.sid for m in services(first.sid).phone_numbers.list()] == [number.sid]


def test_a_service_takes_only_its_own_accounts_numbers(client, client_for, server):
    sub, sub_client = new_subaccount(client, client_for, "Grabby")
    sibling, sibling_client = new_subaccount(client, client_for, "Sibling")
    parents_number = buy_fresh_number(server, client)
    siblings_number = buy_fresh_number(server, client, account_sid=sibling.sid)
    own_number = buy_fresh_number(server, client, account_sid=sub.sid)
    service = sub_client.messaging.v1.services.create(friendly_name="Own numbers only")

    with twilio_error(400, 21421):
        sub_client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=parents_number.sid)
    with twilio_error(400, 21421):
        sub_client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=siblings_number.sid)
    with twilio_error(400, 21421):
        sub_client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid="PN" + "0" * 32)
    # Nor does the parent's own service take its subaccount's number.
    parents_service = client.messaging.v1.services.create(friendly_name=f"Parent pool {tag()}")
    with twilio_error(400, 21421):
        client.messaging.v1.services(parents_service.sid).phone_numbers.create(phone_number_sid=own_number.sid)
    # And another account's service is not found at all.
    with twilio_error(404, 20404):
        sibling_client.messaging.v1.services(service.sid).phone_numbers.list()

    assert sub_client.messaging.v1.services(service.sid).phone_numbers.list() == []
    sub_client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=own_number.sid)
    client.messaging.v1.services(parents_service.sid).delete()


def test_update_settings_and_invalid_values(client, client_for):
    sub, sub_client = new_subaccount(client, client_for, "Tuner")
    service = sub_client.messaging.v1.services.create(friendly_name="Tunable")

    updated = sub_client.messaging.v1.services(service.sid).update(
        friendly_name="Tuned",
        status_callback="https://falcon.example.com/status",
        inbound_request_url="https://falcon.example.com/inbound",
        inbound_method="GET",
        sticky_sender=False,
        area_code_geomatch=False,
        smart_encoding=False,
        validity_period=600,
        usecase="notifications",
        use_inbound_webhook_on_number=True,
    )
    assert updated.friendly_name == "Tuned"
    assert updated.status_callback == "https://falcon.example.com/status"
    assert (updated.inbound_request_url, updated.inbound_method) == ("https://falcon.example.com/inbound", "GET")
    assert (updated.sticky_sender, updated.area_code_geomatch, updated.smart_encoding) == (False, False, False)
    assert updated.mms_converter is True  # untouched
    assert updated.validity_period == 600
    assert updated.usecase == "notifications"
    assert updated.use_inbound_webhook_on_number is True
    assert updated.date_updated >= service.date_updated
    fetched = sub_client.messaging.v1.services(service.sid).fetch()
    assert (fetched.friendly_name, fetched.validity_period, fetched.sticky_sender) == ("Tuned", 600, False)

    # Out-of-range or unknown values are refused and change nothing.
    with twilio_error(400, 90007):
        sub_client.messaging.v1.services(service.sid).update(validity_period=0)
    with twilio_error(400, 90007):
        sub_client.messaging.v1.services(service.sid).update(validity_period=36001)
    with twilio_error(400, 21713):
        sub_client.messaging.v1.services(service.sid).update(usecase="spam")
    with twilio_error(400, 21402):
        sub_client.messaging.v1.services(service.sid).update(status_callback="not a url")
    with twilio_error(400, 90007):
        sub_client.messaging.v1.services.create(friendly_name="Bad validity", validity_period=0)
    fetched = sub_client.messaging.v1.services(service.sid).fetch()
    assert (fetched.validity_period, fetched.usecase, fetched.status_callback) == \
        (600, "notifications", "https://falcon.example.com/status")

    # Clearing a URL.
    cleared = sub_client.messaging.v1.services(service.sid).update(status_callback="")
    assert cleared.status_callback in (None, "")


def test_alpha_senders(client, client_for):
    sub, sub_client = new_subaccount(client, client_for, "Alpha")
    service = sub_client.messaging.v1.services.create(friendly_name="Falcon Air alerts")
    senders = sub_client.messaging.v1.services(service.sid).alpha_senders

    sender = senders.create(alpha_sender="FalconAir")
    assert ALPHA_SID.match(sender.sid)
    assert (sender.alpha_sender, sender.service_sid, sender.account_sid) == ("FalconAir", service.sid, sub.sid)
    assert sender.capabilities == ["SMS"]
    assert sender.url == f"{sub_client.messaging.base_url}/v1/Services/{service.sid}/AlphaSenders/{sender.sid}"
    assert [s.sid for s in senders.list()] == [sender.sid]
    assert senders(sender.sid).fetch().alpha_sender == "FalconAir"

    with twilio_error(400, 80104):
        senders.create(alpha_sender="FalconAir")
    for bad in ("12345", "FalconAirlines", "Falcon!"):  # all digits, 14 characters, a '!'
        with twilio_error(400):
            senders.create(alpha_sender=bad)

    assert senders(sender.sid).delete() is True
    assert senders.list() == []
