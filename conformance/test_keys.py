"""API keys (2010 ``/Accounts/{AccountSid}/Keys``) through the official SDK, following the
onboarding guide's "Create API keys for each Subaccount" and twilio-contract.md section 5.

Keys made through the REST API are Twilio "Standard" keys: they authenticate as their account
(``Client(key_sid, secret, account_sid)``) for its resources (numbers, services, messages…), but
may not touch the Accounts and Keys resources at all.
"""

from __future__ import annotations

import json
import secrets

from harness import RECORDER
from helpers import KEY_SID, assert_recent, twilio_error


def last_body():
    return json.loads(RECORDER.exchanges[-1].body)


def test_key_lifecycle(client):
    # Create: the only time the secret is shown.
    key = client.new_keys.create(friendly_name="deploy-bot")
    assert KEY_SID.match(key.sid)
    assert key.friendly_name == "deploy-bot"
    assert isinstance(key.secret, str) and len(key.secret) >= 32
    assert_recent(key.date_created)
    assert key.date_updated >= key.date_created

    # List and fetch: never the secret.
    listed = client.keys.list()
    assert key.sid in [k.sid for k in listed]
    page = client.keys.page()
    assert all("secret" not in item for item in page._payload["keys"])
    fetched = client.keys(key.sid).fetch()
    assert (fetched.sid, fetched.friendly_name) == (key.sid, "deploy-bot")
    assert fetched.date_created == key.date_created
    assert "secret" not in last_body()

    # Rename.
    renamed = client.keys(key.sid).update(friendly_name="deploy-bot (old)")
    assert (renamed.sid, renamed.friendly_name) == (key.sid, "deploy-bot (old)")
    assert renamed.date_updated >= key.date_updated
    assert "secret" not in last_body()
    assert client.keys(key.sid).fetch().friendly_name == "deploy-bot (old)"

    # Delete: 204, then it is gone.
    assert client.keys(key.sid).delete() is True
    assert RECORDER.exchanges[-1].status == 204
    with twilio_error(404, 20404):
        client.keys(key.sid).fetch()
    assert key.sid not in [k.sid for k in client.keys.list()]
    with twilio_error(404, 20404):
        client.keys(key.sid).delete()


def test_key_authenticates_as_its_account(client, client_for, main_sid):
    key = client.new_keys.create(friendly_name="app server")
    key_client = client_for(key.sid, key.secret, main_sid)

    # The key reads and writes its account's resources.
    assert isinstance(key_client.incoming_phone_numbers.list(limit=5), list)
    services = key_client.messaging.v1.services.list()
    assert services and all(s.account_sid == main_sid for s in services)
    # Twilio keeps standard keys off the Accounts and Keys resources, reads included.
    with twilio_error(401, 20003):
        key_client.api.v2010.accounts(main_sid).fetch()
    with twilio_error(401, 20003):
        key_client.api.v2010.accounts(main_sid).keys.list()

    # A wrong secret is refused.
    with twilio_error(401, 20003):
        client_for(key.sid, key.secret[:-1] + ("a" if key.secret[-1] != "a" else "b"), main_sid).messaging.v1.services.list()

    # Once deleted, the key no longer authenticates.
    client.keys(key.sid).delete()
    with twilio_error(401, 20003):
        key_client.messaging.v1.services.list()


def test_standard_key_cannot_manage_accounts_or_keys(client, client_for, main_sid):
    key = client.new_keys.create(friendly_name="limited")
    other = client.new_keys.create(friendly_name="victim")
    key_client = client_for(key.sid, key.secret, main_sid)

    with twilio_error(401, 20003):
        key_client.api.v2010.accounts.create(friendly_name="made by a key")
    with twilio_error(401, 20003):
        key_client.api.v2010.accounts.list()
    with twilio_error(401, 20003):
        key_client.api.v2010.accounts(main_sid).update(friendly_name="renamed by a key")
    with twilio_error(401, 20003):
        key_client.new_keys.create(friendly_name="minted by a key")
    with twilio_error(401, 20003):
        key_client.keys(other.sid).update(friendly_name="renamed by a key")
    with twilio_error(401, 20003):
        key_client.keys(other.sid).delete()

    assert client.keys(other.sid).fetch().friendly_name == "victim"


def test_keys_belong_to_one_account(client, client_for, main_sid):
    sub = client.api.v2010.accounts.create(friendly_name=f"Keyed {secrets.token_hex(3)}")
    sub_client = client_for(sub.sid, sub.auth_token)
    main_key = client.new_keys.create(friendly_name="main key")
    sub_key = sub_client.api.v2010.accounts(sub.sid).new_keys.create(friendly_name="sub key")

    assert sub_key.sid in [k.sid for k in sub_client.api.v2010.accounts(sub.sid).keys.list()]
    assert sub_key.sid not in [k.sid for k in client.keys.list()]
    assert main_key.sid not in [k.sid for k in sub_client.api.v2010.accounts(sub.sid).keys.list()]

    # A subaccount key works for the subaccount only.
    sub_key_client = client_for(sub_key.sid, sub_key.secret, sub.sid)
    assert all(s.account_sid == sub.sid for s in sub_key_client.messaging.v1.services.list())
    assert isinstance(sub_key_client.api.v2010.accounts(sub.sid).incoming_phone_numbers.list(), list)
    with twilio_error(401, 20003):
        sub_key_client.api.v2010.accounts(main_sid).incoming_phone_numbers.list()

    # Main-account API keys cannot reach subaccount resources (unlike the main auth token).
    main_key_client = client_for(main_key.sid, main_key.secret, main_sid)
    with twilio_error(401, 20003):
        main_key_client.api.v2010.accounts(sub.sid).incoming_phone_numbers.list()

    # The key of one account is not found under another account's path.
    with twilio_error(404, 20404):
        client.api.v2010.accounts(main_sid).keys(sub_key.sid).fetch()


def test_keys_of_a_suspended_account_are_refused(client, client_for):
    sub = client.api.v2010.accounts.create(friendly_name=f"Sleepy {secrets.token_hex(3)}")
    key = client.api.v2010.accounts(sub.sid).new_keys.create(friendly_name="sleepy key")
    key_client = client_for(key.sid, key.secret, sub.sid)
    assert isinstance(key_client.messaging.v1.services.list(), list)

    client.api.v2010.accounts(sub.sid).update(status="suspended")
    with twilio_error(401, 20003):
        key_client.messaging.v1.services.list()

    client.api.v2010.accounts(sub.sid).update(status="active")
    assert isinstance(key_client.messaging.v1.services.list(), list)


def test_unknown_key_is_not_found(client):
    with twilio_error(404, 20404):
        client.keys("SK" + "0" * 32).fetch()
    with twilio_error(404, 20404):
        client.keys("SK" + "0" * 32).update(friendly_name="nobody")


def test_iam_v1_keys_are_the_same_keys(client, client_for, main_sid):
    # Twilio's current key docs: client.iam.v1.new_api_key.create(account_sid=…, friendly_name=…).
    key = client.iam.v1.new_api_key.create(account_sid=main_sid, friendly_name="iam-bot")
    assert KEY_SID.match(key.sid)
    assert isinstance(key.secret, str) and len(key.secret) >= 32
    assert key.policy is None
    assert_recent(key.date_created)

    # The same key as the 2010 resource's, and it authenticates as its account.
    assert client.keys(key.sid).fetch().friendly_name == "iam-bot"
    as_key = client_for(key.sid, key.secret, account_sid=main_sid)
    assert as_key.messaging.v1.services.list(limit=1) is not None

    listed = client.iam.v1.get_api_keys.list(account_sid=main_sid)
    assert key.sid in [k.sid for k in listed]
    assert all("secret" not in item for item in client.iam.v1.get_api_keys.page(account_sid=main_sid)._payload["keys"])
    # Paging follows meta.next_page_url, which keeps the AccountSid filter.
    client.iam.v1.new_api_key.create(account_sid=main_sid, friendly_name="iam-bot-2")
    assert len(list(client.iam.v1.get_api_keys.stream(account_sid=main_sid, page_size=1))) >= 2

    fetched = client.iam.v1.api_key(key.sid).fetch()
    assert (fetched.sid, fetched.friendly_name) == (key.sid, "iam-bot")
    assert client.iam.v1.api_key(key.sid).update(friendly_name="renamed").friendly_name == "renamed"
    assert client.keys(key.sid).fetch().friendly_name == "renamed"

    # A standard key cannot manage keys; restricted keys are not supported.
    with twilio_error(401, 20003):
        as_key.iam.v1.api_key(key.sid).fetch()
    with twilio_error(400, 20001):
        client.iam.v1.new_api_key.create(
            account_sid=main_sid, key_type="restricted", policy={"allow": ["/twilio/messaging/messages/read"]}
        )

    assert client.iam.v1.api_key(key.sid).delete() is True
    with twilio_error(404, 20404):
        client.iam.v1.api_key(key.sid).fetch()
    with twilio_error(401, 20003):
        as_key.messaging.v1.services.list(limit=1)
