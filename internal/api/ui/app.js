// sculpt's dashboard: polls the /v1 API of the sculpt that serves it and
// draws what it answers. No framework and nothing fetched from elsewhere.
"use strict";

const state = {
  status: null, workloads: [], plan: null, map: null, topology: null, journal: [],
  objectives: null, audit: [], auditNext: 0, selected: null, history: null, sort: "cpu_util", filter: "",
};
const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#e53935", "#6d4c41", "#3949ab", "#c0ca33", "#d81b60", "#546e7a", "#00acc1"];

function el(tag, attrs, ...kids) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.setAttribute("class", v);
    else if (k === "text") e.textContent = v;
    else if (k === "bg") e.style.background = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function colorOf(name) {
  if (!name) return "#9e9e9e";
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${path}: ${body.error || r.status}`);
  return body;
}

function human(gene, v) {
  if (v === undefined || v === null) return "—";
  if (gene.endsWith("_bytes")) return bytes(v);
  if (gene.endsWith("_bps")) return bytes(v) + "/s";
  if (Math.abs(v) >= 1000) return v.toExponential(2);
  return Number(v.toPrecision(3)).toString();
}

function bytes(v) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function nameOf(id) {
  const w = state.workloads.find((d) => d.id === id);
  return w ? w.name : id;
}

function actionText(a) {
  if (!a) return "";
  const parts = [a.kind];
  for (const [k, v] of Object.entries(a)) {
    if (k === "kind" || v === null || v === undefined) continue;
    parts.push(`${k}=${Array.isArray(v) ? v.join(",") : typeof v === "object" ? JSON.stringify(v) : v}`);
  }
  return parts.join(" ");
}

// --- workloads -------------------------------------------------------------

function sortKey(d, key) {
  switch (key) {
    case "name": case "workload_kind": case "archetype": return (d[key] || "").toLowerCase();
    case "novelty": return -(d.novelty ?? -1);
    default: return -(d.genes?.[key] ?? -1);
  }
}

function drawWorkloads() {
  const tbody = document.querySelector("#workloads tbody");
  const f = state.filter.toLowerCase();
  const rows = state.workloads
    .filter((d) => !f || [d.name, d.id, d.workload_kind, d.archetype].some((s) => (s || "").toLowerCase().includes(f)))
    .sort((a, b) => {
      const x = sortKey(a, state.sort), y = sortKey(b, state.sort);
      return x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1;
    });
  const ded = state.plan?.plan?.dedicated || {};
  const arranged = new Set(state.plan?.arranged || []);
  const decided = {};
  for (const d of state.plan?.plan?.decisions || []) decided[d.workload] = d.rule;
  tbody.replaceChildren(...rows.map((d) => {
    const g = d.genes || {};
    const arr = [];
    if (ded[d.id]) arr.push(`cpus ${ded[d.id].join(",")}`);
    if (arranged.has(d.id)) arr.push("arranged");
    return el("tr", { "data-id": d.id, class: d.id === state.selected ? "selected" : null, onclick: () => select(d.id) },
      el("td", { title: d.id }, el("span", { class: "swatch", bg: colorOf(d.archetype) }), d.name),
      el("td", { text: d.workload_kind }),
      el("td", { text: d.archetype ? `${d.archetype} (${(d.confidence || 0).toFixed(2)})` : "—" }),
      el("td", {}, d.novelty === null || d.novelty === undefined ? "—" : d.novelty.toFixed(2),
        d.novel ? el("span", { class: "badge novel", text: "novel" }) : null,
        d.phase_change ? el("span", { class: "badge phase", text: "phase change" }) : null),
      el("td", { class: "num", text: human("cpu_util", g.cpu_util) }),
      el("td", { class: "num", text: human("rss_bytes", g.rss_bytes) }),
      el("td", { class: "num", text: human("runq_delay_frac", g.runq_delay_frac) }),
      el("td", { text: arr.join(", ") || "—" }),
      el("td", { text: decided[d.id] || "—" }));
  }));
  for (const th of document.querySelectorAll("#workloads th[data-sort]")) th.classList.toggle("sorted", th.dataset.sort === state.sort);
}

function select(id) {
  state.selected = state.selected === id ? null : id;
  drawWorkloads();
  drawMap();
  drawTimeline();
  refreshGenes();
}

// --- the DNA map -----------------------------------------------------------

function drawMap() {
  const svg = document.getElementById("map");
  const m = state.map;
  if (!m) return;
  const W = 480, H = 320, pad = 24;
  const pts = m.points;
  const xs = pts.map((p) => p.x), ys = pts.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs, 0), Math.max(...xs, 0)], [y0, y1] = [Math.min(...ys, 0), Math.max(...ys, 0)];
  const sx = (x) => pad + ((x - x0) / ((x1 - x0) || 1)) * (W - 2 * pad);
  const sy = (y) => H - pad - ((y - y0) / ((y1 - y0) || 1)) * (H - 2 * pad);
  const kids = [
    el("svg:line", { x1: pad, y1: sy(0), x2: W - pad, y2: sy(0), stroke: "#e0e0e0" }),
    el("svg:line", { x1: sx(0), y1: pad, x2: sx(0), y2: H - pad, stroke: "#e0e0e0" }),
    el("svg:text", { x: W - pad, y: H - 6, "text-anchor": "end", "font-size": 10, fill: "#999",
      text: `PC1 ${(m.explained[0] * 100).toFixed(0)}% · PC2 ${(m.explained[1] * 100).toFixed(0)}% of variance` }),
  ];
  for (const p of pts) {
    const sel = p.id === state.selected;
    kids.push(el("svg:circle", {
      cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: sel ? 9 : 6, fill: colorOf(p.archetype),
      stroke: p.novel ? "#c0392b" : sel ? "#000" : "#fff", "stroke-width": p.novel || sel ? 3 : 1, "data-id": p.id,
      class: p.novel ? "novel" : null, onclick: () => select(p.id),
    }, el("svg:title", { text: `${p.name}: ${p.archetype || "no archetype yet"}${p.novel ? " (novel)" : ""}${p.phase_change ? " (phase change)" : ""}` })));
    const left = sx(p.x) > W * 0.6; // labels stay inside the map
    if (p.novel || sel) kids.push(el("svg:text", { x: sx(p.x) + (left ? -10 : 10), y: sy(p.y) + 4, "font-size": 11,
      "text-anchor": left ? "end" : "start", text: p.name + (p.novel ? " (novel)" : "") }));
  }
  svg.replaceChildren(...kids);
  const arch = [...new Set(pts.map((p) => p.archetype))].sort();
  document.getElementById("map-legend").replaceChildren(...arch.map((a) =>
    el("span", {}, el("span", { class: "swatch", bg: colorOf(a) }), a || "no archetype yet")),
  el("span", { class: "muted", text: "red ring: novel" }));
  document.getElementById("map-note").textContent =
    `${pts.length} placed` + (m.unplaced.length ? `, ${m.unplaced.length} without an embedding yet` : "");
}

// --- genes over time -------------------------------------------------------

async function refreshGenes() {
  const box = document.getElementById("genes");
  const label = document.getElementById("genes-for");
  if (!state.selected) {
    label.textContent = "select a workload";
    state.history = null;
    box.replaceChildren();
    return;
  }
  // The whole history once, then only the frames after the last one held.
  let h = state.history;
  if (!h || h.id !== state.selected) {
    h = state.history = await api("/v1/history?workload=" + encodeURIComponent(state.selected));
  } else if (h.frames.length) {
    const more = await api(`/v1/history?workload=${encodeURIComponent(h.id)}&since=${encodeURIComponent(h.frames[h.frames.length - 1].time)}`);
    h.frames = h.frames.concat(more.frames).slice(-240);
  }
  label.textContent = `${h.name} (${h.id}), ${h.frames.length} intervals`;
  const names = [];
  for (const f of h.frames) for (const g of Object.keys(f.genes || {})) if (!names.includes(g)) names.push(g);
  names.sort();
  box.replaceChildren(...names.map((g) => {
    const vals = h.frames.map((f) => f.genes?.[g]);
    const known = vals.filter((v) => v !== undefined);
    const lo = Math.min(...known), hi = Math.max(...known);
    const n = Math.max(vals.length - 1, 1);
    // A gap (gene absent that interval) breaks the line.
    const lines = [];
    let cur = [];
    vals.forEach((v, i) => {
      if (v === undefined) { if (cur.length) lines.push(cur); cur = []; return; }
      cur.push(`${((i / n) * 140).toFixed(1)},${(32 - ((v - lo) / ((hi - lo) || 1)) * 30).toFixed(1)}`);
    });
    if (cur.length) lines.push(cur);
    return el("div", { class: "spark", "data-gene": g },
      el("div", {}, el("span", { text: g }), el("b", { text: human(g, vals[vals.length - 1]) })),
      el("svg:svg", { viewBox: "0 0 140 34", preserveAspectRatio: "none" },
        ...lines.map((l) => el("svg:polyline", { points: l.length === 1 ? `${l[0]} ${l[0]}` : l.join(" ") }))),
      el("div", { class: "muted" }, el("span", { text: human(g, lo) }), el("span", { text: human(g, hi) })));
  }));
}

// --- decisions timeline ----------------------------------------------------

async function refreshAudit() {
  for (let i = 0; i < 10; i++) {
    const page = await api(`/v1/audit?after=${state.auditNext}&limit=1000`);
    state.audit.push(...page.records);
    const done = page.next === state.auditNext;
    state.auditNext = page.next;
    if (done || page.records.length < 1000) break;
  }
  if (state.audit.length > 2000) state.audit = state.audit.slice(-2000);
}

function drawTimeline() {
  const only = document.getElementById("timeline-selected").checked && state.selected;
  const rows = [];
  for (let i = state.audit.length - 1; i >= 0 && rows.length < 300; i--) {
    const r = state.audit[i].record;
    if (only && r.workload !== state.selected) continue;
    let reward = "";
    if (r.reward_before && r.reward) reward = `${r.reward_before.value.toFixed(3)} → ${r.reward.value.toFixed(3)}`;
    else if (r.reward) reward = r.reward.value.toFixed(3);
    else if (r.reward_before) reward = `before ${r.reward_before.value.toFixed(3)}`;
    if (r.verdict) reward += ` (${r.verdict})`;
    rows.push(el("tr", { class: `ev-${r.event}` },
      el("td", { text: (r.time || "").slice(11, 19) }), el("td", { text: r.tick }),
      el("td", { text: r.event }), el("td", { text: r.name || (r.workload ? nameOf(r.workload) : "") , title: r.workload }),
      el("td", { text: r.rule || "" }), el("td", { text: actionText(r.action) }),
      el("td", { text: r.reason || r.error || "" }), el("td", { text: reward })));
  }
  document.querySelector("#timeline tbody").replaceChildren(...rows);
}

// --- topology --------------------------------------------------------------

function drawTopology() {
  const t = state.topology?.topology;
  const box = document.getElementById("topology");
  if (!t) return;
  const holder = {};
  for (const [id, cpus] of Object.entries(state.plan?.plan?.dedicated || {})) for (const c of cpus) holder[c] = id;
  const shared = new Set(state.plan?.plan?.shared || []);
  const irqs = {};
  for (const e of state.journal) {
    const a = e.action;
    if (a && a.kind === "irq") for (const c of a.cpus || []) (irqs[c] ||= []).push(a.irq);
  }
  const holders = new Set();
  box.replaceChildren(...(t.nodes || []).map((n) => {
    const nics = (t.nics || []).filter((x) => x.numa_node === n.id).map((x) => x.name);
    return el("div", { class: "node", "data-node": n.id },
      el("b", { text: `node ${n.id}` }), ` ${bytes(n.mem_total_bytes)}`, nics.length ? ` · NICs ${nics.join(", ")}` : "",
      el("div", { class: "cpus" }, ...(n.cpus || []).map((c) => {
        const id = holder[c];
        if (id) holders.add(id);
        const w = state.workloads.find((d) => d.id === id);
        return el("div", { class: "cpu" + (shared.has(c) ? " shared" : ""), "data-cpu": c, bg: id ? colorOf(id) : null,
          title: id ? `CPU ${c}: held by ${nameOf(id)}` : shared.has(c) ? `CPU ${c}: shared` : `CPU ${c}` },
        el("div", { text: `${c}` }), id ? el("div", { text: (w ? w.name : id).slice(0, 8) }) : null,
        irqs[c] ? el("div", { class: "irq", text: `irq ${irqs[c].join(",")}` }) : null);
      })));
  }));
  document.getElementById("topology-legend").replaceChildren(
    ...[...holders].map((id) => el("span", {}, el("span", { class: "swatch", bg: colorOf(id) }), nameOf(id))),
    el("span", { class: "muted", text: "hatched: shared CPUs · irq N: interrupts sculpt moved there" }));
}

// --- objectives ------------------------------------------------------------

function drawObjectives() {
  const o = state.objectives;
  if (!o) return;
  const fmt = (s) => (s.latency ? `${(s.value * 1000).toFixed(3)} ms` : s.value.toFixed(2));
  const rows = (o.attainment || []).map((s) => {
    const st = !s.known ? ["not measured" + (s.why ? `: ${s.why}` : ""), ""] : !s.latency ? ["", ""] : s.met ? ["met", "met"] : ["VIOLATED", "violated"];
    return el("tr", {}, el("td", { text: s.name || s.workload }), el("td", { text: s.objective }),
      el("td", { text: s.known ? fmt(s) : "—" }), el("td", { class: st[1], text: st[0] }));
  });
  const attained = new Set((o.attainment || []).map((s) => s.objective));
  for (const c of o.configured || []) {
    if (!attained.has(c.objective)) rows.push(el("tr", {}, el("td", { text: c.workload }), el("td", { text: c.objective }), el("td", { text: "—" }), el("td", { text: "no matching workload" })));
  }
  document.querySelector("#objectives tbody").replaceChildren(...rows);
  document.getElementById("objectives-none").hidden = rows.length > 0;
}

// --- polling ---------------------------------------------------------------

function drawStatus() {
  const s = state.status;
  const failed = (s.collectors || []).filter((c) => c.error).map((c) => c.name);
  document.getElementById("status").textContent =
    `${s.version} · mode ${s.mode}${s.paused ? " (paused)" : ""} · interval ${s.tick} every ${s.interval_seconds}s · ` +
    `${s.workloads} workloads, ${s.arranged.length} arranged · rules: ${s.rules.source} (${s.rules.count})` +
    (failed.length ? ` · collectors failing: ${failed.join(", ")}` : "");
}

async function poll() {
  let wait = 2000;
  try {
    if (!state.topology) state.topology = await api("/v1/topology");
    const [status, workloads, plan, map, objectives, journal] = await Promise.all([
      api("/v1/status"), api("/v1/workloads"), api("/v1/plan"), api("/v1/map"), api("/v1/objectives"), api("/v1/journal")]);
    Object.assign(state, { status, workloads: workloads.workloads, plan, map, objectives, journal: journal.entries });
    if (state.selected && !state.workloads.some((d) => d.id === state.selected)) state.selected = null; // gone
    await refreshAudit();
    drawStatus();
    drawWorkloads();
    drawMap();
    drawTimeline();
    drawTopology();
    drawObjectives();
    if (state.selected) await refreshGenes();
    document.getElementById("error").hidden = true;
    wait = Math.min(Math.max(status.interval_seconds, 1), 5) * 1000;
    document.body.dataset.loaded = "true";
  } catch (e) {
    const err = document.getElementById("error");
    err.textContent = String(e.message || e);
    err.hidden = false;
  }
  setTimeout(poll, wait);
}

document.getElementById("filter").addEventListener("input", (e) => { state.filter = e.target.value; drawWorkloads(); });
document.getElementById("timeline-selected").addEventListener("change", drawTimeline);
for (const th of document.querySelectorAll("#workloads th[data-sort]")) {
  th.addEventListener("click", () => { state.sort = th.dataset.sort; drawWorkloads(); });
}
poll();
