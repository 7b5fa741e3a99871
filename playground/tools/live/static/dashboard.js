// playground live dashboard: draws the topology and charts from /api/state and /api/stream.
// No framework, no downloads: plain DOM and SVG. Server strings go in with textContent only.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const MAX_POINTS = 300;
const NODE_W = 150, NODE_H = 64;
const live = {
  topology: null, snapshot: null, history: [], nodes: {},
  token: new URLSearchParams(location.search).get("token"),
};

function el(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toFixed(digits === undefined ? 1 : digits);
}

function say(text, isError) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = "message" + (isError ? " error" : "");
}

async function control(action, body) {
  const headers = {"content-type": "application/json"};
  if (live.token) headers["x-playground-token"] = live.token;
  try {
    const r = await fetch("/api/control/" + action, {method: "POST", headers, body: JSON.stringify(body || {})});
    const j = await r.json();
    if (!r.ok) { say(j.error || ("HTTP " + r.status), true); return; }
    say(j.done);
    if (j.snapshot) apply(j.snapshot);
  } catch (err) {
    say("control failed: " + err, true);
  }
}

// -- topology -----------------------------------------------------------------
function drawTopology() {
  const svg = document.getElementById("topology");
  svg.replaceChildren();
  const topo = live.topology;
  const pos = {};
  let maxX = 0, maxY = 0;
  for (const n of topo.nodes) {
    pos[n.name] = n;
    maxX = Math.max(maxX, n.x + NODE_W);
    maxY = Math.max(maxY, n.y + NODE_H);
  }
  svg.setAttribute("viewBox", `0 0 ${maxX + 20} ${maxY + 20}`);
  svg.style.height = Math.max(200, Math.min(600, maxY + 20)) + "px";
  const edges = el("g");
  live.edgeEls = [];
  for (const [a, b] of topo.edges) {
    const p = pos[a], q = pos[b];
    const x1 = p.x + NODE_W, y1 = p.y + NODE_H / 2, x2 = q.x, y2 = q.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    const path = el("path", {class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`});
    path.dataset.a = a; path.dataset.b = b;
    edges.appendChild(path);
    live.edgeEls.push(path);
  }
  svg.appendChild(edges);
  live.nodes = {};
  for (const n of topo.nodes) {
    const g = el("g", {class: "node " + (n.kind === "client" ? "client" : "up"), transform: `translate(${n.x},${n.y})`,
                        id: "node-" + n.name});
    g.appendChild(el("rect", {width: NODE_W, height: NODE_H}));
    g.appendChild(el("text", {x: 8, y: 16, class: "name"}, n.name));
    g.appendChild(el("text", {x: NODE_W - 8, y: 16, "text-anchor": "end", class: "kind"}, n.kind));
    const line1 = el("text", {x: 8, y: 34}, "");
    const line2 = el("text", {x: 8, y: 50}, "");
    const bar = el("rect", {x: 0, y: NODE_H - 4, width: 0, height: 4, class: "util-bar"});
    g.append(line1, line2, bar);
    const title = el("title", {}, n.name);
    g.appendChild(title);
    svg.appendChild(g);
    live.nodes[n.name] = {g, line1, line2, bar, title, kind: n.kind};
  }
  fillLinkSelects();
  buildTable();
}

function fillLinkSelects() {
  for (const id of ["link-a", "link-b"]) {
    const s = document.getElementById(id);
    s.replaceChildren();
    for (const n of live.topology.nodes) {
      const o = document.createElement("option");
      o.value = n.name; o.textContent = n.name;
      s.appendChild(o);
    }
  }
  const edge = live.topology.edges.find(([a, b]) => live.topology.nodes.some(n => n.name === a && n.kind !== "client"))
            || live.topology.edges[0];
  if (edge) {
    document.getElementById("link-a").value = edge[0];
    document.getElementById("link-b").value = edge[1];
  }
}

function buildTable() {
  const body = document.querySelector("#nodes tbody");
  body.replaceChildren();
  live.rows = {};
  for (const n of live.topology.nodes) {
    if (n.kind === "client") continue;
    const tr = document.createElement("tr");
    tr.id = "row-" + n.name;
    const cells = {};
    for (const key of ["name", "kind", "state", "util", "queue", "in_flight", "thr", "err", "mean", "p50", "p99", "hit"]) {
      const td = document.createElement("td");
      cells[key] = td;
      tr.appendChild(td);
    }
    cells.name.textContent = n.name;
    cells.kind.textContent = n.kind;
    cells.state.id = "state-" + n.name;
    const actions = document.createElement("td");
    const crash = document.createElement("button");
    crash.type = "button"; crash.textContent = "Crash"; crash.id = "crash-" + n.name;
    crash.addEventListener("click", () => control("crash", {node: n.name}));
    const restart = document.createElement("button");
    restart.type = "button"; restart.textContent = "Restart"; restart.id = "restart-" + n.name;
    restart.addEventListener("click", () => control("restart", {node: n.name}));
    actions.append(crash, " ", restart);
    tr.appendChild(actions);
    body.appendChild(tr);
    live.rows[n.name] = cells;
  }
}

function renderNodes(snap) {
  for (const [name, v] of Object.entries(snap.nodes || {})) {
    const n = live.nodes[name];
    if (!n) continue;
    n.g.setAttribute("class", "node " + v.state);
    n.g.dataset.state = v.state;
    n.line1.textContent = `${v.state} · util ${fmt(v.util * 100, 0)}% · q ${fmt(v.queue, 1)}`;
    n.line2.textContent = `${fmt(v.throughput_per_s, 0)}/s · p99 ${fmt(v.p99_ms, 1)} ms` +
      (v.hit_ratio !== null && v.hit_ratio !== undefined ? ` · hit ${fmt(v.hit_ratio * 100, 0)}%` : "") +
      (v.errors_per_s > 0 ? ` · ${fmt(v.errors_per_s, 0)} err/s` : "");
    n.bar.setAttribute("width", Math.round(NODE_W * Math.min(1, v.util)));
    n.title.textContent = `${name} (${v.kind}) ${JSON.stringify(v.detail)}`;
    const c = live.rows[name];
    if (!c) continue;
    c.state.textContent = v.state;
    c.state.className = "state-" + v.state;
    c.util.textContent = fmt(v.util * 100, 0) + "%";
    c.queue.textContent = fmt(v.queue, 2);
    c.in_flight.textContent = v.in_flight;
    c.thr.textContent = fmt(v.throughput_per_s, 1);
    c.err.textContent = fmt(v.errors_per_s, 1);
    c.mean.textContent = fmt(v.mean_ms, 2);
    c.p50.textContent = fmt(v.p50_ms, 2);
    c.p99.textContent = fmt(v.p99_ms, 2);
    c.hit.textContent = v.hit_ratio === null || v.hit_ratio === undefined ? "–" : fmt(v.hit_ratio * 100, 0);
  }
  const cut = new Set((snap.links && snap.links.partitioned || []).map(([a, b]) => a + "\u0000" + b));
  for (const path of live.edgeEls || []) {
    const isCut = cut.has(path.dataset.a + "\u0000" + path.dataset.b);
    path.setAttribute("class", "edge" + (isCut ? " cut" : ""));
  }
}

// -- charts ---------------------------------------------------------------------
function chart(id, series, events) {
  const svg = document.getElementById(id);
  const W = 600, H = 180, L = 44, R = 10, T = 10, B = 22;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const pts = live.history;
  if (!pts.length) {
    svg.appendChild(el("text", {x: W / 2, y: H / 2, "text-anchor": "middle", class: "tick"}, "waiting for the first second…"));
    return;
  }
  const t0 = pts[0].t_s - 1, t1 = Math.max(pts[pts.length - 1].t_s, t0 + 10);
  let ymax = 0;
  for (const s of series) for (const p of pts) if (p[s.key] !== null && p[s.key] > ymax) ymax = p[s.key];
  ymax = ymax > 0 ? ymax * 1.15 : 1;
  const x = t => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = v => H - B - v / ymax * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    svg.appendChild(el("line", {x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid"}));
    svg.appendChild(el("text", {x: L - 4, y: y(v) + 3, "text-anchor": "end", class: "tick"}, v >= 100 ? v.toFixed(0) : v.toFixed(1)));
  }
  svg.appendChild(el("line", {x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis"}));
  svg.appendChild(el("text", {x: L, y: H - 6, class: "tick"}, `${t0.toFixed(0)} s`));
  svg.appendChild(el("text", {x: W - R, y: H - 6, "text-anchor": "end", class: "tick"}, `${t1.toFixed(0)} s`));
  for (const [t, what] of events) {
    if (t < t0 || t > t1) continue;
    svg.appendChild(el("line", {x1: x(t), x2: x(t), y1: T, y2: H - B, class: "fault"}));
    const label = el("text", {x: x(t) + 2, y: T + 8, class: "fault-label"}, what);
    label.appendChild(el("title", {}, `t=${t.toFixed(1)} s ${what}`));
    svg.appendChild(label);
  }
  let lx = L + 6;
  for (const s of series) {
    const d = pts.filter(p => p[s.key] !== null).map(p => `${x(p.t_s).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(" ");
    svg.appendChild(el("polyline", {points: d, class: "series", stroke: s.color}));
    svg.appendChild(el("text", {x: lx, y: T + 20, class: "tick", fill: s.color}, s.label));
    lx += 70;
  }
}

// -- everything ---------------------------------------------------------------------
function apply(snap) {
  live.snapshot = snap;
  const last = live.history.length ? live.history[live.history.length - 1].t_s : -Infinity;
  for (const p of snap.points || []) if (p.t_s > last) live.history.push(p);
  if (live.history.length > MAX_POINTS) live.history.splice(0, live.history.length - MAX_POINTS);
  render();
}

function render() {
  const snap = live.snapshot;
  if (!snap || !snap.nodes) return;
  const status = document.getElementById("status");
  status.textContent = (snap.running ? "running" : "stopped") + ` · t = ${fmt(snap.t_s, 0)} s` +
    (snap.load_running === false ? " · load stopped" : "");
  status.className = "status" + (snap.running ? "" : " down");
  const c = snap.clients || {};
  const lastPoint = c.last || {};
  document.getElementById("tot-ok").textContent = fmt(lastPoint.ok_per_s, 0);
  document.getElementById("tot-err").textContent = fmt(lastPoint.errors_per_s, 0);
  document.getElementById("tot-p50").textContent = fmt(lastPoint.p50_ms, 2);
  document.getElementById("tot-p99").textContent = fmt(lastPoint.p99_ms, 2);
  document.getElementById("tot-sent").textContent = c.sent === undefined ? "–" : c.sent;
  document.getElementById("tot-failed").textContent = c.failed === undefined ? "–" : c.failed;
  const lag = snap.lag || null;
  const lagText = !lag ? "–" : `${fmt(lag.behind_s, 2)} s` +
    (lag.stalls ? ` (${lag.stalls} stall${lag.stalls === 1 ? "" : "s"}, longest ${fmt(lag.longest_stall_s, 2)} s)` : "") +
    (lag.stalled_since_s !== null ? " · stalled now" : "");
  const lagCell = document.getElementById("tot-lag");
  lagCell.textContent = lagText;
  lagCell.className = lag && lag.stalls ? "warn" : "";
  const info = (snap.loads || []).map(l => `${l.name}: ${l.users !== null ? l.users + " users, " : ""}` +
    `${l.rate_per_s !== null ? fmt(l.rate_per_s, 1) + "/s" : ""}${l.running ? "" : " (stopped)"}`).join("; ");
  document.getElementById("load-info").textContent = info;
  renderNodes(snap);
  const events = snap.events || [];
  chart("chart-latency", [{key: "p50_ms", label: "p50", color: "#2874a6"}, {key: "p99_ms", label: "p99", color: "#b03a2e"}], events);
  chart("chart-throughput", [{key: "ok_per_s", label: "ok/s", color: "#1e8449"}, {key: "errors_per_s", label: "errors/s", color: "#b03a2e"}], events);
  const list = document.getElementById("events");
  list.replaceChildren();
  for (const [t, what] of events.slice(-50).reverse()) {
    const li = document.createElement("li");
    li.textContent = `t=${t.toFixed(1)} s  ${what}`;
    list.appendChild(li);
  }
}

function connect() {
  const source = new EventSource("/api/stream");
  source.onmessage = e => apply(JSON.parse(e.data));
  source.onerror = () => {
    const status = document.getElementById("status");
    status.textContent = "disconnected; retrying…";
    status.className = "status down";
  };
}

function wireControls() {
  document.getElementById("load-start").addEventListener("click", () => control("start"));
  document.getElementById("load-stop").addEventListener("click", () => control("stop"));
  document.getElementById("set-users").addEventListener("click", () =>
    control("load", {users: Number(document.getElementById("users").value)}));
  document.getElementById("set-rate").addEventListener("click", () =>
    control("load", {rate: Number(document.getElementById("rate").value)}));
  const link = () => ({a: document.getElementById("link-a").value, b: document.getElementById("link-b").value});
  document.getElementById("partition").addEventListener("click", () => control("partition", link()));
  document.getElementById("repair").addEventListener("click", () => control("repair", link()));
}

async function init() {
  wireControls();
  const r = await fetch("/api/state");
  const j = await r.json();
  live.topology = j.topology;
  live.history = j.history || [];
  drawTopology();
  const loads = (j.snapshot && j.snapshot.loads) || [];
  if (loads.length) {
    if (loads[0].users !== null) document.getElementById("users").value = loads[0].users;
    if (loads[0].rate_per_s !== null) document.getElementById("rate").value = loads[0].rate_per_s;
  }
  if (j.auth_required && !live.token) say("controls need ?token=… in the address (printed at start-up)", true);
  if (j.snapshot) { live.snapshot = j.snapshot; render(); }
  connect();
}

init();
