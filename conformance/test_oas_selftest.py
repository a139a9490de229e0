"""Self-test of the validator and the HTTP harness. Needs no warbler binary:
``pytest conformance/test_oas_selftest.py``.

1. Twilio's own response examples (``examples`` in the specs) for the resources warbler serves
   pass the validator.
2. Hand-broken bodies are caught.
3. ``ValidatingHttpClient`` wired into the real SDK records violations from a stub server.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from harness import LeftServerUnderTest, Recorder, make_client, shared_validator

V = shared_validator()

# Operations of the resources warbler implements or plans to (twilio-contract.md).
RELEVANT = re.compile(
    r"^(Create|List|Fetch|Update|Delete)("
    r"Account|NewKey|Key|NewSigningKey|SigningKey|Balance|Message|Media|MessageFeedback|"
    r"IncomingPhoneNumber(Local|Mobile|TollFree)?|AvailablePhoneNumber\w*|ShortCode|"
    r"UsageRecord\w*|UsageTrigger|Service|PhoneNumber|AlphaSender|Alert|"
    r"GetKeys|NewKey|Key)$"
)

# Examples in the specs that contradict their own schema in a way warbler must NOT copy.
# (operationId regex, example name) -> text every violation must contain.
KNOWN_BAD_EXAMPLES = {
    # The capabilities object declares voice/sms/mms/fax; these examples omit fax (real
    # responses, e.g. the seed's capture, include it).
    (r"ListIncomingPhoneNumber(Local|Mobile|TollFree)", "readFull"): "capabilities: 'fax' is a required property",
    (r"ListAvailablePhoneNumber(?!Country)\w+", "readFull"): "capabilities: 'fax' is a required property",
}


def _known_bad(operation_id: str, example: str):
    for (rx, name), text in KNOWN_BAD_EXAMPLES.items():
        if name == example and re.fullmatch(rx, operation_id):
            return text
    return None


def _example_cases():
    for op in V.operations:
        if not RELEVANT.match(op.op.get("operationId", "")):
            continue
        for code, resp in op.op.get("responses", {}).items():
            if not code.startswith("2"):
                continue
            for name, ex in resp.get("content", {}).get("application/json", {}).get("examples", {}).items():
                yield pytest.param(op, int(code), name, ex["value"], id=f"{op.operation_id}-{name}")


def _concrete_path(template: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: f"Zz{m.group(1)}", template)


@pytest.mark.parametrize("op,status,name,body", list(_example_cases()))
def test_spec_example_passes(op, status, name, body):
    path = _concrete_path(op.template)
    assert V.find_operation(op.method, path) is op
    problems = V.check(op.method, "http://127.0.0.1:1" + path, status, json.dumps(body), {"Content-Type": "application/json"})
    expected = _known_bad(op.operation_id, name)
    if expected:
        assert problems and all(expected in p for p in problems), problems
    else:
        assert problems == []


def test_relevant_operations_are_covered():
    ids = {op.operation_id for op in V.operations if RELEVANT.match(op.operation_id)}
    for must in ("CreateAccount", "ListAccount", "FetchAccount", "UpdateAccount", "CreateNewKey", "ListKey",
                 "FetchKey", "UpdateKey", "DeleteKey", "CreateMessage", "ListMessage", "CreateService",
                 "ListAlert", "CreateNewKey", "ListGetKeys"):
        assert must in ids, must


# ---------------------------------------------------------------------------------------------
# hand-broken bodies

MAIN = "AC" + "a" * 32
SUB = "AC" + "b" * 32


def _account():
    op = V.operation_by_id("FetchAccount")
    return copy.deepcopy(op.op["responses"]["200"]["content"]["application/json"]["examples"]["fetch"]["value"])


def _check(method, path, status, body, content_type="application/json"):
    text = body if isinstance(body, str) else json.dumps(body)
    return V.check(method, "http://127.0.0.1:1" + path, status, text, {"Content-Type": content_type})


def test_good_account_passes():
    assert _check("GET", f"/2010-04-01/Accounts/{MAIN}.json", 200, _account()) == []


@pytest.mark.parametrize(
    "field,value,expect",
    [
        ("date_created", "Thu, 30 Jul 2015 20:00:00 GMT", "date-time-rfc-2822"),  # httpdate style
        ("date_created", "Fri, 30 Jul 2015 20:00:00 +0000", "date-time-rfc-2822"),  # wrong weekday
        ("date_created", "2015-07-30T20:00:00Z", "date-time-rfc-2822"),
        ("date_updated", "Thu, 30 Jul 2015 20:00 +0000", "date-time-rfc-2822"),
        ("status", None, "None is not of type"),
        ("status", "disabled", "is not one of"),
        ("type", "full", "is not one of"),
        ("sid", "AC123", "is too short"),
        ("owner_account_sid", "SK" + "a" * 32, "does not match"),
        ("friendly_name", 12, "is not of type"),
    ],
)
def test_bad_account_field_is_caught(field, value, expect):
    body = _account()
    body[field] = value
    problems = _check("GET", f"/2010-04-01/Accounts/{MAIN}.json", 200, body)
    assert any(expect in p and f"$.{field}" in p for p in problems), problems


def test_nullable_fields_accept_null():
    body = _account()
    body["friendly_name"] = None
    body["auth_token"] = None
    assert _check("GET", f"/2010-04-01/Accounts/{MAIN}.json", 200, body) == []


def test_missing_and_extra_fields_are_caught():
    body = _account()
    del body["subresource_uris"]
    body["account_sid"] = MAIN
    problems = _check("GET", f"/2010-04-01/Accounts/{MAIN}.json", 200, body)
    assert any("'subresource_uris' is a required property" in p for p in problems), problems
    assert any("'account_sid' was unexpected" in p for p in problems), problems


def _account_page(items, **extra):
    page = {
        "first_page_uri": "/2010-04-01/Accounts.json?PageSize=50&Page=0",
        "end": max(len(items) - 1, 0),
        "previous_page_uri": None,
        "accounts": items,
        "uri": "/2010-04-01/Accounts.json?PageSize=50&Page=0",
        "page_size": 50,
        "start": 0,
        "next_page_uri": None,
        "page": 0,
    }
    page.update(extra)
    return page


def test_2010_list_envelope():
    assert _check("GET", "/2010-04-01/Accounts.json", 200, _account_page([_account()])) == []
    problems = _check("GET", "/2010-04-01/Accounts.json", 200, _account_page([], total_accounts=0))
    assert any("exactly one non-meta key" in p for p in problems), problems
    # Legacy paging keys are tolerated by the SDK, but they are not in the spec.
    problems = _check("GET", "/2010-04-01/Accounts.json", 200, _account_page([], total=0))
    assert problems and not any("non-meta key" in p for p in problems), problems
    page = _account_page([])
    del page["next_page_uri"]
    assert any("'next_page_uri' is a required property" in p for p in _check("GET", "/2010-04-01/Accounts.json", 200, page))


def test_list_must_be_exactly_200():
    problems = _check("GET", "/2010-04-01/Accounts.json", 201, _account_page([]))
    assert any("not declared" in p for p in problems), problems


def test_create_must_be_201():
    problems = _check("POST", "/2010-04-01/Accounts.json", 200, _account())
    assert any("status 200 is not declared" in p for p in problems), problems
    assert _check("POST", "/2010-04-01/Accounts.json", 201, _account()) == []


def test_delete_is_204_without_body():
    path = f"/2010-04-01/Accounts/{MAIN}/Keys/SK{'c' * 32}.json"
    assert V.check("DELETE", "http://h" + path, 204, "", {}) == []
    assert any("empty body" in p for p in V.check("DELETE", "http://h" + path, 204, "{}", {}))
    assert any("not declared" in p for p in V.check("DELETE", "http://h" + path, 200, "{}", {"Content-Type": "application/json"}))


def test_new_key_only_on_create():
    key = {"sid": "SK" + "c" * 32, "friendly_name": "k", "date_created": "Thu, 30 Jul 2015 20:00:00 +0000",
           "date_updated": "Thu, 30 Jul 2015 20:00:00 +0000", "secret": "s" * 32}
    assert _check("POST", f"/2010-04-01/Accounts/{MAIN}/Keys.json", 201, key) == []
    problems = _check("GET", f"/2010-04-01/Accounts/{MAIN}/Keys/{key['sid']}.json", 200, key)
    assert any("'secret' was unexpected" in p for p in problems), problems


def test_content_type_must_be_json():
    problems = _check("GET", f"/2010-04-01/Accounts/{MAIN}.json", 200, _account(), content_type="text/plain")
    assert any("Content-Type" in p for p in problems), problems
    assert _check("GET", f"/2010-04-01/Accounts/{MAIN}.json", 200, _account(), "application/json; charset=utf-8") == []


def _service():
    op = V.operation_by_id("FetchService")
    return copy.deepcopy(next(iter(op.op["responses"]["200"]["content"]["application/json"]["examples"].values()))["value"])


def test_v1_dates_and_meta():
    sid = "MG" + "a" * 32
    assert _check("GET", f"/v1/Services/{sid}", 200, _service()) == []
    for bad in ("2015-07-30T20:12:31.000Z", "2015-07-30T20:12:31+00:00", "Thu, 30 Jul 2015 20:12:31 +0000", "2015-13-30T20:12:31Z"):
        body = _service()
        body["date_created"] = bad
        problems = _check("GET", f"/v1/Services/{sid}", 200, body)
        assert any("$.date_created" in p and "'date-time'" in p for p in problems), (bad, problems)
    page = {"services": [_service()], "meta": {"page": 0, "page_size": 50, "first_page_url": "http://h/v1/Services?PageSize=50&Page=0",
            "previous_page_url": None, "url": "http://h/v1/Services?PageSize=50&Page=0", "next_page_url": None, "key": "services"}}
    assert _check("GET", "/v1/Services", 200, page) == []
    page["meta"]["key"] = "items"
    assert any("meta.key" in p for p in _check("GET", "/v1/Services", 200, page))


def test_path_matching():
    assert V.find_operation("GET", "/v1/Services/Usecases").operation_id == "FetchUsecase"
    assert V.find_operation("POST", "/v1/Services/MG" + "a" * 32).operation_id == "UpdateService"
    assert V.find_operation("GET", "/v1/Keys").operation_id == "ListGetKeys"
    assert V.find_operation("GET", "/v1/Alerts/NO" + "a" * 32).operation_id == "FetchAlert"
    assert V.find_operation("GET", f"/2010-04-01/Accounts/{MAIN}/Keys.json").operation_id == "ListKey"
    assert V.find_operation("PUT", f"/2010-04-01/Accounts/{MAIN}.json") is None
    problems = V.check("GET", "http://h/2010-04-01/Accounts/X/Nope.json", 200, "{}", {})
    assert problems and "no operation" in problems[0]


def test_lenient_application_sid():
    op = V.operation_by_id("FetchIncomingPhoneNumber")
    body = copy.deepcopy(op.op["responses"]["200"]["content"]["application/json"]["examples"]["fetch"]["value"])
    path = f"/2010-04-01/Accounts/{MAIN}/IncomingPhoneNumbers/PN{'a' * 32}.json"
    body["sms_application_sid"] = ""
    assert _check("GET", path, 200, body) == []
    body["sms_application_sid"] = "nope"
    assert _check("GET", path, 200, body)


def test_documented_extra_properties():
    op = V.operation_by_id("FetchIncomingPhoneNumber")
    body = copy.deepcopy(op.op["responses"]["200"]["content"]["application/json"]["examples"]["fetch"]["value"])
    path = f"/2010-04-01/Accounts/{MAIN}/IncomingPhoneNumbers/PN{'a' * 32}.json"
    body["subresource_uris"] = {"assigned_add_ons": path.replace(".json", "/AssignedAddOns.json")}
    assert _check("GET", path, 200, body) == []
    body["subresource_uris"] = {"assigned_add_ons": 1}
    assert _check("GET", path, 200, body)
    # ...but only where documented.
    account = _account()
    account["assigned_add_ons"] = "x"
    assert _check("GET", f"/2010-04-01/Accounts/{MAIN}.json", 200, account)


GOOD_ERROR = {"code": 20404, "message": "The requested resource /x was not found",
              "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}


@pytest.mark.parametrize(
    "body,status,expect",
    [
        (GOOD_ERROR, 404, None),
        ({**GOOD_ERROR, "details": {"field": "To"}}, 404, None),
        (GOOD_ERROR, 400, "must be the integer HTTP status 400"),
        ({**GOOD_ERROR, "code": "20404"}, 404, "code must be an integer"),
        ({k: v for k, v in GOOD_ERROR.items() if k != "more_info"}, 404, "lacks ['more_info']"),
        ({**GOOD_ERROR, "type": "about:blank", "title": "Not Found"}, 404, "extra keys ['title', 'type']"),
        ({**GOOD_ERROR, "details": "x"}, 404, "details must be an object"),
        ("Not Found", 404, "not JSON"),
        ([GOOD_ERROR], 404, "not an object"),
    ],
)
def test_error_bodies(body, status, expect):
    problems = _check("GET", f"/2010-04-01/Accounts/{MAIN}.json", status, body)
    if expect is None:
        assert problems == []
    else:
        assert any(expect in p for p in problems), problems


def test_error_content_type():
    problems = _check("GET", f"/2010-04-01/Accounts/{MAIN}.json", 401, GOOD_ERROR | {"status": 401}, content_type="text/html")
    assert any("Content-Type" in p for p in problems), problems


# ---------------------------------------------------------------------------------------------
# the real SDK through ValidatingHttpClient, against a stub


class _Stub(BaseHTTPRequestHandler):
    routes: dict = {}

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body = self.routes.get((self.command, self.path.split("?")[0]), (404, GOOD_ERROR))
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_sdk_through_validating_client(stub):
    httpd, url = stub
    good = _account()
    good["sid"] = good["owner_account_sid"] = MAIN
    bad = dict(good, date_created="Thu, 30 Jul 2015 20:00:00 GMT")
    _Stub.routes = {
        ("GET", f"/2010-04-01/Accounts/{MAIN}.json"): (200, good),
        ("GET", f"/2010-04-01/Accounts/{SUB}.json"): (200, bad),
        ("GET", "/2010-04-01/Accounts.json"): (200, _account_page([good])),
        ("POST", f"/2010-04-01/Accounts/{MAIN}/Keys.json"): (200, {"sid": "SK" + "c" * 32}),
        ("DELETE", f"/2010-04-01/Accounts/{MAIN}/Keys/SK{'c' * 32}.json"): (204, None),
        ("GET", f"/2010-04-01/Accounts/{MAIN}/Keys.json"): (401, {**GOOD_ERROR, "code": 20003, "status": 401, "message": "Authenticate"}),
    }
    rec = Recorder()
    client = make_client(url, MAIN, "t" * 32, recorder=rec)

    assert client.api.v2010.accounts(MAIN).fetch().sid == MAIN
    assert [a.sid for a in client.api.v2010.accounts.list()] == [MAIN]
    assert client.keys("SK" + "c" * 32).delete() is True
    assert rec.violations == []
    assert rec.exchanges[0].username == MAIN and rec.exchanges[0].status == 200

    client.api.v2010.accounts(SUB).fetch()  # the SDK does not mind; the validator does
    assert len(rec.violations) == 1 and "date-time-rfc-2822" in rec.violations[0], rec.violations

    rec.clear()
    client.new_keys.create(friendly_name="x")  # 200 instead of 201, and fields missing
    assert any("status 200 is not declared" in v for v in rec.violations), rec.violations

    rec.clear()
    with pytest.raises(TwilioException) as e:  # a list page that is not 200 is no TwilioRestException
        client.keys.list()
    assert e.value.args[1].status_code == 401
    with pytest.raises(TwilioRestException) as e:
        client.keys("SK" + "d" * 32).fetch()
    assert (e.value.status, e.value.code) == (404, 20404)
    assert rec.violations == []

    # A URL outside the server under test is refused before anything is sent.
    rec.clear()
    client.api.base_url = "https://api.twilio.com"
    with pytest.raises(LeftServerUnderTest):
        client.api.v2010.accounts(MAIN).fetch()
    assert len(rec.violations) == 1
