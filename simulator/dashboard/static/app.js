/* The pushsim dashboard page: live state over server-sent events, actions over the JSON API. */
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const PROVIDERS = [["apns", "APNs"], ["fcm", "FCM"], ["webpush", "Web Push"]];
const SPAN = 120; // seconds of history in the charts
const STATUS_COLORS = {
  "200": "#2e7d32", "201": "#43a047", "202": "#66bb6a", "204": "#81c784",
  "400": "#ef6c00", "401": "#f9a825", "403": "#ad1457", "404": "#6d4c41", "405": "#8d6e63",
  "410": "#7b1fa2", "413": "#5d4037", "429": "#ff8f00", "500": "#b71c1c", "503": "#e53935",
  reset: "#546e7a", goaway: "#78909c", closed: "#90a4ae", hang: "#37474f",
};
const KIND_COLORS = {
  outage: "#e53935", throttle: "#ff8f00", latency: "#1e88e5", errors: "#8e24aa",
  token_churn: "#6d4c41", auth: "#00897b",
};
const LATENCY_COLORS = { p50: "#1e88e5", p90: "#8e24aa", p99: "#e53935" };

let state = { series: [] };
let vocab = null;
let shownDevice = null;

const $ = (id) => document.getElementById(id);

function node(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") n.className = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v);
  }
  for (const c of children) n.append(c instanceof Node ? c : String(c ?? ""));
  return n;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function td(content, cls) {
  return node("td", cls ? { class: cls } : {}, content);
}

function clock(wall) {
  return wall ? new Date(wall * 1000).toLocaleTimeString() : "–";
}

function short(token) {
  return token && token.length > 18 ? `${token.slice(0, 8)}…${token.slice(-6)}` : token || "–";
}

async function api(method, path, body) {
  const opts = { method, headers: { "x-pushsim-token": TOKEN, "content-type": "application/json" } };
  if (body !== undefined) opts.body = JSON.stringify(body);
  const r = await fetch(path, opts);
  const doc = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(doc.error || `HTTP ${r.status}`);
  return doc;
}

/* -- providers ---------------------------------------------------------------------------- */

/* The charts' time axis: the last SPAN seconds, or the run so far (at least 30 s wide). */
function domain() {
  const now = state.now ? state.now.run_time : 0;
  const first = state.series && state.series.length ? state.series[0].t : now;
  const x0 = Math.max(first, now - SPAN, 0);
  return [x0, Math.max(now, x0 + 30)];
}

function empty(text, span) {
  return node("tr", {}, node("td", { class: "muted", colspan: String(span) }, text));
}

function providerCard(p, label) {
  const stat = (name, id, cls) =>
    node("div", {}, node("div", { class: "label" }, name), node("div", { id, class: cls || "" }, "0"));
  return node("div", { class: "card provider", id: `card-${p}` },
    node("h2", {}, label),
    node("div", { class: "stats" },
      stat("requests/s", `now-${p}`, "big"), stat("answered", `total-${p}`),
      stat("connections", `conns-${p}`), stat("streams", `streams-${p}`),
      stat("p50 / p99 ms", `lat-${p}`)),
    node("h3", {}, "requests/s by status"),
    svg(`rate-${p}`), node("div", { class: "legend", id: `rate-${p}-legend` }),
    node("h3", {}, "latency, ms"),
    svg(`latency-${p}`), node("div", { class: "legend", id: `latency-${p}-legend` }),
    node("h3", {}, "now, by reason (requests/s)"),
    node("table", { id: `reasons-${p}` }, node("tbody")));
}

function svg(id) {
  const s = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  s.setAttribute("id", id);
  s.setAttribute("class", "chart");
  return s;
}

function renderProvider(p) {
  const series = state.series || [];
  const last = series.length ? series[series.length - 1].providers[p] || {} : {};
  const [x0, x1] = domain();
  $(`now-${p}`).textContent = Charts.fmt(last.total || 0);
  $(`total-${p}`).textContent = ((state.totals || {})[p] || {}).total || 0;
  $(`conns-${p}`).textContent = last.connections || 0;
  $(`streams-${p}`).textContent = last.streams || 0;
  const lat = last.latency_ms;
  $(`lat-${p}`).textContent = lat ? `${Charts.fmt(lat.p50)} / ${Charts.fmt(lat.p99)}` : "–";
  const statuses = new Set();
  for (const pt of series) for (const s of Object.keys((pt.providers[p] || {}).status || {})) statuses.add(s);
  const rateSeries = [...statuses].sort().map((s) => ({
    name: s, color: STATUS_COLORS[s] || "#607d8b",
    points: series.map((pt) => [pt.t, ((pt.providers[p] || {}).status || {})[s] || 0]),
  }));
  Charts.lines($(`rate-${p}`), { x0, x1, series: rateSeries });
  Charts.legend($(`rate-${p}-legend`), rateSeries);
  const latSeries = Object.keys(LATENCY_COLORS).map((q) => ({
    name: q, color: LATENCY_COLORS[q],
    points: series.filter((pt) => (pt.providers[p] || {}).latency_ms)
      .map((pt) => [pt.t, pt.providers[p].latency_ms[q]]),
  }));
  Charts.lines($(`latency-${p}`), { x0, x1, series: latSeries, height: 110 });
  Charts.legend($(`latency-${p}-legend`), latSeries);
  const reasons = Object.entries(last.reason || {}).sort((a, b) => b[1] - a[1]);
  fill($(`reasons-${p}`).tBodies[0], reasons.length
    ? reasons.map(([k, v]) => node("tr", {}, td(k), td(Charts.fmt(v), "num")))
    : [empty("no sends in the last tick", 2)]);
}

/* -- faults ---------------------------------------------------------------------------------- */

function faultRows() {
  const now = state.now ? state.now.run_time : 0;
  const rows = new Map();
  for (const w of state.windows || []) {
    rows.set(w.fault, { id: w.fault, kind: w.kind, provider: w.provider, start: w.start,
      end: w.end, open: w.open, variant: w.variant, color: KIND_COLORS[w.kind] || "#607d8b" });
  }
  for (const f of state.faults || []) {
    if (rows.has(f.id)) continue;
    rows.set(f.id, { id: f.id, kind: f.kind, provider: f.provider, start: f.start_s,
      end: f.end_s ?? now + 60, open: false, color: KIND_COLORS[f.kind] || "#607d8b" });
  }
  return [...rows.values()].filter((r) => r.end >= now - SPAN);
}

function renderFaults() {
  const [x0, x1] = domain();
  const now = state.now ? state.now.run_time : 0;
  Charts.timeline($("fault-axis"), { rows: faultRows(), now, x0, x1: x1 + 60 });
  const faults = state.faults || [];
  fill($("fault-plan").tBodies[0], faults.length ? faults.map((f) => {
    const injected = Object.entries(f.injected || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    const end = f.end_s == null ? "until cleared" : `${f.end_s.toFixed(1)}s`;
    return node("tr", { "data-fault": f.id }, td(f.id, "mono"), td(f.kind), td(f.provider),
      td(`${f.start_s.toFixed(1)}s → ${end}`), td(f.state, `state-${f.state}`), td(injected || "–"),
      td(node("button", { class: "danger", onclick: () => clearFault(f.id) }, "clear")));
  }) : [empty("no faults in the plan: apply a preset or the fault form below", 7)]);
}

async function applyFault(body, out) {
  try {
    const doc = await api("POST", "/api/faults", body);
    if (out) { out.className = "muted"; out.textContent = `applied ${doc.faults.map((f) => f.id).join(", ")}`; }
  } catch (e) {
    if (out) { out.className = "err"; out.textContent = e.message; } else alert(e.message);
  }
}

async function clearFault(id) {
  try { await api("DELETE", `/api/faults/${encodeURIComponent(id)}`); } catch (e) { alert(e.message); }
}

function buildPresets() {
  const box = $("presets");
  const secs = vocab.preset_seconds;
  for (const [p, label] of PROVIDERS) {
    for (const name of vocab.presets) {
      box.appendChild(node("button", {
        type: "button", "data-preset": name, "data-provider": p,
        onclick: () => applyFault({ preset: name, provider: p, duration: secs }, $("form-result")),
      }, `${name} ${label} ${secs} s`));
    }
  }
}

function fieldInput(f) {
  if (f.type === "choice") {
    return node("select", { name: f.name }, node("option", { value: "" }, "(default)"),
      ...f.options.map((o) => node("option", { value: o }, o)));
  }
  const hint = { duration: "e.g. 10s, 250ms", number: "a number", text: "" }[f.type];
  return node("input", { name: f.name, placeholder: hint, "data-type": f.type });
}

function buildForm() {
  const kind = $("form-kind");
  for (const k of vocab.kinds) kind.appendChild(node("option", { value: k }, k));
  const draw = () => {
    const fields = [...vocab.common, ...vocab.fields[kind.value]];
    $("form-fields").replaceChildren(...fields.map((f) => node("label", {}, f.name, fieldInput(f))));
    $("form-fields").querySelector("[name=provider]").value = "apns";
  };
  kind.addEventListener("change", draw);
  draw();
  $("fault-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = { kind: kind.value };
    for (const input of $("form-fields").querySelectorAll("input, select")) {
      const v = input.value.trim();
      if (!v) continue;
      body[input.name] = input.dataset.type === "number" && !isNaN(Number(v)) ? Number(v) : v;
    }
    applyFault(body, $("form-result"));
  });
}

/* -- devices ----------------------------------------------------------------------------------- */

function renderDevice(dev, message) {
  const box = $("device");
  if (!dev) { box.replaceChildren(message ? node("p", { class: "err" }, message) : ""); return; }
  shownDevice = dev;
  const act = (label, fn, cls) => node("button", { class: cls || "ghost", onclick: fn }, label);
  box.replaceChildren(
    node("p", {}, node("b", {}, `${dev.id} `), `${dev.provider} · ${dev.app} · `,
      node("span", { id: "device-state" }, `${dev.state}${dev.online ? "" : " · offline"}`),
      ` · generation ${dev.generation} · ${dev.inbox_total} received, ${dev.pending} held`),
    node("div", { class: "mono" }, dev.subscription ? dev.subscription.endpoint : dev.token),
    node("div", { class: "row" },
      act(dev.online ? "take offline" : "bring online", () => deviceCall("POST", "online", { online: !dev.online })),
      act("rotate (reinstall)", () => deviceCall("POST", "rotate", {})),
      act("uninstall", () => deviceCall("DELETE", "", undefined), "danger"),
      act("refresh", () => deviceCall("GET", "", undefined))),
    node("h3", {}, "inbox (newest first)"),
    node("pre", { id: "inbox" }, JSON.stringify(dev.inbox, null, 2)));
}

async function deviceCall(method, action, body) {
  const path = `/api/devices/${encodeURIComponent(shownDevice.id)}${action ? "/" + action : ""}`;
  try { renderDevice(await api(method, path, body)); } catch (e) { renderDevice(null, e.message); }
}

async function findDevice(ev) {
  ev.preventDefault();
  const q = $("find-token").value.trim();
  if (!q) return;
  try { renderDevice(await api("GET", `/api/devices/find?token=${encodeURIComponent(q)}`)); }
  catch (e) { renderDevice(null, e.message); }
}

function renderTables() {
  const devices = (state.stats || {}).devices || {};
  fill($("device-counts").tBodies[0], PROVIDERS.map(([p, label]) =>
    node("tr", {}, td(label), td((devices[p] || {}).live || 0, "num"), td((devices[p] || {}).total || 0, "num"))));
  fill($("feed").tBodies[0], (state.feed || []).map((e) => node("tr", {},
    td(clock(e.at)), td(e.provider), td(e.event), td(e.cause), td(e.device_id, "mono"),
    td(`${short(e.old_token)} → ${short(e.new_token)}`, "mono"))));
  const dead = state.dead || { latest: [] };
  $("dead-total").textContent = dead.tokens ? `(${dead.sends} sends to ${dead.tokens} tokens)` : "(none)";
  fill($("dead").tBodies[0], dead.latest.map((r) => node("tr", {},
    td(r.provider), td(short(r.token), "mono"), td(r.device_id || "–", "mono"), td(r.count, "num"),
    td(clock(r.died_at)), td(clock(r.last_rejected_at)))));
}

/* -- run progress ------------------------------------------------------------------------------ */

function renderRun() {
  const run = state.progress;
  $("run").classList.toggle("hidden", !run);
  if (!run) return;
  $("run-name").textContent = run.scenario;
  $("run-phase").textContent = run.phase;
  const share = run.duration_s ? Math.min(1, (run.elapsed_s || 0) / run.duration_s) : 0;
  $("run-bar").style.width = `${(share * 100).toFixed(1)}%`;
  $("run-counts").textContent =
    `${(run.elapsed_s || 0).toFixed(0)} s of ${run.duration_s} s · users ${run.users ?? "–"} · ` +
    `notifications ${run.sent ?? "–"} · deliveries ${run.delivered ?? "–"}`;
  fill($("objectives").tBodies[0], run.objectives.map((o) => node("tr", {},
    td(o.name), td(o.value == null ? "at the end" : `${Charts.fmt(o.value)}${o.unit}`, "num"),
    td(`${o.op} ${o.bound}${o.unit}`), td(o.ok == null ? "" : o.ok ? "holding" : "missed", o.ok ? "ok" : "fail"))));
}

/* -- the stream ----------------------------------------------------------------------------------- */

function render() {
  if (state.now) $("clock").textContent = `run time ${state.now.run_time.toFixed(0)} s · ${clock(state.now.wall)}`;
  for (const [p] of PROVIDERS) renderProvider(p);
  renderFaults();
  renderTables();
  renderRun();
}

function applyUpdate(update) {
  for (const [k, v] of Object.entries(update)) {
    if (k === "point") {
      state.series.push(v);
      if (state.series.length > 180) state.series.splice(0, state.series.length - 180);
    } else state[k] = v;
  }
}

function connect() {
  const link = $("link");
  const es = new EventSource(`/api/events?token=${encodeURIComponent(TOKEN)}`);
  es.addEventListener("open", () => { link.className = "pill on"; link.textContent = "live"; });
  es.addEventListener("error", () => { link.className = "pill off"; link.textContent = "reconnecting…"; });
  es.addEventListener("snapshot", (e) => { state = JSON.parse(e.data); state.series = state.series || []; render(); });
  es.addEventListener("update", (e) => { applyUpdate(JSON.parse(e.data)); render(); });
}

async function main() {
  for (const [p, label] of PROVIDERS) $("providers").appendChild(providerCard(p, label));
  $("find-form").addEventListener("submit", findDevice);
  $("clear-all").addEventListener("click", async () => {
    try { await api("DELETE", "/api/faults"); } catch (e) { alert(e.message); }
  });
  try {
    vocab = await api("GET", "/api/vocabulary");
    buildPresets();
    buildForm();
  } catch (e) {
    $("link").textContent = `refused: ${e.message}`;
    return;
  }
  connect();
}

main();
