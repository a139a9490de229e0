#!/usr/bin/env node
'use strict';
// An SMSC (the carrier side of SMPP 3.4) built on the npm `smpp` package's server, used as the
// carrier for warbler's own SMPP client in the interoperability tests. See README.md.
//
// stdout carries JSON lines only: one {"event":"ready",...} once both ports listen, then one
// {"event":"submit",...} per submit_sm received. Everything else (binds, deliveries, errors)
// goes to stderr.

const http = require('http');
const smpp = require('smpp');

const env = process.env;
const HOST = env.HOST || '127.0.0.1';
const PORT = intEnv('PORT', 2775);
const HTTP_PORT = intEnv('HTTP_PORT', 0);
const SMPP_USER = env.SMPP_USER || '';
const SMPP_PASS = env.SMPP_PASS || '';
const RECEIPT_DELAY_MS = intEnv('RECEIPT_DELAY_MS', 50);
const REJECT_DEST = (env.REJECT_DEST || '').split(',').map((s) => s.trim()).filter(Boolean);
const RESP_TIMEOUT_MS = intEnv('RESP_TIMEOUT_MS', 5000);

function intEnv(name, dflt) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`smsc: bad ${name}=${v}\n`);
    process.exit(2);
  }
  return n;
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function log(obj) {
  process.stderr.write(JSON.stringify(Object.assign({ t: new Date().toISOString() }, obj)) + '\n');
}

// The library decodes short_message / message_payload into {message, udh} with its own idea of
// the data codings (0x00 and 0x01 are both read as unpacked GSM 03.38 there, unknown octets become
// spaces). Keep the raw octets alongside so that this SMSC can decode them itself, per SMPP 3.4.
const libDecode = smpp.filters.message.decode;
smpp.filters.message.decode = function (value, skipUdh) {
  const result = libDecode.call(this, value, skipUdh);
  if (Buffer.isBuffer(value) && result && typeof result === 'object') {
    Object.defineProperty(result, 'raw', { value: value, enumerable: false });
  }
  return result;
};

// ---------------------------------------------------------------------------------------------
// Text coding (SMPP 3.4 §5.2.19 data_coding)

const GSM = smpp.gsmCoder;

function decodeText(buf, dataCoding) {
  let dc = dataCoding & 0xff;
  if ((dc & 0xf0) === 0xf0) dc = dc & 0x04 ? 0x04 : 0x00; // message class coding group
  switch (dc) {
    case 0x00: // SMSC default alphabet: unpacked GSM 03.38 here
      return GSM.decode(buf, 0x00);
    case 0x01: // IA5 (ASCII)
    case 0x03: // Latin-1
      return buf.toString('latin1');
    case 0x08: // UCS-2, big-endian
      return ucs2Decode(buf);
    case 0x02:
    case 0x04: // octets: no text
      return null;
    default:
      return buf.toString('latin1');
  }
}

function ucs2Decode(buf) {
  const b = Buffer.from(buf.slice(0, buf.length - (buf.length % 2)));
  b.swap16();
  return b.toString('utf16le');
}

function ucs2Encode(text) {
  const b = Buffer.from(text, 'utf16le');
  b.swap16();
  return b;
}

function isGsm(text) {
  return smpp.encodings.ASCII.match(text);
}

function encodeText(text, dc) {
  switch (dc) {
    case 0x00:
      return GSM.encode(text, 0x00);
    case 0x01:
    case 0x03:
      return Buffer.from(text, 'latin1');
    case 0x08:
      return ucs2Encode(text);
    default:
      throw new Error(`cannot encode text in data_coding ${dc}`);
  }
}

function pickCoding(text) {
  return isGsm(text) ? 0x00 : 0x08;
}

// Split text into encoded chunks of at most `max` octets, never inside a character (or a GSM
// escape pair, or a UTF-16 surrogate pair).
function splitEncoded(text, dc, max) {
  const chunks = [];
  let cur = [];
  let curLen = 0;
  for (const ch of text) {
    const enc = encodeText(ch, dc);
    if (curLen + enc.length > max && cur.length) {
      chunks.push(Buffer.concat(cur));
      cur = [];
      curLen = 0;
    }
    cur.push(enc);
    curLen += enc.length;
  }
  if (cur.length) chunks.push(Buffer.concat(cur));
  return chunks;
}

// ---------------------------------------------------------------------------------------------
// State

let messageCounter = 0;
const submits = [];
const delivers = [];
const pendingReceipts = new Map(); // system_id -> [deliver_sm options]
let sessionCounter = 0;
let moRef = 0;

const CAN_RECEIVE = { transceiver: true, receiver: true };
const CAN_TRANSMIT = { transceiver: true, transmitter: true };

function boundSessions() {
  return server.sessions.filter((s) => s.bound && !s.closed);
}

function receiverFor(systemId, preferred) {
  if (preferred && preferred.bound && CAN_RECEIVE[preferred.bound] && !preferred.closed) {
    return preferred;
  }
  const candidates = boundSessions().filter(
    (s) => CAN_RECEIVE[s.bound] && (systemId === undefined || systemId === null || s.system_id === systemId)
  );
  // The most recently bound one.
  candidates.sort((a, b) => b.bound_at - a.bound_at);
  return candidates[0] || null;
}

function ymdhm(d) {
  const p = (n) => String(n).padStart(2, '0');
  return (
    p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes())
  );
}

function hex(buf) {
  return buf ? Buffer.from(buf).toString('hex') : null;
}

// Parse a UDH (UDHL included) for the concatenation IE (8- or 16-bit reference).
function concatFromUdh(udh) {
  let i = 1;
  while (i + 1 < udh.length) {
    const iei = udh[i];
    const len = udh[i + 1];
    const d = udh.slice(i + 2, i + 2 + len);
    if (iei === 0x00 && len === 3) return { ref: d[0], total: d[1], seq: d[2] };
    if (iei === 0x08 && len === 4) return { ref: d.readUInt16BE(0), total: d[2], seq: d[3] };
    i += 2 + len;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Outgoing deliver_sm (receipts and MOs)

function sendDeliver(session, opts, record, cb) {
  const entry = Object.assign(
    { system_id: session.system_id, session: session.sid, command_status: null, acked: false },
    record
  );
  delivers.push(entry);
  let done = false;
  const finish = (status) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    if (status !== null) {
      entry.acked = true;
      entry.command_status = status;
    }
    log(Object.assign({ event: 'deliver_resp' }, entry));
    if (cb) cb(entry);
  };
  const timer = setTimeout(() => finish(null), RESP_TIMEOUT_MS);
  const ok = session.deliver_sm(opts, (resp) => finish(resp.command_status));
  if (!ok) {
    entry.error = 'socket not writable';
    finish(null);
  }
  return entry;
}

function receiptText(id, submitted, done, undeliv) {
  return (
    `id:${id} sub:001 dlvrd:${undeliv ? '000' : '001'} submit date:${ymdhm(submitted)} ` +
    `done date:${ymdhm(done)} stat:${undeliv ? 'UNDELIV' : 'DELIVRD'} err:${undeliv ? '001' : '000'} text:`
  );
}

function scheduleReceipt(session, submit, submittedAt) {
  setTimeout(() => {
    const undeliv = /0030$/.test(submit.destination_addr);
    const text = receiptText(submit.message_id, submittedAt, new Date(), undeliv);
    const opts = {
      source_addr_ton: submit.dest_addr_ton,
      source_addr_npi: submit.dest_addr_npi,
      source_addr: submit.destination_addr,
      dest_addr_ton: submit.source_addr_ton,
      dest_addr_npi: submit.source_addr_npi,
      destination_addr: submit.source_addr,
      esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
      data_coding: 0x00,
      short_message: GSM.encode(text, 0x00),
      receipted_message_id: submit.message_id,
      message_state: undeliv ? smpp.MESSAGE_STATE.UNDELIVERABLE : smpp.MESSAGE_STATE.DELIVERED,
    };
    const record = {
      kind: 'receipt',
      message_id: submit.message_id,
      stat: undeliv ? 'UNDELIV' : 'DELIVRD',
      text: text,
    };
    const target = receiverFor(submit.system_id, session);
    if (target) {
      sendDeliver(target, opts, record);
    } else {
      log({ event: 'receipt_queued', system_id: submit.system_id, message_id: submit.message_id });
      const q = pendingReceipts.get(submit.system_id) || [];
      q.push({ opts, record });
      pendingReceipts.set(submit.system_id, q);
    }
  }, RECEIPT_DELAY_MS);
}

function flushReceipts(session) {
  const q = pendingReceipts.get(session.system_id);
  if (!q || !q.length) return;
  pendingReceipts.delete(session.system_id);
  for (const { opts, record } of q) sendDeliver(session, opts, record);
}

// Build the deliver_sm PDUs of one MO. body: {from, to, text, data_coding?, long?: 'udh'|'sar'|'payload'}
function moPdus(body) {
  const text = String(body.text);
  const dc = body.data_coding === undefined || body.data_coding === null
    ? pickCoding(text)
    : Number(body.data_coding);
  const encoded = encodeText(text, dc);
  const base = {
    source_addr: String(body.from),
    destination_addr: String(body.to),
    esm_class: 0,
    data_coding: dc,
  };
  if (encoded.length <= 140 || (dc === 0 && encoded.length <= 160)) {
    return [Object.assign({}, base, { short_message: encoded })];
  }
  const long = body.long || 'udh';
  if (long === 'payload') {
    return [Object.assign({}, base, { message_payload: encoded })];
  }
  const chunks = splitEncoded(text, dc, dc === 0 ? 153 : 134);
  moRef = (moRef + 1) & 0xff;
  return chunks.map((chunk, i) => {
    if (long === 'sar') {
      return Object.assign({}, base, {
        short_message: chunk,
        sar_msg_ref_num: moRef,
        sar_total_segments: chunks.length,
        sar_segment_seqnum: i + 1,
      });
    }
    const udh = Buffer.from([0x05, 0x00, 0x03, moRef, chunks.length, i + 1]);
    // The library ORs the UDHI bit (0x40) into esm_class itself for {udh, message}.
    return Object.assign({}, base, { esm_class: 0x40, short_message: { udh: udh, message: chunk } });
  });
}

// ---------------------------------------------------------------------------------------------
// SMPP server

const server = smpp.createServer(function (session) {
  session.sid = ++sessionCounter;
  session.bound = null;
  session.closed = false;
  const peer = `${session.socket.remoteAddress}:${session.socket.remotePort}`;
  log({ event: 'connect', session: session.sid, peer });

  session.on('error', (err) => {
    // The library stops reading a session after a PDU it cannot parse; drop the connection.
    log({ event: 'session_error', session: session.sid, error: String(err && err.message || err) });
    try { session.destroy(); } catch (_) { /* already gone */ }
  });
  session.on('close', () => {
    session.closed = true;
    log({ event: 'close', session: session.sid, system_id: session.system_id || null });
  });

  const handled = new Set([
    'bind_transceiver', 'bind_transmitter', 'bind_receiver', 'enquire_link', 'unbind', 'submit_sm',
  ]);

  function onBind(mode) {
    return (pdu) => {
      if (session.bound) {
        session.send(pdu.response({ command_status: smpp.ESME_RALYBND }));
        return;
      }
      const okUser = !SMPP_USER || pdu.system_id === SMPP_USER;
      const okPass = !SMPP_PASS || pdu.password === SMPP_PASS;
      if (!okUser || !okPass) {
        log({ event: 'bind_fail', session: session.sid, mode, system_id: pdu.system_id });
        session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }), () => session.close());
        return;
      }
      session.bound = mode;
      session.bound_at = Date.now() + session.sid / 1e6;
      session.system_id = pdu.system_id;
      session.send(pdu.response({ system_id: 'warbler-interop' }));
      log({ event: 'bind', session: session.sid, mode, system_id: pdu.system_id,
        interface_version: pdu.interface_version });
      if (CAN_RECEIVE[mode]) flushReceipts(session);
    };
  }

  session.on('bind_transceiver', onBind('transceiver'));
  session.on('bind_transmitter', onBind('transmitter'));
  session.on('bind_receiver', onBind('receiver'));

  session.on('enquire_link', (pdu) => session.send(pdu.response()));

  session.on('unbind', (pdu) => {
    log({ event: 'unbind', session: session.sid, system_id: session.system_id || null });
    session.bound = null;
    session.send(pdu.response(), () => session.close());
  });

  session.on('submit_sm', (pdu) => {
    const submittedAt = new Date();
    const sm = pdu.short_message;
    const mp = pdu.message_payload;
    const usePayload = mp !== undefined && mp !== null;
    const raw = usePayload ? (mp && mp.raw) || Buffer.alloc(0) : (sm && sm.raw) || Buffer.alloc(0);
    let udh = null;
    let body = raw;
    if ((pdu.esm_class & 0x40) && raw.length) {
      udh = raw.slice(0, raw[0] + 1);
      body = raw.slice(raw[0] + 1);
    }
    const sar = pdu.sar_msg_ref_num !== undefined || pdu.sar_total_segments !== undefined ||
      pdu.sar_segment_seqnum !== undefined
      ? { ref: pdu.sar_msg_ref_num, total: pdu.sar_total_segments, seq: pdu.sar_segment_seqnum }
      : null;

    let status = 0;
    if (!session.bound || !CAN_TRANSMIT[session.bound]) status = smpp.ESME_RINVBNDSTS;
    else if (REJECT_DEST.includes(pdu.destination_addr)) status = smpp.ESME_RINVDSTADR;
    const messageId = status === 0 ? (++messageCounter).toString(16).padStart(8, '0') : null;

    const record = {
      event: 'submit',
      system_id: session.system_id || null,
      source_addr: pdu.source_addr,
      destination_addr: pdu.destination_addr,
      data_coding: pdu.data_coding,
      esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery,
      message_id: messageId,
      text: decodeText(body, pdu.data_coding),
      udh: hex(udh),
      sar: sar,
      payload: usePayload,
      concat: udh ? concatFromUdh(udh) : null,
      message_hex: hex(body),
      command_status: status,
      source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi,
      dest_addr_ton: pdu.dest_addr_ton,
      dest_addr_npi: pdu.dest_addr_npi,
      service_type: pdu.service_type,
      sequence_number: pdu.sequence_number,
    };
    submits.push(record);
    out(record);

    if (status !== 0) {
      session.send(pdu.response({ command_status: status }));
      return;
    }
    session.send(pdu.response({ message_id: messageId }));
    if (pdu.registered_delivery & 0x01) scheduleReceipt(session, record, submittedAt);
  });

  // Anything else: responses are matched by the library's callbacks; unsupported requests get an
  // error response (generic_nack for unknown command ids).
  session.on('pdu', (pdu) => {
    if (pdu.isResponse() || handled.has(pdu.command)) return;
    log({ event: 'unsupported', session: session.sid, command: pdu.command, command_id: pdu.command_id });
    session.send(pdu.response({ command_status: smpp.ESME_RINVCMDID }));
  });
});

server.on('error', (err) => {
  log({ event: 'server_error', error: String(err && err.message || err) });
  process.exit(1);
});

// ---------------------------------------------------------------------------------------------
// HTTP control server

function reply(res, code, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readJson(req, cb) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    try {
      cb(null, JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
    } catch (e) {
      cb(e);
    }
  });
  req.on('error', cb);
}

function postMo(req, res) {
  readJson(req, (err, body) => {
    if (err || !body || typeof body !== 'object') return reply(res, 400, { error: 'bad JSON body' });
    if (body.from === undefined || body.to === undefined || body.text === undefined) {
      return reply(res, 400, { error: 'from, to and text are required' });
    }
    const session = receiverFor(body.system_id);
    if (!session) return reply(res, 409, { sent: false, error: 'no session bound that can receive' });
    let pdus;
    try {
      pdus = moPdus(body);
    } catch (e) {
      return reply(res, 400, { error: String(e.message) });
    }
    const entries = [];
    let pending = pdus.length;
    pdus.forEach((opts, i) => {
      const record = { kind: 'mo', from: String(body.from), to: String(body.to), text: String(body.text),
        segment: i + 1, segments: pdus.length };
      sendDeliver(session, opts, record, (entry) => {
        entries[i] = entry;
        if (--pending === 0) {
          reply(res, 200, {
            sent: true,
            system_id: session.system_id,
            segments: pdus.length,
            data_coding: pdus[0].data_coding,
            acked: entries.every((e) => e.acked),
            command_status: entries.map((e) => e.command_status),
          });
        }
      });
    });
  });
}

const httpServer = http.createServer((req, res) => {
  const url = (req.url || '').split('?')[0];
  try {
    if (req.method === 'GET' && url === '/health') return reply(res, 200, { ok: true });
    if (req.method === 'GET' && url === '/submits') return reply(res, 200, submits);
    if (req.method === 'GET' && url === '/delivers') return reply(res, 200, delivers);
    if (req.method === 'GET' && url === '/sessions') {
      return reply(res, 200, boundSessions().map((s) => ({ session: s.sid, system_id: s.system_id, mode: s.bound })));
    }
    if (req.method === 'POST' && url === '/mo') return postMo(req, res);
    if (req.method === 'POST' && url === '/disconnect') {
      const n = server.sessions.length;
      server.sessions.slice().forEach((s) => s.destroy());
      return reply(res, 200, { closed: n });
    }
    return reply(res, 404, { error: 'not found' });
  } catch (e) {
    log({ event: 'http_error', error: String(e && e.stack || e) });
    return reply(res, 500, { error: String(e && e.message || e) });
  }
});
httpServer.on('error', (err) => {
  log({ event: 'http_server_error', error: String(err && err.message || err) });
  process.exit(1);
});

// ---------------------------------------------------------------------------------------------
// Start / stop

let listening = 0;
function onListening() {
  if (++listening < 2) return;
  out({ event: 'ready', port: server.address().port, http_port: httpServer.address().port });
}
server.listen(PORT, HOST, onListening);
httpServer.listen(HTTP_PORT, HOST, onListening);

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log({ event: 'shutdown', signal });
  server.close();
  httpServer.close();
  // Tell bound ESMEs, give them a moment to answer, then drop everything.
  for (const s of boundSessions()) {
    try { s.unbind(() => s.close()); } catch (_) { /* ignore */ }
  }
  setTimeout(() => {
    for (const s of server.sessions.slice()) {
      try { s.destroy(); } catch (_) { /* ignore */ }
    }
    process.exit(0);
  }, boundSessions().length ? 300 : 0).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('uncaughtException', (err) => {
  log({ event: 'uncaught', error: String(err && err.stack || err) });
});
