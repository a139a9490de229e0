#!/usr/bin/env node
'use strict';
// An ESME built on the npm `smpp` package's client, run against `warbler smsc` (or smsc.js) in the
// interoperability tests. It walks a fixed script and exits 0 after printing {"event":"ok",...},
// or exits 1 after printing {"event":"fail","step":...,"error":...} at the first deviation.
// See README.md.

const smpp = require('smpp');

const env = process.env;
const SMPP_URL = process.argv[2] || env.SMPP_URL || 'smpp://127.0.0.1:2775';
const SMPP_USER = env.SMPP_USER || '';
const SMPP_PASS = env.SMPP_PASS || '';
const STEP_TIMEOUT_MS = Number(env.STEP_TIMEOUT_MS || 10000);
const RECEIPT_TIMEOUT_MS = Number(env.RECEIPT_TIMEOUT_MS || 15000);
const EXPECT_MO = env.EXPECT_MO === '1' || env.EXPECT_MO === 'true';
const EXPECT_MO_TEXT = env.EXPECT_MO_TEXT;
const MO_TIMEOUT_MS = Number(env.MO_TIMEOUT_MS || 30000);
// Optional data_coding for the submits; unset lets the library choose (0x01 for GSM-only text).
const DATA_CODING = env.DATA_CODING === undefined || env.DATA_CODING === '' ? undefined : Number(env.DATA_CODING);

const SRC = '+14155550100';
const DST = '+14155550199';
const REJECTED_DST = '+15005551005';
const HELLO = 'interop hello';
// 200 characters whose GSM 03.38 and ASCII codes coincide.
const LONG_TEXT = (() => {
  let s = '';
  for (let i = 0; s.length < 200; i++) s += `Long message ${String(i).padStart(3, '0')} from node-smpp. `;
  return s.slice(0, 199) + '!';
})();

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let currentStep = 'start';
let finished = false;

function fail(message, extra) {
  if (finished) return;
  finished = true;
  process.stderr.write(`client.js: FAIL at step "${currentStep}": ${message}\n`);
  out(Object.assign({ event: 'fail', step: currentStep, error: message }, extra || {}));
  try { session.destroy(); } catch (_) { /* ignore */ }
  process.exit(1);
}

function hexStatus(n) {
  return '0x' + Number(n).toString(16).padStart(8, '0');
}

// Run one step: `fn` returns a promise; reject or time out -> fail.
async function step(name, timeoutMs, fn) {
  currentStep = name;
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } catch (e) {
    fail(e && e.message ? e.message : String(e));
    return new Promise(() => {}); // never resumes
  } finally {
    clearTimeout(timer);
  }
}

// Send a request and resolve with its response PDU (whatever its command_status).
function request(command, options) {
  return new Promise((resolve, reject) => {
    const ok = session[command](options || {}, (resp) => {
      if (resp.command !== command + '_resp') {
        return reject(new Error(`expected ${command}_resp, got ${resp.command} status ${hexStatus(resp.command_status)}`));
      }
      resolve(resp);
    });
    if (!ok) reject(new Error(`could not send ${command}: socket not writable`));
  });
}

function expectOk(resp) {
  if (resp.command_status !== 0) {
    throw new Error(`${resp.command} command_status ${hexStatus(resp.command_status)} (expected 0)`);
  }
  return resp;
}

// Every deliver_sm received, in order, with waiters that look for a match.
const delivered = [];
const waiters = [];

function textOf(field) {
  if (field === undefined || field === null) return '';
  if (typeof field === 'string') return field;
  if (Buffer.isBuffer(field)) return field.toString('latin1');
  const m = field.message;
  if (typeof m === 'string') return m;
  if (Buffer.isBuffer(m)) return m.toString('latin1');
  return '';
}

function waitFor(pred) {
  const found = delivered.find(pred);
  if (found) return Promise.resolve(found);
  return new Promise((resolve) => waiters.push({ pred, resolve }));
}

// ---------------------------------------------------------------------------------------------

currentStep = 'connect';
const session = smpp.connect({ url: SMPP_URL });
let connected = false;
let unbinding = false;

session.on('error', (err) => {
  fail(`session error: ${err && err.message ? err.message : err}`);
});
session.on('close', () => {
  if (!finished && !unbinding) fail('connection closed by the SMSC');
});
session.on('deliver_sm', (pdu) => {
  // Answer every deliver_sm.
  session.send(pdu.response());
  const text = textOf(pdu.message_payload) || textOf(pdu.short_message);
  const d = {
    esm_class: pdu.esm_class,
    data_coding: pdu.data_coding,
    source_addr: pdu.source_addr,
    destination_addr: pdu.destination_addr,
    text,
    receipted_message_id: pdu.receipted_message_id,
    message_state: pdu.message_state,
  };
  process.stderr.write(`client.js: deliver_sm ${JSON.stringify(d)}\n`);
  delivered.push(d);
  for (let i = waiters.length - 1; i >= 0; i--) {
    if (waiters[i].pred(d)) {
      waiters[i].resolve(d);
      waiters.splice(i, 1);
    }
  }
});
session.on('enquire_link', (pdu) => session.send(pdu.response()));
session.on('unbind', (pdu) => {
  unbinding = true;
  session.send(pdu.response());
  if (!finished) fail('the SMSC unbound the session');
});
session.on('pdu', (pdu) => {
  if (pdu.command === 'unknown') session.send(pdu.response());
});

async function main() {
  const figures = { url: SMPP_URL };

  await step('connect', STEP_TIMEOUT_MS, () => new Promise((resolve) => {
    session.once('connect', () => { connected = true; resolve(); });
  }));

  const bind = await step('bind_transceiver', STEP_TIMEOUT_MS, async () =>
    expectOk(await request('bind_transceiver', { system_id: SMPP_USER, password: SMPP_PASS })));
  figures.smsc_system_id = bind.system_id;
  out({ event: 'bound', system_id: SMPP_USER, smsc_system_id: bind.system_id });

  await step('enquire_link', STEP_TIMEOUT_MS, async () => expectOk(await request('enquire_link')));

  if (EXPECT_MO) {
    const mo = await step('mo', MO_TIMEOUT_MS, () =>
      waitFor((d) => (d.esm_class & 0x3c) === 0));
    if (EXPECT_MO_TEXT !== undefined && mo.text !== EXPECT_MO_TEXT) {
      fail(`MO text ${JSON.stringify(mo.text)} != expected ${JSON.stringify(EXPECT_MO_TEXT)}`);
    }
    out({ event: 'mo', from: mo.source_addr, to: mo.destination_addr, text: mo.text,
      data_coding: mo.data_coding, esm_class: mo.esm_class });
    figures.mo_text = mo.text;
  }

  const dc = DATA_CODING === undefined ? {} : { data_coding: DATA_CODING };

  const submit = await step('submit_sm', STEP_TIMEOUT_MS, async () => {
    const resp = expectOk(await request('submit_sm', Object.assign({
      source_addr: SRC,
      destination_addr: DST,
      short_message: HELLO,
      registered_delivery: 1,
    }, dc)));
    if (typeof resp.message_id !== 'string' || resp.message_id === '') {
      throw new Error('submit_sm_resp has an empty message_id');
    }
    return resp;
  });
  const messageId = submit.message_id;
  figures.message_id = messageId;

  const receipt = await step('delivery_receipt', RECEIPT_TIMEOUT_MS, () => waitFor((d) => {
    if (!(d.esm_class & 0x04)) return false;
    const m = /(?:^|\s)id:(\S+)/i.exec(d.text);
    return d.receipted_message_id === messageId || (m && m[1] === messageId);
  }));
  currentStep = 'delivery_receipt';
  if (!/\bstat:DELIVRD\b/.test(receipt.text)) fail(`receipt text has no stat:DELIVRD: ${JSON.stringify(receipt.text)}`);
  if (receipt.receipted_message_id !== undefined && receipt.receipted_message_id !== messageId) {
    const hint = String(receipt.receipted_message_id).startsWith(messageId)
      ? ' (the TLV is probably not NUL-terminated: npm smpp reads it as a C string past its length)'
      : '';
    fail(`receipted_message_id ${JSON.stringify(receipt.receipted_message_id)} != message_id ${JSON.stringify(messageId)}${hint}`);
  }
  if (receipt.message_state !== undefined && receipt.message_state !== smpp.MESSAGE_STATE.DELIVERED) {
    fail(`message_state ${receipt.message_state} != DELIVERED (2)`);
  }
  figures.receipt_text = receipt.text;
  figures.receipted_message_id = receipt.receipted_message_id === undefined ? null : receipt.receipted_message_id;
  figures.message_state = receipt.message_state === undefined ? null : receipt.message_state;

  const rejected = await step('submit_sm_rejected', STEP_TIMEOUT_MS, async () => {
    const resp = await request('submit_sm', Object.assign({
      source_addr: SRC,
      destination_addr: REJECTED_DST,
      short_message: 'interop rejected',
    }, dc));
    if (resp.command_status === 0) {
      throw new Error(`submit_sm to ${REJECTED_DST} was accepted (message_id ${JSON.stringify(resp.message_id)}); expected a rejection`);
    }
    return resp;
  });
  figures.rejected_status = rejected.command_status;
  if (rejected.command_status !== smpp.ESME_RINVDSTADR) {
    process.stderr.write(`client.js: note: rejection status ${hexStatus(rejected.command_status)}, not ESME_RINVDSTADR\n`);
  }

  // 200 characters as two concatenated parts with an 8-bit-reference UDH (npm smpp 0.5.1 has no
  // splitting of its own): 153 + 47 characters.
  const ref = Math.floor(Math.random() * 256);
  const parts = [LONG_TEXT.slice(0, 153), LONG_TEXT.slice(153)];
  const partIds = await step('submit_sm_long', STEP_TIMEOUT_MS, async () => {
    const ids = [];
    for (let i = 0; i < parts.length; i++) {
      const udh = Buffer.from([0x05, 0x00, 0x03, ref, parts.length, i + 1]);
      const resp = await request('submit_sm', Object.assign({
        source_addr: SRC,
        destination_addr: DST,
        esm_class: smpp.ESM_CLASS.UDH_INDICATOR,
        short_message: { udh: udh, message: parts[i] },
      }, dc));
      if (resp.command_status !== 0) {
        throw new Error(`part ${i + 1}/${parts.length}: command_status ${hexStatus(resp.command_status)}`);
      }
      if (!resp.message_id) throw new Error(`part ${i + 1}/${parts.length}: empty message_id`);
      ids.push(resp.message_id);
    }
    return ids;
  });
  figures.long_ref = ref;
  figures.long_message_ids = partIds;
  figures.long_text = LONG_TEXT;

  await step('unbind', STEP_TIMEOUT_MS, async () => {
    unbinding = true;
    return expectOk(await request('unbind'));
  });

  finished = true;
  figures.deliver_sm_received = delivered.length;
  out(Object.assign({ event: 'ok' }, figures));
  session.close();
  setTimeout(() => process.exit(0), 200).unref();
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
