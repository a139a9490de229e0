"""Webhooks warbler sends, checked by Twilio's own ``twilio.request_validator.RequestValidator``:
status callbacks (in order, retried after failures, with monitor alerts), inbound messages with
TwiML replies built by the SDK's ``MessagingResponse``, and STOP / START opt-outs.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from helpers import twilio_error
from inventory import buy_fresh_number, random_handset, wait_for_status


class Receiver:
    """An HTTP server on 127.0.0.1 that validates every request with the official validator
    (the token of the account a path belongs to) and answers from per-path scripts."""

    def __init__(self):
        self.requests: list[dict] = []
        self.scripts: dict[str, list[tuple[int, str, str]]] = {}
        self.tokens: dict[str, str] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                parsed = urllib.parse.urlsplit(self.path)
                url = f"{receiver.base}{self.path}"
                if self.command == "GET":
                    params = {}
                else:
                    params = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
                token = receiver.tokens.get(parsed.path, "")
                valid = RequestValidator(token).validate(url, params, self.headers.get("X-Twilio-Signature", ""))
                with receiver.lock:
                    receiver.requests.append({"path": parsed.path, "params": params, "valid": valid,
                                              "idempotency": self.headers.get("I-Twilio-Idempotency-Token")})
                    script = receiver.scripts.get(parsed.path) or []
                    status, content_type, body = script.pop(0) if script else (200, "text/xml", "")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            do_POST = _handle
            do_GET = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str, token: str) -> str:
        self.tokens[path] = token
        return f"{self.base}{path}"

    def answer(self, path: str, status: int = 200, content_type: str = "text/xml", body: str = "") -> None:
        with self.lock:
            self.scripts.setdefault(path, []).append((status, content_type, body))

    def seen(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def wait(self, path: str, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.seen(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(self.seen(path))} requests after {timeout}s, wanted {count}: {self.seen(path)}")
            time.sleep(0.1)
        return self.seen(path)

    def assert_all_valid(self) -> None:
        with self.lock:
            invalid = [r for r in self.requests if not r["valid"]]
            assert self.requests, "no webhook arrived"
        assert not invalid, f"requests failing RequestValidator: {invalid}"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.httpd.shutdown()


def statuses(requests_seen: list[dict], sid: str) -> list[str]:
    return [r["params"]["MessageStatus"] for r in requests_seen if r["params"].get("MessageSid") == sid]


def simulate_inbound(server, from_: str, to: str, body: str) -> dict:
    session = requests.Session()
    session.trust_env = False
    response = session.post(f"{server.url}/admin/simulate/inbound", data={"From": from_, "To": to, "Body": body},
                            auth=(server.account_sid, server.auth_token), timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def test_status_callbacks_pass_the_validator_in_order(client, server, receiver):
    number = buy_fresh_number(server, client)
    url = receiver.url("/status", server.auth_token)
    delivered = client.messages.create(to=random_handset(), from_=number.phone_number, body="one", status_callback=url)
    undelivered = client.messages.create(to="+15005550030", from_=number.phone_number, body="two", status_callback=url)
    failed = client.messages.create(to="+15005550080", from_=number.phone_number, body="three", status_callback=url)
    for m in (delivered, undelivered, failed):
        wait_for_status(client.messages(m.sid).fetch, {"delivered", "undelivered", "failed"})
    seen = receiver.wait("/status", 5)
    assert statuses(seen, delivered.sid) == ["sent", "delivered"]
    assert statuses(seen, undelivered.sid) == ["sent", "undelivered"]
    assert statuses(seen, failed.sid) == ["failed"]
    last = [r["params"] for r in seen if r["params"]["MessageSid"] == undelivered.sid][-1]
    assert last["ErrorCode"] == "30003"
    assert last["SmsSid"] == undelivered.sid and last["AccountSid"] == server.account_sid
    assert last["ApiVersion"] == "2010-04-01" and len(last["RawDlrDoneDate"]) == 10
    receiver.assert_all_valid()


def test_a_subaccount_callback_is_retried_then_alerts_are_readable(client, client_for, server, receiver):
    sub = client.api.v2010.accounts.create(friendly_name="retries")
    sub_client = client_for(sub.sid, sub.auth_token)
    number = buy_fresh_number(server, client, account_sid=sub.sid)
    url = receiver.url("/flaky", sub.auth_token)
    receiver.answer("/flaky", 500, "text/plain", "down")
    receiver.answer("/flaky", 502, "text/plain", "down again")
    message = sub_client.messages.create(to=random_handset(), from_=number.phone_number, body="retry", status_callback=url)
    seen = receiver.wait("/flaky", 4)
    assert statuses(seen, message.sid) == ["sent", "sent", "sent", "delivered"]
    # A retry is the same delivery: the idempotency token repeats.
    assert len({r["idempotency"] for r in seen[:3]}) == 1
    receiver.assert_all_valid()

    for reader in (sub_client, client):
        alerts = [a for a in reader.monitor.v1.alerts.list() if a.resource_sid == message.sid]
        assert len(alerts) == 2
        assert {a.error_code for a in alerts} == {"11200"}
        assert all(a.account_sid == sub.sid for a in alerts)
    alert = sub_client.monitor.v1.alerts(alerts[0].sid).fetch()
    assert "MessageStatus=sent" in alert.request_variables
    assert alert.request_url == url


def test_inbound_webhook_and_twiml_reply(client, server, receiver):
    number = buy_fresh_number(server, client)
    client.incoming_phone_numbers(number.sid).update(sms_url=receiver.url("/sms", server.auth_token))
    reply = MessagingResponse()
    reply.message("Thanks for writing!")
    receiver.answer("/sms", 200, "text/xml", str(reply))
    handset = random_handset()
    inbound = simulate_inbound(server, handset, number.phone_number, "Is my flight on time?")
    (hit,) = receiver.wait("/sms", 1)
    params = hit["params"]
    assert params["Body"] == "Is my flight on time?"
    assert params["From"] == handset and params["To"] == number.phone_number
    assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"] == inbound["sid"]
    assert params["NumMedia"] == "0" and params["SmsStatus"] == "received"
    receiver.assert_all_valid()

    deadline = time.monotonic() + 10
    replies = []
    while not replies and time.monotonic() < deadline:
        replies = [m for m in client.messages.list(to=handset) if m.direction == "outbound-reply"]
        time.sleep(0.2)
    assert [m.body for m in replies] == ["Thanks for writing!"]
    assert replies[0].from_ == number.phone_number
    final = wait_for_status(client.messages(replies[0].sid).fetch, {"delivered"})
    assert final.status == "delivered"
    fetched = client.messages(inbound["sid"]).fetch()
    assert fetched.direction == "inbound" and fetched.status == "received"


def test_malformed_twiml_leaves_a_12100_alert(client, server, receiver):
    number = buy_fresh_number(server, client)
    client.incoming_phone_numbers(number.sid).update(sms_url=receiver.url("/broken", server.auth_token))
    receiver.answer("/broken", 200, "text/xml", "<Response><Message>unclosed</Response>")
    inbound = simulate_inbound(server, random_handset(), number.phone_number, "hello")
    receiver.wait("/broken", 1)
    deadline = time.monotonic() + 10
    alerts = []
    while not alerts and time.monotonic() < deadline:
        alerts = [a for a in client.monitor.v1.alerts.list() if a.resource_sid == inbound["sid"]]
        time.sleep(0.2)
    assert [a.error_code for a in alerts] == ["12100"]


def test_stop_opts_out_until_start(client, server, receiver):
    number = buy_fresh_number(server, client)
    client.incoming_phone_numbers(number.sid).update(sms_url=receiver.url("/keywords", server.auth_token))
    handset = random_handset()
    simulate_inbound(server, handset, number.phone_number, "STOP")
    (hit,) = receiver.wait("/keywords", 1)
    assert hit["params"]["OptOutType"] == "STOP"
    with twilio_error(400, 21610):
        client.messages.create(to=handset, from_=number.phone_number, body="promo")
    confirmations = [m.body for m in client.messages.list(to=handset) if m.direction == "outbound-reply"]
    assert confirmations and confirmations[0].startswith("You have successfully been unsubscribed")
    simulate_inbound(server, handset, number.phone_number, "start")
    message = client.messages.create(to=handset, from_=number.phone_number, body="welcome back")
    assert message.status == "queued"
    receiver.wait("/keywords", 2)
    receiver.assert_all_valid()
