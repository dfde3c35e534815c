// The chat page. Plain JavaScript, no build step, served by the package.
// Everything from a server or a user (answers, titles, file names, errors) is
// put on the page as text (textContent, never innerHTML); the server's
// Content-Security-Policy allows only this file's origin to run scripts.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  store: $("store"),
  picker: $("picker"),
  storeList: $("store-list"),
  storeName: $("store-name"),
  conversation: $("conversation"),
  alert: $("alert"),
  form: $("ask-form"),
  question: $("question"),
  ask: $("ask"),
  stop: $("stop"),
  newChat: $("new-chat"),
  player: $("player"),
  video: $("video"),
  nowPlaying: $("now-playing"),
  files: $("add-videos"),
  uploads: $("upload-list"),
};

const state = {
  conversationId: null, // the server's opaque handle; sessions stay on the server
  streaming: null, // the AbortController of the answer under way
  hasStore: false,
  turns: 0,
  hls: null,
  clipEnd: null,
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("aria-") || key === "role" || key === "alt") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function showAlert(message) {
  ui.alert.textContent = message;
}

// -- talking to the server -----------------------------------------------------------

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new Error("The page's server cannot be reached: is it still running? Start it again, then reload.");
  }
  if (!response.ok) throw new Error(await messageOf(response));
  return response.status === 204 ? null : response.json();
}

async function messageOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") return body.message;
  } catch (err) {
    // not JSON: the status says it
  }
  return `The server answered ${response.status}: reload the page and try again.`;
}

// Server-Sent Events over fetch (EventSource cannot POST, and would ask again
// by itself on a reconnect): each complete event is handed to onEvent.
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
    buffer = blocks.pop();
    for (const block of blocks) {
      let name = "message";
      const data = [];
      for (const line of block.split(/\r\n|\n|\r/)) {
        if (line.startsWith(":")) continue; // a comment: the server's ping
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") name = text;
        else if (field === "data") data.push(text);
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

// -- the knowledge store ----------------------------------------------------------------

async function loadStore() {
  try {
    const info = await api("GET", "/api/store");
    showStore(info);
  } catch (err) {
    ui.store.textContent = "Knowledge store: unknown";
    showAlert(err.message);
  }
}

function showStore(info) {
  state.hasStore = Boolean(info.store);
  if (info.store) {
    const count = info.store.item_count;
    ui.store.textContent = `${info.store.name} · ${count} video${count === 1 ? "" : "s"}`;
    ui.picker.hidden = true;
  } else {
    ui.store.textContent = "No knowledge store yet";
    if (info.pickable) listStores();
  }
  updateControls();
}

async function listStores() {
  ui.picker.hidden = false;
  try {
    const { stores } = await api("GET", "/api/stores");
    ui.storeList.replaceChildren(
      ...stores.map((s) => el("option", { value: s.id, text: `${s.name} (${s.id})` })),
    );
  } catch (err) {
    showAlert(err.message);
  }
}

$("pick-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!ui.storeList.value) return;
  try {
    showStore(await api("PUT", "/api/store", { id: ui.storeList.value }));
  } catch (err) {
    showAlert(err.message);
  }
});

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = ui.storeName.value.trim();
  if (!name) return;
  try {
    showStore(await api("POST", "/api/stores", { name }));
  } catch (err) {
    showAlert(err.message);
  }
});

// -- asking -------------------------------------------------------------------------------

function updateControls() {
  const streaming = state.streaming !== null;
  ui.ask.disabled = streaming || !state.hasStore;
  ui.stop.hidden = !streaming;
  ui.stop.disabled = !streaming;
}

function newTurn(question) {
  state.turns += 1;
  const id = `turn-${state.turns}`;
  const progress = el("ol", { class: "progress", "aria-label": "Progress" });
  const answer = el("section", { class: "answer", "aria-label": "Answer" });
  const turn = el(
    "article",
    { class: "turn", id },
    el("p", { class: "question", text: question }),
    progress,
    answer,
  );
  ui.conversation.append(turn);
  return { id, turn, progress, answer, lastKind: null, text: "", cards: null };
}

function addProgress(t, step) {
  // Commentary arrives a few words at a time: one item per run of it.
  const last = t.progress.lastElementChild;
  if (step.kind === "commentary" && t.lastKind === "commentary" && last) {
    last.textContent += step.text;
  } else {
    const label = { tool_call: "Tool: ", tool_result: "Result: " }[step.kind] || "";
    t.progress.append(el("li", { class: step.kind, text: label + step.text }));
  }
  t.lastKind = step.kind;
}

function foldProgress(t) {
  const steps = t.progress.children.length;
  if (!steps) {
    t.progress.remove();
    return;
  }
  const details = el("details", { class: "steps" }, el("summary", { text: `Steps (${steps})` }));
  t.progress.replaceWith(details);
  details.append(t.progress);
}

function showCitations(t, data) {
  const cards = data.citations.map((c, i) => card(t, c, i));
  // The answer again, cut at its markers: each [N] links to its moment.
  const parts = data.segments.map((s) => {
    if (s.cite === undefined) return document.createTextNode(s.text);
    const link = el("a", { class: "marker", href: `#${t.id}-moment-${s.cite + 1}`, text: s.text });
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const target = cards[s.cite];
      target.focus();
      play(data.citations[s.cite]);
    });
    return link;
  });
  if (parts.length) t.answer.replaceChildren(...parts);
  if (cards.length) {
    const list = el("ul", { class: "cards", "aria-label": "Cited moments" });
    for (const c of cards) list.append(el("li", {}, c));
    t.turn.append(list);
  }
}

function card(t, c, i) {
  const label = `${c.title}, ${c.range}`;
  const button = el("button", { type: "button", class: "card", id: `${t.id}-moment-${i + 1}` });
  if (c.thumbnail_url) {
    const img = el("img", { alt: label, src: c.thumbnail_url, referrerPolicy: "no-referrer" });
    img.addEventListener("error", () => img.remove()); // no picture: title and time stay
    button.append(img);
  }
  button.append(el("span", { class: "title", text: c.title }), el("span", { class: "range", text: c.range }));
  button.addEventListener("click", () => play(c));
  return button;
}

async function ask(question) {
  ui.alert.textContent = "";
  const t = newTurn(question);
  const controller = new AbortController();
  state.streaming = controller;
  updateControls();
  let ended = false;
  try {
    const response = await fetch("/api/ask", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question, conversation_id: state.conversationId }),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await messageOf(response));
    await readEvents(response, (name, data) => {
      if (name === "conversation") state.conversationId = data.conversation_id;
      else if (name === "progress") addProgress(t, data);
      else if (name === "token") {
        t.text += data.text;
        t.answer.append(document.createTextNode(data.text));
      } else if (name === "citations") showCitations(t, data);
      else if (name === "error") {
        ended = true;
        showAlert(data.message);
      } else if (name === "done") ended = true;
    });
    if (!ended) showAlert("The answer stopped before its end (the server closed the stream): ask again.");
  } catch (err) {
    if (err.name === "AbortError") {
      t.turn.append(el("p", { class: "stopped", text: "Stopped." }));
    } else {
      showAlert(err.message === "network error" || err instanceof TypeError
        ? "The connection to the page's server broke: ask again."
        : err.message);
    }
  } finally {
    foldProgress(t);
    state.streaming = null;
    updateControls();
  }
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = ui.question.value.trim();
  if (!question || state.streaming || !state.hasStore) return;
  ui.question.value = "";
  ask(question);
});

ui.question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
});

ui.stop.addEventListener("click", () => {
  if (state.streaming) state.streaming.abort();
});

ui.newChat.addEventListener("click", () => {
  if (state.streaming) state.streaming.abort();
  if (state.conversationId) {
    api("DELETE", `/api/conversations/${encodeURIComponent(state.conversationId)}`).catch(() => {});
  }
  state.conversationId = null;
  ui.conversation.replaceChildren();
  ui.alert.textContent = "";
  ui.question.focus();
});

// -- playing a moment ---------------------------------------------------------------------

function isHls(url) {
  try {
    return new URL(url).pathname.endsWith(".m3u8");
  } catch (err) {
    return false;
  }
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = el("script", { src });
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new Error("The video player (hls.js) did not load: reload the page.")));
    document.head.append(script);
  });
}

async function attach(url) {
  const video = ui.video;
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  if (!isHls(url) || video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url; // Chromium and Safari play HLS themselves
    return;
  }
  if (!window.Hls) await loadScript("/static/vendor/hls.light.min.js");
  if (!window.Hls.isSupported()) {
    video.src = url;
    return;
  }
  state.hls = new window.Hls({ enableWorker: false }); // no worker: the CSP allows none
  state.hls.loadSource(url);
  state.hls.attachMedia(video);
}

async function play(c) {
  ui.player.hidden = false;
  ui.nowPlaying.textContent = `${c.title}, ${c.range}`;
  if (!c.hls_url) {
    ui.nowPlaying.textContent += " — this moment has no video to play.";
    return;
  }
  const video = ui.video;
  try {
    state.clipEnd = null;
    await attach(c.hls_url);
    if (video.readyState < HTMLMediaElement.HAVE_METADATA) {
      await new Promise((resolve, reject) => {
        video.addEventListener("loadedmetadata", resolve, { once: true });
        video.addEventListener("error", () => reject(new Error("The video did not load.")), { once: true });
      });
    }
    video.currentTime = c.start_sec || 0;
    state.clipEnd = typeof c.end_sec === "number" ? c.end_sec : null;
    await video.play();
  } catch (err) {
    showAlert(`${err.message || "The video did not play."} Try another moment.`);
  }
}

ui.video.addEventListener("timeupdate", () => {
  if (state.clipEnd !== null && ui.video.currentTime >= state.clipEnd) {
    state.clipEnd = null;
    ui.video.pause();
  }
});

// -- adding videos -------------------------------------------------------------------------

function uploadRow(file) {
  const bar = el("progress", { max: 1, value: 0, "aria-label": file.name });
  const status = el("p", { class: "upload-status", text: "uploading" });
  const row = el("li", { class: "upload" }, el("span", { class: "file-name", text: file.name }), bar, status);
  ui.uploads.append(row);
  return { bar, status };
}

function sendFile(file, row) {
  // One file per request, so that each bar follows its own bytes (XHR: fetch
  // has no upload progress). The first half of the bar is this, the second
  // the server's upload to Jockey.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/uploads");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) row.bar.value = (event.loaded / event.total) / 2;
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response || {};
      if (xhr.status === 202) resolve(body);
      else reject(new Error(body.message || `The server answered ${xhr.status}.`));
    });
    xhr.addEventListener("error", () => reject(new Error("the upload to the page's server broke")));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

function showFile(row, f) {
  if (f.phase === "uploading") {
    row.bar.value = 0.5 + (f.fraction || 0) / 2;
    row.status.textContent = "uploading";
  } else if (f.phase === "indexing") {
    row.bar.removeAttribute("value"); // indeterminate: the API gives no percentage
    row.status.textContent = `indexing${f.status ? ": " + f.status : ""}`;
  } else if (f.phase === "ready") {
    row.bar.value = 1;
    row.status.textContent = "ready";
  } else if (f.phase === "failed") {
    row.status.textContent = `failed: ${f.error || "unknown reason"}`;
  }
}

async function addFile(file) {
  const row = uploadRow(file);
  try {
    const batch = await sendFile(file, row);
    const response = await fetch(`/api/uploads/${encodeURIComponent(batch.batch_id)}/events`);
    if (!response.ok) throw new Error(await messageOf(response));
    let last = null;
    await readEvents(response, (name, data) => {
      if (name !== "file") return;
      last = data;
      showFile(row, data);
      if (data.phase === "ready") loadStore();
    });
    if (!last || !["ready", "failed"].includes(last.phase)) {
      row.status.textContent = "failed: the server stopped following this upload";
    }
  } catch (err) {
    row.status.textContent = `failed: ${err.message}`;
  }
}

async function addFiles(files) {
  if (!state.hasStore) {
    showAlert("Pick a knowledge store first, then add videos.");
    return;
  }
  const queue = Array.from(files);
  const workers = Array.from({ length: Math.min(3, queue.length) }, async () => {
    while (queue.length) await addFile(queue.shift());
  });
  await Promise.all(workers);
}

ui.files.addEventListener("change", () => {
  addFiles(ui.files.files);
  ui.files.value = "";
});

document.addEventListener("dragover", (event) => {
  if (event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files")) {
    event.preventDefault();
    document.body.classList.add("dropping");
  }
});
document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
document.addEventListener("drop", (event) => {
  document.body.classList.remove("dropping");
  if (event.dataTransfer && event.dataTransfer.files.length) {
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  }
});

updateControls();
loadStore();
