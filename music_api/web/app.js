// Music Analyzer web page. No framework, no build step, nothing loaded from elsewhere.
// Every piece of library data (file names, lyrics, transcripts, tags) is untrusted: it is only
// ever inserted as text (textContent / text nodes), never as HTML.
"use strict";

const state = {
  auth: null, // the Authorization header value, kept in memory only
  session: null,
  offset: 0,
  total: 0,
  items: [],
  selected: new Map(), // track id -> file name
  searching: false,
  track: null,
  lrc: [],
  peaks: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function basicHeader(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return "Basic " + btoa(binary);
}

class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: state.auth }, options.headers || {});
  let body = options.body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== "string") {
    body = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, { method: options.method || "GET", headers, body, credentials: "omit" });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const data = await response.json();
      detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return options.raw ? response : response.json();
}

// --- formatting -------------------------------------------------------------------------------

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function duration(s) {
  if (s === null || s === undefined) return "";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function stageBadges(stages) {
  return Object.entries(stages || {}).map(([stage, status]) =>
    el("span", { class: `badge ${status}`, title: `${stage}: ${status}` }, `${stage.replace("_", " ")}: ${status}`));
}

function snippet(text) {
  // The API marks hits with « and »: show them as <mark>, everything as text.
  const out = [];
  const parts = String(text || "").split(/([«»])/);
  let inside = false;
  for (const part of parts) {
    if (part === "«") { inside = true; continue; }
    if (part === "»") { inside = false; continue; }
    if (part) out.push(inside ? el("mark", {}, part) : document.createTextNode(part));
  }
  return out;
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function filenameFrom(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) {
    try { return decodeURIComponent(star[1]); } catch (_) { /* fall through */ }
  }
  const plain = /filename="([^"]*)"/i.exec(header);
  return plain ? plain[1] : fallback;
}

async function downloadFrom(path, options, fallback) {
  const response = await api(path, Object.assign({ raw: true }, options));
  download(await response.blob(), filenameFrom(response, fallback));
}

// --- login ------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  const user = $("login-user").value.trim();
  const password = $("login-password").value;
  state.auth = user ? basicHeader(user, password) : `Bearer ${password}`;
  $("login-error").textContent = "";
  try {
    state.session = await api("/web/api/session");
  } catch (err) {
    state.auth = null;
    $("login-error").textContent = err.status === 401 ? "Wrong user name or password." : `Login failed (${err.message})`;
    return;
  }
  $("login-password").value = "";
  $("login").hidden = true;
  $("app").hidden = false;
  $("tabs").hidden = false;
  $("who").textContent = `${state.session.user} (${state.session.role})`;
  $("dagster-link").href = state.session.dagster_url;
  await loadLibrary();
}

// --- tabs -------------------------------------------------------------------------------------

function showTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== `tab-${name}`;
  if (name === "storage") loadStorage();
  if (name === "settings") {
    $("settings-status").textContent = ""; // a fresh visit; a save's outcome stays until then
    loadProviderKeys();
  }
  if (name === "export") updateSelectionInfo();
}

// --- library ----------------------------------------------------------------------------------

function filterParams() {
  const p = new URLSearchParams();
  const add = (key, value) => { if (value !== "" && value !== null) p.append(key, value); };
  add("q", $("f-q").value.trim());
  for (const g of $("f-genre").value.split(",").map((s) => s.trim()).filter(Boolean)) p.append("genre", g);
  for (const t of $("f-type").value.split(",").map((s) => s.trim()).filter(Boolean)) p.append("file_type", t);
  add("has_transcription", $("f-transcribed").value);
  add("has_lyrics", $("f-lyrics").value);
  add("min_duration", $("f-min-dur").value);
  add("max_duration", $("f-max-dur").value);
  add("sort", $("f-sort").value);
  add("order", $("f-order").value);
  p.set("limit", $("f-limit").value);
  p.set("offset", String(state.offset));
  return p;
}

async function loadLibrary() {
  state.searching = false;
  $("library-status").textContent = "Loading…";
  try {
    const page = await api(`/tracks?${filterParams()}`);
    state.total = page.total;
    state.items = page.items;
    renderRows(page.items.map((t) => ({ track: t })));
    const end = page.offset + page.items.length;
    $("page-info").textContent = page.total ? `${page.offset + 1}–${end} of ${page.total}` : "no tracks";
    $("prev").disabled = page.offset === 0;
    $("next").disabled = end >= page.total;
    $("library-status").textContent = "";
  } catch (err) {
    $("library-status").textContent = `Could not load the library: ${err.message}`;
  }
}

function renderRows(rows) {
  const body = document.querySelector("#library tbody");
  body.replaceChildren(...rows.map(({ track, hit }) => {
    const id = track.id || track.track_id;
    const box = el("input", { type: "checkbox", class: "pick", "aria-label": "select" });
    box.checked = state.selected.has(id);
    box.addEventListener("change", () => {
      if (box.checked) state.selected.set(id, track.filename); else state.selected.delete(id);
      updateSelectionInfo();
    });
    const name = el("a", { class: "open", onclick: () => openTrack(id) }, track.filename);
    const fileCell = el("td", {}, name, hit && hit.snippet ? el("div", { class: "hint" }, snippet(hit.snippet)) : null);
    return el("tr", { dataset: { id } },
      el("td", {}, box), fileCell,
      el("td", {}, track.title || ""), el("td", {}, track.artist || ""), el("td", {}, track.genre || ""),
      el("td", { class: "num" }, duration(track.duration)),
      el("td", { class: "num" }, hit ? `score ${hit.score.toFixed(3)}` : bytes(track.size)),
      el("td", {}, track.uploaded_at ? new Date(track.uploaded_at).toLocaleString() : ""),
      el("td", {}, track.stages ? stageBadges(track.stages) : ""),
      el("td", {}, el("button", { type: "button", class: "play", onclick: () => play(id, track.filename) }, "▶ Play")));
  }));
  $("select-all").checked = false;
}

async function runSearch(event) {
  event.preventDefault();
  const q = $("search-q").value.trim();
  if (!q) return loadLibrary();
  state.searching = true;
  $("library-status").textContent = "Searching…";
  try {
    const params = new URLSearchParams({ q, mode: $("search-mode").value, limit: "50" });
    const result = await api(`/search?${params}`);
    renderRows(result.results.map((hit) => ({ track: hit, hit })));
    $("page-info").textContent = `${result.results.length} results (${result.mode}, ${result.took_ms} ms)`;
    $("prev").disabled = $("next").disabled = true;
    $("library-status").textContent = result.results.length ? "" : "Nothing found.";
  } catch (err) {
    $("library-status").textContent = `Search failed: ${err.message}`;
  }
}

function updateSelectionInfo() {
  const n = state.selected.size;
  $("selection-info").textContent = n ? `${n} selected` : "";
  $("export-selection").textContent = n
    ? `${n} track(s) selected: ${[...state.selected.values()].slice(0, 5).join(", ")}${n > 5 ? ", …" : ""}`
    : "Select tracks in the library first.";
  $("export-archive").disabled = $("export-csv").disabled = n === 0;
}

// --- track view -------------------------------------------------------------------------------

function renderDiff(ops) {
  const out = [];
  for (const op of ops || []) {
    if (op.kind === "equal") out.push(document.createTextNode(`${op.lyrics} `));
    else if (op.kind === "delete") out.push(el("del", { class: "delete", title: "in the lyrics, not heard" }, op.lyrics), " ");
    else if (op.kind === "insert") out.push(el("ins", { class: "insert", title: "heard, not in the lyrics" }, op.transcript), " ");
    else if (op.kind === "replace") {
      out.push(el("span", { class: "replace", title: "substituted" },
        el("del", {}, op.lyrics), " ", el("ins", {}, op.transcript)), " ");
    }
  }
  return out;
}

function parseLrc(text) {
  const lines = [];
  for (const raw of String(text || "").split(/\r?\n/)) {
    const stamps = [...raw.matchAll(/\[(\d+):(\d+(?:\.\d+)?)\]/g)];
    if (!stamps.length) continue;
    const words = raw.replace(/\[[^\]]*\]/g, "").trim();
    for (const m of stamps) lines.push({ time: Number(m[1]) * 60 + Number(m[2]), text: words });
  }
  return lines.sort((a, b) => a.time - b.time);
}

function safeLink(url, label) {
  return /^https?:\/\//i.test(url || "") ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label) : label;
}

async function openTrack(id) {
  let t;
  try {
    t = await api(`/tracks/${id}`);
  } catch (err) {
    $("library-status").textContent = `Could not open the track: ${err.message}`;
    return;
  }
  state.track = t;
  $("track").hidden = false;
  $("track-title").textContent = t.title ? `${t.title} — ${t.filename}` : t.filename;
  const meta = [
    ["Artist", t.artist], ["Album", t.album], ["Genre", t.genre], ["Year", t.year],
    ["Duration", duration(t.duration)], ["Format", [t.container, t.codec].filter(Boolean).join(" / ")],
    ["Size", bytes(t.size)], ["Also uploaded as", t.aliases.slice(1).map((a) => a.name).join(", ")],
    ["Stages", Object.entries(t.stages).map(([s, v]) => `${s}: ${v.status}${v.error ? ` (${v.error})` : ""}`).join("; ")],
  ].filter(([, v]) => v !== null && v !== undefined && v !== "");
  $("track-meta").replaceChildren(...meta.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));

  const stem = t.filename.split("/").pop().replace(/\.[^.]*$/, "") || "track";
  const dl = (label, path, name) => el("button", { type: "button", onclick: () => downloadFrom(path, {}, name).catch((e) => alert(e.message)) }, label);
  $("track-downloads").replaceChildren(...[
    el("button", { type: "button", class: "play", onclick: () => play(t.id, t.filename) }, "▶ Play"),
    t.transcription ? dl("Transcript TXT", `/tracks/${t.id}/transcription.txt`, `${stem}.txt`) : null,
    t.lyrics && t.lyrics.text ? dl("Lyrics TXT", `/tracks/${t.id}/lyrics.txt`, `${stem}.lyrics.txt`) : null,
    t.comparison && t.comparison.synced_lrc ? dl("LRC", `/tracks/${t.id}/lyrics.lrc`, `${stem}.lrc`) : null,
  ].filter(Boolean));

  const c = t.comparison;
  const summary = $("comparison-summary");
  if (c) {
    summary.replaceChildren(...[
      el("p", {}, "Similarity ", el("strong", { id: "similarity" }, c.similarity === null ? "–" : `${c.similarity.toFixed(1)}`),
        " / 100", c.wer !== null ? ` · WER ${(c.wer * 100).toFixed(1)} %` : "", c.cer !== null ? ` · CER ${(c.cer * 100).toFixed(1)} %` : ""),
      c.reasons.length ? el("ul", { id: "reasons" }, c.reasons.map((r) => el("li", {}, r))) : null,
      c.llm_notes ? el("blockquote", { id: "llm-notes", title: "language-model notes" }, c.llm_notes) : null,
    ].filter(Boolean)); // replaceChildren would show a null as the text "null"
  } else {
    summary.replaceChildren(el("p", { class: "hint" }, t.lyrics ? "No comparison yet." : "No official lyrics found for this track."));
  }
  $("diff").replaceChildren(...(c ? renderDiff(c.alignment) : [document.createTextNode(t.transcription ? t.transcription.text : "")]));

  $("lyrics-source").textContent = t.lyrics ? `(${t.lyrics.source})` : "";
  const matched = new Map((c ? c.lines : []).map((l) => [l.line, l.matched]));
  const synced = parseLrc((c && c.synced_lrc) || (t.lyrics && t.lyrics.synced));
  state.lrc = synced;
  let lines;
  if (synced.length) {
    lines = synced.map((l, i) => el("li", { dataset: { index: i } }, l.text,
      matched.has(l.text) ? el("span", { class: "matched" }, `${Math.round(matched.get(l.text) * 100)} % heard`) : null));
  } else {
    lines = String((t.lyrics && t.lyrics.text) || "").split(/\r?\n/).filter((s) => s.trim()).map((s) => el("li", {}, s));
  }
  $("lyrics-lines").replaceChildren(...lines);
  if (t.lyrics && /^https?:\/\//i.test(t.lyrics.url || "")) $("lyrics-source").append(" ", safeLink(t.lyrics.url, "source"));
  $("transcript-text").textContent = t.transcription ? t.transcription.text : "(no transcription yet)";
  loadWaveform(t);
  $("track").scrollIntoView({ block: "start" });
}

// --- waveform ---------------------------------------------------------------------------------

const WAVEFORM_MAX_SECONDS = 1200; // longer tracks would mean downloading a lot just to draw

async function loadWaveform(t) {
  const canvas = $("waveform");
  canvas.hidden = true;
  canvas.dataset.ready = "";
  state.peaks = null;
  if (!t.converted_size || !t.duration || t.duration > WAVEFORM_MAX_SECONDS) return;
  try {
    const signed = await api(`/tracks/${t.id}/audio-url?version=converted`);
    const response = await fetch(signed.url, { credentials: "omit" });
    if (!response.ok) return;
    const decoded = await new OfflineAudioContext(1, 1, 16000).decodeAudioData(await response.arrayBuffer());
    if (!state.track || state.track.id !== t.id) return; // another track was opened meanwhile
    const samples = decoded.getChannelData(0);
    const columns = canvas.width, per = Math.max(1, Math.floor(samples.length / columns));
    const peaks = new Float32Array(columns * 2);
    for (let c = 0; c < columns; c++) {
      let lo = 0, hi = 0;
      for (let i = c * per, end = Math.min(samples.length, i + per); i < end; i++) {
        if (samples[i] < lo) lo = samples[i];
        if (samples[i] > hi) hi = samples[i];
      }
      peaks[2 * c] = lo;
      peaks[2 * c + 1] = hi;
    }
    state.peaks = { id: t.id, peaks, duration: decoded.duration };
    canvas.hidden = false;
    drawWaveform();
    canvas.dataset.ready = "1";
  } catch (_) { /* no waveform: the rest of the view still works */ }
}

function drawWaveform() {
  const canvas = $("waveform");
  if (!state.peaks || canvas.hidden) return;
  const g = canvas.getContext("2d"), { peaks, duration: total, id } = state.peaks;
  const w = canvas.width, h = canvas.height, mid = h / 2;
  const audio = $("audio");
  const position = audio.dataset.trackId === id && total ? audio.currentTime / total : -1;
  g.clearRect(0, 0, w, h);
  for (let c = 0; c < w; c++) {
    g.fillStyle = c / w <= position ? "#2a6fdb" : "#9fb3c8";
    const top = mid - peaks[2 * c + 1] * mid, bottom = mid - peaks[2 * c] * mid;
    g.fillRect(c, top, 1, Math.max(1, bottom - top));
  }
}

function seekFromWaveform(event) {
  if (!state.peaks || !state.track) return;
  const rect = event.currentTarget.getBoundingClientRect();
  const at = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width)) * state.peaks.duration;
  const audio = $("audio");
  if (audio.dataset.trackId === state.track.id && audio.readyState >= 1) {
    audio.currentTime = at;
    audio.play().catch(() => {});
  } else {
    audio.addEventListener("loadedmetadata", () => { audio.currentTime = at; }, { once: true });
    play(state.track.id, state.track.filename);
  }
}

// --- player -----------------------------------------------------------------------------------

async function play(id, filename) {
  const version = $("player-version").value;
  try {
    const signed = await api(`/tracks/${id}/audio-url?version=${encodeURIComponent(version)}`);
    const audio = $("audio");
    audio.dataset.trackId = id;
    audio.src = signed.url;
    $("player").hidden = false;
    $("now-playing").textContent = filename;
    if (!state.track || state.track.id !== id) state.lrc = [];
    await audio.play().catch(() => { /* autoplay may be refused until the user interacts */ });
  } catch (err) {
    $("now-playing").textContent = `Cannot play: ${err.message}`;
  }
}

function highlightLine() {
  const audio = $("audio");
  if (!state.track || audio.dataset.trackId !== state.track.id || !state.lrc.length) {
    $("current-line").textContent = "";
    return;
  }
  let current = -1;
  for (let i = 0; i < state.lrc.length && state.lrc[i].time <= audio.currentTime + 0.05; i++) current = i;
  for (const li of $("lyrics-lines").children) li.classList.toggle("current", Number(li.dataset.index) === current);
  $("current-line").textContent = current >= 0 ? state.lrc[current].text : "";
}

// --- export -----------------------------------------------------------------------------------

async function exportArchive() {
  const include = [...document.querySelectorAll(".export-part:checked")].map((b) => b.value);
  const format = $("export-format").value;
  if (!include.length) { $("export-status").textContent = "Choose at least one part to include."; return; }
  $("export-status").textContent = "Preparing the archive…";
  try {
    await downloadFrom("/export", { method: "POST", body: { ids: [...state.selected.keys()], format, include } },
      `music-export.${format}`);
    $("export-status").textContent = "Archive downloaded.";
  } catch (err) {
    $("export-status").textContent = `Export failed: ${err.message}`;
  }
}

async function exportCsv() {
  try {
    await downloadFrom("/export/transcriptions.csv", { method: "POST", body: { ids: [...state.selected.keys()] } },
      "transcriptions.csv");
    $("export-status").textContent = "CSV downloaded.";
  } catch (err) {
    $("export-status").textContent = `Export failed: ${err.message}`;
  }
}

// --- upload -----------------------------------------------------------------------------------

function relativeName(file) {
  return file.webkitRelativePath || file.name;
}

// WAVE goes up under its registered type: the embedded S3 server gzips objects typed audio/wav or
// audio/x-wav, which costs CPU on every read (see music_core/storage.py).
const WAVE_TYPES = new Set(["audio/wav", "audio/x-wav", "audio/wave", "audio/x-pn-wav"]);

function storedType(file) {
  const type = (file.type || "application/octet-stream").toLowerCase();
  return WAVE_TYPES.has(type) ? "audio/vnd.wave" : type;
}

function putWithProgress(url, file, row) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.setRequestHeader("Content-Type", storedType(file));
    xhr.upload.addEventListener("progress", (e) => {
      row.dataset.progressEvents = String(Number(row.dataset.progressEvents || 0) + 1);
      if (e.lengthComputable) setProgress(row, Math.floor((e.loaded / e.total) * 100));
    });
    xhr.addEventListener("load", () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(`HTTP ${xhr.status}`))));
    xhr.addEventListener("error", () => reject(new Error("network error (is CORS configured on the bucket?)")));
    xhr.send(file);
  });
}

function setProgress(row, percent) {
  row.querySelector("progress").value = percent;
  row.querySelector(".percent").textContent = `${percent} %`;
}

async function uploadFiles(fileList) {
  const files = [...fileList];
  if (!files.length) return;
  const body = document.querySelector("#uploads tbody");
  const rows = files.map((f) => {
    const row = el("tr", { class: "upload" }, el("td", { class: "name" }, relativeName(f)), el("td", { class: "num" }, bytes(f.size)),
      el("td", {}, el("progress", { max: "100", value: "0" }), " ", el("span", { class: "percent" }, "0 %")),
      el("td", { class: "state" }, "waiting"));
    body.append(row);
    return row;
  });
  let signed;
  try {
    signed = await api("/uploads/presign", { method: "POST", body: { files: files.map((f) => ({ name: relativeName(f), size: f.size })) } });
  } catch (err) {
    for (const row of rows) row.querySelector(".state").textContent = err.status === 403 ? "admins only" : `refused: ${err.message}`;
    return;
  }
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      const item = signed.items[i], row = rows[i];
      if (item.error) { row.querySelector(".state").textContent = item.error; row.classList.add("failed"); continue; }
      row.querySelector(".state").textContent = "uploading";
      try {
        await putWithProgress(item.url, files[i], row);
        row.querySelector(".state").textContent = "uploaded";
        row.classList.add("done");
      } catch (err) {
        row.querySelector(".state").textContent = `failed: ${err.message}`;
        row.classList.add("failed");
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  const uploaded = signed.items.map((item, i) => [item, rows[i]]).filter(([item, row]) => item.key && row.classList.contains("done"));
  if (uploaded.length) followRegistration(uploaded);
}

const REGISTRATION_POLLS = 40; // about two minutes: the inbox sensor polls every 10 s by default

async function followRegistration(pairs) {
  const pending = new Map(pairs.map(([item, row]) => [item.key, row]));
  for (let i = 0; i < REGISTRATION_POLLS && pending.size; i++) {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    let status;
    try {
      const query = new URLSearchParams([...pending.keys()].map((k) => ["key", k]));
      status = await api(`/uploads/status?${query}`);
    } catch (_) { continue; }
    for (const s of status) {
      const row = pending.get(s.key);
      if (!row || s.state !== "registered") continue;
      row.querySelector(".state").textContent = s.duplicate_of ? `duplicate of ${s.duplicate_of}` : "registered";
      row.classList.toggle("duplicate", Boolean(s.duplicate_of));
      row.dataset.trackId = s.track_id;
      pending.delete(s.key);
    }
  }
}

// --- storage ----------------------------------------------------------------------------------

async function loadStorage() {
  try {
    const [stats, analytics] = await Promise.all([api("/storage/stats"), api("/storage/analytics")]);
    document.querySelector("#storage-bucket tbody").replaceChildren(...Object.entries(stats.bucket).map(([prefix, v]) =>
      el("tr", { dataset: { prefix } }, el("td", {}, prefix), el("td", { class: "num objects" }, v.objects), el("td", { class: "num" }, bytes(v.bytes)))));
    const other = [["Database", bytes(stats.database.bytes)],
      ["Vector index", stats.vector_index ? `version ${stats.vector_index.version}, ${stats.vector_index.vectors} vectors` : "not built yet"],
      ["Disk free", stats.disk ? `${bytes(stats.disk.free)} of ${bytes(stats.disk.total)}` : "unknown"],
      ["Audio copies", stats.audio_copies
        ? `${stats.audio_copies.copies} (${bytes(stats.audio_copies.bytes)} of ${bytes(stats.audio_copies.limit_bytes)})` : "off"]];
    $("storage-other").replaceChildren(...other.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const group = (id, rows) => document.querySelector(`#${id} tbody`).replaceChildren(...rows.map((r) =>
      el("tr", {}, el("td", {}, r.key), el("td", { class: "num" }, r.tracks), el("td", { class: "num" }, bytes(r.bytes)), el("td", { class: "num" }, duration(r.seconds)))));
    group("by-genre", analytics.by_genre);
    group("by-type", analytics.by_type);
    $("largest").replaceChildren(...analytics.largest.map((r) => el("li", {}, `${r.filename} (${bytes(r.bytes)})`)));
    $("duplicates").replaceChildren(...(analytics.duplicates.length
      ? analytics.duplicates.map((d) => el("li", {}, `${d.filename}: ${d.names.join(", ")}`))
      : [el("li", { class: "hint" }, "none")]));
  } catch (err) {
    $("storage-other").replaceChildren(el("dd", { class: "error" }, `Could not load storage data: ${err.message}`));
  }
}

async function previewCleanup(event) {
  event.preventDefault();
  const params = new URLSearchParams({ older_than_days: $("cleanup-days").value, keep_originals: $("cleanup-keep").checked });
  try {
    const p = await api(`/storage/cleanup/preview?${params}`);
    $("cleanup-summary").textContent = `${p.rule}: ${p.tracks} track(s), ${bytes(p.bytes)} would be freed. ${p.execute}.`;
    document.querySelector("#cleanup-candidates tbody").replaceChildren(...p.candidates.map((c) =>
      el("tr", {}, el("td", {}, c.filename), el("td", {}, c.genre || ""), el("td", {}, (c.last_upload || "").slice(0, 10)),
        el("td", { class: "num" }, bytes(c.bytes)))));
    $("cleanup-candidates").hidden = !p.candidates.length;
  } catch (err) {
    $("cleanup-summary").textContent = err.status === 403 ? "Cleanup preview is for admins." : `Preview failed: ${err.message}`;
  }
}

// --- settings (admins) ------------------------------------------------------------------------

async function loadProviderKeys() {
  try {
    const keys = await api("/config/provider-keys");
    document.querySelector("#provider-keys tbody").replaceChildren(...keys.map((k) =>
      el("tr", { dataset: { provider: k.provider } }, el("td", {}, k.provider), el("td", {}, k.source || "not set"),
        el("td", { class: "masked" }, k.masked || "–"), el("td", {}, (k.updated_at || "").slice(0, 19).replace("T", " ")),
        el("td", {}, k.source === "api_config" ? el("button", { type: "button", onclick: () => forgetKey(k.provider) }, "Forget") : null,
          k.problem ? el("span", { class: "error" }, ` ${k.problem}`) : null))));
  } catch (err) {
    $("settings-status").textContent = err.status === 403 ? "Settings are for admins." : `Could not load settings: ${err.message}`;
  }
}

async function saveKey(event) {
  event.preventDefault();
  const provider = $("key-provider").value;
  try {
    await api(`/config/provider-keys/${encodeURIComponent(provider)}`, { method: "PUT", body: { key: $("key-value").value } });
    $("settings-status").textContent = `${provider} key saved (encrypted).`;
  } catch (err) {
    $("settings-status").textContent = `Not saved: ${err.message}`;
  } finally {
    $("key-value").value = ""; // never kept in the page
  }
  await loadProviderKeys();
}

async function forgetKey(provider) {
  try {
    await api(`/config/provider-keys/${encodeURIComponent(provider)}`, { method: "DELETE", raw: true });
    $("settings-status").textContent = `${provider} key removed.`;
  } catch (err) {
    $("settings-status").textContent = `Not removed: ${err.message}`;
  }
  await loadProviderKeys();
}

// --- wiring -----------------------------------------------------------------------------------

function init() {
  $("login-form").addEventListener("submit", login);
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => showTab(button.dataset.tab));
  $("filter-form").addEventListener("submit", (e) => { e.preventDefault(); state.offset = 0; loadLibrary(); });
  $("search-form").addEventListener("submit", runSearch);
  $("search-clear").addEventListener("click", () => { $("search-q").value = ""; state.offset = 0; loadLibrary(); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - Number($("f-limit").value)); loadLibrary(); });
  $("next").addEventListener("click", () => { state.offset += Number($("f-limit").value); loadLibrary(); });
  $("select-all").addEventListener("change", (e) => {
    for (const box of document.querySelectorAll("#library tbody .pick")) {
      if (box.checked !== e.target.checked) { box.checked = e.target.checked; box.dispatchEvent(new Event("change")); }
    }
  });
  $("track-close").addEventListener("click", () => { $("track").hidden = true; });
  $("audio").addEventListener("timeupdate", () => { highlightLine(); drawWaveform(); });
  $("waveform").addEventListener("click", seekFromWaveform);
  $("audio").addEventListener("seeked", () => { highlightLine(); drawWaveform(); });
  $("player-version").addEventListener("change", () => {
    const audio = $("audio");
    if (audio.dataset.trackId) play(audio.dataset.trackId, $("now-playing").textContent);
  });
  $("cleanup-form").addEventListener("submit", previewCleanup);
  $("key-form").addEventListener("submit", saveKey);
  $("export-archive").addEventListener("click", exportArchive);
  $("export-csv").addEventListener("click", exportCsv);
  const zone = $("dropzone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); uploadFiles(e.dataTransfer.files); });
  $("file-input").addEventListener("change", (e) => { uploadFiles(e.target.files); e.target.value = ""; });
  updateSelectionInfo();
}

document.addEventListener("DOMContentLoaded", init);
