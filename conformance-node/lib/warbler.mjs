// Plumbing for the twilio-node conformance suite: start a warbler on a fresh database, point the
// official SDK at it, stock numbers, wait for statuses. Tests import from here.

import { spawn, spawnSync } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import twilio from "twilio";

export const SUITE_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const REPO_ROOT = dirname(SUITE_DIR);

const hex = (bytes) => randomBytes(bytes).toString("hex");

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function findPsql() {
  const candidates = [process.env.PSQL];
  for (const dir of (process.env.PATH || "").split(":")) candidates.push(join(dir, "psql"));
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort().reverse() : [];
  for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin/psql`);
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) throw new Error("psql not found (set PSQL=/path/to/psql)");
  return found;
}

function psql(serverUrl, sql) {
  const run = spawnSync(findPsql(), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", serverUrl, "-c", sql], {
    encoding: "utf8",
    timeout: 60_000,
  });
  if (run.status !== 0) throw new Error(`psql ${sql}: ${run.stderr}`);
}

/** A fresh database URL for `database` (`sqlite` or a PostgreSQL server URL) and its dropper. */
function freshDatabase(database, workdir) {
  if (database === "sqlite") return { url: `sqlite://${join(workdir, "warbler.db")}`, drop: () => {} };
  if (!/^postgres(ql)?:\/\//.test(database)) {
    throw new Error(`CONFORMANCE_DATABASE must be 'sqlite' or a postgres:// URL, got ${database}`);
  }
  const name = `confnode_${hex(6)}`;
  psql(database, `CREATE DATABASE "${name}"`);
  const url = new URL(database);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => psql(database, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/**
 * Spawns `warbler serve` on a free port with a fresh database (CONFORMANCE_DATABASE: `sqlite`,
 * the default, or a PostgreSQL server URL) and random main-account credentials; resolves once
 * /healthz answers. The binary is WARBLER_BIN or target/debug/warbler.
 */
export async function startWarbler({ label = "node" } = {}) {
  const binary = process.env.WARBLER_BIN || join(REPO_ROOT, "target", "debug", "warbler");
  if (!existsSync(binary)) throw new Error(`warbler binary not found at ${binary} (cargo build, or set WARBLER_BIN)`);
  const workdir = mkdtempSync(join(tmpdir(), "warbler-node-"));
  const database = freshDatabase(process.env.CONFORMANCE_DATABASE || "sqlite", workdir);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const accountSid = `AC${hex(16)}`;
  const authToken = hex(16);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TWILIO_")));
  Object.assign(env, {
    WARBLER_ACCOUNT_SID: accountSid,
    WARBLER_AUTH_TOKEN: authToken,
    WARBLER_PUBLIC_URL: url,
    WARBLER_RATE_LIMIT_PER_SECOND: "0",
    WARBLER_WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
    WARBLER_WEBHOOK_RETRY_BASE_MS: "300",
    RUST_LOG: env.RUST_LOG || "info",
  });
  const logDir = join(REPO_ROOT, "target", "conformance-logs");
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `warbler-${label}-${process.pid}.log`);
  const log = openSync(logPath, "w");
  const child = spawn(binary, ["serve", "--listen", `127.0.0.1:${port}`, "--database-url", database.url], {
    env,
    cwd: workdir,
    stdio: ["ignore", log, log],
  });
  let exited = null;
  child.on("exit", (code, signal) => (exited = code ?? signal));
  const server = {
    url,
    accountSid,
    authToken,
    logPath,
    log: () => readFileSync(logPath, "utf8"),
    async stop() {
      if (exited === null) {
        const done = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 10_000))]);
        if (exited === null) child.kill("SIGKILL");
      }
      database.drop();
      rmSync(workdir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`warbler exited (${exited}) before becoming ready:\n${server.log()}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return server;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await server.stop();
  throw new Error(`warbler not ready after 60 s:\n${server.log()}`);
}

/** The server `run.mjs` started for the whole run (its URL and credentials are in the environment). */
export function sharedServer() {
  const { WARBLER_URL: url, WARBLER_ACCOUNT_SID: accountSid, WARBLER_AUTH_TOKEN: authToken } = process.env;
  if (!url) throw new Error("run the suite with `node run.mjs` (it starts warbler and sets WARBLER_URL)");
  return { url, accountSid, authToken };
}

/**
 * twilio-node's own RequestClient, sending every https://*.twilio.com request to the server, and
 * refusing any request that would still leave it (a stray absolute URL would reach Twilio).
 */
export class WarblerRequestClient extends twilio.RequestClient {
  constructor(baseUrl) {
    super();
    this.baseUrl = baseUrl;
  }

  request(opts) {
    const uri = opts.uri.replace(/^https:\/\/[^/]+\.twilio\.com/, this.baseUrl);
    if (!uri.startsWith(`${this.baseUrl}/`)) {
      return Promise.reject(new Error(`${opts.method} ${opts.uri}: the SDK tried to leave the server under test`));
    }
    return super.request({ ...opts, uri });
  }
}

/** An SDK client for `username`/`password` (an account SID + token, or a key SID + secret with `accountSid`). */
export function clientFor(server, username, password, accountSid) {
  return twilio(username, password, {
    accountSid,
    httpClient: new WarblerRequestClient(server.url),
    region: "",
    edge: "",
  });
}

export function mainClient(server) {
  return clientFor(server, server.accountSid, server.authToken);
}

const issued = new Set();

/** A fresh possible +1 number (never in 555, where the demo inventory and magic numbers live). */
export function nanpNumber(areaCode = "415") {
  for (;;) {
    const exchange = randomInt(200, 1000);
    if (exchange === 555) continue;
    const number = `+1${areaCode}${exchange}${String(randomInt(0, 10000)).padStart(4, "0")}`;
    if (!issued.has(number)) {
      issued.add(number);
      return number;
    }
  }
}

export const randomHandset = () => nanpNumber("208");

/** A raw request with Basic auth (for warbler's own /admin endpoints, outside the SDK). */
export async function adminPost(server, path, body, contentType = "application/x-www-form-urlencoded") {
  const auth = Buffer.from(`${server.accountSid}:${server.authToken}`).toString("base64");
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { Authorization: `Basic ${auth}`, "Content-Type": contentType },
    body,
  });
  return { status: response.status, body: await response.json() };
}

/** Stocks one fresh local number in the operator inventory (warbler's own endpoint) and buys it. */
export async function buyFreshNumber(server, client, settings = {}) {
  const number = nanpNumber();
  const csv = "phone_number,country,type,sms,mms,voice,locality,region,postal_code,route\n" +
    `${number},US,local,true,true,true,Nodeton,CA,94105,simulated\n`;
  const imported = await adminPost(server, "/admin/numbers/import", csv, "text/csv");
  if (imported.status !== 201) throw new Error(`inventory import refused: ${JSON.stringify(imported)}`);
  return client.incomingPhoneNumbers.create({ phoneNumber: number, ...settings });
}

export async function simulateInbound(server, from, to, body) {
  const reply = await adminPost(server, "/admin/simulate/inbound", new URLSearchParams({ From: from, To: to, Body: body }).toString());
  if (reply.status !== 201) throw new Error(`simulate inbound: ${JSON.stringify(reply)}`);
  return reply.body;
}

const FINAL = new Set(["delivered", "undelivered", "failed", "canceled", "read"]);

/** Polls `fetch()` until the status is one of `statuses` (or another final one). */
export async function waitForStatus(fetchMessage, statuses, timeoutMs = 15_000) {
  const wanted = new Set(statuses);
  const deadline = Date.now() + timeoutMs;
  let message = await fetchMessage();
  while (!wanted.has(message.status) && !FINAL.has(message.status)) {
    if (Date.now() > deadline) throw new Error(`${message.sid} still ${message.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    message = await fetchMessage();
  }
  return message;
}

/** Polls `probe()` until it returns something truthy. */
export async function eventually(probe, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not true after ${timeoutMs} ms: ${probe}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Asserts that `promise` rejects with a RestException of `status` (and `code`, if given). */
export async function twilioError(promise, status, code) {
  try {
    await promise;
  } catch (error) {
    if (error.status !== status || (code !== undefined && error.code !== code)) {
      throw new Error(`wanted ${status}/${code}, got ${error.status}/${error.code}: ${error.message}`);
    }
    return error;
  }
  throw new Error(`wanted ${status}/${code}, but the call succeeded`);
}

/**
 * Waits out the last half minute of a UTC day (node --test stops a test after 60 s): a test
 * that counts what it did "today" (or this month) would otherwise read the next day's empty
 * bucket when midnight falls inside it.
 */
export async function clearOfUtcMidnight(marginMs = 30_000) {
  const left = 86_400_000 - (Date.now() % 86_400_000);
  if (left <= marginMs) await new Promise((resolve) => setTimeout(resolve, left + 1000));
}
