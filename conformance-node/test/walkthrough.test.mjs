// The onboarding guide's walkthrough with twilio-node, as a Node user would write it: a
// subaccount with its own API key, a number moved into it, a Messaging Service holding it,
// messages sent through the service; paging with `each`; date filters; errors.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  buyFreshNumber,
  clientFor,
  mainClient,
  randomHandset,
  sharedServer,
  twilioError,
  waitForStatus,
} from "../lib/warbler.mjs";

const server = sharedServer();
const client = mainClient(server);

test("subaccount, API key, number, service, message", async () => {
  const sub = await client.api.v2010.accounts.create({ friendlyName: "FalconFlights" });
  assert.match(sub.sid, /^AC[0-9a-f]{32}$/);
  assert.equal(sub.status, "active");

  // Twilio's current docs create keys with IAM v1.
  const key = await client.iam.v1.newApiKey.create({ accountSid: sub.sid, friendlyName: "falcon-deployer" });
  assert.match(key.sid, /^SK[0-9a-f]{32}$/);
  const falcon = clientFor(server, key.sid, key.secret, sub.sid);

  const number = await buyFreshNumber(server, client);
  const moved = await client.incomingPhoneNumbers(number.sid).update({ accountSid: sub.sid });
  assert.equal(moved.accountSid, sub.sid);

  const service = await falcon.messaging.v1.services.create({ friendlyName: "falconFlightNotifications" });
  await falcon.messaging.v1.services(service.sid).phoneNumbers.create({ phoneNumberSid: number.sid });
  const pool = await falcon.messaging.v1.services(service.sid).phoneNumbers.list();
  assert.deepEqual(pool.map((n) => n.phoneNumber), [number.phoneNumber]);

  const handset = randomHandset();
  const message = await falcon.messages.create({ to: handset, messagingServiceSid: service.sid, body: "Hi there" });
  assert.equal(message.status, "accepted");
  assert.equal(message.accountSid, sub.sid);
  const delivered = await waitForStatus(() => falcon.messages(message.sid).fetch(), ["delivered"]);
  assert.equal(delivered.status, "delivered");
  assert.equal(delivered.from, number.phoneNumber);
  assert.ok(delivered.dateSent instanceof Date);

  // The parent sees its subaccount's message through the subaccount's path.
  const seen = await client.api.v2010.accounts(sub.sid).messages(message.sid).fetch();
  assert.equal(seen.body, "Hi there");
  // A standard key does not manage keys; the parent does.
  await twilioError(falcon.iam.v1.getApiKeys.list({ accountSid: sub.sid }), 401, 20003);
  const keys = await client.iam.v1.getApiKeys.list({ accountSid: sub.sid });
  assert.deepEqual(keys.map((k) => k.sid), [key.sid]);
  await client.iam.v1.apiKey(key.sid).remove();
  await twilioError(falcon.messages.list({ limit: 1 }), 401, 20003);
});

test("paging with each, list and page", async () => {
  const number = await buyFreshNumber(server, client);
  const handset = randomHandset();
  const sent = [];
  for (let i = 0; i < 5; i++) {
    sent.push((await client.messages.create({ to: handset, from: number.phoneNumber, body: `n${i}` })).sid);
  }
  const seen = [];
  await new Promise((resolve, reject) => {
    client.messages.each({
      to: handset,
      pageSize: 2,
      callback: (message) => seen.push(message.sid),
      done: (error) => (error ? reject(error) : resolve()),
    });
  });
  assert.deepEqual(seen, [...sent].reverse(), "each follows next_page_uri, newest first");
  const limited = await client.messages.list({ to: handset, pageSize: 2, limit: 3 });
  assert.equal(limited.length, 3);
  const page = await client.messages.page({ to: handset, pageSize: 2 });
  assert.equal(page.instances.length, 2);
  const next = await page.nextPage();
  assert.deepEqual(next.instances.map((m) => m.sid), [sent[2], sent[1]]);
});

test("date filters: a Date bounds to the second", async () => {
  const number = await buyFreshNumber(server, client);
  const handset = randomHandset();
  const message = await client.messages.create({ to: handset, from: number.phoneNumber, body: "when" });
  const { dateSent } = await waitForStatus(() => client.messages(message.sid).fetch(), ["delivered"]);
  const listed = async (filters) => (await client.messages.list({ to: handset, ...filters })).map((m) => m.sid);
  const second = 1000;
  assert.deepEqual(await listed({ dateSentBefore: dateSent }), [message.sid]);
  assert.deepEqual(await listed({ dateSentBefore: new Date(dateSent.getTime() - second) }), []);
  assert.deepEqual(await listed({ dateSentAfter: dateSent }), [message.sid]);
  assert.deepEqual(await listed({ dateSentAfter: new Date(dateSent.getTime() + second) }), []);
});

test("errors come back as RestException with Twilio's codes", async () => {
  const number = await buyFreshNumber(server, client);
  await twilioError(client.messages.create({ to: "not a number", from: number.phoneNumber, body: "x" }), 400, 21211);
  await twilioError(client.messages.create({ to: randomHandset(), from: number.phoneNumber }), 400, 21602);
  await twilioError(client.messages(`SM${"0".repeat(32)}`).fetch(), 404, 20404);
  await twilioError(client.incomingPhoneNumbers.create({ phoneNumber: number.phoneNumber }), 400);
  const stranger = clientFor(server, server.accountSid, "0".repeat(32));
  const error = await twilioError(stranger.messages.list({ limit: 1 }), 401, 20003);
  assert.equal(error.moreInfo, "https://www.twilio.com/docs/errors/20003");
});

test("Content templates: create, send with contentSid + contentVariables, delete", async () => {
  const template = await client.content.v1.contents.create({
    friendlyName: "flight_update",
    language: "en",
    variables: { 1: "traveller" },
    types: { "twilio/text": { body: "Hi {{1}}, flight {{2}} is on time." } },
  });
  assert.match(template.sid, /^HX[0-9a-f]{32}$/);
  const listed = await client.content.v1.contents.list();
  assert.ok(listed.some((c) => c.sid === template.sid));
  const number = await buyFreshNumber(server, client);
  const message = await client.messages.create({
    to: randomHandset(),
    from: number.phoneNumber,
    contentSid: template.sid,
    contentVariables: JSON.stringify({ 2: "FF 17" }),
  });
  assert.equal(message.body, "Hi traveller, flight FF 17 is on time.");
  await twilioError(client.messages.create({ to: randomHandset(), from: number.phoneNumber, contentSid: template.sid }), 400, 21656);
  await client.content.v1.contents(template.sid).remove();
  await twilioError(client.content.v1.contents(template.sid).fetch(), 404, 20404);
  await twilioError(
    client.messages.create({ to: randomHandset(), from: number.phoneNumber, contentSid: template.sid, contentVariables: "{}" }),
    400,
    21655,
  );
});
