// Drives the installed Chromium headless (playwright-core, no browser download) against the
// gateway's live dashboard, for tests/it/gateway_dashboard_browser.rs.
//
//   node tests/browser/dashboard.mjs DASHBOARD_URL
//
// Environment: POLYRELAY_CHROMIUM (default /usr/bin/chromium), DASHBOARD_KEY (the client key
// typed into the page's key form, as a person would; none: the form is left alone),
// DASHBOARD_TIMEOUT_MS (default 60000: how long a `wait` may take).
//
// It opens the page at 1280×800, types the key (answering {"event":"loaded","before_key":
// {state, text}} with the page's #status before it), then reads one JSON command a line on stdin
// and answers each with one JSON line on stdout (everything else goes to stderr):
//   {"cmd":"wait","values":{"requests":12,...}}  polls the DOM until the summary cards with
//       these ids carry these data-value / data-usd numbers and the last poll succeeded, then
//       answers {"event":"read","snapshot":{...}}: every number the page shows, by id, table
//       row and cell (see `snapshot` below);
//   {"cmd":"screenshot","path":"...","full":false}  a PNG of the viewport (of the whole page
//       with "full":true) → {"event":"screenshot","path":...};
//   {"cmd":"phone","path":"..."}  the layout at a phone's width (390×844), and a full-page
//       PNG of it when a path is given → {"event":"phone","layout":{...}};
//   {"cmd":"quit"}  closes the browser → {"event":"done","problems":[...]}.
// Every console error or warning, uncaught page error, failed request and HTTP error answer
// of the page is a problem: reported at once as {"event":"problem",...}, carried in every
// answer, and the exit status is 1 when there was any. A command that fails answers
// {"event":"error","message":...} and the driver exits 2.

import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const url = process.argv[2];
if (!url) {
  process.stderr.write("usage: node dashboard.mjs DASHBOARD_URL\n");
  process.exit(64);
}
const executablePath = process.env.POLYRELAY_CHROMIUM || "/usr/bin/chromium";
const key = process.env.DASHBOARD_KEY || "";
const timeoutMs = Number(process.env.DASHBOARD_TIMEOUT_MS || 60000);

const problems = [];
// Set on "quit": a poll cut short by closing the browser is no problem of the page.
let closing = false;
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const problem = (kind, text) => {
  if (closing) return;
  const p = { kind, text: String(text) };
  problems.push(p);
  say({ event: "problem", ...p });
};

const browser = await chromium.launch({
  executablePath,
  headless: true,
  chromiumSandbox: false, // CI runs as root
  // No background traffic to Google's hosts on a machine with a closed network.
  args: [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
let exitCode = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problem("console." + m.type(), m.text());
  });
  page.on("pageerror", (e) => problem("pageerror", e.stack || e.message));
  page.on("requestfailed", (r) => problem("requestfailed", r.method() + " " + r.url() + ": " + (r.failure()?.errorText ?? "")));
  page.on("response", (r) => {
    if (r.status() >= 400) problem("http", r.status() + " " + r.request().method() + " " + r.url());
  });

  const resp = await page.goto(url, { waitUntil: "load" });
  if (!resp || !resp.ok()) throw new Error("GET " + url + ": " + (resp ? resp.status() : "no answer"));
  // What the page says before it has a key (it asks for one when the gateway wants one).
  const beforeKey = await page.evaluate(() => {
    const s = document.getElementById("status");
    return { state: s.getAttribute("data-state"), text: s.textContent };
  });
  if (key) {
    await page.fill("#key", key);
    await page.click("#key-form button[type=submit]");
  }
  say({ event: "loaded", url: page.url(), before_key: beforeKey });

  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line);
    try {
      if (cmd.cmd === "wait") {
        await page.waitForFunction(ready, cmd.values || {}, { timeout: timeoutMs, polling: 100 });
        say({ event: "read", snapshot: await page.evaluate(snapshot), problems });
      } else if (cmd.cmd === "screenshot") {
        await page.screenshot({ path: cmd.path, fullPage: Boolean(cmd.full) });
        say({ event: "screenshot", path: cmd.path, problems });
      } else if (cmd.cmd === "phone") {
        await page.setViewportSize({ width: 390, height: 844 });
        const { layout } = await page.evaluate(snapshot);
        if (cmd.path) await page.screenshot({ path: cmd.path, fullPage: true });
        await page.setViewportSize({ width: 1280, height: 800 });
        say({ event: "phone", layout, problems });
      } else if (cmd.cmd === "quit") {
        closing = true;
        break;
      } else {
        throw new Error("unknown command " + line);
      }
    } catch (e) {
      // What the page showed when the wait ran out, for the test's message.
      let seen = null;
      try { seen = await page.evaluate(snapshot); } catch (_) { /* the page is gone */ }
      say({ event: "error", message: String(e.message || e), seen, problems });
      exitCode = 2;
      break;
    }
  }
} catch (e) {
  say({ event: "error", message: String(e.stack || e), problems });
  exitCode = 2;
} finally {
  await browser.close();
}
say({ event: "done", problems });
process.exit(exitCode || (problems.length ? 1 : 0));

// --- Run in the page ---

// The last poll succeeded and each summary card shows the wanted number.
function ready(values) {
  const status = document.getElementById("status");
  if (!status || status.getAttribute("data-state") !== "ok") return false;
  return Object.keys(values).every((id) => {
    const el = document.getElementById(id);
    if (!el) return false;
    const raw = el.getAttribute("data-usd") ?? el.getAttribute("data-value");
    return raw !== null && Math.abs(Number(raw) - values[id]) <= 1e-9 * Math.max(1, Math.abs(values[id]));
  });
}

// Every number the page shows: the summary cards by id, and each table's rows with their
// data-* attributes and their cells by data-field (raw data-value and the text shown).
function snapshot() {
  // Whether anything spills out sideways: the page's own width against the viewport's, and
  // sections whose content is wider than them without scrolling inside.
  function layoutOf() {
    const doc = document.documentElement;
    const spill = [];
    document.querySelectorAll("section").forEach((s) => {
      const style = getComputedStyle(s);
      if (s.scrollWidth > s.clientWidth + 1 && style.overflowX !== "auto" && style.overflowX !== "scroll") {
        spill.push(s.querySelector("h2")?.textContent || "a section");
      }
    });
    return { viewport: window.innerWidth, scroll_width: doc.scrollWidth, spill };
  }

  const cards = {};
  document.querySelectorAll(".card b[id]").forEach((el) => {
    const raw = el.getAttribute("data-usd") ?? el.getAttribute("data-value");
    cards[el.id] = { value: raw === null ? null : Number(raw), text: el.textContent };
  });
  const tables = {};
  document.querySelectorAll("table[id]").forEach((t) => {
    tables[t.id] = Array.from(t.tBodies[0].rows)
      .filter((tr) => !tr.querySelector("td.empty"))
      .map((tr) => {
        const cells = {};
        tr.querySelectorAll("td[data-field]").forEach((td) => {
          cells[td.getAttribute("data-field")] = { value: td.getAttribute("data-value"), text: td.textContent };
        });
        return { attrs: { ...tr.dataset }, cells };
      });
  });
  const lists = {};
  document.querySelectorAll("ol[id], ul[id]").forEach((l) => {
    lists[l.id] = Array.from(l.children).filter((li) => !li.classList.contains("empty")).map((li) => ({ ...li.dataset, text: li.textContent }));
  });
  const status = document.getElementById("status");
  return {
    status: { state: status.getAttribute("data-state"), text: status.textContent },
    cards,
    tables,
    lists,
    layout: layoutOf(),
  };
}
