// The back office in a real browser: Debian's Chromium, headless, driven by playwright-core,
// against `switchboard serve` on a free port of 127.0.0.1 with its own data directory.
//
// Run: `npm test` in this folder after `cargo build -p switchboard` (scripts/test.sh does
// both). SWITCHBOARD_BIN overrides the binary; CHROMIUM the browser. Screenshots are kept in
// target/e2e-artifacts/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
const bin = process.env.SWITCHBOARD_BIN || join(process.env.CARGO_TARGET_DIR || join(root, "target"), "debug/switchboard");
const artifacts = join(root, "target/e2e-artifacts");
const work = mkdtempSync(join(tmpdir(), "sb-e2e-"));
const NEW_PASSWORD = "correct horse battery staple";

let server;
let base;
let browser;
const passwords = {};
const problems = [];

/** Environment of every switchboard command: only what this test sets. */
function env(extra = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SWITCHBOARD__")));
  return { ...clean, RUST_LOG: "warn", SWITCHBOARD__LOG__FORMAT: "json", ...extra };
}

function switchboard(...args) {
  return JSON.parse(execFileSync(bin, ["--data-dir", join(work, "data"), "--json", ...args], { cwd: work, env: env() }).toString());
}

async function waitForHealth(url, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url}/healthz did not answer within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** A page of a new browser context, with console errors and CSP violations collected. */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  // Refused pages (403) log "Failed to load resource"; that refusal is what a test expects.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${page.url()}: ${e.message}`));
  return page;
}

/** Signs in; a first sign-in with a one-time password goes through the password change. */
async function signIn(page, name) {
  await page.goto(`${base}/admin/sign-in`);
  await page.fill("#name", name);
  await page.fill("#password", passwords[name]);
  // The sign-in page is already loaded: wait for the page the server sends us to instead.
  await Promise.all([
    page.waitForURL((u) => !u.pathname.endsWith("/admin/sign-in")),
    page.click("button[type=submit]"),
  ]);
  if (page.url().endsWith("/admin/account/password")) {
    await page.fill("#current", passwords[name]);
    await page.fill("#new", NEW_PASSWORD);
    await page.fill("#confirm", NEW_PASSWORD);
    await page.click("button.primary");
    await page.waitForURL(`${base}/admin`);
    passwords[name] = NEW_PASSWORD;
  }
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  const init = switchboard("init");
  passwords.admin = init.admin_one_time_password;
  assert.ok(passwords.admin, "init printed a one-time password for the first admin");
  passwords.pat = switchboard("users", "add", "pat", "--role", "privacy_officer").one_time_password;
  passwords.mia = switchboard("users", "add", "mia", "--role", "marketing").one_time_password;
  // A demo operator's day, ingested into the same data directory, fills the dashboard.
  const demo = switchboard("demo", "--dir", join(work, "demo"), "--customers", "40", "--hours", "2");
  assert.ok(demo.jobs.every((j) => j.status === "succeeded"), "the demo's jobs succeeded");

  server = spawn(bin, ["--data-dir", join(work, "data"), "serve"], {
    cwd: work,
    env: env({ SWITCHBOARD__SERVER__ADDRESS: "127.0.0.1:0" }),
    stdio: ["ignore", "pipe", "inherit"],
  });
  const firstLine = await new Promise((ok, fail) => {
    const lines = createInterface({ input: server.stdout });
    lines.once("line", ok);
    server.once("exit", (code) => fail(new Error(`switchboard serve exited with ${code}`)));
  });
  base = firstLine.match(/listening on (http:\/\/\S+)/)[1];
  await waitForHealth(base, 20_000);

  // launch() gives the browser a fresh temporary profile (--user-data-dir) of its own.
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((ok) => server.once("exit", (code, signal) => ok({ code, signal })));
    server.kill("SIGTERM");
    const { code } = await exited;
    assert.equal(code, 0, "switchboard serve stops cleanly on SIGTERM");
  }
  rmSync(work, { recursive: true, force: true });
});

test("the admin signs in with the one-time password, changes it and sees the dashboard filled by the demo", async () => {
  const page = await newPage();
  await page.goto(`${base}/admin`);
  assert.match(page.url(), /\/admin\/sign-in/, "anonymous visitors are sent to sign in");
  await signIn(page, "admin");
  assert.equal(page.url(), `${base}/admin`);
  assert.equal(await page.textContent("h1"), "Dashboard");
  for (const section of ["Ingestion freshness", "Open alerts", "Records per hour", "Last runs"]) {
    assert.ok(await page.isVisible(`h2:has-text("${section}")`), section);
  }
  // The demo's mediation source, fresh, and the records it loaded per hour.
  const freshness = await page.textContent("section:has(h2:text('Ingestion freshness'))");
  assert.match(freshness, /MED01/);
  assert.match(freshness, /on time/);
  await page.locator(".chart .uplot").waitFor();
  const runs = await page.textContent("section:has(h2:text('Last runs'))");
  assert.match(runs, /ingest\.MED01/);
  await shot(page, "01-dashboard");
  await page.context().close();
});

test("running a job now shows its run in the job's history", async () => {
  const page = await newPage();
  await signIn(page, "admin");
  await page.click("nav.side >> text=Jobs");
  await page.waitForURL(`${base}/admin/jobs`);
  const row = page.locator("tr", { has: page.locator("a", { hasText: "housekeeping" }) });
  await row.locator("button", { hasText: "Run now" }).click();
  await page.waitForURL(`${base}/admin/jobs/housekeeping`);
  // The history refreshes itself while the run is in progress.
  await page.locator("tr.run .status.succeeded").first().waitFor({ timeout: 20_000 }).catch(async (e) => {
    await shot(page, "02-job-run-failed");
    throw e;
  });
  const manual = await page.locator("tr.run").first().textContent();
  assert.match(manual, /manual/);
  await shot(page, "02-job-run");
  await page.context().close();
});

test("a token revealed with a stated purpose is shown once and found in the audit log", async () => {
  // The admin gives an integration a key that may only make tokens …
  const admin = await newPage();
  await signIn(admin, "admin");
  await admin.goto(`${base}/admin/api-keys`);
  await admin.fill("#key-name", "crm-integration");
  await admin.check("input[name=permission][value='privacy.tokenize']");
  await admin.click("text=Create key");
  const key = (await admin.locator("#new-api-key").textContent()).trim();
  assert.match(key, /^sbk_/);
  await shot(admin, "03-api-key-created");
  await admin.context().close();

  // … which tokenises a customer's number through the API …
  const r = await fetch(`${base}/api/v1/privacy/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ kind: "msisdn", value: "393401234567", customer: "C0042" }),
  });
  assert.equal(r.status, 200);
  const { token } = await r.json();
  assert.match(token, /^msi_/);

  // … and the privacy officer reveals it for a purpose.
  const page = await newPage();
  await signIn(page, "pat");
  await page.click("nav.side >> text=Reveal & erasure");
  await page.fill("#handle", token);
  await page.fill("#purpose", "ticket 4711: the customer disputes a charge");
  await page.click("button:has-text('Reveal')");
  await page.locator("#revealed-value").waitFor();
  assert.equal((await page.textContent("#revealed-value")).trim(), "393401234567");
  await shot(page, "04-revealed");

  await page.click("nav.side >> text=Audit log");
  await page.waitForURL(`${base}/admin/audit`);
  assert.match(await page.textContent("#chain-status"), /Chain intact/);
  const entries = await page.textContent("#audit-entries");
  assert.ok(entries.includes("ticket 4711: the customer disputes a charge"), "the purpose is audited");
  assert.ok(entries.includes("user:pat") && entries.includes(token), "who and which token are audited");
  assert.ok(!entries.includes("393401234567"), "the audit log holds the token, never the value");
  await shot(page, "05-audit-log");
  await page.context().close();
});

test("an under-privileged user is refused a page and does not see it in the navigation", async () => {
  const page = await newPage();
  await signIn(page, "mia");
  assert.equal(await page.locator("nav.side >> text=Users & roles").count(), 0);
  const response = await page.goto(`${base}/admin/users`);
  assert.equal(response.status(), 403);
  assert.ok(await page.isVisible("text=Your role does not allow this page"));
  await shot(page, "06-refused");
  await page.context().close();
});

test("the monitoring console and the API viewer load with no script or policy error", async () => {
  const page = await newPage();
  await signIn(page, "admin");
  await page.goto(`${base}/admin/monitoring?range=24h`);
  assert.equal(await page.textContent("h1"), "Monitoring");
  await page.waitForLoadState("networkidle");
  await shot(page, "07-monitoring");
  await page.goto(`${base}/api/docs`);
  await page.waitForFunction(() => customElements.get("rapi-doc") !== undefined, null, { timeout: 15_000 });
  await page.waitForLoadState("networkidle");
  await shot(page, "08-api-docs");
  await page.context().close();
  assert.deepEqual(problems, [], "no console errors or CSP violations on any page");
});
