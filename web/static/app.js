// Deployer dashboard. Vanilla JavaScript, no build step. Everything shown from data is written with
// textContent (never innerHTML), so log lines and names are always inert text.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const page = document.body.dataset.page;
const BOOTING = ["queued", "unpacking", "allocating_port", "writing_config", "building", "starting",
  "health_checking", "registering_route"];
const TERMINAL = ["failed", "stopped", "crashed"];
const cardOf = (status) => (BOOTING.includes(status) ? "starting" : status);
const STATUSES = [...BOOTING, "running", "unhealthy", ...TERMINAL];
// The status a log line records, as deployer.loglines.status_of reads it: only a system line in the shape
// a transition writes. Build and container output kept in system lines is quoted ("| …"), so it never is.
function statusOf(line) {
  const m = line.stream === "system" && /^status: ([a-z_]+)(?: — |$)/.exec(line.text);
  return m && STATUSES.includes(m[1]) ? m[1] : null;
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// API errors are {"error": "<readable message>", "code": "<CODE>"}.
function errorMessage(body, status) {
  return (body && typeof body.error === "string" && body.error) || `request failed (HTTP ${status})`;
}

async function api(path, options) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf, Accept: "application/json" } }, options || {}));
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(errorMessage(body, resp.status));
  return body;
}

// Sizes as people read them: "12.3 KB", "4.0 MB" (a small upload is not "0.0 of 0.0 MB").
function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

// Per-container usage against its limits, for the capacity panel (the template renders the same).
function usage(c) {
  const s = c.sample;
  const cpuLimit = c.cpu_millis / 1000;
  const cpu = s ? (100 * s.cpu_pct) / cpuLimit : 0;
  const mem = s ? (100 * s.mem_used_mb) / c.memory_mb : 0;
  return {
    cpu, mem,
    cpuText: s ? `${cpu.toFixed(1)}% of ${cpuLimit} CPU` : "no sample yet",
    memText: s ? `${s.mem_used_mb.toFixed(0)} of ${c.memory_mb} MB` : "no sample yet",
  };
}
// A bar's width: a used resource never shows as an empty bar, however small its share.
const barWidth = (pct) => (pct > 0 ? Math.min(100, Math.max(2, pct)) : 0).toFixed(1) + "%";

function setBadge(node, status) {
  node.textContent = status;
  node.className = "badge " + cardOf(status);
}

/* ---------- list ---------- */
function listPage() {
  const table = document.querySelector("#deployments tbody");
  let filter = "";
  const search = document.getElementById("search");
  function applyFilters() {
    const q = search.value.trim().toLowerCase();
    for (const row of table.querySelectorAll("tr[data-id]")) {
      const okCard = !filter || row.dataset.card === filter;
      const okText = !q || row.dataset.search.includes(q);
      row.hidden = !(okCard && okText);
    }
  }
  for (const btn of document.querySelectorAll("#cards .filter")) {
    btn.addEventListener("click", () => {
      filter = btn.dataset.filter;
      document.querySelectorAll("#cards .filter").forEach((b) => b.classList.toggle("active", b === btn));
      applyFilters();
    });
  }
  search.addEventListener("input", applyFilters);

  function rowFor(d) {
    const tr = el("tr", { "data-id": d.id });
    const name = el("td");
    name.append(el("a", { href: "/d/" + encodeURIComponent(d.id) }, d.name), el("div", { class: "muted small" }, d.slug));
    const st = el("td");
    st.append(el("span", { class: "badge", "data-status": "" }));
    const url = el("td");
    if (d.url) url.append(el("a", { href: d.url, rel: "noopener noreferrer" }, d.url));
    const created = el("td");
    created.append(el("time", { datetime: d.created_at }, d.created_at));
    tr.append(name, st, url, el("td", {}, d.runtime), created);
    return tr;
  }
  async function refresh() {
    try {
      const [list, stats] = await Promise.all([api("/api/deployments?limit=500"), api("/api/stats")]);
      const counts = { running: 0, starting: 0, unhealthy: 0, crashed: 0, failed: 0, stopped: 0 };
      const empty = table.querySelector("tr.empty");
      if (empty && list.deployments.length) empty.remove();
      list.deployments.slice().reverse().forEach((d) => {
        let row = table.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`);
        if (!row) { row = rowFor(d); table.prepend(row); }
        row.dataset.card = cardOf(d.status);
        row.dataset.search = (d.name.toLowerCase() + " " + d.slug);
        setBadge(row.querySelector("[data-status]"), d.status);
        counts[cardOf(d.status)] = (counts[cardOf(d.status)] || 0) + 1;
      });
      document.querySelector('[data-count="all"]').textContent = list.total;
      for (const [k, v] of Object.entries(counts)) {
        const node = document.querySelector(`[data-count="${k}"]`);
        if (node) node.textContent = v;
      }
      document.getElementById("slots").textContent = `${stats.active} / ${stats.max_active}`;
      document.getElementById("slots-bar").style.width = (100 * stats.active / stats.max_active) + "%";
      document.getElementById("mem").textContent = `${stats.memory.used_mb} / ${stats.memory.reserved_mb} MB`;
      const memPct = stats.memory.reserved_mb ? 100 * stats.memory.used_mb / stats.memory.reserved_mb : 0;
      document.getElementById("mem-bar").style.width = memPct + "%";
      const per = document.querySelector("#per-container tbody");
      per.replaceChildren(...stats.containers.map((c) => {
        const u = usage(c);
        const tr = el("tr", { "data-id": c.id });
        const bar = (label, kind, pct, text) => {
          const td = el("td", { class: kind }, label + " ");
          const span = el("span", { class: "bar small" });
          const i = el("i"); i.style.width = barWidth(pct);
          span.append(i);
          td.append(span, " ", el("span", { class: "num", "data-usage": kind }, text));
          return td;
        };
        tr.append(el("td", {}, c.name), bar("CPU", "cpu", u.cpu, u.cpuText), bar("Mem", "mem", u.mem, u.memText));
        return tr;
      }));
      applyFilters();
    } catch (e) { /* the next refresh tries again */ }
  }
  refresh();
  setInterval(refresh, 2000);
}

/* ---------- detail ---------- */
function detailPage() {
  const root = document.getElementById("deployment");
  const id = root.dataset.id;
  const log = document.getElementById("log");
  const follow = document.getElementById("follow");
  const search = document.getElementById("log-search");
  const state = document.getElementById("stream-state");
  const lines = [];

  log.addEventListener("scroll", () => {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
    follow.checked = atBottom; // scrolling up pauses auto-scroll; back at the bottom resumes it
  });
  function matches(node) {
    const q = search.value.trim().toLowerCase();
    return !q || node.querySelector(".text").textContent.toLowerCase().includes(q);
  }
  search.addEventListener("input", () => { for (const n of log.children) n.hidden = !matches(n); });
  document.getElementById("download").addEventListener("click", (ev) => {
    const text = lines.map((l) => `${l.ts} ${l.stream} ${l.text}`).join("\n") + "\n";
    ev.currentTarget.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  });

  // Each line: when (the reader's local time, to the millisecond; the exact UTC value on hover), which
  // stream (out, err, sys: told apart, not alarming, since agents log requests to stderr), the text.
  const TAGS = { stdout: "out", stderr: "err", system: "sys" };
  function clock(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso || "";
    const p = (n, w) => String(n).padStart(w || 2, "0");
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }
  function addLine(l) {
    lines.push(l);
    const node = el("div", { class: "line " + l.stream, "data-line": l.line_no });
    node.append(el("span", { class: "ts", title: l.ts }, clock(l.ts)), el("span", { class: "tag" }, TAGS[l.stream] || l.stream),
      el("span", { class: "text" }, l.text));
    node.hidden = !matches(node);
    log.append(node);
    if (follow.checked) log.scrollTop = log.scrollHeight;
  }
  async function refreshFacts() {
    try {
      const d = await api("/api/deployments/" + encodeURIComponent(id));
      setBadge(document.getElementById("status"), d.status);
      for (const node of document.querySelectorAll("[data-fact]")) {
        const v = d[node.dataset.fact];
        if (node.dataset.fact === "url") continue;
        let text = v === null || v === undefined || v === "" ? "—" : String(v);
        if (node.dataset.fact === "container_id" && v) text = text.slice(0, 12);
        const time = node.querySelector("time");
        if (time) {
          time.removeAttribute("datetime");
          time.textContent = text;
          if (v) friendlyTimes(node);
        } else node.textContent = text;
        if (node.dataset.fact === "error_message") node.classList.toggle("error-text", Boolean(v));
      }
    } catch (e) { /* shown on the next status */ }
  }
  const tl = document.getElementById("timeline");
  const rendered = Math.max(0, ...Array.from(tl.children, (li) => Number(li.dataset.line || 0)));
  function addStep(status, ts, lineNo) {
    if (lineNo <= rendered) return; // the page already shows it
    const last = tl.lastElementChild;
    if (last && last.querySelector(".badge").textContent === status) return;
    if (last) {
      const secs = (Date.parse(ts) - Date.parse(last.dataset.ts)) / 1000;
      if (!isNaN(secs)) last.querySelector("[data-duration]").textContent = secs.toFixed(2) + " s";
    }
    const li = el("li", { "data-ts": ts, "data-line": lineNo });
    const time = el("time", {}, ts);
    li.append(el("span", { class: "badge" }, status), " ", time, " ", el("span", { class: "muted", "data-duration": "" }));
    tl.append(li);
  }

  let source;
  function connect() {
    source = new EventSource(`/api/deployments/${encodeURIComponent(id)}/logs/stream`);
    source.addEventListener("log", (ev) => {
      const l = JSON.parse(ev.data);
      addLine(l);
      const status = statusOf(l);
      if (status) addStep(status, l.ts, l.line_no);
    });
    source.addEventListener("ready", () => { state.textContent = "live"; });
    source.addEventListener("status", (ev) => {
      const s = JSON.parse(ev.data).status;
      setBadge(document.getElementById("status"), s);
      refreshFacts();
    });
    source.addEventListener("done", (ev) => {
      state.textContent = "ended: " + JSON.parse(ev.data).status;
      source.close();
    });
    source.addEventListener("error", () => { if (source.readyState !== 2) state.textContent = "reconnecting…"; });
  }
  connect();

  const chart = document.getElementById("chart");
  const memLimit = Number(root.dataset.memory), cpuLimit = Number(root.dataset.cpu) / 1000;
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // The y axis is a share of the limit, scaled to what was used (an idle agent at 2 % of its memory
  // would otherwise be a flat line at the bottom): the top is the next of 1, 2, 5, 10, 20, 50, 100 %.
  const STEPS = [1, 2, 5, 10, 20, 50, 100];
  async function drawChart() {
    try {
      const { samples } = await api(`/api/deployments/${encodeURIComponent(id)}/metrics`);
      const note = document.getElementById("chart-note");
      if (!samples.length) { note.textContent = "no samples yet"; chart.replaceChildren(); return; }
      const memPct = samples.map((s) => (100 * s.mem_used_mb) / (s.mem_limit_mb || memLimit));
      const cpuPct = samples.map((s) => (100 * s.cpu_pct) / cpuLimit);
      const peak = Math.max(...memPct, ...cpuPct);
      const top = STEPS.find((t) => peak <= t * 0.9) || 100;
      const n = samples.length, left = 44, width = 600 - left - 4;
      const x = (i) => left + (n === 1 ? width : (width * i) / (n - 1));
      const y = (pct) => 150 - 140 * Math.min(1, Math.max(0, pct / top));
      const line = (values, cls) => svg("polyline", { class: cls, "data-series": cls,
        points: values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ") });
      const grid = [0, top / 2, top].flatMap((pct) => [
        svg("line", { class: "grid", x1: left, x2: 600, y1: y(pct), y2: y(pct) }),
        svg("text", { class: "axis", x: left - 6, y: y(pct) + 4, "text-anchor": "end" }, `${pct}%`),
      ]);
      chart.replaceChildren(...grid, line(memPct, "mem"), line(cpuPct, "cpu"));
      chart.dataset.top = top;
      const last = samples[n - 1];
      note.textContent = `latest: memory ${last.mem_used_mb.toFixed(1)} of ${last.mem_limit_mb} MB, ` +
        `CPU ${(100 * last.cpu_pct).toFixed(1)}% of one core (limit ${cpuLimit} CPU)`;
    } catch (e) { /* next round */ }
  }
  drawChart();
  setInterval(drawChart, 10000);
}

/* ---------- deploy ---------- */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
const SKIP = /(^|\/)(\.git|\.venv|__pycache__|node_modules)(\/|$)/;

// A zip with stored (uncompressed) entries: enough for an upload, no library needed.
async function zipFolder(files) {
  const enc = new TextEncoder();
  const parts = [], central = [];
  let offset = 0;
  for (const file of files) {
    const path = file.webkitRelativePath || file.name;
    if (SKIP.test(path)) continue;
    const name = enc.encode(path);
    const data = new Uint8Array(await file.arrayBuffer());
    const crc = crc32(data);
    const head = new DataView(new ArrayBuffer(30));
    head.setUint32(0, 0x04034b50, true); head.setUint16(4, 20, true); head.setUint16(6, 0x0800, true);
    head.setUint16(8, 0, true); head.setUint16(10, 0, true); head.setUint16(12, 0x21, true);
    head.setUint32(14, crc, true); head.setUint32(18, data.length, true); head.setUint32(22, data.length, true);
    head.setUint16(26, name.length, true); head.setUint16(28, 0, true);
    parts.push(head, name, data);
    const cd = new DataView(new ArrayBuffer(46));
    cd.setUint32(0, 0x02014b50, true); cd.setUint16(4, 20, true); cd.setUint16(6, 20, true);
    cd.setUint16(8, 0x0800, true); cd.setUint16(10, 0, true); cd.setUint16(12, 0, true); cd.setUint16(14, 0x21, true);
    cd.setUint32(16, crc, true); cd.setUint32(20, data.length, true); cd.setUint32(24, data.length, true);
    cd.setUint16(28, name.length, true); cd.setUint32(38, 0o100644 << 16, true); cd.setUint32(42, offset, true);
    central.push(cd, name);
    offset += 30 + name.length + data.length;
  }
  const cdSize = central.reduce((s, p) => s + p.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, central.length / 2, true); end.setUint16(10, central.length / 2, true);
  end.setUint32(12, cdSize, true); end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}

function envJson(text) {
  const env = {};
  text.split("\n").forEach((line, i) => {
    if (!line.trim() || line.trim().startsWith("#")) return;
    const at = line.indexOf("=");
    if (at < 0) throw new Error(`env line ${i + 1} has no '=': write KEY=VALUE`);
    env[line.slice(0, at).trim()] = line.slice(at + 1);
  });
  return JSON.stringify(env);
}

// A keypair found in a chosen folder never goes into the zip (it would end up in the image): the
// shallowest one is sent as the keypair field instead, unless a keypair file was chosen explicitly.
const KEYPAIR_FILE = /(^|\/)keypair\.json$/i;
const pathOf = (file) => file.webkitRelativePath || file.name;
const isKeypair = (file) => KEYPAIR_FILE.test(pathOf(file));
function splitKeypairs(files) {
  const all = Array.from(files);
  const keypairs = all.filter(isKeypair).sort((a, b) => pathOf(a).split("/").length - pathOf(b).split("/").length);
  return { project: all.filter((f) => !isKeypair(f)), keypair: keypairs[0] || null, count: keypairs.length };
}

function deployPage() {
  const form = document.getElementById("deploy-form");
  const folderInput = document.getElementById("folder");
  const keypairInput = document.getElementById("keypair");
  const keypairNote = document.getElementById("keypair-note");
  function showKeypairNote() {
    const { keypair, count } = splitKeypairs(folderInput.files);
    keypairNote.hidden = !keypair;
    if (!keypair) return;
    const others = count > 1 ? ` (${count - 1} more left out of the zip too)` : "";
    keypairNote.textContent = keypairInput.files.length
      ? `${pathOf(keypair)} is left out of the zip; the keypair file you chose is sent${others}.`
      : `${pathOf(keypair)} is sent as the keypair, not inside the zip${others}.`;
  }
  folderInput.addEventListener("change", showKeypairNote);
  keypairInput.addEventListener("change", showKeypairNote);
  const errorBox = document.getElementById("deploy-error");
  const progress = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const button = document.getElementById("deploy-button");
  function fail(message) {
    errorBox.textContent = message; errorBox.hidden = false; button.disabled = false;
    progress.hidden = true; progress.value = 0; progressText.textContent = ""; // nothing is uploading now
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errorBox.hidden = true;
    const zip = document.getElementById("zip").files[0];
    const folder = folderInput.files;
    let bundle, found = null;
    try {
      if (zip) bundle = zip;
      else if (folder.length) {
        progressText.textContent = "zipping the folder…";
        const split = splitKeypairs(folder);
        found = split.keypair;
        bundle = await zipFolder(split.project);
      } else return fail("Choose a project zip or a folder to deploy.");
      const body = new FormData();
      body.append("project.zip", bundle, "project.zip");
      const keypair = keypairInput.files[0] || found;
      if (keypair) body.append("keypair.json", keypair, "keypair.json");
      const name = document.getElementById("name").value.trim();
      if (name) body.append("name", name);
      const env = document.getElementById("env").value;
      if (env.trim()) body.append("env", envJson(env));
      button.disabled = true;
      progress.hidden = false;
      progress.value = 0;
      progressText.textContent = `uploading ${fmtBytes(bundle.size)}…`;
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/deployments");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        progress.value = (100 * e.loaded) / e.total;
        progressText.textContent = `uploading ${fmtBytes(e.loaded)} of ${fmtBytes(e.total)}`;
      };
      xhr.onload = () => {
        let data = {};
        try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 201) { window.location = "/d/" + encodeURIComponent(data.id); return; }
        fail(errorMessage(data, xhr.status));
      };
      xhr.onerror = () => fail("upload failed: the server could not be reached");
      xhr.send(body);
    } catch (e) { fail(e.message); }
  });
}

// Times arrive as ISO 8601 UTC; show them in the reader's own zone, with the exact value on hover.
function friendlyTimes(root) {
  for (const t of root.querySelectorAll("time")) {
    const iso = t.getAttribute("datetime") || t.textContent.trim();
    const d = new Date(iso);
    if (!iso || isNaN(d)) continue;
    t.setAttribute("datetime", iso);
    t.title = iso;
    t.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }
}
friendlyTimes(document);
new MutationObserver((changes) => {
  for (const c of changes) for (const n of c.addedNodes) if (n.querySelectorAll) friendlyTimes(n);
}).observe(document.querySelector("main"), { childList: true, subtree: true });

if (page === "list") listPage();
if (page === "detail") detailPage();
if (page === "deploy") deployPage();
