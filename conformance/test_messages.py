"""Messages (2010 ``/Messages``) through the official SDK, end to end through warbler's
dispatcher and its simulated carrier (which reports ``delivered`` about a second after sending),
following the seed walkthrough's "Sending a Message" and twilio-contract.md section 8.

Long codes are paced at one segment a second per sender, so every test sends from numbers of its
own and only a few messages from each.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from twilio.base import values

from helpers import assert_recent, twilio_error
from inventory import buy_fresh_number, random_handset, stock_local, tag, wait_for_status

MESSAGE_SID = re.compile(r"^SM[0-9a-f]{32}$")
PRICE = re.compile(r"^-\d+\.\d+$")


def service_with_number(server, client, parent=None, account_sid=None, name="Flight alerts"):
    """A Messaging Service of ``client``'s account holding one fresh number (bought by
    ``parent`` into ``account_sid`` when given, else by ``client`` itself)."""
    number = buy_fresh_number(server, parent or client, account_sid=account_sid)
    service = client.messaging.v1.services.create(friendly_name=f"{name} {tag()}")
    client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=number.sid)
    return service, number


# ---------------------------------------------------------------------------------------------
# the seed walkthrough


def test_falcon_flights_walkthrough_ends_with_a_delivered_message(client, client_for, server):
    # 1. Owlie Notifications creates a subaccount for Falcon Flights.
    falcon = client.api.v2010.accounts.create(friendly_name="FalconFlights")
    falcon_client = client_for(falcon.sid, falcon.auth_token)
    # 2. It buys a number (from the operator's fresh stock) and transfers it to the subaccount.
    number = buy_fresh_number(server, client, sms_url="https://demo.twilio.com/welcome/sms/reply",
                              voice_url="https://demo.twilio.com/welcome/voice/")
    moved = client.incoming_phone_numbers(number.sid).update(account_sid=falcon.sid)
    assert moved.account_sid == falcon.sid
    # 3. Falcon Flights creates a Messaging Service with its own credentials...
    service = falcon_client.messaging.v1.services.create(friendly_name="falconFlightNotifications")
    # 4. ...and adds the number to it.
    falcon_client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=number.sid)

    # 5. "Sending a Message": Body=Hi there, MessagingServiceSid=MG..., To=<handset>
    handset = random_handset()
    message = falcon_client.messages.create(to=handset, messaging_service_sid=service.sid, body="Hi there")

    assert MESSAGE_SID.match(message.sid)
    assert message.account_sid == falcon.sid
    assert message.status == "accepted"
    assert message.to == handset
    assert message.from_ is None  # the sender is picked from the pool later
    assert message.messaging_service_sid == service.sid
    assert message.body == "Hi there"
    assert (message.num_segments, message.num_media) == ("0", "0")
    assert message.direction == "outbound-api"
    assert message.api_version == "2010-04-01"
    assert (message.price, message.error_code, message.error_message, message.date_sent) == (None, None, None, None)
    assert_recent(message.date_created)
    assert message.uri == f"/2010-04-01/Accounts/{falcon.sid}/Messages/{message.sid}.json"
    assert message.subresource_uris["media"] == f"/2010-04-01/Accounts/{falcon.sid}/Messages/{message.sid}/Media.json"

    delivered = wait_for_status(falcon_client.messages(message.sid).fetch, ["delivered"])
    assert delivered.status == "delivered"
    assert delivered.from_ == number.phone_number
    assert delivered.messaging_service_sid == service.sid
    assert delivered.num_segments == "1"
    assert PRICE.match(delivered.price or ""), delivered.price
    assert Decimal(delivered.price) < 0
    assert delivered.price_unit == "USD"
    assert (delivered.error_code, delivered.error_message) == (None, None)
    assert_recent(delivered.date_sent)
    assert delivered.date_sent >= delivered.date_created.replace(microsecond=0)
    assert delivered.body == "Hi there"

    # The message is Falcon Flights': in its list, reachable by the parent on its path only.
    assert [m.sid for m in falcon_client.messages.list(to=handset)] == [message.sid]
    assert client.api.v2010.accounts(falcon.sid).messages(message.sid).fetch().status == "delivered"
    assert client.messages.list(to=handset) == []
    with twilio_error(404, 20404):
        client.messages(message.sid).fetch()


def test_send_from_a_number_of_the_account(client, server, main_sid):
    number = buy_fresh_number(server, client)
    handset = random_handset()

    message = client.messages.create(to=handset, from_=number.phone_number, body="Your flight boards at 10:40")
    assert message.status == "queued"
    assert (message.from_, message.to, message.account_sid) == (number.phone_number, handset, main_sid)
    assert message.num_segments == "1"

    delivered = wait_for_status(client.messages(message.sid).fetch, ["delivered"])
    assert delivered.status == "delivered"
    assert delivered.from_ == number.phone_number
    assert PRICE.match(delivered.price or ""), delivered.price
    assert delivered.price_unit == "USD"


# ---------------------------------------------------------------------------------------------
# validation


def test_validation_error_codes(client, client_for, server):
    number = buy_fresh_number(server, client)
    own = number.phone_number
    handset = random_handset()
    send = client.messages.create

    with twilio_error(400, 21604):  # no To at all
        send(to=values.unset, from_=own, body="hello")
    with twilio_error(400, 21211):
        send(to="not a number", from_=own, body="hello")
    with twilio_error(400, 21211):
        send(to="+1234", from_=own, body="hello")
    with twilio_error(400, 21603):  # neither From nor MessagingServiceSid
        send(to=handset, body="hello")
    with twilio_error(400, 21602):  # neither Body nor MediaUrl
        send(to=handset, from_=own)
    with twilio_error(400, 21617):
        send(to=handset, from_=own, body="x" * 1601)
    for period in (0, 36001):
        with twilio_error(400, 21624):
            send(to=handset, from_=own, body="hello", validity_period=period)

    # A From the account does not hold: in the inventory but not bought, or another account's.
    (unsold,) = stock_local(server, 1)
    with twilio_error(400, 21606):
        send(to=handset, from_=unsold, body="hello")
    sub = client.api.v2010.accounts.create(friendly_name=f"Neighbour {tag()}")
    sub_client = client_for(sub.sid, sub.auth_token)
    with twilio_error(400, 21606):
        sub_client.messages.create(to=handset, from_=own, body="hello")

    # Messaging Services: unknown, malformed, another account's, and one without senders.
    with twilio_error(400, 21701):
        send(to=handset, messaging_service_sid="MG" + "0" * 32, body="hello")
    with twilio_error(400, 21705):
        send(to=handset, messaging_service_sid="MGnotaservice", body="hello")
    subs_service = sub_client.messaging.v1.services.create(friendly_name="Not yours")
    with twilio_error(400, 21701):
        send(to=handset, messaging_service_sid=subs_service.sid, body="hello")
    empty = client.messaging.v1.services.create(friendly_name=f"Empty pool {tag()}")
    with twilio_error(400, 21704):
        send(to=handset, messaging_service_sid=empty.sid, body="hello")
    client.messaging.v1.services(empty.sid).delete()

    # None of the refused requests created a message.
    assert client.messages.list(to=handset) == []
    assert client.messages.list(from_=own) == []


# ---------------------------------------------------------------------------------------------
# delivery outcomes


def test_magic_destinations_of_the_simulated_carrier(client, server):
    outcomes = {
        "+15005550030": ("undelivered", 30003),
        "+15005550060": ("undelivered", 30006),
        "+15005550080": ("failed", 30008),
    }
    sent = {}
    for to in [*outcomes, "+15005550090"]:
        sender = buy_fresh_number(server, client)  # one sender each: no pacing between them
        sent[to] = client.messages.create(to=to, from_=sender.phone_number, body=f"Gate change {tag()}")

    for to, (status, code) in outcomes.items():
        final = wait_for_status(client.messages(sent[to].sid).fetch, [status])
        assert (final.status, final.error_code) == (status, code), (to, final.status, final.error_code)

    # +15005550090 is sent but never gets a receipt, so it stays "sent" (and cannot be deleted).
    stuck = wait_for_status(client.messages(sent["+15005550090"].sid).fetch, ["sent"])
    assert stuck.status == "sent"
    assert stuck.error_code is None
    with twilio_error(400, 20009):
        client.messages(stuck.sid).delete()
    assert client.messages(stuck.sid).fetch().status == "sent"


# ---------------------------------------------------------------------------------------------
# reading, redacting, deleting


def test_list_filters(client, server):
    first = buy_fresh_number(server, client).phone_number
    second = buy_fresh_number(server, client).phone_number
    x, y = random_handset(), random_handset()
    a = client.messages.create(to=x, from_=first, body="one")
    b = client.messages.create(to=y, from_=first, body="two")
    c = client.messages.create(to=x, from_=second, body="three")
    for m in (a, b, c):
        wait_for_status(client.messages(m.sid).fetch, ["delivered"])

    sids = lambda messages: [m.sid for m in messages]  # noqa: E731
    # Newest first.
    assert sids(client.messages.list(from_=first)) == [b.sid, a.sid]
    assert sids(client.messages.list(to=x)) == [c.sid, a.sid]
    assert sids(client.messages.list(to=x, from_=second)) == [c.sid]
    assert client.messages.list(to=y, from_=second) == []
    # Paging through a filtered list, one message a page.
    assert sids(client.messages.list(to=x, page_size=1)) == [c.sid, a.sid]

    # DateSent as YYYY-MM-DD (a whole GMT day), and the inequalities.
    day = client.messages(a.sid).fetch().date_sent.date()
    assert sids(client.messages.list(to=x, date_sent=day.isoformat())) == [c.sid, a.sid]
    assert client.messages.list(to=x, date_sent=(day - timedelta(days=1)).isoformat()) == []
    assert sids(client.messages.list(to=x, date_sent_after=day - timedelta(days=1))) == [c.sid, a.sid]
    assert sids(client.messages.list(to=x, date_sent_before=day + timedelta(days=1))) == [c.sid, a.sid]
    assert client.messages.list(to=x, date_sent_after=day + timedelta(days=1)) == []
    assert client.messages.list(to=x, date_sent_before=day - timedelta(days=1)) == []


def test_list_by_the_day_sent_with_a_date_object(client, server):
    # Twilio's docs filter by day with the SDK: client.messages.list(date_sent=datetime(2016, 8, 31, 0, 0, 0)).
    # twilio-python serializes a date or datetime as DateSent=YYYY-MM-DDT00:00:00Z, which must
    # still mean "sent on that GMT day" (DateSent is day-granular).
    sender = buy_fresh_number(server, client).phone_number
    handset = random_handset()
    message = client.messages.create(to=handset, from_=sender, body="what day is it")
    sent = wait_for_status(client.messages(message.sid).fetch, ["delivered"]).date_sent

    midnight = datetime(sent.year, sent.month, sent.day, tzinfo=timezone.utc)
    assert [m.sid for m in client.messages.list(to=handset, date_sent=sent.date())] == [message.sid]
    assert [m.sid for m in client.messages.list(to=handset, date_sent=midnight)] == [message.sid]


def test_date_sent_bounds_honour_the_time_of_day(client, server):
    # twilio-node and twilio-python send a datetime bound as DateSent<=2026-12-01T21:24:33Z: it
    # bounds to the second ("messages since my last poll" must not return older ones again).
    sender = buy_fresh_number(server, client).phone_number
    handset = random_handset()
    message = client.messages.create(to=handset, from_=sender, body="what time is it")
    sent = wait_for_status(client.messages(message.sid).fetch, ["delivered"]).date_sent
    second = timedelta(seconds=1)
    listed = lambda **bounds: [m.sid for m in client.messages.list(to=handset, **bounds)]  # noqa: E731
    assert listed(date_sent_before=sent) == [message.sid]
    assert listed(date_sent_before=sent - second) == []
    assert listed(date_sent_after=sent) == [message.sid]
    assert listed(date_sent_after=sent + second) == []
    assert listed(date_sent_after=sent - second, date_sent_before=sent + second) == [message.sid]


def test_redact_and_delete_after_delivery(client, server):
    sender = buy_fresh_number(server, client).phone_number
    handset = random_handset()
    message = client.messages.create(to=handset, from_=sender, body="Your PIN is 4921")

    # Not final yet (the carrier reports after about a second): it cannot be deleted.
    with twilio_error(400, 20009):
        client.messages(message.sid).delete()

    delivered = wait_for_status(client.messages(message.sid).fetch, ["delivered"])
    assert delivered.body == "Your PIN is 4921"

    # Redaction: Body="" blanks the body and keeps the rest.
    redacted = client.messages(message.sid).update(body="")
    assert redacted.body == ""
    assert (redacted.sid, redacted.status, redacted.to, redacted.from_) == (message.sid, "delivered", handset, sender)
    assert client.messages(message.sid).fetch().body == ""
    assert [m.body for m in client.messages.list(to=handset)] == [""]
    # Body may only be changed to an empty string.
    with twilio_error(400):
        client.messages(message.sid).update(body="Your PIN is 0000")

    # Delete: 204, then gone.
    assert client.messages(message.sid).delete() is True
    with twilio_error(404, 20404):
        client.messages(message.sid).fetch()
    assert client.messages.list(to=handset) == []


# ---------------------------------------------------------------------------------------------
# scheduling


def test_schedule_and_cancel(client, server):
    service, number = service_with_number(server, client)
    handset = random_handset()
    send_at = (datetime.now(timezone.utc) + timedelta(minutes=10)).replace(microsecond=0)

    scheduled = client.messages.create(to=handset, messaging_service_sid=service.sid, body="Boarding soon",
                                       schedule_type="fixed", send_at=send_at)
    assert scheduled.status == "scheduled"
    assert scheduled.messaging_service_sid == service.sid
    assert scheduled.date_sent is None
    assert client.messages(scheduled.sid).fetch().status == "scheduled"

    canceled = client.messages(scheduled.sid).update(status="canceled")
    assert canceled.status == "canceled"
    assert client.messages(scheduled.sid).fetch().status == "canceled"
    with twilio_error(400, 30409):  # only a scheduled message can be canceled
        client.messages(scheduled.sid).update(status="canceled")
    # Canceled is final: it can be deleted.
    assert client.messages(scheduled.sid).delete() is True

    # Scheduling refusals.
    soon = datetime.now(timezone.utc) + timedelta(minutes=1)
    with twilio_error(400, 35114):  # not more than 5 minutes ahead
        client.messages.create(to=handset, messaging_service_sid=service.sid, body="x", schedule_type="fixed", send_at=soon)
    with twilio_error(400, 35114):  # more than 35 days ahead
        client.messages.create(to=handset, messaging_service_sid=service.sid, body="x", schedule_type="fixed",
                               send_at=datetime.now(timezone.utc) + timedelta(days=36))
    with twilio_error(400, 35111):  # fixed without SendAt
        client.messages.create(to=handset, messaging_service_sid=service.sid, body="x", schedule_type="fixed")
    with twilio_error(400, 35118):  # scheduling needs a Messaging Service
        client.messages.create(to=handset, from_=number.phone_number, body="x", schedule_type="fixed", send_at=send_at)
    assert client.messages.list(to=handset) == []

    # A message that was never scheduled cannot be canceled either.
    now = client.messages.create(to=handset, messaging_service_sid=service.sid, body="Right away")
    with twilio_error(400, 30409):
        client.messages(now.sid).update(status="canceled")
    assert wait_for_status(client.messages(now.sid).fetch, ["delivered"]).from_ == number.phone_number


def test_feedback_is_recorded_through_the_sdk(client, server):
    number = buy_fresh_number(server, client)
    message = client.messages.create(to=random_handset(), from_=number.phone_number, body="Your code is 8121",
                                     provide_feedback=True)
    feedback = client.messages(message.sid).feedback.create(outcome="confirmed")
    assert feedback.outcome == "confirmed"
    assert feedback.message_sid == message.sid and feedback.account_sid == server.account_sid
    assert_recent(feedback.date_created)
