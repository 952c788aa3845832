// The rendered book, as a reader's browser shows it: every page of the built book (`mdbook
// build`, in book/) is served on 127.0.0.1 and opened in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core; nothing is downloaded). A page fails on:
//
// - an `{{#include` that mdBook left unresolved;
// - a link to a page or anchor of the book that does not exist;
// - an image that did not load (natural size 0), or any request answered 4xx/5xx or failed;
// - no content (a main text shorter than a sentence);
// - a console error or an uncaught exception;
// - a language switch that does not lead to the same page in the other edition (the English
//   book at the root, the Hinglish one under hi-Latn/, both built by `cargo xtask book`).
//
// Usage: node check.mjs BOOK_DIR [MIN_IMAGES_PAGE=N ...]   (run by `.ci/run` and
// `scripts/check-book.sh`). Prints one line per page and `N passed, N failed`.

import { createServer } from "node:http";
import { readFile, readdir, stat } from "node:fs/promises";
import { extname, join, normalize, relative, sep } from "node:path";
import { chromium } from "playwright-core";

const bookDir = process.argv[2] ?? "book";
// PAGE=N: that page must show at least N images (the charts of chapter 16, say).
const minImages = Object.fromEntries(
  process.argv.slice(3).map((arg) => {
    const [page, n] = arg.split("=");
    return [page, Number(n)];
  }),
);

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".ico": "image/x-icon",
  ".txt": "text/plain",
};

async function pages(dir) {
  const found = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await pages(path)));
    else if (entry.name.endsWith(".html")) found.push(relative(bookDir, path).split(sep).join("/"));
  }
  return found.sort();
}

const server = createServer(async (request, response) => {
  const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
  let file = join(bookDir, path);
  if (!file.startsWith(normalize(bookDir))) {
    response.writeHead(403).end();
    return;
  }
  try {
    if ((await stat(file)).isDirectory()) file = join(file, "index.html");
    const body = await readFile(file);
    response.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
    response.end(body);
  } catch {
    response.writeHead(404).end("not found");
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // Chromium as root on a machine with no network beyond loopback: no sandbox, no GPU, and
  // none of its own background connections.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const all = await pages(bookDir);
const anchors = new Map(); // page -> ids on it
const links = []; // [from page, target page, fragment]
const switches = []; // pages a language switch leads to, checked to exist below
let passed = 0;
let failed = 0;

for (const page of all) {
  const context = await browser.newContext();
  const tab = await context.newPage();
  const problems = [];
  tab.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  tab.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  tab.on("requestfailed", (request) =>
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`),
  );
  tab.on("response", (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  // Anything not on 127.0.0.1 is refused: the book must work offline.
  await tab.route(
    (url) => !url.href.startsWith(origin),
    (route) => {
      problems.push(`reaches outside: ${route.request().url()}`);
      return route.abort();
    },
  );
  await tab.goto(`${origin}/${page}`, { waitUntil: "load", timeout: 20000 });
  const seen = await tab.evaluate(() => {
    const main = document.querySelector("main") ?? document.body;
    return {
      text: main.innerText,
      html: document.documentElement.outerHTML,
      ids: [...document.querySelectorAll("[id]")].map((e) => e.id),
      images: [...document.images].map((img) => ({
        src: img.getAttribute("src"),
        complete: img.complete,
        width: img.naturalWidth,
        height: img.naturalHeight,
      })),
      links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
      lang: document.documentElement.lang,
      switchTo: document.querySelector("#language-switch")?.href ?? null,
    };
  });
  if (seen.text.includes("{{#include") || seen.html.includes("{{#include")) {
    problems.push("an unresolved {{#include");
  }
  if (seen.text.trim().length < 40) problems.push(`no content (${seen.text.trim().length} characters)`);
  for (const image of seen.images) {
    if (!image.complete || image.width === 0 || image.height === 0) {
      problems.push(`image did not load: ${image.src}`);
    }
  }
  if ((minImages[page] ?? 0) > seen.images.filter((i) => i.width > 0).length) {
    problems.push(`${minImages[page]} images expected, ${seen.images.length} shown`);
  }
  const hinglish = page.startsWith("hi-Latn/");
  if (seen.lang !== (hinglish ? "hi-Latn" : "en")) problems.push(`lang is ${seen.lang}`);
  const otherEdition = hinglish ? page.slice("hi-Latn/".length) : `hi-Latn/${page}`;
  // toc.html is mdBook's table of contents for browsers without JavaScript: it has no menu bar.
  if (page.endsWith("toc.html")) {
    // nothing to switch
  } else if (seen.switchTo === null) problems.push("no language switch");
  else if (new URL(seen.switchTo).pathname !== `/${otherEdition}`) {
    problems.push(`the language switch leads to ${seen.switchTo}, not /${otherEdition}`);
  } else {
    switches.push(otherEdition);
  }
  anchors.set(page, new Set(seen.ids));
  for (const href of seen.links) {
    if (!href.startsWith(origin)) continue;
    const url = new URL(href);
    let target = url.pathname.replace(/^\//, "");
    if (target === "" || target.endsWith("/")) target += "index.html";
    links.push([page, target, decodeURIComponent(url.hash.replace(/^#/, ""))]);
  }
  await context.close();
  if (problems.length) {
    failed++;
    console.log(`FAIL ${page}\n  ${[...new Set(problems)].join("\n  ")}`);
  } else {
    passed++;
    console.log(`ok   ${page}: ${seen.images.length} image(s), ${seen.text.length} characters`);
  }
}

// Links between pages, checked once every page's anchors are known.
// mdBook's 404 page sets <base href="/">, so its own heading anchors point at index.html.
const broken = links.filter(([from, target, fragment]) => {
  if (from.endsWith("404.html")) return false;
  if (!anchors.has(target)) return !target.match(/\.(js|css|svg|png|json|txt)$/);
  return fragment !== "" && !anchors.get(target).has(fragment);
});
for (const [from, target, fragment] of broken) {
  console.log(`FAIL ${from}: broken link to ${target}${fragment ? "#" + fragment : ""}`);
}
if (broken.length) failed++;
else passed++;
const missing = switches.filter((target) => !anchors.has(target));
for (const target of missing) console.log(`FAIL a language switch leads to ${target}, which is no page`);
if (missing.length || !all.some((page) => page.startsWith("hi-Latn/"))) failed++;
else passed++;

await browser.close();
server.close();
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 1 ? 0 : 1);
