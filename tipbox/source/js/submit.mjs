// Browser-side encryption of the submit form (DESIGN 4.3, docs/source-app.md section 4).
//
// Progressive enhancement: without WebAssembly the form is left alone and the server
// encrypts. With it, the page runs a known-answer self-test, verifies the newsroom key's
// directory entry against the identity key it was rendered with, and then posts only
// ciphertext. It fails closed: when anything goes wrong before or during encryption,
// nothing is sent, and the plain form (the server path) is used only after the source
// clicks #js-fallback and then submits again.

// Replaced at build time by the SHA-384 SRI of selftest.json (scripts/vendor_static.py), so
// the script's own integrity attribute covers the vectors too.
/* global __TIPBOX_SELFTEST_SRI__ */
const SELFTEST_SRI = typeof __TIPBOX_SELFTEST_SRI__ === "string" ? __TIPBOX_SELFTEST_SRI__ : "";
const START_TIMEOUT_MS = 60_000; // a slow Tor circuit still fetches selftest.json in time

// English texts; the template may give translations as data-msg-<name> on the form
// (e.g. data-msg-no-wasm). {placeholders} are filled in by the script.
const TEXTS = {
  noWasm:
    "This browser does not run WebAssembly (for example Tor Browser's Safer level), so " +
    "your submission will be encrypted by the server as it arrives.",
  preparing: "Preparing encryption in your browser…",
  ready: "Your message and files will be encrypted in this browser before they are sent.",
  wait: "Encryption is still being prepared. Please try again in a moment.",
  encrypting: "Encrypting… {percent}%",
  progress: "{sent} of {total} sent ({percent}%), about {left} left",
  failed:
    "Encryption in your browser failed, so nothing was sent. You can send your submission " +
    "to be encrypted by the server instead.",
  fallbackArmed: "Press Send again: the server will encrypt your submission as it arrives.",
  empty: "Write a message or choose a file.",
  tooManyFiles: "You can send at most {max} files at once.",
  fileTooLarge: "The file “{name}” is larger than the limit of {max}.",
  messageTooLong: "The message is longer than the limit of {max} characters.",
  network: "The upload did not complete. Check your connection and try again.",
  refused: "The server refused the submission (error {status}).",
};

const EMPTY_WASM_MODULE = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
// libsodium functions the envelope uses; each must be a WebAssembly export.
const WASM_FUNCTIONS = [
  "_crypto_generichash",
  "_crypto_kdf_derive_from_key",
  "_crypto_secretstream_xchacha20poly1305_push",
  "_crypto_aead_xchacha20poly1305_ietf_encrypt",
  "_crypto_box_seal",
  "_crypto_sign_verify_detached",
];

/**
 * Can this page compile and run WebAssembly? False when the engine has none (Tor Browser
 * "Safer", V8 --jitless) or when the page's CSP lacks 'wasm-unsafe-eval'.
 */
export function webAssemblyAvailable() {
  try {
    const module = new WebAssembly.Module(EMPTY_WASM_MODULE);
    return new WebAssembly.Instance(module) instanceof WebAssembly.Instance;
  } catch {
    return false;
  }
}

/**
 * Does this libsodium run on WebAssembly? Functions exported by a WebAssembly instance are
 * native functions ("function 201() { [native code] }"), whereas an asm.js or plain
 * JavaScript build (libsodium.js's slow fallback) would show its source here.
 */
export function runsOnWebAssembly(sodium) {
  const module = sodium.libsodium;
  return WASM_FUNCTIONS.every((name) => {
    const fn = module?.[name];
    return typeof fn === "function" && /\[native code\]/.test(Function.prototype.toString.call(fn));
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function texts(form) {
  return (name, values = {}) => {
    const key = `msg${name[0].toUpperCase()}${name.slice(1)}`;
    const template = form.dataset[key] || TEXTS[name];
    return template.replace(/\{(\w+)\}/g, (all, k) => (k in values ? String(values[k]) : all));
  };
}

function formatters() {
  const lang = document.documentElement.lang || undefined;
  const unit = (u, digits = 0) =>
    new Intl.NumberFormat(lang, { style: "unit", unit: u, maximumFractionDigits: digits });
  const bytes = (n) => {
    if (n >= 1e9) return unit("gigabyte", 2).format(n / 1e9);
    if (n >= 1e6) return unit("megabyte", 1).format(n / 1e6);
    if (n >= 1e3) return unit("kilobyte").format(n / 1e3);
    return unit("byte").format(n);
  };
  const duration = (s) => {
    if (s < 90) return unit("second").format(Math.ceil(s));
    if (s < 5400) return unit("minute").format(Math.ceil(s / 60));
    return unit("hour", 1).format(s / 3600);
  };
  return { bytes, duration };
}

/** Read and check the form's data attributes; any malformed value throws. */
function readConfig(env, form) {
  const data = form.dataset;
  const count = (name) => {
    if (!/^\d+$/.test(data[name] ?? "")) throw new Error(`form: data attribute ${name} is missing`);
    return Number(data[name]);
  };
  const bytes = (name, length) => {
    const value = env.fromHex(data[name] ?? "");
    if (value.length !== length) throw new Error(`form: data attribute ${name} is malformed`);
    return value;
  };
  const identity = bytes("identityEd25519", 32);
  const entryBytes = bytes("newsroomEntry", 126);
  const entry = env.verifyEntry(identity, entryBytes, bytes("newsroomSignature", 64));
  // Only the newsroom's *current* encryption key may be sealed to (envelope.md 4).
  if (entry.role !== env.Role.NEWSROOM || entry.status !== 1) {
    throw new Error("entry: not the current newsroom key");
  }
  const itemIds = (data.itemIds ?? "").split(",").map((hex) => {
    const id = env.fromHex(hex.trim());
    if (id.length !== 16) throw new Error("form: data attribute itemIds is malformed");
    return id;
  });
  return {
    sourceId: bytes("sourceId", 16),
    itemIds,
    recipient: { x25519: entry.x25519, keyId: entry.keyId },
    maxFileBytes: count("maxFileBytes"),
    maxFiles: count("maxFiles"),
    maxMessageChars: count("maxMessageChars"),
  };
}

/** The message of a refusal page: its [role=alert] element, else its <main>, without links. */
function serverMessage(doc) {
  const found = doc?.querySelector?.('[role="alert"]') ?? doc?.querySelector?.("main");
  if (!found) return "";
  const copy = found.cloneNode(true);
  copy.querySelectorAll("a, form, nav, script, style").forEach((element) => element.remove());
  // Text nodes joined by spaces, so that a heading and a paragraph do not run together.
  const walker = doc.createTreeWalker(copy, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode.data);
  return texts.join(" ").replace(/\s+/g, " ").trim();
}

async function loadSelfTest(form) {
  const url = form.dataset.selftest;
  if (!url || !SELFTEST_SRI) throw new Error("selftest: no vectors to check");
  const response = await fetch(url, {
    integrity: SELFTEST_SRI,
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!response.ok) throw new Error(`selftest: vectors not loaded (${response.status})`);
  return response.json();
}

function start(form) {
  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("js-status"),
    progress: $("js-progress"),
    progressText: $("js-progress-text"),
    error: $("js-error"),
    fallback: $("js-fallback"),
  };
  const t = texts(form);
  const fmt = formatters();
  const buttons = () =>
    form.querySelectorAll('button[type="submit"], input[type="submit"], button:not([type])');
  const field = (name) => form.querySelector(`[name="${name}"]`);

  const setState = (state) => {
    form.dataset.jsState = state; // for styles and tests
  };
  const show = (element, text) => {
    if (!element) return;
    if (text !== undefined) element.textContent = text;
    element.hidden = false;
  };
  const hide = (element) => {
    if (element) element.hidden = true;
  };
  const showError = (text) => show(ui.error, text);
  const enableButtons = (on) => buttons().forEach((b) => { b.disabled = !on; });
  const showProgress = (done, total, text) => {
    if (ui.progress) {
      ui.progress.max = Math.max(total, 1);
      ui.progress.value = done;
      ui.progress.hidden = false;
    }
    show(ui.progressText, text);
  };
  const hideProgress = () => {
    hide(ui.progress);
    hide(ui.progressText);
  };

  if (!webAssemblyAvailable()) {
    // The form stays a plain form: the server path works as it does without JavaScript.
    setState("off");
    show(ui.status, t("noWasm"));
    return;
  }

  let state = "starting";
  let env = null;
  let config = null;

  const failClosed = (error) => {
    state = "failed";
    setState("failed");
    hideProgress();
    hide(ui.status);
    const detail = error instanceof Error && error.message ? ` (${error.message})` : "";
    showError(t("failed") + detail);
    show(ui.fallback);
    enableButtons(true);
  };

  // Taken over at once, before the checks finish: a click during start-up must not post
  // the plain form.
  const onSubmit = (event) => {
    event.preventDefault();
    if (state === "starting") showError(t("wait"));
    else if (state === "failed") showError(t("failed"));
    else if (state === "ready") submit();
  };
  form.addEventListener("submit", onSubmit);

  // The server path, chosen explicitly: a real click on #js-fallback detaches the
  // interceptor, so the next submit posts the form as it is, without JavaScript's help.
  ui.fallback?.addEventListener("click", (event) => {
    if (!event.isTrusted || state !== "failed") return;
    form.removeEventListener("submit", onSubmit);
    state = "server";
    setState("server");
    hide(ui.fallback);
    hide(ui.error);
    show(ui.status, t("fallbackArmed"));
  });

  function checkLimits(message, files) {
    if (!message && files.length === 0) return t("empty");
    if (files.length > config.maxFiles) return t("tooManyFiles", { max: config.maxFiles });
    const tooLarge = files.find((file) => file.size > config.maxFileBytes);
    if (tooLarge) {
      return t("fileTooLarge", { name: tooLarge.name, max: fmt.bytes(config.maxFileBytes) });
    }
    if ([...message].length > config.maxMessageChars) {
      return t("messageTooLong", { max: config.maxMessageChars });
    }
    return null;
  }

  async function encryptAll(message, files) {
    const contents = [];
    if (message) {
      // Bytes, not a Blob: plaintext the browser might page to disk (see encryptBody).
      const content = new TextEncoder().encode(message);
      const mediaType = env.TEXT_MEDIA_TYPE;
      contents.push({ kind: env.Kind.MESSAGE, content, name: "", mediaType });
    }
    for (const file of files) {
      // Browsers give a lowercase MIME type or ""; anything odd is sent as unknown.
      const type = /^[\x20-\x7e]{1,255}$/.test(file.type) ? file.type : "application/octet-stream";
      contents.push({ kind: env.Kind.FILE, content: file, name: file.name, mediaType: type });
    }
    if (contents.length > config.itemIds.length) throw new Error("form: not enough item ids");
    const sizeOf = (content) => content.size ?? content.length;
    const total = contents.reduce((n, c) => n + sizeOf(c.content), 0);
    let before = 0;
    const items = [];
    for (const [i, c] of contents.entries()) {
      const onProgress = (done) => {
        const percent = total ? Math.floor(((before + done) * 100) / total) : 100;
        showProgress(before + done, total, t("encrypting", { percent }));
      };
      const { sourceId, itemIds, recipient } = config;
      items.push(await env.sealItem({ ...c, sourceId, itemId: itemIds[i], recipient, onProgress }));
      before += sizeOf(c.content);
    }
    return items;
  }

  function post(body) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const started = performance.now();
      xhr.open("POST", actionUrl());
      xhr.responseType = "document"; // an error page: its main text is shown
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        const { loaded, total } = event;
        const rate = loaded / Math.max((performance.now() - started) / 1000, 0.001);
        const left = rate > 0 ? fmt.duration((total - loaded) / rate) : "…";
        const percent = Math.floor((loaded * 100) / Math.max(total, 1));
        const values = { sent: fmt.bytes(loaded), total: fmt.bytes(total), percent, left };
        showProgress(loaded, total, t("progress", values));
      });
      xhr.addEventListener("load", () => resolve(xhr));
      for (const type of ["error", "abort", "timeout"]) {
        xhr.addEventListener(type, () => reject(new Error("network")));
      }
      xhr.send(body);
    });
  }

  const actionUrl = () => new URL(form.getAttribute("action") || "", document.baseURI).href;

  async function submit() {
    hide(ui.error);
    const files = [...(field("files")?.files ?? [])];
    // As a form post would send it: line breaks as CRLF; blank means no message.
    let message = (field("message")?.value ?? "").replace(/\r?\n/g, "\r\n");
    if (!message.trim()) message = "";
    const problem = checkLimits(message, files);
    if (problem) {
      showError(problem); // nothing is sent; the server would refuse it too
      return;
    }
    state = "busy";
    setState("busy");
    enableButtons(false);
    let body;
    try {
      const items = await encryptAll(message, files);
      body = new FormData();
      body.append("csrf_token", field("csrf_token")?.value ?? "");
      body.append("mode", "browser");
      body.append("manifest", env.buildManifest(config.sourceId, items));
      items.forEach((item, i) => body.append(`blob${i}`, item.body, "blob"));
    } catch (error) {
      failClosed(error);
      return;
    }
    try {
      const xhr = await post(body);
      const redirected = xhr.responseURL && xhr.responseURL !== actionUrl();
      if (xhr.status >= 200 && xhr.status < 300 && redirected) {
        window.location.assign(xhr.responseURL); // the server's 303: "sent"
        return;
      }
      showError(serverMessage(xhr.response) || t("refused", { status: xhr.status }));
    } catch {
      showError(t("network"));
    }
    hideProgress();
    state = "ready";
    setState("ready");
    enableButtons(true);
  }

  setState("starting");
  show(ui.status, t("preparing"));
  const checks = (async () => {
    // Loaded only now, so that libsodium does not even start where it cannot run.
    const [loaded, { runSelfTest }] = await Promise.all([
      import("./envelope.mjs"),
      import("./selftest.mjs"),
    ]);
    await loaded.ready;
    if (!runsOnWebAssembly(loaded.sodium)) throw new Error("libsodium does not run on WebAssembly");
    await runSelfTest(await loadSelfTest(form));
    config = readConfig(loaded, form);
    env = loaded;
  })();
  withTimeout(checks, START_TIMEOUT_MS, "start").then(
    () => {
      state = "ready";
      setState("ready");
      hide(ui.error);
      show(ui.status, t("ready"));
    },
    failClosed,
  );
}

const form = typeof document === "undefined" ? null : document.getElementById("submit-form");
if (form) start(form);
