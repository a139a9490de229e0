"""Usage Records and Balance through the official SDK: what each customer (subaccount) cost,
as the seeds promise ("utilize the Usage API to get specific billing data for a subaccount").
"""

from __future__ import annotations

from decimal import Decimal

import requests

from helpers import clear_of_utc_midnight, twilio_error
from inventory import buy_fresh_number, random_handset, wait_for_status


def test_a_parent_reads_each_subaccounts_cost_this_month(client, client_for, server):
    clear_of_utc_midnight()
    falcon = client.api.v2010.accounts.create(friendly_name="Falcon usage")
    owl = client.api.v2010.accounts.create(friendly_name="Owl usage")
    falcon_number = buy_fresh_number(server, client, account_sid=falcon.sid)
    buy_fresh_number(server, client, account_sid=owl.sid)
    falcon_client = client_for(falcon.sid, falcon.auth_token)
    message = falcon_client.messages.create(to=random_handset(), from_=falcon_number.phone_number, body="Hi there")
    wait_for_status(falcon_client.messages(message.sid).fetch, {"delivered"})

    falcon_usage = client.api.v2010.accounts(falcon.sid).usage.records.this_month.list(category="sms-outbound")
    assert len(falcon_usage) == 1
    record = falcon_usage[0]
    assert record.count == "1" and record.usage == "1"
    assert Decimal(str(record.price)) == Decimal("0.0079")
    assert record.account_sid == falcon.sid and record.category == "sms-outbound"

    numbers = client.api.v2010.accounts(owl.sid).usage.records.today.list(category="phonenumbers-local")
    assert numbers[0].count == "1" and Decimal(str(numbers[0].price)) == Decimal("1.15")

    # The subaccount reads its own records, and never its sibling's.
    own = falcon_client.api.v2010.accounts(falcon.sid).usage.records.daily.list(category="totalprice", start_date="-1days")
    assert len(own) == 2
    with twilio_error(401, 20003):
        falcon_client.api.v2010.accounts(owl.sid).usage.records.list()


def test_the_balance_is_shared_and_credited_by_the_operator(client, client_for, server):
    before = Decimal(client.api.v2010.accounts(server.account_sid).balance.fetch().balance)
    session = requests.Session()
    session.trust_env = False
    response = session.post(f"{server.url}/admin/billing/credit", data={"AccountSid": server.account_sid, "Amount": "25"},
                            auth=(server.account_sid, server.auth_token), timeout=30)
    assert response.status_code == 201, response.text
    after = client.api.v2010.accounts(server.account_sid).balance.fetch()
    assert Decimal(after.balance) == before + 25
    assert after.currency == "USD"
    sub = client.api.v2010.accounts.create(friendly_name="shares the balance")
    shared = client.api.v2010.accounts(sub.sid).balance.fetch()
    assert shared.account_sid == sub.sid and Decimal(shared.balance) == Decimal(after.balance)
    # Subaccounts hold no balance information.
    with twilio_error(403, 20403):
        client_for(sub.sid, sub.auth_token).api.v2010.accounts(sub.sid).balance.fetch()


def test_usage_triggers_through_the_sdk(client, client_for, server):
    triggers = client.api.v2010.accounts(server.account_sid).usage.triggers
    trigger = triggers.create(callback_url="https://example.com/usage", trigger_value="100",
                              usage_category="sms", recurring="monthly", trigger_by="count", friendly_name="busy month")
    assert trigger.sid.startswith("UT")
    assert trigger.trigger_value == "100" and trigger.usage_category == "sms"
    assert trigger.recurring == "monthly" and trigger.trigger_by == "count"
    assert trigger.callback_method == "POST" and trigger.date_fired is None
    assert trigger.usage_record_uri.endswith("/Usage/Records/ThisMonth.json?Category=sms")
    fetched = triggers(trigger.sid).fetch()
    assert fetched.friendly_name == "busy month"
    updated = triggers(trigger.sid).update(friendly_name="renamed", callback_method="GET")
    assert updated.friendly_name == "renamed" and updated.callback_method == "GET"
    assert trigger.sid in [t.sid for t in triggers.list(trigger_by="count")]
    sub = client.api.v2010.accounts.create(friendly_name="no triggers here")
    with twilio_error(401, 20003):
        client_for(sub.sid, sub.auth_token).api.v2010.accounts(server.account_sid).usage.triggers(trigger.sid).fetch()
    assert triggers(trigger.sid).delete() is True
    with twilio_error(404, 20404):
        triggers(trigger.sid).fetch()
