// The clawback web console: a single page in plain JavaScript. Every API request carries the
// session token in an Authorization header (no cookies); data from the server is put into the
// page as text, except rendered Markdown, which the server has already stripped of raw HTML.
"use strict";

let session = sessionStorage.getItem("clawback-session");
let info = { read_only: true };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function showError(msg) {
  const e = $("error");
  e.textContent = msg;
  e.hidden = !msg;
}

async function api(path, opts) {
  opts = opts || {};
  const headers = Object.assign({}, opts.headers || {}, { Authorization: "Bearer " + session });
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (!r.ok) {
    let msg = "HTTP " + r.status;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return opts.raw ? r : r.json();
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function secs(s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}
const when = (t) => (t ? new Date(t).toLocaleString() : "–");

// ---- session: the access link's one-time token becomes a session token kept in this tab.
async function startSession() {
  const m = location.hash.match(/token=([0-9a-f]+)/);
  if (m) {
    history.replaceState(null, "", location.pathname + "#/home");
    const r = await fetch("/api/session", { method: "POST", headers: { Authorization: "Bearer " + m[1] } });
    const v = await r.json();
    if (!r.ok) throw new Error(v.error);
    session = v.session;
    sessionStorage.setItem("clawback-session", session);
  }
  if (!session) throw new Error("no session: open the access link `clawback ui` printed");
}

// ---- pages
const pages = { home: loadHome, timeline: loadTimeline, browse: loadBrowse, restore: loadRestore };

async function route() {
  const h = location.hash.replace(/^#\/?/, "");
  const [name, q] = h.split("?");
  const page = pages[name] ? name : "home";
  for (const p of Object.keys(pages)) {
    $("page-" + p).hidden = p !== page;
    $("nav-" + p).classList.toggle("active", p === page);
  }
  showError("");
  document.body.dataset.page = page;
  document.body.dataset.loaded = "";
  const t0 = performance.now();
  try {
    await pages[page](new URLSearchParams(q || ""));
  } catch (e) {
    showError(e.message);
  }
  // When the page's data was drawn: ms since the route began and since the navigation (the
  // load-time bench reads them).
  document.body.dataset.routeMs = (performance.now() - t0).toFixed(1);
  document.body.dataset.sinceNavMs = performance.now().toFixed(1);
  document.body.dataset.loaded = page;
}

function kv(table, rows) {
  table.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: v }))));
}

async function loadHome() {
  const s = await api("/api/status");
  const h = $("health");
  h.textContent = s.state.replace("_", " ");
  h.dataset.state = s.state;
  const lr = s.last_run;
  kv($("health-details"), [
    ["last snapshot", s.last_snapshot ? `${s.last_snapshot.id.slice(0, 8)} from ${s.last_snapshot.hostname}, ${when(s.last_snapshot.time)} (${secs(s.age_s)} ago)` : "none"],
    ["last run", lr ? `${lr.status} at ${when(lr.end)}, ${lr.duration_s.toFixed(1)}s${lr.error ? ": " + lr.error : ""}` : "none"],
    ["next due", when(s.next_due)],
    ["schedule", s.schedule || "none configured"],
    ["repository", s.repository ? `${s.repository}, ${bytes(s.repo_bytes)} in ${s.snapshots} snapshots` : "cannot be read: " + s.repo_error],
    ["encryption", s.encryption ? `${s.encryption.algorithm}, key ${s.encryption.key_id.slice(0, 8)}` : "–"],
  ]);
  $("anomalies").replaceChildren(...s.recent_anomalies.flatMap((r) => r.anomalies.map((a) => el("li", { text: `${when(r.end)}: ${a.message}` }))));
  if (!s.recent_anomalies.length) $("anomalies").append(el("li", { text: "none" }));
  $("failures").replaceChildren(...s.recent_failures.map((r) => el("li", { text: `${when(r.end)}: ${r.error || r.status}` })));
  if (!s.recent_failures.length) $("failures").append(el("li", { text: "none" }));
}

// A line plot of [t, v] points as SVG.
function plot(container, points, fmt) {
  const W = 720, H = 160, P = 40;
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  const mk = (tag, a) => { const e = document.createElementNS(NS, tag); for (const k in a) e.setAttribute(k, a[k]); svg.append(e); return e; };
  if (!points.length) { mk("text", { x: P, y: H / 2 }).textContent = "no data"; container.replaceChildren(svg); return; }
  const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 1);
  const vmax = Math.max(...points.map((p) => p[1]), 1);
  const x = (t) => P + ((t - t0) / (t1 - t0)) * (W - 2 * P);
  const y = (v) => H - 20 - (v / vmax) * (H - 40);
  mk("line", { x1: P, y1: H - 20, x2: W - P, y2: H - 20, stroke: "#999" });
  mk("text", { x: 2, y: 14, "font-size": 11 }).textContent = fmt(vmax);
  mk("text", { x: P, y: H - 4, "font-size": 11 }).textContent = new Date(t0).toLocaleDateString();
  mk("text", { x: W - P - 60, y: H - 4, "font-size": 11 }).textContent = new Date(t1).toLocaleDateString();
  mk("polyline", { fill: "none", stroke: "#2456b3", "stroke-width": 1.5, points: points.map((p) => `${x(p[0])},${y(p[1])}`).join(" ") });
  for (const p of points) mk("circle", { cx: x(p[0]), cy: y(p[1]), r: 2, fill: "#2456b3" }).append(Object.assign(document.createElementNS(NS, "title"), { textContent: fmt(p[1]) }));
  container.replaceChildren(svg);
}

// Snapshots as dots, one row per host and group; the retention plan colours them.
function snapTimeline(container, snaps) {
  const NS = "http://www.w3.org/2000/svg";
  const rows = [...new Set(snaps.map((s) => s.hostname + (s.group ? " · " + s.group : "")))];
  const W = 720, RH = 26, P = 160, H = rows.length * RH + 30;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  const mk = (tag, a) => { const e = document.createElementNS(NS, tag); for (const k in a) e.setAttribute(k, a[k]); svg.append(e); return e; };
  const ts = snaps.map((s) => Date.parse(s.time));
  const t0 = Math.min(...ts), t1 = Math.max(...ts, t0 + 1);
  const x = (t) => P + ((t - t0) / (t1 - t0)) * (W - P - 20);
  rows.forEach((r, i) => { mk("text", { x: 4, y: 20 + i * RH, "font-size": 12 }).textContent = r; });
  const colour = { keep: "#136c2e", forget: "#a3170e", none: "#6b7385" };
  snaps.forEach((s, i) => {
    const row = rows.indexOf(s.hostname + (s.group ? " · " + s.group : ""));
    const c = mk("circle", { cx: x(ts[i]), cy: 16 + row * RH, r: 5, fill: colour[s.retention], "data-retention": s.retention, class: "snap" });
    const title = document.createElementNS(NS, "title");
    title.textContent = `${s.short_id} ${when(s.time)}: ${s.retention}${s.reasons ? " (" + s.reasons.join(", ") + ")" : ""}`;
    c.append(title);
  });
  mk("text", { x: P, y: H - 6, "font-size": 11 }).textContent = "● kept  ● forgotten by the retention policy  ● no policy";
  container.replaceChildren(svg);
}

async function loadTimeline() {
  const t = await api("/api/timeline");
  const r = t.retention;
  $("retention-note").textContent = r.configured
    ? `Retention in the config would keep ${r.keep} and forget ${r.forget} snapshots (forget --dry-run).`
    : "No retention policy in the config: every snapshot is kept." + (r.note ? " " + r.note : "");
  snapTimeline($("snap-timeline"), t.snapshots);
  const pts = t.snapshots.filter((s) => s.summary);
  // What the repository held after each backup and prune (the size log), and now.
  const sizes = t.sizes.map((p) => [Date.parse(p.time), p.bytes]);
  plot($("plot-size"), sizes, bytes);
  $("plot-size").dataset.bytes = t.sizes.map((p) => p.bytes).join(",");
  plot($("plot-added"), pts.map((s) => [Date.parse(s.time), s.summary.bytes_added]), bytes);
  plot($("plot-duration"), pts.map((s) => [Date.parse(s.time), s.summary.duration_s]), (v) => v.toFixed(1) + "s");
  $("runs").replaceChildren(
    el("tr", {}, ...["ended", "status", "duration", "new data", "snapshot", "error"].map((h) => el("th", { text: h }))),
    ...t.runs.slice(-50).reverse().map((x) => el("tr", {},
      el("td", { text: when(x.end) }), el("td", { text: x.status, "data-state": x.status === "failed" ? "failed" : "done" }),
      el("td", { text: x.duration_s.toFixed(1) + "s" }), el("td", { text: bytes(x.bytes_added) }),
      el("td", { text: x.snapshot_id ? x.snapshot_id.slice(0, 8) : "–" }), el("td", { text: x.error || "" }))),
  );
}

// ---- browse
let snapList = null;
async function snapshots() {
  if (!snapList) snapList = (await api("/api/snapshots")).snapshots.slice().reverse();
  return snapList;
}
function fillSnapshotSelect(sel, list, chosen) {
  sel.replaceChildren(...list.map((s) => el("option", { value: s.id, text: `${s.short_id}  ${when(s.time)}  ${s.hostname}${s.tags.length ? "  [" + s.tags.join(",") + "]" : ""}` })));
  if (chosen) sel.value = chosen;
}

async function loadBrowse(q) {
  const list = await snapshots();
  const sel = $("snapshots");
  const snap = q.get("snap") || (list[0] && list[0].id);
  fillSnapshotSelect(sel, list, snap);
  sel.onchange = () => { location.hash = "#/browse?snap=" + sel.value; };
  $("viewer").hidden = true;
  if (!snap) { $("tree").replaceChildren(el("tr", {}, el("td", { text: "no snapshots yet" }))); return; }
  const path = q.get("path") || "";
  const t = await api(`/api/tree?snapshot=${snap}&path=${encodeURIComponent(path)}`);
  const crumbs = [el("a", { href: `#/browse?snap=${snap}`, text: "roots" })];
  if (t.path) {
    let acc = "";
    for (const part of t.path.split("/").filter(Boolean)) {
      acc += "/" + part;
      crumbs.push(el("span", { text: "/" }), el("a", { href: `#/browse?snap=${snap}&path=${encodeURIComponent(acc)}`, text: part }));
    }
    crumbs.push(el("button", { type: "button", id: "download-folder", onclick: () => download(snap, t.path, "tar.gz"), text: "Download folder (.tar.gz)" }));
  }
  $("crumbs").replaceChildren(...crumbs);
  $("tree").replaceChildren(
    el("tr", {}, ...["name", "size", "modified"].map((h) => el("th", { text: h }))),
    ...t.entries.map((e) => {
      const open = () => {
        if (e.kind === "dir") location.hash = `#/browse?snap=${snap}&path=${encodeURIComponent(e.path)}`;
        else if (e.kind === "file") viewFile(snap, e.path).catch((x) => showError(x.message));
      };
      return el("tr", { class: "entry", "data-path": e.path, "data-kind": e.kind, onclick: open },
        el("td", { text: e.name + (e.kind === "dir" ? "/" : "") }), el("td", { class: "num", text: e.size === undefined || e.size === null ? "" : bytes(e.size) }),
        el("td", { text: e.mtime ? when(e.mtime) : "" }));
    }),
  );
}

async function download(snap, path, format) {
  try {
    const r = await api(`/api/download?snapshot=${snap}&path=${encodeURIComponent(path)}&format=${format}`, { raw: true });
    const blob = await r.blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: path.split("/").pop() + (format === "file" ? "" : "." + format) });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) { showError(e.message); }
}

async function viewFile(snap, path) {
  showError("");
  const t0 = performance.now();
  $("viewer").dataset.loadMs = "";
  const v = await api(`/api/file?snapshot=${snap}&path=${encodeURIComponent(path)}`);
  $("viewer").hidden = false;
  $("viewer").dataset.path = path;
  $("file-title").textContent = path;
  $("diff").hidden = true;
  $("diff").textContent = "";
  const body = $("file-body");
  body.dataset.kind = v.kind;
  if (v.kind === "markdown") body.innerHTML = v.html; // rendered server-side, raw HTML removed
  else if (v.kind === "conversation") body.replaceChildren(...v.messages.map((m) => el("div", { class: "msg " + m.role }, el("span", { class: "role", text: m.role }), m.text)));
  else if (v.kind === "sqlite") body.replaceChildren(el("table", { class: "grid" }, el("tr", {}, el("th", { text: "table" }), el("th", { text: "rows" })),
    ...v.tables.map((t) => el("tr", {}, el("td", { text: t.table }), el("td", { class: "num", text: t.rows })))));
  else if (v.kind === "binary") body.replaceChildren(el("p", { text: `binary file, ${bytes(v.size)}: download it` }));
  else body.replaceChildren(el("pre", { text: v.text }));
  $("download").onclick = () => download(snap, path, "file");
  const vs = (await api(`/api/versions?path=${encodeURIComponent(path)}`)).versions;
  $("versions").replaceChildren(
    el("tr", {}, ...["first seen", "snapshot", "size", "kept by", ""].map((h) => el("th", { text: h }))),
    ...vs.map((x, i) => el("tr", {}, el("td", { text: when(x.time) }), el("td", { text: x.snapshot_id.slice(0, 8) }),
      el("td", { class: "num", text: bytes(x.size) }), el("td", { text: x.snapshots + " snapshot(s)" }),
      el("td", {}, i ? el("button", { type: "button", onclick: () => showDiff(path, vs[i - 1].snapshot_id, x.snapshot_id), text: "diff to previous" }) : ""))),
  );
  // The version this snapshot holds is the newest one first seen at or before it.
  const snapTime = Date.parse((snapList.find((s) => s.id === snap) || {}).time);
  let cur = -1;
  vs.forEach((x, i) => { if (Date.parse(x.time) <= snapTime) cur = i; });
  $("diff-prev").disabled = cur < 1;
  $("diff-prev").onclick = () => showDiff(path, vs[cur - 1].snapshot_id, snap);
  $("viewer").dataset.loadMs = (performance.now() - t0).toFixed(1);
}

async function showDiff(path, from, to) {
  try {
    const d = await api(`/api/diff?path=${encodeURIComponent(path)}&from=${from}&to=${to}`);
    const pre = $("diff");
    pre.replaceChildren(...(d.diff || "(no difference)\n").split("\n").map((l) => el("span", { class: l.startsWith("+") ? "add" : l.startsWith("-") ? "del" : "" }, l + "\n")));
    pre.hidden = false;
    pre.dataset.ready = "1";
  } catch (e) { showError(e.message); }
}

// ---- restore
async function loadRestore() {
  const list = await snapshots();
  fillSnapshotSelect($("r-snapshot"), list.filter((s) => !s.tags.includes("pre-restore")), null);
  const base = info.default_target || "";
  const target = () => base + "/" + ($("r-snapshot").value || "").slice(0, 8);
  if (!$("r-target").value) $("r-target").value = target();
  $("r-snapshot").onchange = () => { $("r-target").value = target(); };
  $("r-what").onchange = () => {
    $("r-agent").hidden = $("r-what").value !== "agent";
    $("r-paths").hidden = $("r-what").value !== "files";
  };
}

async function doRestore(ev) {
  ev.preventDefault();
  const what = $("r-what").value;
  const req = { snapshot: $("r-snapshot").value, only: [], paths: [] };
  if (what === "agent") req.only.push("agent:" + $("r-agent").value.trim());
  else if (what === "files") req.paths = $("r-paths").value.split("\n").map((s) => s.trim()).filter(Boolean);
  else if (what) req.only.push(what);
  if ($("r-to-folder").checked) req.target = $("r-target").value;
  showError("");
  try {
    const started = await api("/api/restore", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(req) });
    const out = $("r-result");
    out.dataset.state = "running";
    out.textContent = "";
    $("r-progress").textContent = "restore starting…";
    await followRestore(started.job);
  } catch (e) {
    showError(e.message);
  }
}

function showRestoreEnd(last) {
  const out = $("r-result");
  const r = last.result;
  if (!r) {
    out.textContent = "";
    out.dataset.state = "failed";
    showError("restore failed: " + last.error);
    return;
  }
  const lines = [`restored ${r.files} files (${bytes(r.bytes)}), ${r.dirs} folders ${r.in_place ? "in place" : "to " + r.target}`];
  if (r.errors.length) lines.push(`${r.errors.length} files could not be restored: ` + r.errors.map((e) => e.path + ": " + e.error).join("; "));
  if (r.safety_snapshot_id) lines.push(`safety snapshot ${r.safety_snapshot_id.slice(0, 8)} holds what was there before`);
  if (r.undo) lines.push("to undo: " + r.undo);
  out.replaceChildren(...lines.map((l) => el("p", { text: l })));
  out.dataset.state = r.errors.length ? "failed" : "done";
  snapList = null;
}

// Follows the restore started as `job` (or, without one, whichever runs) to its end.
async function followRestore(job) {
  const p = $("r-progress");
  await follow("restore", (data) => {
    p.dataset.state = "running";
    p.dataset.seen = "1";
    p.textContent = progressLine(data);
  }, (data) => {
    const last = data.last;
    if (!last || (job && last.job !== job)) return;
    p.dataset.state = last.ok ? "done" : "failed";
    p.textContent = progressLine(last.progress) + (last.ok ? " — done" : " — failed");
    showRestoreEnd(last);
  });
}

// ---- back up now and restores, with progress pushed as server-sent events (read from a fetch
// stream, so the session token can go in a header; EventSource cannot send one).
function progressLine(p) {
  const files = p.files_total !== null ? `${p.files_done}/${p.files_total} ${p.unit}` : `${p.files_done} ${p.unit}`;
  const b = p.bytes_total !== null ? `${bytes(p.bytes_done)} / ${bytes(p.bytes_total)}` : bytes(p.bytes_done);
  const eta = p.eta_s !== null ? `, ETA ${secs(p.eta_s)}` : "";
  return `${p.what}${p.phase ? " (" + p.phase + ")" : ""}: ${files}, ${b}, ${bytes(p.rate_bytes_s)}/s${eta}`;
}

function showBackupEnd(last) {
  const st = $("backup-status");
  if (!last) return;
  const rec = last.record;
  if (last.ok) {
    st.textContent = `backup done: snapshot ${rec && rec.snapshot_id ? rec.snapshot_id.slice(0, 8) : "–"} saved` +
      (rec && rec.counters ? `, ${bytes(rec.counters.bytes_added)} new data in ${rec.duration_s.toFixed(1)}s` : "");
    st.dataset.state = "done";
  } else {
    st.textContent = "backup failed: " + last.error;
    st.dataset.state = "failed";
  }
}

// Reads the events of the running `what` (backup, restore): `onProgress` for each progress
// event, `onEnd` once with how the last one ended (`idle`: none ever ran).
async function follow(what, onProgress, onEnd) {
  const r = await api(`/api/${what}/events`, { raw: true });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const chunk = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = (chunk.match(/^event: (.*)$/m) || [])[1];
      const data = JSON.parse((chunk.match(/^data: (.*)$/m) || [, "null"])[1]);
      if (ev === "progress") onProgress(data);
      else await onEnd(data);
    }
  }
}

async function followBackup(job) {
  const bar = $("backup-bar");
  await follow("backup", (data) => {
    bar.hidden = false;
    bar.dataset.state = "running";
    $("backup-progress").textContent = progressLine(data);
  }, async (data) => {
    const last = data.last;
    if (!last || (job && last.job !== job)) return;
    bar.dataset.state = "done";
    $("backup-progress").textContent = last.ok ? "backup done" : "backup failed: " + last.error;
    snapList = null;
    if (document.body.dataset.page === "home") await loadHome();
    showBackupEnd(last);
  });
}

async function backupNow() {
  showError("");
  try {
    const started = await api("/api/backup", { method: "POST" });
    $("backup-bar").hidden = false;
    $("backup-bar").dataset.state = "running";
    $("backup-progress").textContent = "backup starting…";
    $("backup-status").textContent = "";
    $("backup-status").dataset.state = "";
    await followBackup(started.job);
  } catch (e) {
    showError(e.message);
  }
}

async function main() {
  try {
    await startSession();
    info = await api("/api/info");
  } catch (e) {
    showError(e.message);
    document.body.dataset.loaded = "error";
    return;
  }
  for (const w of document.querySelectorAll(".writes")) w.hidden = info.read_only;
  $("backup-now").addEventListener("click", backupNow);
  $("restore-form").addEventListener("submit", doRestore);
  window.addEventListener("hashchange", route);
  await route();
  // A backup or restore already running (started from another tab): follow it.
  const b = await api("/api/backup");
  if (b.running) followBackup(b.running.job).catch((e) => showError(e.message));
  const r = await api("/api/restore");
  if (r.running) followRestore(r.running.job).catch((e) => showError(e.message));
}

main();
