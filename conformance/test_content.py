"""Content API templates (content.twilio.com ``/v1/Content``) through the official SDK, and sending
with ``content_sid`` + ``content_variables`` as Twilio's Content docs do.
"""

from __future__ import annotations

import json

from twilio.rest.content.v1.content import ContentList

from helpers import twilio_error
from inventory import buy_fresh_number, random_handset, wait_for_status


def create_request(payload: dict) -> ContentList.ContentCreateRequest:
    return ContentList.ContentCreateRequest(payload)


def test_template_lifecycle_and_send(client, server):
    template = client.content.v1.contents.create(
        create_request(
            {
                "friendly_name": "flight_update",
                "language": "en",
                "variables": {"1": "traveller"},
                "types": {"twilio/text": {"body": "Hi {{1}}, flight {{2}} is on time."}},
            }
        )
    )
    assert template.sid.startswith("HX")
    assert template.types == {"twilio/text": {"body": "Hi {{1}}, flight {{2}} is on time."}}
    assert template.variables == {"1": "traveller"}
    assert template.sid in [c.sid for c in client.content.v1.contents.list()]
    assert client.content.v1.contents(template.sid).fetch().friendly_name == "flight_update"

    sender = buy_fresh_number(server, client).phone_number
    message = client.messages.create(
        to=random_handset(),
        from_=sender,
        content_sid=template.sid,
        content_variables=json.dumps({"1": "Ana", "2": "FF 17"}),
    )
    assert message.body == "Hi Ana, flight FF 17 is on time."
    assert wait_for_status(client.messages(message.sid).fetch, ["delivered"]).status == "delivered"

    with twilio_error(400, 21656):
        client.messages.create(to=random_handset(), from_=sender, content_sid=template.sid)
    assert client.content.v1.contents(template.sid).delete() is True
    with twilio_error(404, 20404):
        client.content.v1.contents(template.sid).fetch()
    with twilio_error(400, 21655):
        client.messages.create(
            to=random_handset(), from_=sender, content_sid=template.sid, content_variables='{"2": "x"}'
        )


def test_media_template_sends_an_mms(client, server):
    template = client.content.v1.contents.create(
        create_request(
            {
                "language": "en",
                "types": {"twilio/media": {"body": "Pass {{1}}", "media": ["https://x.example.com/{{1}}.png"]}},
            }
        )
    )
    sender = buy_fresh_number(server, client).phone_number
    message = client.messages.create(
        to=random_handset(), from_=sender, content_sid=template.sid, content_variables='{"1": "17A"}'
    )
    assert message.sid.startswith("MM") and message.num_media == "1"
    assert message.body == "Pass 17A"
    (media,) = client.messages(message.sid).media.list()
    assert media.content_type == "image/png"


def test_unsupported_types_are_refused(client):
    with twilio_error(400, 20001):
        client.content.v1.contents.create(
            create_request({"language": "en", "types": {"twilio/location": {"latitude": 1.0, "longitude": 2.0, "label": "x"}}})
        )
