// Run it from the page: two buttons under every console block (```http), "Copy as curl" and
// "Run". A console block holds requests as Kibana's Dev Tools console takes them (a line
// `METHOD /path?query`, then the JSON body, if any; for `_bulk`, one JSON object a line); the
// HTML comment after it says what each request gets back (`<!-- expect: 201 result=created |
// 409 error.type=... -->`, `expect(scripting)` when the chapter needs a server that runs
// Painless scripts) or that the block is only illustrative (`<!-- illustrative: why -->`).
// tests/console.rs reads the same blocks from src/*.md and runs them against real servers;
// this reads them from the rendered page and runs them the same way, from the reader's browser
// against the reader's Elasticsearch:
//
// - before a chapter's first request, each index its requests name is made fresh (one shard, no
//   replicas, `_meta.created_by = "occ-book"` as esbook's `doc::fresh_index` makes it), and an
//   index that exists without that mark is never deleted: the page stops and says why;
// - Run on a block sends the blocks above it on the page first (the state it starts from), then
//   its own requests; after a run that matched, the next block continues from there;
// - each answer is checked against its part of the expect line.
//
// Where it sends: one setting on the page (URL, optional user and password), remembered in the
// browser. No framework, nothing fetched but the reader's Elasticsearch. The browser check
// (tests/browser/run.mjs) clicks it against a real node.
(function () {
  "use strict";
  const blocks = [...document.querySelectorAll("pre > code.language-http")];
  if (blocks.length === 0) return;
  // print.html holds every chapter at once: the chapters' states would mix, so it only copies.
  const printPage = /(^|\/)print\.html$/.test(window.location.pathname);
  const hinglish = document.documentElement.lang === "hi-Latn";

  const MARK = "occ-book"; // esbook/src/doc.rs, CREATED_BY
  const DEFAULT_URL = "http://localhost:9200";
  const TIMEOUT_MS = 30000;
  const FOLD_LINES = 12;
  const store = {
    get(key, fallback, session) {
      try {
        const value = (session ? sessionStorage : localStorage).getItem("occ-book." + key);
        return value === null ? fallback : value;
      } catch {
        return fallback;
      }
    },
    set(key, value, session) {
      try {
        const s = session ? sessionStorage : localStorage;
        if (value === "" || value === null) s.removeItem("occ-book." + key);
        else s.setItem("occ-book." + key, value);
      } catch {
        // storage refused (private mode): the setting lasts as long as the page
      }
    },
  };
  const settings = {
    url: store.get("es-url", DEFAULT_URL),
    scriptingUrl: store.get("es-scripting-url", ""),
    user: store.get("es-user", ""),
    password: store.get("es-password", "", true),
  };

  // ---- reading a block -------------------------------------------------------------------

  const METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD"];

  function parseRequests(text) {
    const requests = [];
    for (const line of text.split("\n")) {
      const first = line.trim().split(/\s+/)[0];
      if (METHODS.includes(first)) {
        requests.push({ method: first, path: line.trim().slice(first.length).trim(), body: [] });
      } else if (line.trim() !== "" && requests.length) {
        requests[requests.length - 1].body.push(line);
      }
    }
    return requests;
  }

  // The comment after the block: { kind: "expect" | "illustrative" | "none", scripting, parts }.
  function parseComment(pre) {
    let node = pre.nextSibling;
    while (node && node.nodeType === Node.TEXT_NODE && node.textContent.trim() === "") {
      node = node.nextSibling;
    }
    if (!node || node.nodeType !== Node.COMMENT_NODE) return { kind: "none" };
    const text = node.nodeValue.trim();
    if (text.startsWith("illustrative:")) {
      return { kind: "illustrative", why: text.slice("illustrative:".length).trim().replace(/\s+/g, " ") };
    }
    const found = text.match(/^expect(\(scripting\))?:([\s\S]*)$/);
    if (!found) return { kind: "none" };
    const parts = found[2].split("|").map((part) => {
      const words = part.trim().split(/\s+/);
      return {
        status: Number(words[0]),
        fields: words.slice(1).map((word) => {
          const eq = word.indexOf("=");
          return [word.slice(0, eq), word.slice(eq + 1)];
        }),
      };
    });
    return { kind: "expect", scripting: Boolean(found[1]), parts };
  }

  // The index a request's path names, if any (`/bank/_doc/1` names `bank`), as tests/console.rs.
  function indexOf(path) {
    const first = path.replace(/^\/+/, "").split(/[/?]/)[0];
    return first !== "" && !first.startsWith("_") ? first : null;
  }

  // The answer's value at a dotted path (`items.0.index.status`), as text, as tests/console.rs.
  function at(answer, path) {
    let value = answer;
    for (const part of path.split(".")) {
      if (value === null || value === undefined) break;
      value = Array.isArray(value) && /^\d+$/.test(part) ? value[Number(part)] : value[part];
    }
    if (value === undefined || value === null) return "null";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  const isBulk = (path) => /(^|\/)_bulk$/.test(path.split("?")[0]);
  const bodyOf = (request) =>
    request.body.length === 0 ? null : request.body.join("\n") + (isBulk(request.path) ? "\n" : "");

  // ---- the page's blocks -------------------------------------------------------------------

  const page = blocks.map((code, i) => {
    const pre = code.parentElement;
    const comment = parseComment(pre);
    return { i, pre, code, requests: parseRequests(code.textContent), comment };
  });
  const runnable = page.filter((b) => b.comment.kind === "expect");
  // As tests/console.rs: a chapter with one block that needs scripts sends all its blocks to
  // the server that runs them.
  const scripting = runnable.some((b) => b.comment.scripting);
  const indices = [...new Set(runnable.flatMap((b) => b.requests.map((r) => indexOf(r.path)).filter(Boolean)))].sort();
  // After a run that matched: { server, upTo } (the last block run), so the next one continues.
  let state = null;
  let busy = false;

  const serverUrl = () => ((scripting && settings.scriptingUrl) || settings.url).replace(/\/+$/, "");

  function isLoopback(url) {
    try {
      const host = new URL(url).hostname;
      return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
    } catch {
      return false;
    }
  }

  // A server not on this machine: asked once per URL, because the blocks delete and create
  // indices.
  function confirmed(url) {
    if (isLoopback(url) || store.get("es-confirmed", "") === url) return true;
    const ok = window.confirm(
      `${url} is not on this machine.\n\nThe book's console blocks create, delete and ` +
        `recreate indices (${indices.join(", ") || "bank, conc_demo, ..."}) there. They never ` +
        `delete an index the book did not create, but they are meant for a node of your own, ` +
        `never a production cluster.\n\nSend the requests to ${url}?`,
    );
    if (ok) store.set("es-confirmed", url);
    return ok;
  }

  // ---- sending -----------------------------------------------------------------------------

  class Stop extends Error {}

  async function send(base, request) {
    const headers = {};
    const body = bodyOf(request);
    if (body !== null) headers["Content-Type"] = isBulk(request.path) ? "application/x-ndjson" : "application/json";
    if (settings.user) headers.Authorization = "Basic " + btoa(`${settings.user}:${settings.password}`);
    // A browser sends no body with GET: the endpoints the book sends one to (_search, _count,
    // _mget, _cluster/allocation/explain) take POST alike.
    const method = request.method === "GET" && body !== null ? "POST" : request.method;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    let response;
    try {
      response = await fetch(base + request.path, {
        method,
        headers,
        body,
        credentials: "omit",
        cache: "no-store",
        signal: abort.signal,
      });
    } catch (error) {
      clearTimeout(timer);
      throw new Stop(await unreachable(base, error));
    }
    const text = await response.text();
    clearTimeout(timer);
    let answer = null;
    try {
      answer = text === "" ? null : JSON.parse(text);
    } catch {
      answer = text;
    }
    if (response.status === 401) {
      throw new Stop(
        `${base} asks for credentials (401)${settings.user ? ": the user and password set above were refused" : ""}. ` +
          "Set a user and password in the settings.",
      );
    }
    return { status: response.status, answer, text, method };
  }

  // Why a request never got an answer: nothing listens, or the node refused this origin.
  async function unreachable(base, error) {
    if (error && error.name === "AbortError") {
      return `${base} did not answer within ${TIMEOUT_MS / 1000} s.`;
    }
    const origin = window.location.origin;
    if (origin === "null" || window.location.protocol === "file:") {
      return "This page was opened as a file: a browser sends no origin a node can allow. Serve the book (mdbook serve) and open http://localhost:3000.";
    }
    let answers = false;
    try {
      // An opaque request needs no permission: it only tells whether something listens.
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 5000);
      await fetch(base + "/", { mode: "no-cors", credentials: "omit", cache: "no-store", signal: abort.signal });
      clearTimeout(timer);
      answers = true;
    } catch {
      answers = false;
    }
    if (answers) {
      return (
        `${base} answers, but refuses requests from this page (${origin}): its cross-origin settings do not allow this origin. ` +
        `Fix: in its elasticsearch.yml, http.cors.enabled: true and http.cors.allow-origin: a pattern that matches ${origin} ` +
        `(the book's own local nodes allow http://localhost:3000 and http://127.0.0.1:3000: serve the book with mdbook serve, ` +
        "and restart a node started before this setting, cargo es stop then cargo es start). See the appendix, Running the examples."
      );
    }
    return (
      `Nothing answers at ${base}. Start a node (cargo es start, or any example), or set the URL of yours in the settings. ` +
      (window.location.protocol === "https:" && base.startsWith("http:")
        ? "This page is served over HTTPS: your browser may also refuse to call a plain-HTTP node from it; serve the book locally (mdbook serve)."
        : "")
    );
  }

  function check(part, result) {
    const checks = [{ what: "status", want: String(part.status), got: String(result.status) }];
    for (const [path, want] of part.fields) checks.push({ what: path, want, got: at(result.answer, path) });
    for (const c of checks) c.ok = c.want === c.got;
    return { ok: checks.every((c) => c.ok), checks };
  }

  // Each index the page's requests name: absent, or carrying the book's mark. Otherwise stop,
  // before anything is deleted.
  async function freshen(base, say) {
    for (const index of indices) {
      const { status, answer } = await send(base, { method: "GET", path: `/${encodeURIComponent(index)}/_mapping`, body: [] });
      if (status === 404) continue;
      const mark = status === 200 && answer && answer[index] ? answer[index].mappings?._meta?.created_by : undefined;
      if (status !== 200 || mark !== MARK) {
        throw new Stop(
          `Index "${index}" exists on ${base} and was not created by this book ` +
            `(its mapping has no _meta.created_by = "${MARK}"; GET /${index}/_mapping answered ${status}). ` +
            `Nothing was sent and nothing deleted: this block would delete and recreate it. ` +
            `Delete it yourself if it is a leftover, or point the page at another node.`,
        );
      }
    }
    for (const index of indices) {
      const path = `/${encodeURIComponent(index)}`;
      const deleted = await send(base, { method: "DELETE", path, body: [] });
      if (deleted.status !== 200 && deleted.status !== 404) {
        throw new Stop(`Deleting index "${index}" answered ${deleted.status}: ${deleted.text.slice(0, 300)}`);
      }
      const created = await send(base, {
        method: "PUT",
        path,
        body: [JSON.stringify({ settings: { number_of_shards: 1, number_of_replicas: 0 }, mappings: { _meta: { created_by: MARK } } })],
      });
      if (created.status !== 200) {
        throw new Stop(`Creating index "${index}" answered ${created.status}: ${created.text.slice(0, 300)}`);
      }
    }
    say(indices.length ? `made fresh: ${indices.join(", ")} (one shard, no replicas, marked created_by=${MARK})` : "");
  }

  // ---- showing -----------------------------------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function showAnswer(request, result, verdict) {
    const pretty = typeof result.answer === "string" ? result.answer : result.answer === null ? "(no body)" : JSON.stringify(result.answer, null, 2);
    const lines = pretty.split("\n").length;
    const row = el(
      "div",
      { class: "esrun-answer " + (verdict.ok ? "esrun-ok" : "esrun-bad"), "data-status": String(result.status), "data-ok": String(verdict.ok) },
      el("div", { class: "esrun-head" },
        el("code", {}, `${request.method} ${request.path}`),
        result.method !== request.method ? ` (sent as ${result.method}: a browser sends no body with ${request.method})` : null,
        " → ",
        el("strong", { class: "esrun-status" }, String(result.status)),
        " ",
        el("span", { class: "esrun-verdict" }, verdict.ok ? (result.status === 409 ? "✓ 409, the conflict the chapter shows" : "✓ as the book says") : "✗ not what the book says"),
      ),
      el("ul", { class: "esrun-checks" }, ...verdict.checks.map((c) =>
        el("li", { class: c.ok ? "esrun-ok" : "esrun-bad" }, `${c.ok ? "✓" : "✗"} ${c.what}: ${c.got}${c.ok ? "" : ` (the book: ${c.want})`}`),
      )),
    );
    const answer = el("pre", { class: "esrun-body" }, pretty);
    if (lines > FOLD_LINES) {
      row.append(el("details", {}, el("summary", {}, `the answer (${lines} lines)`), answer));
    } else {
      row.append(answer);
    }
    return row;
  }

  // ---- running -----------------------------------------------------------------------------

  async function run(block, output) {
    if (busy) return;
    const base = serverUrl();
    if (!confirmed(base)) {
      output.replaceChildren(el("p", { class: "esrun-note" }, "Not sent: the server was not confirmed."));
      return;
    }
    busy = true;
    for (const b of document.querySelectorAll(".esrun-run")) b.disabled = true;
    output.replaceChildren(el("p", { class: "esrun-note" }, `Sending to ${base} ...`));
    output.dataset.done = "false";
    const notes = [];
    const say = (text) => text && notes.push(text);
    const shown = [];
    let ok = true;
    try {
      const position = runnable.indexOf(block);
      let from = 0;
      if (state && state.server === base && state.upTo === position - 1) {
        from = position;
        say("continuing from the block above, which ran as the book says");
      } else {
        state = null;
        await freshen(base, say);
      }
      for (const earlier of runnable.slice(from, position)) {
        for (const [j, request] of earlier.requests.entries()) {
          const result = await send(base, request);
          const verdict = check(earlier.comment.parts[j], result);
          if (!verdict.ok) {
            throw new Stop(
              `The blocks above this one set up what it starts from, and one of them did not answer as the book says: ` +
                `${request.method} ${request.path} answered ${result.status} (${verdict.checks.filter((c) => !c.ok).map((c) => `${c.what}: ${c.got}, the book: ${c.want}`).join("; ")}).`,
            );
          }
        }
      }
      if (position > from) say(`first sent the ${position - from} block(s) above, in order, as the chapter does: each answered as the book says`);
      for (const [j, request] of block.requests.entries()) {
        const result = await send(base, request);
        const verdict = check(block.comment.parts[j], result);
        ok = ok && verdict.ok;
        shown.push(showAnswer(request, result, verdict));
      }
      state = ok ? { server: base, upTo: position } : null;
    } catch (error) {
      state = null;
      ok = false;
      const message = error instanceof Stop ? error.message : `Unexpected: ${error}`;
      shown.push(el("p", { class: "esrun-stop", role: "alert" }, message));
    } finally {
      busy = false;
      for (const b of document.querySelectorAll(".esrun-run")) b.disabled = false;
    }
    const painless = shown.some((node) => /painless|script_lang|compile/i.test(node.textContent)) && block.comment.scripting;
    if (painless) {
      shown.push(el("p", { class: "esrun-stop" }, "This chapter needs a server that runs Painless scripts; this one did not run them. Set one in the settings (the book's local scripting server: cargo es start --scripting; cargo es status gives its URL)."));
    }
    output.replaceChildren(
      el("p", { class: "esrun-note" }, `${base}: ${notes.join("; ") || "sent"}.`),
      ...shown,
      el("p", { class: "esrun-summary " + (ok ? "esrun-ok" : "esrun-bad") }, ok ? "Every answer is what the book says." : "Not every answer is what the book says."),
    );
    output.dataset.done = "true";
    output.dataset.ok = String(ok);
  }

  // ---- copy as curl ------------------------------------------------------------------------

  const quote = (text) => "'" + text.replace(/'/g, "'\\''") + "'";

  function curl(block) {
    const base = serverUrl();
    return block.requests
      .map((request) => {
        const words = ["curl", "-sS"];
        if (request.method === "HEAD") words.push("-I");
        else words.push("-X", request.method);
        words.push(quote(base + request.path));
        if (settings.user) words.push("-u", quote(settings.user));
        const body = bodyOf(request);
        if (body === null) return words.join(" ") + "; echo";
        words.push("-H", quote("Content-Type: " + (isBulk(request.path) ? "application/x-ndjson" : "application/json")));
        words.push("--data-binary", "@-");
        return `${words.join(" ")} <<'BODY'; echo\n${body.replace(/\n$/, "")}\nBODY`;
      })
      .join("\n");
  }

  async function copy(text, button) {
    let done = false;
    try {
      await navigator.clipboard.writeText(text);
      done = true;
    } catch {
      // Clipboard refused (plain HTTP on a non-loopback host): select it for the reader to copy.
    }
    button.dataset.curl = text;
    const label = button.textContent;
    if (!done) {
      const area = el("textarea", { class: "esrun-curl", readonly: "", rows: String(Math.min(12, text.split("\n").length)), "aria-label": "curl commands" });
      area.value = text;
      button.parentElement.after(area);
      area.focus();
      area.select();
      return;
    }
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), 1500);
  }

  // ---- the settings ------------------------------------------------------------------------

  let dialog = null;
  function openSettings(opener) {
    if (!dialog) {
      const field = (label, name, type, value, hint) =>
        el("label", { class: "esrun-field" }, el("span", {}, label), el("input", { name, type, value, autocomplete: "off", spellcheck: "false" }), hint ? el("small", {}, hint) : null);
      const form = el("form", { method: "dialog" },
        el("h2", {}, "Where Run sends"),
        el("p", {}, "Run sends this chapter's requests to the Elasticsearch below, from your browser: the blocks create, delete and recreate indices there (only ever indices this book created). Use a node of your own, never a production cluster."),
        field("URL", "url", "url", settings.url, `default ${DEFAULT_URL}; the node must allow this page's origin (http.cors.*)`),
        field("URL for chapters that run scripts", "scriptingUrl", "url", settings.scriptingUrl, "a server with Painless; empty: the URL above"),
        field("User", "user", "text", settings.user, "optional"),
        field("Password", "password", "password", settings.password, "optional; kept for this tab only"),
        el("div", { class: "esrun-buttons" },
          el("button", { type: "submit", value: "save" }, "Save"),
          el("button", { type: "submit", value: "cancel", formnovalidate: "" }, "Cancel"),
          el("button", { type: "button", onclick: () => { form.elements.url.value = DEFAULT_URL; form.elements.scriptingUrl.value = ""; } }, "Default"),
        ),
      );
      dialog = el("dialog", { class: "esrun-dialog", "aria-label": "Where Run sends" }, form);
      // mdBook's search cancels every submit event of the page: close the dialog ourselves.
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        dialog.close(event.submitter ? event.submitter.value : "cancel");
      });
      dialog.addEventListener("close", () => {
        if (dialog.returnValue === "save") {
          dialog.returnValue = "";
          const url = form.elements.url.value.trim() || DEFAULT_URL;
          const scriptingUrl = form.elements.scriptingUrl.value.trim();
          if (confirmed(url) && (!scriptingUrl || confirmed(scriptingUrl))) {
            Object.assign(settings, { url, scriptingUrl, user: form.elements.user.value.trim(), password: form.elements.password.value });
            store.set("es-url", url === DEFAULT_URL ? "" : url);
            store.set("es-scripting-url", scriptingUrl);
            store.set("es-user", settings.user);
            store.set("es-password", settings.password, true);
            state = null;
            for (const target of document.querySelectorAll(".esrun-target")) target.textContent = serverUrl();
          }
        }
        if (dialog.opener) dialog.opener.focus();
      });
      document.body.append(dialog);
    }
    const form = dialog.querySelector("form");
    form.elements.url.value = settings.url;
    form.elements.scriptingUrl.value = settings.scriptingUrl;
    form.elements.user.value = settings.user;
    form.elements.password.value = settings.password;
    dialog.opener = opener;
    dialog.showModal();
  }

  // ---- the buttons -------------------------------------------------------------------------

  for (const block of page) {
    const output = el("div", { class: "esrun-output", "aria-live": "polite" });
    const bar = el("div", { class: "esrun-bar", role: "group", "aria-label": "console block" });
    const copyButton = el("button", { type: "button", class: "esrun-copy" }, "Copy as curl");
    copyButton.addEventListener("click", () => copy(curl(block), copyButton));
    bar.append(copyButton);
    if (printPage) {
      // copies only
    } else if (block.comment.kind === "expect") {
      const runButton = el("button", { type: "button", class: "esrun-run" }, "Run");
      runButton.addEventListener("click", () => run(block, output));
      bar.append(
        runButton,
        el("span", { class: "esrun-where" }, " on ", el("span", { class: "esrun-target" }, serverUrl()), " "),
        el("button", { type: "button", class: "esrun-settings", onclick: (e) => openSettings(e.currentTarget) }, "Settings"),
      );
      if (scripting) {
        bar.append(el("span", { class: "esrun-hint" }, hinglish
          ? " · is chapter ko Painless scripts chalane wala server chahiye"
          : " · this chapter needs a server that runs Painless scripts"));
      }
    } else if (block.comment.kind === "illustrative") {
      bar.append(el("span", { class: "esrun-hint" }, ` · not run from the page (illustrative: ${block.comment.why})`));
    }
    block.bar = bar;
    block.pre.after(bar, output);
  }
})();
