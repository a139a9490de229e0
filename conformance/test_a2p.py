"""US A2P 10DLC registration through the official SDK: Brand registrations
(``client.messaging.v1.brand_registrations``) and a Messaging Service's campaign
(``services(sid).us_app_to_person``, ``us_app_to_person_usecases``), every response checked
against Twilio's messaging v1 spec. warbler's operator stands in for The Campaign Registry
(``/warbler/v1/A2p/Reviews``); each status change reaches the account's event sink as a
CloudEvent whose JSON-body signature the SDK's ``RequestValidator`` accepts.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from twilio.request_validator import RequestValidator

from helpers import twilio_error

CUSTOMER_BUNDLE = "BU0123456789abcdef0123456789abcdef"
A2P_BUNDLE = "BUfedcba9876543210fedcba9876543210"


class EventSink:
    """Records every POST: its URL, raw body and whether the official validator accepts it."""

    def __init__(self, token: str):
        self.events: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                url = f"{sink.base}{self.path}"
                valid = RequestValidator(token).validate(url, body, self.headers.get("X-Twilio-Signature", ""))
                sink.events.append({"valid": valid, "event": json.loads(body),
                                    "content_type": self.headers.get("Content-Type")})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.time() + timeout
        while len(self.events) < count and time.time() < deadline:
            time.sleep(0.1)
        return list(self.events)


def review(server, sid: str, **form) -> dict:
    response = requests.post(f"{server.url}/warbler/v1/A2p/Reviews/{sid}", data=form,
                             auth=(server.account_sid, server.auth_token), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


CAMPAIGN = dict(
    description="Flight status notices for passengers who booked with us",
    message_flow="Passengers opt in on the booking page by ticking a box for SMS notices",
    message_samples=["Your flight FA123 now leaves at 10:40 from gate B7",
                     "Boarding for FA123 starts in 20 minutes. Reply STOP to opt out"],
    us_app_to_person_usecase="ACCOUNT_NOTIFICATION",
    has_embedded_links=False,
    has_embedded_phone=False,
    opt_out_keywords=["STOP"],
    help_keywords=["HELP"],
)


def test_a_brand_and_campaign_registered_through_the_sdk_reach_verified(client, client_for, server):
    sub = client.api.v2010.accounts.create(friendly_name="A2P tenant")
    tenant = client_for(sub.sid, sub.auth_token)
    sink = EventSink(sub.auth_token)
    response = requests.post(f"{server.url}/warbler/v1/Accounts/{sub.sid}/A2pEventSink",
                             data={"Url": f"{sink.base}/events"}, auth=(sub.sid, sub.auth_token), timeout=10)
    assert response.status_code == 200, response.text

    with twilio_error(400, 20001):
        tenant.messaging.v1.brand_registrations.create(customer_profile_bundle_sid="nope",
                                                      a2p_profile_bundle_sid=A2P_BUNDLE)
    brand = tenant.messaging.v1.brand_registrations.create(customer_profile_bundle_sid=CUSTOMER_BUNDLE,
                                                          a2p_profile_bundle_sid=A2P_BUNDLE)
    assert brand.sid.startswith("BN")
    assert brand.status == "PENDING"
    assert brand.account_sid == sub.sid
    assert [b.sid for b in tenant.messaging.v1.brand_registrations.list()] == [brand.sid]

    service = tenant.messaging.v1.services.create(friendly_name="Flight alerts")
    with twilio_error(400, 20001):  # the brand is not approved yet
        tenant.messaging.v1.services(service.sid).us_app_to_person.create(brand_registration_sid=brand.sid,
                                                                           **CAMPAIGN)
    assert review(server, brand.sid, Decision="approve")["status"] == "APPROVED"
    fetched = tenant.messaging.v1.brand_registrations(brand.sid).fetch()
    assert fetched.status == "APPROVED"
    assert fetched.tcr_id.startswith("B")

    usecases = tenant.messaging.v1.services(service.sid).us_app_to_person_usecases.fetch(
        brand_registration_sid=brand.sid)
    codes = [u["code"] for u in usecases.us_app_to_person_usecases]
    assert "ACCOUNT_NOTIFICATION" in codes and "SOLE_PROPRIETOR" not in codes

    campaign = tenant.messaging.v1.services(service.sid).us_app_to_person.create(brand_registration_sid=brand.sid,
                                                                                  **CAMPAIGN)
    assert campaign.sid.startswith("QE")
    assert campaign.campaign_status == "PENDING"
    assert campaign.message_samples == CAMPAIGN["message_samples"]
    assert tenant.messaging.v1.services(service.sid).fetch().us_app_to_person_registered is False

    updated = tenant.messaging.v1.services(service.sid).us_app_to_person(campaign.sid).update(
        has_embedded_links=True, has_embedded_phone=False, message_samples=CAMPAIGN["message_samples"],
        message_flow=CAMPAIGN["message_flow"], description="Flight status and gate change notices for our passengers",
        age_gated=False, direct_lending=False)
    assert updated.has_embedded_links is True
    assert updated.opt_out_keywords == ["STOP"]

    verified = review(server, campaign.sid, Decision="approve")
    assert verified["campaign_status"] == "VERIFIED"
    listed = tenant.messaging.v1.services(service.sid).us_app_to_person.list()
    assert [c.sid for c in listed] == [campaign.sid]
    assert listed[0].campaign_id.startswith("C")
    assert tenant.messaging.v1.services(service.sid).fetch().us_app_to_person_registered is True

    events = sink.wait_for(3)
    assert len(events) == 3, events
    assert all(e["valid"] for e in events), events
    assert all(e["content_type"].startswith("application/json") for e in events)
    kinds = sorted(e["event"]["type"].rsplit(".", 1)[1] for e in events)
    assert kinds == ["brand-registered", "campaign-approved", "campaign-submitted"]

    tenant.messaging.v1.services(service.sid).us_app_to_person(campaign.sid).delete()
    assert tenant.messaging.v1.services(service.sid).us_app_to_person.list() == []
    assert tenant.messaging.v1.services(service.sid).fetch().us_app_to_person_registered is False


def test_a_mock_brand_is_approved_at_once_and_a_subaccount_cannot_review(client, client_for, server):
    sub = client.api.v2010.accounts.create(friendly_name="A2P mock tenant")
    tenant = client_for(sub.sid, sub.auth_token)
    brand = tenant.messaging.v1.brand_registrations.create(customer_profile_bundle_sid=CUSTOMER_BUNDLE,
                                                          a2p_profile_bundle_sid=A2P_BUNDLE, mock=True)
    assert brand.mock is True
    assert brand.status == "APPROVED"
    pending = tenant.messaging.v1.brand_registrations.create(customer_profile_bundle_sid=CUSTOMER_BUNDLE,
                                                            a2p_profile_bundle_sid=A2P_BUNDLE)
    response = requests.post(f"{server.url}/warbler/v1/A2p/Reviews/{pending.sid}", data={"Decision": "approve"},
                             auth=(sub.sid, sub.auth_token), timeout=10)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == 20403
    # Another account's brand is not found.
    with twilio_error(404, 20404):
        client.messaging.v1.brand_registrations(pending.sid).fetch()
