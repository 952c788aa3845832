// Run it from the page, in a real browser against real nodes: the built book is served on
// http://127.0.0.1:3939 (a fixed loopback port: the book's local nodes allow it, with mdbook
// serve's http://localhost:3000 and http://127.0.0.1:3000, through `http.cors.*`, see
// provision/src/settings.rs), and headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) clicks the buttons theme/console-run.js adds under every console block:
//
// - both nodes answer the book's origins and refuse another one (a CORS preflight);
// - every console block of both editions has its buttons;
// - Run on the quick-start block and on chapter 12's bulk with a per-item 409: the statuses
//   shown are those of the block's expect line (read here from src/*.md, not from the page),
//   every field matched, and the 409 is shown as what the chapter says;
// - a block refuses to recreate an index the book did not create (one made here without the
//   mark, under a fresh name) and leaves it as it was;
// - a block whose expect line does not hold shows that it does not (so this check fails when a
//   Run answer does not match);
// - the text Copy as curl produces, run by bash and curl, gives the same statuses;
// - an unreachable node and a refused origin are each said as such;
// - the Run button works from the keyboard, what it shows reads in every theme, and a URL not
//   on this machine is confirmed once;
// - every runnable block of every English page, in book order: how many answer as the book
//   says, which are not run and why. Any that does not fails the check.
//
// Usage: node run.mjs BOOK_DIR SRC_DIR CORE_URL SCRIPTING_URL   (scripts/check-book.sh).
// OCC_RUN_SWEEP=0 leaves out the last part, every block of the book (about two minutes).

import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const [bookDir = "book", srcDir = "src", coreUrl, scriptingUrl] = process.argv.slice(2);
if (!coreUrl || !scriptingUrl) {
  console.error("usage: node run.mjs BOOK_DIR SRC_DIR CORE_URL SCRIPTING_URL");
  process.exit(2);
}
const PORT = 3939;
for (const event of ["uncaughtException", "unhandledRejection"]) {
  process.on(event, (error) => {
    console.error(`browser run: error: ${error?.message}${error?.cause ? ` (${error.cause.message ?? error.cause})` : ""}`);
    process.exit(1);
  });
}
const started = Date.now();
const failures = [];
const fail = (what) => {
  failures.push(what);
  console.log(`FAIL ${what}`);
};
const ok = (what) => console.log(`ok   ${what} (+${Math.round((Date.now() - started) / 1000)} s)`);

// ---- the expect lines, from the markdown (what tests/console.rs reads) -----------------------

async function expected(file) {
  const lines = (await readFile(join(srcDir, file), "utf8")).split("\n");
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "```http") continue;
    let end = i + 1;
    while (lines[end].trim() !== "```") end++;
    const after = lines.slice(end + 1).find((l) => l.trim() !== "")?.trim() ?? "";
    const m = after.match(/^<!-- expect(\(scripting\))?:(.*?)(-->)?$/);
    blocks.push(
      m
        ? { kind: "expect", statuses: m[2].split("|").map((p) => Number(p.trim().split(/\s+/)[0])) }
        : { kind: after.startsWith("<!-- illustrative:") ? "illustrative" : "none" },
    );
    i = end;
  }
  return blocks;
}

// ---- a node, straight ------------------------------------------------------------------------

async function es(base, method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(30000),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function preflight(base, origin) {
  const response = await fetch(base + "/", {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "PUT",
      "access-control-request-headers": "content-type,authorization",
    },
    signal: AbortSignal.timeout(10000),
  });
  return {
    allowed: response.headers.get("access-control-allow-origin") === origin,
    headers: (response.headers.get("access-control-allow-headers") ?? "").toLowerCase(),
  };
}

for (const [name, base] of [["main server", coreUrl], ["scripting server", scriptingUrl]]) {
  for (const origin of [`http://127.0.0.1:${PORT}`, "http://localhost:3000", "http://127.0.0.1:3000"]) {
    const answer = await preflight(base, origin);
    if (!answer.allowed || !answer.headers.includes("authorization") || !answer.headers.includes("content-type")) {
      fail(
        `${name} ${base} does not allow ${origin} with Authorization and Content-Type (${JSON.stringify(answer)}); ` +
          "a node started before provision/src/settings.rs had CORS_SETTINGS: cargo es stop, then run again",
      );
    }
  }
  for (const origin of ["http://example.com:3000", `http://127.0.0.1:${PORT + 1}`]) {
    if ((await preflight(base, origin)).allowed) fail(`${name} ${base} allows ${origin}`);
  }
}
if (failures.length === 0) ok("both nodes allow the book's local origins, and refuse others");

// ---- the book, served --------------------------------------------------------------------

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json", ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf" };
// Extra pages: path -> html (a real page with its index renamed, for the refusal checks).
const extra = new Map();
function serve(request, response) {
  const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
  if (extra.has(path)) {
    response.writeHead(200, { "content-type": types[".html"] }).end(extra.get(path));
    return;
  }
  const file = join(bookDir, path);
  if (!file.startsWith(normalize(bookDir))) return response.writeHead(403).end();
  stat(file)
    .then((s) => (s.isDirectory() ? join(file, "index.html") : file))
    .then(async (f) => response.writeHead(200, { "content-type": types[extname(f)] ?? "application/octet-stream" }).end(await readFile(f)))
    .catch(() => response.writeHead(404).end("not found"));
}
const server = createServer(serve);
await new Promise((resolve, reject) => {
  server.once("error", (e) => reject(new Error(`cannot serve the book on 127.0.0.1:${PORT}: ${e.message}`)));
  server.listen(PORT, "127.0.0.1", resolve);
});
const origin = `http://127.0.0.1:${PORT}`;
// A second origin that no node allows.
const stranger = createServer(serve);
await new Promise((resolve) => stranger.listen(0, "127.0.0.1", resolve));
const strangerOrigin = `http://127.0.0.1:${stranger.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// A tab with the page's setting pointing at the local nodes (as a reader's Settings would).
async function open(path, { from = origin, url = coreUrl, scripting = scriptingUrl } = {}) {
  const context = await browser.newContext();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: from });
  await context.addInitScript(
    ([u, s]) => {
      localStorage.setItem("occ-book.es-url", u);
      localStorage.setItem("occ-book.es-scripting-url", s);
    },
    [url, scripting],
  );
  const tab = await context.newPage();
  const problems = [];
  tab.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  tab.on("dialog", (dialog) => {
    problems.push(`unexpected dialog: ${dialog.message().slice(0, 80)}`);
    dialog.dismiss();
  });
  const allowed = [from, coreUrl, scriptingUrl, url, "http://127.0.0.1:9"];
  await tab.route(
    (u) => !allowed.some((a) => u.href.startsWith(a)),
    (route) => {
      problems.push(`reaches outside: ${route.request().url()}`);
      return route.abort();
    },
  );
  await tab.goto(`${from}/${path}`, { waitUntil: "load", timeout: 20000 });
  return { context, tab, problems };
}

// Clicks Run on block `n` (0-based, among the page's console blocks) and waits for its answers.
async function run(tab, n, { keyboard = false } = {}) {
  const bar = tab.locator(".esrun-bar").nth(n);
  if (keyboard) {
    await bar.locator(".esrun-run").focus();
    await tab.keyboard.press("Enter");
  } else await bar.locator(".esrun-run").click();
  const output = tab.locator(".esrun-output").nth(n);
  await output.and(tab.locator('[data-done="true"]')).waitFor({ timeout: 120000 });
  return output.evaluate((o) => ({
    ok: o.dataset.ok === "true",
    statuses: [...o.querySelectorAll(".esrun-answer")].map((a) => Number(a.dataset.status)),
    matched: [...o.querySelectorAll(".esrun-answer")].map((a) => a.dataset.ok === "true"),
    text: o.innerText,
    stop: o.querySelector(".esrun-stop")?.innerText ?? null,
  }));
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// ---- every block of both editions has its buttons -----------------------------------------

const summary = await readFile(join(srcDir, "SUMMARY.md"), "utf8");
const chapters = summary.split("](").slice(1).map((s) => s.split(")")[0]);
const withBlocks = [];
for (const file of chapters) {
  const blocks = await expected(file);
  if (blocks.length) withBlocks.push([file, blocks]);
}
async function buttons(tab, file, blocks, edition) {
  const bars = await tab.evaluate(() => ({
    bars: document.querySelectorAll(".esrun-bar").length,
    runs: document.querySelectorAll(".esrun-run").length,
    copies: document.querySelectorAll(".esrun-copy").length,
  }));
  const runnable = blocks.filter((b) => b.kind === "expect").length;
  if (bars.bars !== blocks.length || bars.copies !== blocks.length || bars.runs !== runnable) {
    fail(`${edition}${file}: ${blocks.length} console blocks (${runnable} runnable), buttons: ${JSON.stringify(bars)}`);
    return false;
  }
  return true;
}
// The Hinglish edition here, in one tab; the English one below, where every block is run.
{
  const { context, tab } = await open("hi-Latn/index.html");
  let missing = 0;
  for (const [file, blocks] of withBlocks) {
    await tab.goto(`${origin}/hi-Latn/${file.replace(/\.md$/, ".html")}`, { waitUntil: "load", timeout: 20000 });
    if (!(await buttons(tab, file, blocks, "hi-Latn/"))) missing++;
  }
  if (!missing) ok(`Hinglish: every console block of ${withBlocks.length} pages has Copy as curl, and Run unless illustrative`);
  await context.close();
}

// ---- the quick start and chapter 12's bulk, in both editions ---------------------------------

for (const [file, n, why] of [
  ["quick-start.md", 0, "the quick start"],
  ["ch12-00-bulk.md", 1, "chapter 12's bulk with a per-item 409"],
]) {
  const want = (await expected(file))[n].statuses;
  for (const edition of ["", "hi-Latn/"]) {
    const { context, tab, problems } = await open(edition + file.replace(/\.md$/, ".html"));
    // The English quick start by the keyboard alone: the Run button focused, Enter.
    const got = await run(tab, n, { keyboard: edition === "" && n === 0 });
    const where = `${edition}${file} block ${n + 1} (${why}${edition === "" && n === 0 ? ", by the keyboard" : ""})`;
    if (!got.ok || !same(got.statuses, want) || got.matched.includes(false)) {
      fail(`${where}: statuses ${JSON.stringify(got.statuses)}, the expect line ${JSON.stringify(want)}\n${got.text}`);
    } else if (!/409/.test(got.text) || (want.includes(409) && !got.text.includes("the conflict the chapter shows"))) {
      fail(`${where}: no 409 shown\n${got.text}`);
    } else if (problems.length) {
      fail(`${where}: ${problems.join("; ")}`);
    } else {
      ok(`${where}: ${JSON.stringify(got.statuses)} as the expect line, the 409 shown`);
    }
    await context.close();
  }
}

// ---- a page whose index is not the book's, and a page whose expect line is wrong -------------

const quick = await readFile(join(bookDir, "quick-start.html"), "utf8");
const foreign = `occ-run-foreign-${process.pid}-${Date.now()}`;
const wrong = `occ-run-wrong-${process.pid}-${Date.now()}`;
extra.set("/refuse.html", quick.replaceAll("/bank/", `/${foreign}/`));
extra.set("/wrong.html", quick.replaceAll("/bank/", `/${wrong}/`).replace("<!-- expect: 201 result=created", "<!-- expect: 200 result=created"));
try {
  const made = await es(coreUrl, "PUT", `/${foreign}`, { settings: { number_of_shards: 1, number_of_replicas: 0 } });
  await es(coreUrl, "PUT", `/${foreign}/_doc/mine?refresh=true`, { reader: "data" });
  const { context, tab } = await open("refuse.html");
  const got = await run(tab, 0);
  const after = await es(coreUrl, "GET", `/${foreign}/_doc/mine`);
  if (made.status !== 200) fail(`could not create ${foreign}: ${JSON.stringify(made)}`);
  else if (got.ok || !got.stop?.includes("was not created by this book") || got.statuses.length) {
    fail(`a block did not refuse an index the book did not create:\n${got.text}`);
  } else if (after.status !== 200 || after.body?._source?.reader !== "data") {
    fail(`the reader's index ${foreign} was changed: ${JSON.stringify(after)}`);
  } else ok(`a block refuses to recreate ${foreign}, which the book did not create, and leaves it as it was`);
  await context.close();

  const w = await open("wrong.html");
  const gotWrong = await run(w.tab, 0);
  if (gotWrong.ok || gotWrong.matched[0] !== false || !gotWrong.text.includes("not what the book says")) {
    fail(`a block whose expect line does not hold was shown as matching:\n${gotWrong.text}`);
  } else ok("a block whose expect line does not hold is shown as not matching");
  await w.context.close();
} finally {
  for (const index of [foreign, wrong]) await es(coreUrl, "DELETE", `/${index}`).catch(() => {});
}

// ---- Copy as curl, run by curl -----------------------------------------------------------

{
  const want = (await expected("quick-start.md"))[0].statuses;
  const { context, tab } = await open("quick-start.html");
  const button = tab.locator(".esrun-copy").first();
  await button.click();
  await tab.locator(".esrun-copy[data-curl]").first().waitFor({ timeout: 5000 });
  let text = await tab.evaluate(() => navigator.clipboard.readText()).catch(() => null);
  const shown = await button.getAttribute("data-curl");
  if (text !== shown) fail(`the clipboard holds ${JSON.stringify(text)}, not the curl text`);
  text = shown;
  await context.close();
  // The chapter's state, made fresh as the page makes it (bank is the book's, or absent).
  const mapping = await es(coreUrl, "GET", "/bank/_mapping");
  if (mapping.status === 200 && mapping.body.bank?.mappings?._meta?.created_by !== "occ-book") {
    fail("bank exists on the local node and was not created by the book: not touching it");
  } else {
    await es(coreUrl, "DELETE", "/bank");
    await es(coreUrl, "PUT", "/bank", { settings: { number_of_shards: 1, number_of_replicas: 0 }, mappings: { _meta: { created_by: "occ-book" } } });
    const script = `curl() { command curl "$@" -o /dev/null -w '%{http_code}\\n' --max-time 30; }\necho() { :; }\n${text}\n`;
    const out = execFileSync("bash", ["-c", script], { encoding: "utf8" });
    const statuses = out.trim().split("\n").map(Number);
    if (!text.startsWith(`curl -sS -X PUT '${coreUrl}/bank/_doc/12345'`) || !same(statuses, want)) {
      fail(`Copy as curl: ${JSON.stringify(statuses)}, the expect line ${JSON.stringify(want)}\n${text}`);
    } else ok(`Copy as curl, run by curl: ${JSON.stringify(statuses)} as the expect line (${text.split("\n").filter((l) => l.startsWith("curl")).length} commands)`);
  }
}

// ---- what the page says when it cannot reach the node -----------------------------------

{
  const { context, tab } = await open("quick-start.html", { url: "http://127.0.0.1:9", scripting: "" });
  const got = await run(tab, 0);
  if (!got.stop?.includes("Nothing answers at http://127.0.0.1:9")) fail(`an unreachable node is not said as such:\n${got.text}`);
  else ok("an unreachable node: the page says nothing answers, and what to do");
  await context.close();
  const refused = await open("quick-start.html", { from: strangerOrigin });
  const got2 = await run(refused.tab, 0);
  if (!got2.stop?.includes("refuses requests from this page") || !got2.stop.includes("http.cors.allow-origin")) {
    fail(`a refused origin is not said as such:\n${got2.text}`);
  } else ok(`a refused origin (${strangerOrigin}): the page says so, with the fix`);
  await refused.context.close();
}

// ---- light and dark themes: what Run shows reads on each ---------------------------------

{
  const { context, tab } = await open("quick-start.html");
  await run(tab, 0);
  const low = [];
  for (const theme of ["light", "rust", "coal", "navy", "ayu"]) {
    const seen = await tab.evaluate((theme) => {
      document.documentElement.className = document.documentElement.className.replace(/\b(light|rust|coal|navy|ayu)\b/g, "") + " " + theme;
      const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (node) => {
        for (; node; node = node.parentElement) {
          const c = getComputedStyle(node).backgroundColor;
          if (!/rgba\(.*, 0\)$/.test(c) && c !== "transparent") return c;
        }
        return getComputedStyle(document.body).backgroundColor;
      };
      const ratio = (node) => {
        const [a, b] = [lum(rgb(getComputedStyle(node).color)), lum(rgb(background(node)))];
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      };
      return [".esrun-run", ".esrun-copy", ".esrun-verdict", ".esrun-checks li", ".esrun-summary", ".esrun-body", ".esrun-where"].map((q) => [q, ratio(document.querySelector(q))]);
    }, theme);
    for (const [what, ratio] of seen) if (ratio < 4.5) low.push(`${theme} ${what}: contrast ${ratio.toFixed(1)}`);
  }
  if (low.length) fail(`text that does not read (below 4.5:1): ${low.join(", ")}`);
  else ok("Run's buttons and answers read in the light and the dark themes (contrast 4.5:1 or more)");
  await context.close();
}

// ---- a server not on this machine: asked once, and nothing saved when refused ---------------

{
  const { context, tab, problems } = await open("quick-start.html");
  tab.removeAllListeners("dialog");
  const asked = [];
  let answer = false;
  tab.on("dialog", (dialog) => {
    asked.push(dialog.message());
    return answer ? dialog.accept() : dialog.dismiss();
  });
  const far = "http://192.0.2.1:9200"; // TEST-NET-1: never contacted (Run is not clicked)
  const save = async () => {
    await tab.locator(".esrun-settings").first().click();
    await tab.locator('.esrun-dialog input[name="url"]').fill(far);
    await tab.locator('.esrun-dialog button[value="save"]').click();
  };
  await save();
  const refused = await tab.locator(".esrun-target").first().innerText();
  answer = true;
  await save();
  const accepted = await tab.locator(".esrun-target").first().innerText();
  await save();
  const focus = await tab.evaluate(() => document.activeElement?.className);
  if (asked.length !== 2 || !asked[0].includes("not on this machine") || refused !== coreUrl || accepted !== far) {
    fail(`a non-loopback URL: asked ${asked.length} time(s) over three saves (${refused}, ${accepted}): ${asked[0]}`);
  } else if (focus !== "esrun-settings" || problems.length) {
    fail(`after the settings, the focus is on ${focus} (${problems.join("; ")})`);
  } else ok("a URL not on this machine is confirmed once, refused means unchanged; the focus goes back to Settings");
  await context.close();
}

// ---- every block of the English book, in order ------------------------------------------

let runs = 0;
let missingEnglish = 0;
let illustrative = 0;
let requests = 0;
const differ = [];
for (const [file, blocks] of process.env.OCC_RUN_SWEEP === "0" ? [] : withBlocks) {
  const { context, tab, problems } = await open(file.replace(/\.md$/, ".html"));
  if (!(await buttons(tab, file, blocks, ""))) missingEnglish++;
  for (const [n, block] of blocks.entries()) {
    if (block.kind !== "expect") {
      illustrative++;
      continue;
    }
    const got = await run(tab, n);
    if (got.ok && same(got.statuses, block.statuses)) {
      runs++;
      requests += got.statuses.length;
    } else differ.push(`${file} block ${n + 1}: ${JSON.stringify(got.statuses)}, the book ${JSON.stringify(block.statuses)}\n    ${got.text.replace(/\n/g, "\n    ").slice(0, 2000)}`);
  }
  if (problems.length) differ.push(`${file}: ${problems.join("; ")}`);
  await context.close();
}
for (const d of differ) fail(d);
if (!missingEnglish && process.env.OCC_RUN_SWEEP !== "0") ok(`English: every console block of ${withBlocks.length} pages has Copy as curl, and Run unless illustrative`);
console.log(`run from the page: ${runs} console blocks (${requests} requests) answered as the book says, ${differ.length} did not, ${illustrative} illustrative (not run, as in tests/console.rs)`);

await browser.close();
server.close();
stranger.close();
console.log(`browser run: ${failures.length ? `${failures.length} failed` : "all passed"} in ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(failures.length ? 1 : 0);
