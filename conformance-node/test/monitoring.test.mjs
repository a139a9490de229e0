// Webhooks checked with twilio-node's own validators (validateRequest and the express-style
// twilio.webhook() middleware), inbound messages answered with MessagingResponse, Monitor
// alerts, usage records and the balance.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import twilio from "twilio";
import {
  buyFreshNumber,
  clearOfUtcMidnight,
  eventually,
  mainClient,
  randomHandset,
  sharedServer,
  simulateInbound,
  waitForStatus,
} from "../lib/warbler.mjs";

const server = sharedServer();
const client = mainClient(server);

/** An HTTP receiver that checks every request with validateRequest and with twilio.webhook(). */
class Receiver {
  constructor(authToken) {
    this.authToken = authToken;
    this.requests = [];
    this.answers = new Map();
    this.http = createServer((req, res) => {
      let raw = "";
      req.on("data", (chunk) => (raw += chunk));
      req.on("end", () => this.handle(req, res, raw));
    });
  }

  async listen() {
    await new Promise((resolve) => this.http.listen(0, "127.0.0.1", resolve));
    this.base = `http://127.0.0.1:${this.http.address().port}`;
  }

  handle(req, res, raw) {
    const params = Object.fromEntries(new URLSearchParams(raw));
    const url = `${this.base}${req.url}`;
    const signature = req.headers["x-twilio-signature"] || "";
    const valid = twilio.validateRequest(this.authToken, signature, url, params);
    // The express middleware, over the few request/response members it uses.
    let middleware = "refused";
    const expressRequest = {
      protocol: "http",
      headers: req.headers,
      originalUrl: req.url,
      body: params,
      header: (name) => req.headers[name.toLowerCase()],
    };
    const expressResponse = { type: () => expressResponse, status: () => expressResponse, send: () => expressResponse };
    twilio.webhook(this.authToken)(expressRequest, expressResponse, () => (middleware = "passed"));
    this.requests.push({ path: req.url, params, valid, middleware });
    const body = this.answers.get(req.url) || "";
    res.writeHead(200, { "Content-Type": "text/xml" });
    res.end(body);
  }

  seen(path) {
    return this.requests.filter((r) => r.path === path);
  }
}

const receiver = new Receiver(server.authToken);
before(() => receiver.listen());
after(() => receiver.http.close());

test("status callbacks pass validateRequest and twilio.webhook()", async () => {
  const number = await buyFreshNumber(server, client);
  const message = await client.messages.create({
    to: randomHandset(),
    from: number.phoneNumber,
    body: "track me",
    statusCallback: `${receiver.base}/status`,
  });
  await waitForStatus(() => client.messages(message.sid).fetch(), ["delivered"]);
  const hits = await eventually(() => {
    const seen = receiver.seen("/status").filter((r) => r.params.MessageSid === message.sid);
    return seen.some((r) => r.params.MessageStatus === "delivered") && seen;
  });
  for (const hit of hits) {
    assert.equal(hit.valid, true, `validateRequest refused ${JSON.stringify(hit)}`);
    assert.equal(hit.middleware, "passed");
  }
  assert.deepEqual(hits.map((h) => h.params.MessageStatus), ["sent", "delivered"]);
  assert.equal(twilio.validateRequest("0".repeat(32), "x", `${receiver.base}/status`, hits[0].params), false);
});

test("inbound message answered with MessagingResponse", async () => {
  const number = await buyFreshNumber(server, client, { smsUrl: `${receiver.base}/sms` });
  const reply = new twilio.twiml.MessagingResponse();
  reply.message("Thanks for writing!");
  receiver.answers.set("/sms", reply.toString());
  const handset = randomHandset();
  const inbound = await simulateInbound(server, handset, number.phoneNumber, "Is my flight on time?");
  const [hit] = await eventually(() => receiver.seen("/sms").length && receiver.seen("/sms"));
  assert.equal(hit.params.Body, "Is my flight on time?");
  assert.equal(hit.params.MessageSid, inbound.sid);
  assert.equal(hit.valid, true);
  assert.equal(hit.middleware, "passed");
  const replies = await eventually(async () => {
    const listed = await client.messages.list({ to: handset });
    return listed.length && listed;
  });
  assert.deepEqual(replies.map((m) => [m.direction, m.body, m.from]), [
    ["outbound-reply", "Thanks for writing!", number.phoneNumber],
  ]);
  const fetched = await client.messages(inbound.sid).fetch();
  assert.equal(fetched.direction, "inbound");
});

test("malformed TwiML leaves a 12100 alert", async () => {
  const number = await buyFreshNumber(server, client, { smsUrl: `${receiver.base}/broken` });
  receiver.answers.set("/broken", "<Response><Message>unclosed</Response>");
  const inbound = await simulateInbound(server, randomHandset(), number.phoneNumber, "hello");
  const alert = await eventually(async () =>
    (await client.monitor.v1.alerts.list({ logLevel: "error" })).find((a) => a.resourceSid === inbound.sid));
  assert.equal(alert.errorCode, "12100");
  assert.ok(alert.dateCreated instanceof Date);
  const full = await client.monitor.v1.alerts(alert.sid).fetch();
  assert.equal(full.sid, alert.sid);
  assert.equal(typeof full.responseBody, "string");
  const since = await client.monitor.v1.alerts.list({ startDate: new Date(alert.dateCreated.getTime() + 1000) });
  assert.equal(since.find((a) => a.sid === alert.sid), undefined, "StartDate bounds to the second");
});

test("usage records and the balance", async () => {
  await clearOfUtcMidnight();
  const number = await buyFreshNumber(server, client);
  const message = await client.messages.create({ to: randomHandset(), from: number.phoneNumber, body: "count me" });
  await waitForStatus(() => client.messages(message.sid).fetch(), ["delivered"]);
  const [sms] = await client.usage.records.list({ category: "sms" });
  assert.equal(sms.category, "sms");
  assert.ok(Number(sms.count) >= 1);
  const today = await client.usage.records.today.list({ category: "sms-outbound" });
  assert.equal(today.length, 1);
  assert.ok(Number(today[0].count) >= 1);
  const daily = await client.usage.records.daily.list({ category: "sms", startDate: new Date(), endDate: new Date() });
  assert.equal(daily.length, 1);
  const balance = await client.balance.fetch();
  assert.equal(balance.accountSid, server.accountSid);
  assert.equal(typeof balance.currency, "string");
});
