// Runs the twilio-node conformance suite: starts one warbler for the run (CONFORMANCE_DATABASE:
// `sqlite` or a PostgreSQL server URL), runs `node --test` on test/ with its URL and credentials
// in the environment, stops it. Extra arguments go to `node --test` (e.g. --test-name-pattern).

import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { SUITE_DIR, startWarbler } from "./lib/warbler.mjs";

const label = (process.env.CONFORMANCE_DATABASE || "sqlite").startsWith("postgres") ? "node-postgres" : "node-sqlite";
const server = await startWarbler({ label });
const files = readdirSync(join(SUITE_DIR, "test")).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => join("test", f));
const env = { ...process.env, WARBLER_URL: server.url, WARBLER_ACCOUNT_SID: server.accountSid, WARBLER_AUTH_TOKEN: server.authToken };
for (const name of Object.keys(env)) if (name.startsWith("TWILIO_")) delete env[name];
const args = ["--test", "--test-reporter=spec", "--test-concurrency=1", "--test-timeout=60000"];
const child = spawn(process.execPath, [...args, ...process.argv.slice(2), ...files], {
  cwd: SUITE_DIR,
  env,
  stdio: ["ignore", "pipe", "inherit"],
});
let output = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  output += chunk;
});
const code = await new Promise((resolve) => child.on("close", (status, signal) => resolve(status ?? (signal ? 1 : 0))));
await server.stop();
// One summary line, as pytest prints one (scripts/test.sh shows it).
const count = (name) => output.match(new RegExp(`^\\S+ ${name} (\\d+)$`, "m"))?.[1] ?? "?";
console.log(`conformance-node: ${count("pass")} passed, ${count("fail")} failed, against ${label.replace("node-", "")}`);
if (code !== 0) console.log(`warbler log: ${server.logPath}`);
process.exit(code);
