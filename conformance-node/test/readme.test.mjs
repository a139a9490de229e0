// Every ```js block of the top-level README runs as printed, and the start-up banner prints the
// same Node snippet. Convention (stated in the README): a language's blocks run in order as one
// ES module, with "AC…", "…" and http://127.0.0.1:8080 replaced by a fresh warbler's main
// account SID, auth token and URL.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { REPO_ROOT, SUITE_DIR, startWarbler } from "../lib/warbler.mjs";

const README = join(REPO_ROOT, "README.md");
const PLACEHOLDER_URL = "http://127.0.0.1:8080";

function codeBlocks(text, language) {
  return [...text.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, "gm"))].map((m) => m[1]);
}

const withServer = (code, server) =>
  code.replaceAll('"AC…"', `"${server.accountSid}"`).replaceAll('"…"', `"${server.authToken}"`).replaceAll(PLACEHOLDER_URL, server.url);

/** The indented code the banner prints after its line starting with `header`. */
function bannerSnippet(log, header) {
  const lines = log.split("\n");
  const start = lines.findIndex((line) => line.startsWith(header)) + 1;
  assert.ok(start > 0, `no "${header}" in the banner`);
  const code = [];
  for (const line of lines.slice(start)) {
    if (line && !line.startsWith("    ")) break;
    code.push(line.slice(4));
  }
  return `${code.join("\n").replace(/^\n+|\n+$/g, "")}\n`;
}

/** Runs `code` as an ES module next to node_modules (so `import "twilio"` resolves). */
async function runModule(code, name, env = process.env) {
  const file = join(SUITE_DIR, `.${name}-${process.pid}.mjs`);
  writeFileSync(file, code);
  try {
    return await promisify(execFile)(process.execPath, [file], { cwd: SUITE_DIR, env, timeout: 60_000 });
  } finally {
    rmSync(file, { force: true });
  }
}

// A warbler of its own: the README walks through a fresh install (demo inventory untouched).
let server;
before(async () => (server = await startWarbler({ label: "node-readme" })));
after(() => server.stop());

test("every README js block runs as printed", async () => {
  const blocks = codeBlocks(readFileSync(README, "utf8"), "js");
  assert.ok(blocks.length >= 2, "the README's Node setup and walkthrough blocks were not found");
  const { stdout } = await runModule(withServer(blocks.join("\n"), server), "readme");
  assert.match(stdout, /^AC[0-9a-f]{32}\naccepted\nHi traveller, flight FF 17 is on time\.\n$/);
});

test("the banner prints the README's Node snippet, and it reaches every domain", async () => {
  const printed = bannerSnippet(server.log(), "Point twilio-node");
  const [first] = codeBlocks(readFileSync(README, "utf8"), "js");
  assert.equal(printed, withServer(first, server));
  // Region and edge from the environment must not send anything elsewhere.
  const env = { ...process.env, TWILIO_REGION: "ie1", TWILIO_EDGE: "dublin" };
  const everyDomain = `${printed}
await client.messaging.v1.services.list({ limit: 1 });
await client.monitor.v1.alerts.list({ limit: 1 });
await client.iam.v1.getApiKeys.list({ accountSid: "${server.accountSid}" });
console.log("every domain answered");
`;
  const { stdout } = await runModule(everyDomain, "banner", env);
  assert.match(stdout, /every domain answered/);
});
