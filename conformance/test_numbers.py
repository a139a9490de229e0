"""Phone numbers through the official SDK: searching the inventory (AvailablePhoneNumbers),
buying, configuring, transferring and releasing numbers (IncomingPhoneNumbers), following the
seed walkthrough's "Transfer a phone number" step and twilio-contract.md sections 6 and 7.

Each test stocks its own fresh numbers (see ``inventory.py``) instead of relying on the demo
inventory, which other tests of the session may have bought from.
"""

from __future__ import annotations

import re
import threading

from twilio.base.exceptions import TwilioRestException

from helpers import assert_recent, twilio_error
from inventory import (
    Stock,
    buy_fresh_number,
    gb_mobile_number,
    import_stock,
    nanp_number,
    post_inventory,
    stock_local,
    tag,
    to_csv,
    unique_locality,
)

PN_SID = re.compile(r"^PN[0-9a-f]{32}$")

# The seed's number configuration, which a transfer must preserve.
SEED_SMS_URL = "https://demo.twilio.com/welcome/sms/reply"
SEED_VOICE_URL = "https://demo.twilio.com/welcome/voice/"

KEYPAD = {c: d for d, letters in {"2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL", "6": "MNO", "7": "PQRS",
                                  "8": "TUV", "9": "WXYZ"}.items() for c in letters}


def numbers_of(instances) -> set[str]:
    return {i.phone_number for i in instances}


def national(number: str) -> str:
    """Twilio's default friendly name of a US number: ``(415) 555-0100``."""
    digits = number[2:]
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


# ---------------------------------------------------------------------------------------------
# searching


def test_search_by_area_code_contains_and_location(client, server):
    locality = unique_locality()
    # A random exchange shared by this test's numbers; none starting with 34, so that "1234" can only
    # match sf_plain (+1212 34x... would contain it).
    exchange = next(e for e in (nanp_number()[5:8] for _ in range(100)) if not e.startswith("34"))
    owls = "".join(KEYPAD[c] for c in "OWLS")  # 6957: Contains=OWLS must find it
    sf_owls = Stock(nanp_number("415", exchange, owls), locality=locality, region="CA", postal_code="94105")
    sf_plain = Stock(nanp_number("415", exchange, "1234"), locality=locality, region="CA", postal_code="94105")
    sf_voice_only = Stock(nanp_number("415", exchange, "9000"), locality=locality, region="CA", postal_code="94107",
                          sms=False, mms=False)
    ny_owls = Stock(nanp_number("212", exchange, owls), locality=locality, region="NY", postal_code="10001")
    import_stock(server, [sf_owls, sf_plain, sf_voice_only, ny_owls])
    local = client.available_phone_numbers("US").local

    def search(**filters) -> set[str]:
        return numbers_of(local.list(in_locality=locality, **filters))

    assert search() == {sf_owls.phone_number, sf_plain.phone_number, sf_voice_only.phone_number, ny_owls.phone_number}
    # AreaCode
    assert search(area_code=415) == {sf_owls.phone_number, sf_plain.phone_number, sf_voice_only.phone_number}
    assert search(area_code=212) == {ny_owls.phone_number}
    # Contains: digits anywhere, letters as keypad digits, * one digit, % any run, + and $ anchors
    assert search(contains="1234") == {sf_plain.phone_number}
    assert search(contains="OWLS") == {sf_owls.phone_number, ny_owls.phone_number}
    assert search(contains="owls", area_code=212) == {ny_owls.phone_number}
    assert search(contains=f"+1415{exchange}6*57") == {sf_owls.phone_number}
    assert search(contains="6957$") == {sf_owls.phone_number, ny_owls.phone_number}
    assert search(contains="+1212%57$") == {ny_owls.phone_number}
    assert search(contains="+1415%00$") == {sf_voice_only.phone_number}
    assert search(contains=sf_plain.phone_number) == {sf_plain.phone_number}  # the whole number, '+' anchored
    # Capabilities and location filters
    assert search(area_code=415, sms_enabled=True) == {sf_owls.phone_number, sf_plain.phone_number}
    assert search(in_region="CA") == {sf_owls.phone_number, sf_plain.phone_number, sf_voice_only.phone_number}
    assert search(in_region="NY") == {ny_owls.phone_number}
    assert search(in_postal_code="94107") == {sf_voice_only.phone_number}
    assert search(area_code=415, contains="1234", sms_enabled=True, in_region="CA", in_postal_code="94105") \
        == {sf_plain.phone_number}

    # The SDK pages through the results (PageSize=1), seeing each number once.
    paged = [n.phone_number for n in local.list(in_locality=locality, page_size=1)]
    assert sorted(paged) == sorted(search())

    # An item: the number's location and capabilities as imported.
    (item,) = local.list(in_locality=locality, contains=sf_owls.phone_number)
    assert item.phone_number == sf_owls.phone_number
    assert item.friendly_name == national(sf_owls.phone_number)
    assert (item.locality, item.region, item.postal_code, item.iso_country) == (locality, "CA", "94105", "US")
    assert item.address_requirements == "none"
    assert {k: item.capabilities[k] for k in ("voice", "sms", "mms")} == {"voice": True, "sms": True, "mms": True}
    (voice_only,) = local.list(in_locality=locality, in_postal_code="94107")
    assert (voice_only.capabilities["sms"], voice_only.capabilities["mms"], voice_only.capabilities["voice"]) == (False, False, True)


def test_search_toll_free_and_mobile(client, server):
    locality = unique_locality("Heathrow")
    toll_free = Stock(nanp_number("833"), type="toll-free", mms=False)
    mobile = Stock(gb_mobile_number(), country="GB", type="mobile", mms=False, locality=locality)
    import_stock(server, [toll_free, mobile])

    us = client.available_phone_numbers("US")
    assert numbers_of(us.toll_free.list(contains=toll_free.phone_number)) == {toll_free.phone_number}
    assert us.local.list(contains=toll_free.phone_number) == []  # a toll-free number is not local
    assert numbers_of(us.toll_free.list(area_code=833, contains=toll_free.phone_number[-7:] + "$")) == {toll_free.phone_number}

    gb = client.available_phone_numbers("GB")
    (found,) = gb.mobile.list(in_locality=locality)
    assert (found.phone_number, found.iso_country, found.locality) == (mobile.phone_number, "GB", locality)
    assert gb.local.list(in_locality=locality) == []

    # The countries with available numbers, and one country's sub-resources.
    countries = {c.country_code: c for c in client.available_phone_numbers.list()}
    assert {"US", "GB"} <= set(countries)
    main = client.api.v2010.account.fetch().sid
    assert countries["US"].uri == f"/2010-04-01/Accounts/{main}/AvailablePhoneNumbers/US.json"
    united_states = client.available_phone_numbers("US").fetch()
    assert united_states.country_code == "US"
    assert united_states.subresource_uris["local"] == f"/2010-04-01/Accounts/{main}/AvailablePhoneNumbers/US/Local.json"
    assert united_states.subresource_uris["toll_free"] == f"/2010-04-01/Accounts/{main}/AvailablePhoneNumbers/US/TollFree.json"


def test_invalid_contains_pattern_is_refused(client):
    local = client.available_phone_numbers("US").local
    for pattern in ("*", "1", "+1**5", "12#4"):
        with twilio_error(400):
            local.list(contains=pattern)


# ---------------------------------------------------------------------------------------------
# buying, configuring, releasing


def test_buy_configure_and_release(client, server, main_sid):
    (number,) = stock_local(server, 1)
    search = client.available_phone_numbers("US").local
    assert numbers_of(search.list(contains=number)) == {number}

    bought = client.incoming_phone_numbers.create(
        phone_number=number, sms_url="https://owlie.example.com/sms", voice_url="https://owlie.example.com/voice"
    )
    assert PN_SID.match(bought.sid)
    assert bought.account_sid == main_sid
    assert bought.phone_number == number
    assert bought.friendly_name == national(number)  # the default friendly name
    assert (bought.sms_url, bought.sms_method) == ("https://owlie.example.com/sms", "POST")
    assert (bought.voice_url, bought.voice_method) == ("https://owlie.example.com/voice", "POST")
    assert bought.capabilities["sms"] is True and bought.capabilities["voice"] is True
    assert (bought.status, bought.origin, bought.api_version) == ("in-use", "twilio", "2010-04-01")
    assert bought.uri == f"/2010-04-01/Accounts/{main_sid}/IncomingPhoneNumbers/{bought.sid}.json"
    assert_recent(bought.date_created)

    # Bought numbers leave the search, and cannot be bought twice.
    assert search.list(contains=number) == []
    with twilio_error(400, 21422):
        client.incoming_phone_numbers.create(phone_number=number)

    # The account lists and fetches it.
    assert [n.sid for n in client.incoming_phone_numbers.list(phone_number=number)] == [bought.sid]
    assert [n.sid for n in client.incoming_phone_numbers.list(friendly_name=national(number))] == [bought.sid]
    fetched = client.incoming_phone_numbers(bought.sid).fetch()
    assert (fetched.phone_number, fetched.sms_url, fetched.date_created) == (number, bought.sms_url, bought.date_created)

    # Configure it.
    updated = client.incoming_phone_numbers(bought.sid).update(
        friendly_name="Owlie support line", sms_url="https://owlie.example.com/sms/v2", sms_method="GET",
        status_callback="https://owlie.example.com/status",
    )
    assert (updated.friendly_name, updated.sms_url, updated.sms_method) == ("Owlie support line", "https://owlie.example.com/sms/v2", "GET")
    assert updated.status_callback == "https://owlie.example.com/status"
    assert updated.voice_url == "https://owlie.example.com/voice"  # untouched settings stay
    assert updated.date_updated >= bought.date_updated
    assert [n.sid for n in client.incoming_phone_numbers.list(friendly_name="Owlie support line")] == [bought.sid]

    # A malformed URL is refused (21402) and changes nothing.
    with twilio_error(400, 21402):
        client.incoming_phone_numbers(bought.sid).update(sms_url="not a url")
    assert client.incoming_phone_numbers(bought.sid).fetch().sms_url == "https://owlie.example.com/sms/v2"

    # Release it: 204, gone from the account, and searchable (and buyable) again.
    assert client.incoming_phone_numbers(bought.sid).delete() is True
    with twilio_error(404, 20404):
        client.incoming_phone_numbers(bought.sid).fetch()
    assert client.incoming_phone_numbers.list(phone_number=number) == []
    assert numbers_of(search.list(contains=number)) == {number}
    again = client.incoming_phone_numbers.create(phone_number=number)
    assert again.sid != bought.sid
    assert again.sms_url in ("", None)  # the old configuration did not stay with the number
    assert again.friendly_name == national(number)
    client.incoming_phone_numbers(again.sid).delete()


def test_buy_by_area_code(client, server):
    stocked = set(stock_local(server, 2, area_code="907", region="AK", postal_code="99501"))

    bought = client.incoming_phone_numbers.create(area_code="907")
    assert bought.phone_number in stocked

    with twilio_error(400, 21452):
        client.incoming_phone_numbers.create(area_code="533")


def test_purchase_refusals(client, server):
    toll_free = Stock(nanp_number("844"), type="toll-free")
    (local,) = import_stock(server, [Stock(nanp_number("415"), locality=unique_locality())])
    import_stock(server, [toll_free])

    with twilio_error(400, 21421):
        client.incoming_phone_numbers.create(phone_number="+1234")
    with twilio_error(400, 21421):
        client.incoming_phone_numbers.create(phone_number="owlie")
    # A possible number that the inventory does not hold.
    with twilio_error(400, 21422):
        client.incoming_phone_numbers.create(phone_number=nanp_number("415"))
    # The typed sub-resources only sell their own type.
    with twilio_error(400, 21458):
        client.incoming_phone_numbers.local.create(phone_number=toll_free.phone_number)
    with twilio_error(400, 21458):
        client.incoming_phone_numbers.toll_free.create(phone_number=local.phone_number)

    # ...and do sell it.
    bought = client.incoming_phone_numbers.toll_free.create(phone_number=toll_free.phone_number)
    assert bought.phone_number == toll_free.phone_number
    assert bought.sid in [n.sid for n in client.incoming_phone_numbers.toll_free.list()]
    assert bought.sid not in [n.sid for n in client.incoming_phone_numbers.local.list(phone_number=toll_free.phone_number)]
    client.incoming_phone_numbers(bought.sid).delete()


def test_concurrent_purchase_has_one_winner(client_for, client, server, main_sid):
    sub = client.api.v2010.accounts.create(friendly_name=f"Racer {tag()}")
    buyers = {
        "main": lambda: client_for(main_sid, server.auth_token),
        "sub": lambda: client_for(sub.sid, sub.auth_token),
    }
    # Two clients of one account, and two accounts, race for the same number.
    for pair in [("main", "main"), ("main", "sub"), ("sub", "main"), ("main", "sub"), ("sub", "sub")]:
        (number,) = stock_local(server, 1)
        clients = [buyers[who]() for who in pair]
        barrier = threading.Barrier(len(clients))
        outcomes: list = [None] * len(clients)

        def buy(i: int) -> None:
            barrier.wait()
            try:
                outcomes[i] = clients[i].incoming_phone_numbers.create(phone_number=number)
            except TwilioRestException as e:
                outcomes[i] = e
            except Exception as e:  # noqa: BLE001: reported by the assertions below
                outcomes[i] = e

        threads = [threading.Thread(target=buy, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

        winners = [o for o in outcomes if not isinstance(o, Exception)]
        losers = [o for o in outcomes if isinstance(o, Exception)]
        assert len(winners) == 1, f"{pair}: {outcomes}"
        (loser,) = losers
        assert isinstance(loser, TwilioRestException), repr(loser)
        assert (loser.status, loser.code) == (400, 21422), (loser.status, loser.code, loser.msg)

        # The winner's account holds it; the number is no longer for sale.
        winner_account = winners[0].account_sid
        assert winner_account == (main_sid if pair[outcomes.index(winners[0])] == "main" else sub.sid)
        assert [n.sid for n in client.api.v2010.accounts(winner_account).incoming_phone_numbers.list(phone_number=number)] \
            == [winners[0].sid]
        other = sub.sid if winner_account == main_sid else main_sid
        assert client.api.v2010.accounts(other).incoming_phone_numbers.list(phone_number=number) == []
        assert client.available_phone_numbers("US").local.list(contains=number) == []


# ---------------------------------------------------------------------------------------------
# transfers between the parent and its subaccounts


def test_transfer_a_phone_number_to_a_subaccount_and_back(client, client_for, server, main_sid):
    # Owlie Notifications creates the subaccount for Falcon Flights...
    falcon = client.api.v2010.accounts.create(friendly_name="FalconFlights")
    falcon_client = client_for(falcon.sid, falcon.auth_token)
    # ...and owns a configured number (bought from its own stock).
    number = buy_fresh_number(server, client, sms_url=SEED_SMS_URL, voice_url=SEED_VOICE_URL)
    assert number.account_sid == main_sid

    # The seed's step, with the parent's credentials on the parent's path:
    #   POST /2010-04-01/Accounts/<PARENT>/IncomingPhoneNumbers/<PN>.json  AccountSid=<SUBACCOUNT>
    moved = client.incoming_phone_numbers(number.sid).update(account_sid=falcon.sid)

    # "when moving phone numbers to another account, the Voice and SMS URL will be preserved"
    assert moved.sid == number.sid
    assert moved.account_sid == falcon.sid
    assert moved.phone_number == number.phone_number
    assert moved.friendly_name == number.friendly_name
    assert (moved.sms_url, moved.sms_method) == (SEED_SMS_URL, "POST")
    assert (moved.voice_url, moved.voice_method) == (SEED_VOICE_URL, "POST")
    assert moved.voice_caller_id_lookup is False
    assert moved.status == "in-use"
    assert moved.uri == f"/2010-04-01/Accounts/{falcon.sid}/IncomingPhoneNumbers/{number.sid}.json"

    # The parent no longer lists it as its own...
    assert client.incoming_phone_numbers.list(phone_number=number.phone_number) == []
    with twilio_error(404, 20404):
        client.incoming_phone_numbers(number.sid).fetch()
    # ...the subaccount does, with its own credentials...
    listed = falcon_client.incoming_phone_numbers.list()
    assert [n.sid for n in listed] == [number.sid]
    mine = falcon_client.incoming_phone_numbers(number.sid).fetch()
    assert (mine.account_sid, mine.sms_url, mine.voice_url) == (falcon.sid, SEED_SMS_URL, SEED_VOICE_URL)
    # ...and the parent still reaches it on the subaccount's path.
    assert client.api.v2010.accounts(falcon.sid).incoming_phone_numbers(number.sid).fetch().account_sid == falcon.sid

    # Transfer it back: the parent's credentials on the current owner's path.
    back = client.api.v2010.accounts(falcon.sid).incoming_phone_numbers(number.sid).update(account_sid=main_sid)
    assert (back.sid, back.account_sid) == (number.sid, main_sid)
    assert (back.sms_url, back.voice_url) == (SEED_SMS_URL, SEED_VOICE_URL)
    assert falcon_client.incoming_phone_numbers.list() == []
    assert [n.sid for n in client.incoming_phone_numbers.list(phone_number=number.phone_number)] == [number.sid]

    # Release it: it can be found in the inventory again.
    client.incoming_phone_numbers(number.sid).delete()
    found = client.available_phone_numbers("US").local.list(contains=number.phone_number)
    assert numbers_of(found) == {number.phone_number}


def test_transfer_refusals(client, client_for, server, main_sid):
    alpha = client.api.v2010.accounts.create(friendly_name=f"Alpha {tag()}")
    beta = client.api.v2010.accounts.create(friendly_name=f"Beta {tag()}")
    alpha_client = client_for(alpha.sid, alpha.auth_token)
    # The parent buys a number straight into Alpha.
    number = buy_fresh_number(server, client, account_sid=alpha.sid, sms_url=SEED_SMS_URL)
    assert number.account_sid == alpha.sid

    # Only the main account's credentials move numbers (21474), even the subaccount's own.
    with twilio_error(400, 21474):
        alpha_client.incoming_phone_numbers(number.sid).update(account_sid=main_sid)
    with twilio_error(400, 21474):
        alpha_client.incoming_phone_numbers(number.sid).update(account_sid=beta.sid)
    # Only within the family (21473): an account that is neither the parent nor a subaccount.
    with twilio_error(400, 21473):
        client.api.v2010.accounts(alpha.sid).incoming_phone_numbers(number.sid).update(account_sid="AC" + "0" * 32)
    # Only to an active account (21472).
    client.api.v2010.accounts(beta.sid).update(status="suspended")
    with twilio_error(400, 21472):
        client.api.v2010.accounts(alpha.sid).incoming_phone_numbers(number.sid).update(account_sid=beta.sid)
    closed = client.api.v2010.accounts.create(friendly_name=f"Closed {tag()}")
    client.api.v2010.accounts(closed.sid).update(status="closed")
    with twilio_error(400, 21472):
        client.api.v2010.accounts(alpha.sid).incoming_phone_numbers(number.sid).update(account_sid=closed.sid)

    # Nothing moved, and a refused request changed nothing else either.
    still = client.api.v2010.accounts(alpha.sid).incoming_phone_numbers(number.sid).fetch()
    assert (still.account_sid, still.sms_url) == (alpha.sid, SEED_SMS_URL)

    # Between two subaccounts of the same parent, with the parent's credentials: allowed.
    client.api.v2010.accounts(beta.sid).update(status="active")
    moved = client.api.v2010.accounts(alpha.sid).incoming_phone_numbers(number.sid).update(account_sid=beta.sid)
    assert (moved.account_sid, moved.sms_url) == (beta.sid, SEED_SMS_URL)
    beta_client = client_for(beta.sid, beta.auth_token)
    assert [n.sid for n in beta_client.incoming_phone_numbers.list()] == [number.sid]
    assert alpha_client.incoming_phone_numbers.list() == []


def test_accounts_see_only_their_own_numbers(client, client_for, server, main_sid):
    sub = client.api.v2010.accounts.create(friendly_name=f"Nosy {tag()}")
    sub_client = client_for(sub.sid, sub.auth_token)
    parents = buy_fresh_number(server, client)
    subs = buy_fresh_number(server, sub_client)  # a subaccount may buy with its own credentials
    assert subs.account_sid == sub.sid

    # The subaccount lists only its own number and cannot reach the parent's.
    assert [n.sid for n in sub_client.incoming_phone_numbers.list()] == [subs.sid]
    with twilio_error(404, 20404):
        sub_client.incoming_phone_numbers(parents.sid).fetch()
    with twilio_error(404, 20404):
        sub_client.incoming_phone_numbers(parents.sid).update(sms_url="https://evil.example.com/")
    with twilio_error(404, 20404):
        sub_client.incoming_phone_numbers(parents.sid).delete()
    with twilio_error(401, 20003):
        sub_client.api.v2010.accounts(main_sid).incoming_phone_numbers.list()
    with twilio_error(401, 20003):
        sub_client.api.v2010.accounts(main_sid).incoming_phone_numbers(parents.sid).fetch()

    # The parent's own list does not include its subaccount's numbers either.
    assert client.incoming_phone_numbers.list(phone_number=subs.phone_number) == []
    assert client.incoming_phone_numbers(parents.sid).fetch().sms_url in ("", None)


# ---------------------------------------------------------------------------------------------
# the operator's inventory import (warbler's own endpoint)


def test_inventory_import_is_all_or_nothing(client, server):
    locality = unique_locality("Importville")
    good = [Stock(nanp_number("415"), locality=locality, region="CA") for _ in range(3)]
    main_search = client.available_phone_numbers("US").local

    def rejected(rows, line: int) -> None:
        response = post_inventory(server, to_csv(rows))
        assert response.status_code == 400, response.text
        body = response.json()
        assert set(body) == {"code", "message", "more_info", "status"}, body
        assert body["status"] == 400
        assert f"line {line}" in body["message"], body["message"]
        assert main_search.list(in_locality=locality) == [], "a rejected file was partly imported"

    # Line 1 is the header; the bad row is line 4, after two good rows.
    bad_type = Stock(nanp_number("415"), type="landline", locality=locality)
    rejected([good[0], good[1], bad_type, good[2]], 4)
    rejected([Stock("+1415", locality=locality), *good], 2)  # not a possible number
    rejected([*good, Stock(gb_mobile_number(), country="US", locality=locality)], 5)  # wrong country
    rejected([*good, good[0]], 5)  # the same number twice
    rejected([good[0], [good[1].phone_number, "US", "local", "maybe", "true", "true", locality, "CA", "", ""]], 3)

    # A bad header rejects the file at line 1.
    response = post_inventory(server, to_csv(good, header=["number", "country"]))
    assert response.status_code == 400 and "line 1" in response.json()["message"], response.text

    # Only the main account's credentials import.
    sub = client.api.v2010.accounts.create(friendly_name=f"Importer {tag()}")
    response = post_inventory(server, to_csv(good), auth=(sub.sid, sub.auth_token))
    assert response.status_code == 403, response.text
    response = post_inventory(server, to_csv(good), auth=(server.account_sid, "0" * 32))
    assert response.status_code == 401, response.text
    assert main_search.list(in_locality=locality) == []

    # The corrected file goes in whole.
    import_stock(server, good)
    assert numbers_of(main_search.list(in_locality=locality)) == {s.phone_number for s in good}
