"""The seed walkthrough's "Sending a Message" over SMPP: a second warbler whose only carrier
route is SMPP to ``warbler smsc`` (both real processes on loopback), driven by the official SDK.
The message goes REST → submit_sm → the simulator's receipt → ``delivered``, and its status
callbacks pass Twilio's ``RequestValidator``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from harness import _NO_PROXY_OPENER, DEFAULT_BINARY, REPO_ROOT, free_port, make_client, start_server
from inventory import buy_fresh_number, random_handset, wait_for_status
from test_webhooks import Receiver, statuses


@pytest.fixture(scope="module")
def smsc():
    binary = Path(os.environ.get("WARBLER_BIN") or DEFAULT_BINARY)
    smpp_port, control_port = free_port(), free_port()
    log_dir = REPO_ROOT / "target" / "conformance-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "smsc.log", "wb")
    process = subprocess.Popen(
        [str(binary), "smsc", "--smpp-listen", f"127.0.0.1:{smpp_port}", "--system-id", "falcon",
         "--password", "s3cret", "--receipt-delay-ms", "100", "--control", f"127.0.0.1:{control_port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    control = f"http://127.0.0.1:{control_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with _NO_PROXY_OPENER.open(control + "/stats", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("warbler smsc did not start")
            time.sleep(0.1)
    yield smpp_port, control
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def smpp_server(smsc, tmp_path_factory):
    smpp_port, _ = smsc
    workdir = tmp_path_factory.mktemp("warbler-smpp")
    config = workdir / "warbler.toml"
    config.write_text(
        "[[smpp_routes]]\n"
        'name = "carrier-a"\n'
        'host = "127.0.0.1"\n'
        f"port = {smpp_port}\n"
        'system_id = "falcon"\n'
        'password = "s3cret"\n'
        'destination_prefixes = ["+"]\n'
    )
    database = os.environ.get("CONFORMANCE_DATABASE", "sqlite")
    label = "sqlite" if database == "sqlite" else "postgres"
    log_path = REPO_ROOT / "target" / "conformance-logs" / f"warbler-smpp-{label}.log"
    server = start_server(database, workdir, log_path, config=config)
    yield server
    server.stop()


def test_the_walkthrough_send_step_runs_over_smpp(smpp_server, smsc):
    _, control = smsc
    client = make_client(smpp_server.url, smpp_server.account_sid, smpp_server.auth_token)
    falcon = client.api.v2010.accounts.create(friendly_name="FalconFlights")
    falcon_client = make_client(smpp_server.url, falcon.sid, falcon.auth_token)
    number = buy_fresh_number(smpp_server, client)
    client.incoming_phone_numbers(number.sid).update(account_sid=falcon.sid)
    service = falcon_client.messaging.v1.services.create(friendly_name="falconFlightNotifications")
    falcon_client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=number.sid)

    hooks = Receiver()
    try:
        handset = random_handset()
        message = falcon_client.messages.create(
            to=handset, messaging_service_sid=service.sid, body="Hi there",
            status_callback=hooks.url("/status", falcon.auth_token))
        assert message.status == "accepted"
        delivered = wait_for_status(falcon_client.messages(message.sid).fetch, ["delivered"], timeout=30)
        assert delivered.status == "delivered"
        assert delivered.from_ == number.phone_number
        assert delivered.error_code is None
        # Callbacks: queued (service messages report it), sent, delivered; each one valid.
        seen = hooks.wait("/status", 3)
        assert statuses(seen, message.sid) == ["queued", "sent", "delivered"]
        hooks.assert_all_valid()
    finally:
        hooks.httpd.shutdown()

    with _NO_PROXY_OPENER.open(control + "/submits", timeout=5) as response:
        submits = json.load(response)
    ours = [s for s in submits if s["destination"] == handset.lstrip("+")]
    assert len(ours) == 1, submits
    assert ours[0]["source"] == number.phone_number.lstrip("+")
    assert bytes.fromhex(ours[0]["body_hex"]) == b"Hi there"
    assert ours[0]["message_id"]
