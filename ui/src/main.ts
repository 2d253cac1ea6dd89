// The explorer: Find (search), Look (a neighbourhood, namespace or release graph with a side
// panel), Ask (impact, path, dangling), Live (the change stream). The URL's hash holds the view.

import "./app.css";
import * as api from "./api";
import { GraphView, GROUP_MIN, edgeColour, setEdgeKinds, statusName, type Drawn } from "./graph";
import { DEFAULT_DEPTH, type View, format, parse, resourceView, scopeView } from "./view";
import { startLive, type LiveState } from "./live";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const canvas = $("canvas");
const graph = new GraphView(canvas, $("tooltip"));
const panel = $("panel");
const notice = $("notice");

let view: View = parse(location.hash);
let edgeKinds: api.EdgeKind[] = [];
let drawn: Drawn | null = null;
let drawnMs = 0;
let loads = 0;
let liveState: LiveState = { connected: false, seq: 0, events: 0 };

// ---------------------------------------------------------------- theme

function applyTheme(theme: string): void {
  document.documentElement.dataset.theme = theme;
  $("theme").setAttribute("aria-pressed", String(theme === "dark"));
  $("theme").textContent = theme === "dark" ? "Light theme" : "Dark theme";
  graph.restyle();
}

function toggleTheme(): void {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem("astrolabe.theme", next);
  applyTheme(next);
}

// ---------------------------------------------------------------- find

const search = $<HTMLInputElement>("search");
const results = $<HTMLUListElement>("results");
let hits: api.Resource[] = [];
let active = -1;
let searchSeq = 0;

function label(r: api.Resource | api.Peer): string {
  return `${r.kind} ${r.namespace ? r.namespace + "/" : ""}${r.name}`;
}

async function find(q: string, limit = 15): Promise<api.Resource[]> {
  if (!q.trim()) return [];
  return (await api.get<api.Page>("api/v1/search", { q, limit })).items;
}

function renderResults(): void {
  results.replaceChildren(
    ...hits.map((r, i) => {
      const li = document.createElement("li");
      li.id = `result-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === active));
      li.dataset.uid = r.uid;
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = r.kind;
      const name = document.createElement("span");
      name.textContent = r.name;
      const ns = document.createElement("span");
      ns.className = "ns";
      ns.textContent = r.namespace;
      li.append(kind, name, ns);
      li.addEventListener("mousedown", (ev) => {
        ev.preventDefault();
        choose(i);
      });
      return li;
    }),
  );
  results.hidden = hits.length === 0;
  search.setAttribute("aria-expanded", String(!results.hidden));
  if (active >= 0) search.setAttribute("aria-activedescendant", `result-${active}`);
  else search.removeAttribute("aria-activedescendant");
}

function choose(i: number): void {
  const r = hits[i];
  if (!r) return;
  hits = [];
  active = -1;
  renderResults();
  search.value = "";
  navigate(resourceView(r.uid));
  canvas.focus();
}

search.addEventListener("input", async () => {
  const mine = ++searchSeq;
  try {
    const found = await find(search.value);
    if (mine !== searchSeq) return;
    hits = found;
    active = hits.length ? 0 : -1;
    renderResults();
  } catch (e) {
    show(`Search failed: ${(e as Error).message}`);
  }
});

search.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    if (!hits.length) return;
    active = (active + (ev.key === "ArrowDown" ? 1 : hits.length - 1)) % hits.length;
    renderResults();
  } else if (ev.key === "Enter") {
    ev.preventDefault();
    choose(active < 0 ? 0 : active);
  } else if (ev.key === "Escape") {
    hits = [];
    renderResults();
  }
});
search.addEventListener("blur", () => {
  hits = [];
  renderResults();
});

// ---------------------------------------------------------------- navigation

function navigate(next: View): void {
  const hash = format(next);
  if (hash === location.hash) void load();
  else location.hash = hash;
}

function show(text: string): void {
  notice.textContent = text;
  notice.hidden = !text;
}

function setState(state: "loading" | "ready" | "error"): void {
  document.body.dataset.state = state;
}

async function load(): Promise<void> {
  view = parse(location.hash);
  const mine = ++loads;
  setState("loading");
  show("");
  $("dangling-list").hidden = true;
  $("controls").hidden = view.mode !== "resource";
  syncControls();
  try {
    if (view.mode === "resource" && view.uid) await loadResource(view.uid);
    else if ((view.mode === "namespace" || view.mode === "release") && view.name) await loadScope(view.mode, view.name);
    else if (view.mode === "dangling") await loadDangling(view.name);
    else {
      graph.draw([], []);
      drawn = null;
      panel.innerHTML = '<p class="hint">Find a resource (press /), or pick a namespace or release.</p>';
    }
    if (mine !== loads) return;
    renderLegend();
    live.follow(view);
    setState("ready");
  } catch (e) {
    if (mine !== loads) return;
    show(`Could not load the view: ${(e as Error).message}`);
    setState("error");
  }
}

function measureDraw(d: Drawn): void {
  drawn = d;
  drawnMs = performance.now();
}

async function loadResource(uid: string): Promise<void> {
  const params = { depth: view.depth, direction: view.direction, edgeKinds: view.edges.join(",") || undefined };
  const [sub, detail] = await Promise.all([
    api.get<api.Subgraph>(`api/v1/neighbors/${encodeURIComponent(uid)}`, params),
    api.get<api.Detail>(`api/v1/resources/${encodeURIComponent(uid)}`),
  ]);
  measureDraw(graph.draw(sub.nodes, sub.edges, uid));
  if (sub.truncated) show("The neighbourhood was truncated at the server's limit: lower the depth or filter edge kinds.");
  renderPanel(detail);
  if (view.impact) await showImpact(uid);
  if (view.to) await showPath(uid, view.to);
}

async function loadScope(mode: "namespace" | "release", name: string): Promise<void> {
  const sub = await api.get<api.Subgraph>("api/v1/graph", { [mode]: name });
  let nodes = sub.nodes;
  if (view.kind) nodes = nodes.filter((n) => n.kind === view.kind);
  if (view.edges.length) sub.edges = sub.edges.filter((e) => view.edges.includes(e.type));
  measureDraw(graph.draw(nodes, sub.edges));
  const what = `${mode} ${name}${view.kind ? `, kind ${view.kind}` : ""}`;
  if (nodes.length > GROUP_MIN) {
    show(`${nodes.length} resources in ${what}: grouped by kind. Double-click a kind, or search, to narrow.`);
  }
  panel.replaceChildren(
    heading(`${mode === "namespace" ? "Namespace" : "Helm release"} ${name}`),
    para(`${nodes.length} resources, ${sub.edges.length} edges${view.kind ? ` (only ${view.kind})` : ""}.`),
    ...(view.kind ? [link("Show every kind", scopeView(mode, name))] : []),
    ...(mode === "namespace" ? [document.createElement("br"), link("Dangling references of this namespace", scopeView("dangling", name))] : []),
  );
}

async function loadDangling(ns?: string): Promise<void> {
  const list = await api.get<{ seq: number; items: api.Dangling[] }>("api/v1/dangling", { namespace: ns });
  graph.draw([], []);
  drawn = null;
  const box = $("dangling-list");
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>Source</th><th>Edge</th><th>Missing target</th><th>Optional</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const d of list.items) {
    const tr = document.createElement("tr");
    const src = document.createElement("td");
    src.append(link(label(d.source), resourceView(d.source.uid)));
    tr.append(src, cell(d.edgeKind, "edge-type"), cell(d.target), cell(d.optional ? "yes" : "no"));
    body.append(tr);
  }
  table.append(body);
  box.replaceChildren(heading(`Dangling references${ns ? ` in ${ns}` : ""}: ${list.items.length}`), table);
  box.hidden = false;
  panel.replaceChildren(para("References whose target does not exist, and Services that select nothing. Each source is a link."));
}

// ---------------------------------------------------------------- panel

function heading(text: string, level = 2): HTMLElement {
  const h = document.createElement(`h${level}`);
  h.textContent = text;
  return h;
}

function para(text: string): HTMLElement {
  const p = document.createElement("p");
  p.textContent = text;
  return p;
}

function cell(text: string, cls?: string): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function link(text: string, to: View): HTMLAnchorElement {
  const a = document.createElement("a");
  a.href = format(to);
  a.textContent = text;
  return a;
}

function facts(entries: [string, unknown][]): HTMLElement {
  const dl = document.createElement("dl");
  for (const [k, v] of entries) {
    if (v === undefined || v === null || v === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
    dl.append(dt, dd);
  }
  return dl;
}

function edgeList(edges: api.Edge[], dir: "in" | "out"): HTMLElement {
  const ul = document.createElement("ul");
  ul.className = `edges-${dir}`;
  for (const e of edges) {
    const li = document.createElement("li");
    const type = document.createElement("span");
    type.className = "edge-type";
    type.style.color = edgeColour(e.type);
    type.textContent = dir === "out" ? `${e.type} →` : `← ${e.type}`;
    li.dataset.edge = `${e.type}|${e.from}|${e.to}`;
    const peer = e.peer ?? { uid: dir === "out" ? e.to : e.from, kind: "", namespace: "", name: dir === "out" ? e.to : e.from };
    li.append(type, " ", link(label(peer), resourceView(peer.uid)));
    ul.append(li);
  }
  if (!edges.length) ul.append(para("none"));
  return ul;
}

function renderPanel(d: api.Detail): void {
  const r = d.resource;
  const status = document.createElement("p");
  status.className = `status-${r.status}`;
  status.textContent = `${statusName(r.status)}${r.message ? ": " + r.message : ""}`;
  const scope: HTMLElement[] = [];
  if (r.namespace) scope.push(link(`namespace ${r.namespace}`, scopeView("namespace", r.namespace)));
  if (r.release) scope.push(document.createTextNode(" · ") as unknown as HTMLElement, link(`release ${r.release}`, scopeView("release", r.release)));
  panel.replaceChildren(
    heading(label(r)),
    status,
    para(""),
    ...scope,
    heading("Facts", 3),
    facts([
      ["uid", r.uid],
      ["apiVersion", r.apiVersion],
      ["created", r.creationTimestamp],
      ["release", r.release],
      ["chart", r.chart],
      ...Object.entries(r.metadata ?? {}),
    ]),
    heading("Labels", 3),
    facts(Object.entries(r.labels ?? {})),
    heading("Annotations", 3),
    facts(Object.entries(r.annotations ?? {})),
    heading(`Outgoing edges (${d.outgoing.length})`, 3),
    edgeList(d.outgoing, "out"),
    heading(`Incoming edges (${d.incoming.length})`, 3),
    edgeList(d.incoming, "in"),
  );
}

// ---------------------------------------------------------------- ask

async function showImpact(uid: string): Promise<void> {
  const sub = await api.get<api.Subgraph>(`api/v1/impact/${encodeURIComponent(uid)}`);
  graph.merge(sub.nodes, sub.edges);
  graph.highlight("impact", sub.nodes.map((n) => n.uid).filter((u) => u !== uid));
  show(`${sub.nodes.filter((n) => n.uid !== uid).length} resources depend on this${sub.truncated ? " (truncated)" : ""}.`);
}

async function showPath(from: string, to: string): Promise<void> {
  const sub = await api.get<api.Subgraph>("api/v1/path", { from, to });
  if (!sub.found) {
    show("No path between these resources within the server's maximum depth.");
    return;
  }
  graph.merge(sub.nodes, sub.edges);
  graph.highlight("path", sub.nodes.map((n) => n.uid), sub.edges.map((e) => `${e.type}|${e.from}|${e.to}`));
}

// ---------------------------------------------------------------- controls and legend

function syncControls(): void {
  $<HTMLInputElement>("depth").value = String(view.depth);
  $<HTMLSelectElement>("direction").value = view.direction;
  $("impact").setAttribute("aria-pressed", String(view.impact));
  $<HTMLSelectElement>("namespace").value = view.mode === "namespace" ? view.name ?? "" : "";
  $<HTMLSelectElement>("release").value = view.mode === "release" ? view.name ?? "" : "";
}

function renderLegend(): void {
  const legend = $("legend");
  const present = new Set(graph.cy.edges().map((e) => e.data("type") as string));
  const chosen = new Set(view.edges);
  const kinds = edgeKinds.filter((k) => present.has(k.name) || chosen.has(k.name));
  legend.hidden = kinds.length === 0 || !$("dangling-list").hidden;
  legend.replaceChildren(
    heading("Edges (filter)", 3),
    ...kinds.map((k) => {
      const l = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = k.name;
      box.checked = chosen.size === 0 || chosen.has(k.name);
      box.addEventListener("change", () => {
        const on = [...legend.querySelectorAll<HTMLInputElement>("input:checked")].map((b) => b.value);
        navigate({ ...view, edges: on.length === kinds.length ? [] : on });
      });
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = edgeColour(k.name);
      l.append(box, swatch, k.name);
      return l;
    }),
  );
}

$("depth").addEventListener("change", (ev) => navigate({ ...view, depth: Number((ev.target as HTMLInputElement).value) || DEFAULT_DEPTH }));
$("direction").addEventListener("change", (ev) => navigate({ ...view, direction: (ev.target as HTMLSelectElement).value as View["direction"] }));
$("impact").addEventListener("click", () => navigate({ ...view, impact: !view.impact, to: undefined }));
$("path-clear").addEventListener("click", () => navigate({ ...view, to: undefined }));
$("namespace").addEventListener("change", (ev) => {
  const ns = (ev.target as HTMLSelectElement).value;
  if (ns) navigate(scopeView("namespace", ns));
});
$("release").addEventListener("change", (ev) => {
  const rel = (ev.target as HTMLSelectElement).value;
  if (rel) navigate(scopeView("release", rel));
});
$("dangling").addEventListener("click", () => {
  const ns = $<HTMLSelectElement>("namespace").value || (view.mode === "dangling" ? view.name : undefined);
  navigate(scopeView("dangling", ns ?? ""));
});
$("theme").addEventListener("click", toggleTheme);

const pathTo = $<HTMLInputElement>("path-to");
let pathHits: api.Resource[] = [];
pathTo.addEventListener("input", async () => {
  const chosen = pathHits.find((r) => label(r) === pathTo.value);
  if (chosen) {
    pathTo.value = "";
    navigate({ ...view, impact: false, to: chosen.uid });
    return;
  }
  pathHits = await find(pathTo.value, 10).catch(() => []);
  $("path-options").replaceChildren(
    ...pathHits.map((r) => {
      const o = document.createElement("option");
      o.value = label(r);
      return o;
    }),
  );
});

graph.cy.on("tap", "node", (ev) => {
  const n = ev.target;
  if (n.hasClass("group") || view.mode === "resource") return;
  void api.get<api.Detail>(`api/v1/resources/${encodeURIComponent(n.id())}`).then(renderPanel, () => {});
});
graph.cy.on("dbltap", "node", (ev) => {
  const n = ev.target;
  if (n.hasClass("group")) {
    if (view.mode === "namespace" || view.mode === "release") navigate({ ...view, kind: n.data("kind") });
    return;
  }
  if (view.mode === "resource") void expand(n.id());
  else navigate(resourceView(n.id()));
});

/** Double-click in a neighbourhood: adds the node's own neighbours, in place. */
async function expand(uid: string): Promise<void> {
  const sub = await api.get<api.Subgraph>(`api/v1/neighbors/${encodeURIComponent(uid)}`, {
    depth: 1,
    direction: view.direction,
    edgeKinds: view.edges.join(",") || undefined,
  });
  for (const n of sub.nodes) if (!graph.has(n.uid)) graph.upsertNode(n, uid);
  for (const e of sub.edges) graph.addEdge(e);
  renderLegend();
}

document.addEventListener("keydown", (ev) => {
  const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement;
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const cy = graph.cy;
  if (ev.key === "/") {
    ev.preventDefault();
    search.focus();
  } else if (ev.key === "t") toggleTheme();
  else if (ev.key === "i" && view.mode === "resource") navigate({ ...view, impact: !view.impact });
  else if (ev.key === "f") cy.fit(undefined, 30);
  else if (ev.key === "+" || ev.key === "=") cy.zoom({ level: cy.zoom() * 1.25, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
  else if (ev.key === "-") cy.zoom({ level: cy.zoom() / 1.25, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
});

// ---------------------------------------------------------------- live and status bar

const live = startLive({
  graph,
  onChange: (state) => {
    liveState = state;
    $("st-live").textContent = `live: ${state.connected ? "following" : "reconnecting"}`;
    $("st-seq").textContent = `seq ${Math.max(state.seq, api.lastSeq)}`;
  },
  onResync: () => void load(),
  onDetail: (uid) => {
    if (view.mode === "resource" && view.uid === uid)
      void api.get<api.Detail>(`api/v1/resources/${encodeURIComponent(uid)}`).then(renderPanel, () => {});
  },
});

async function pollReadiness(): Promise<void> {
  try {
    const r = await api.readiness();
    $("st-ready").textContent = r.ready ? "ready" : `not ready (${r.graph?.source ?? "syncing"})`;
    const p = r.persistence;
    $("st-persist").textContent = !p || !p.enabled
      ? "persistence: off"
      : `persistence: ${p.diverged ? "diverged" : p.connected ? "connected" : "disconnected"}`;
  } catch {
    $("st-ready").textContent = "server unreachable";
  }
  $("st-seq").textContent = `seq ${Math.max(liveState.seq, api.lastSeq)}`;
}

// ---------------------------------------------------------------- authentication

api.whenUnauthorized((detail) => {
  const dialog = $<HTMLDialogElement>("token-dialog");
  $("login").hidden = false;
  if (dialog.open) return;
  $("token-why").textContent = `This server needs a bearer token (${detail}).`;
  dialog.showModal();
});
$("token-dialog").addEventListener("close", () => {
  api.setToken($<HTMLInputElement>("token-input").value.trim() || null);
  live.restart();
  void start();
});
$("login").addEventListener("click", () => $<HTMLDialogElement>("token-dialog").showModal());

// ---------------------------------------------------------------- start

async function fillSelect(id: string, path: string): Promise<void> {
  const names = await api.get<string[]>(path);
  const select = $<HTMLSelectElement>(id);
  select.replaceChildren(new Option("—", ""), ...names.map((n) => new Option(n, n)));
}

async function start(): Promise<void> {
  try {
    edgeKinds = await api.get<api.EdgeKind[]>("api/v1/edge-kinds");
    setEdgeKinds(edgeKinds.map((k) => k.name));
    await Promise.all([fillSelect("namespace", "api/v1/namespaces"), fillSelect("release", "api/v1/releases")]);
  } catch (e) {
    show(`Could not reach the API: ${(e as Error).message}`);
    setState("error");
    return;
  }
  await load();
}

applyTheme(localStorage.getItem("astrolabe.theme") ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
window.addEventListener("hashchange", () => void load());
void start();
void pollReadiness();
setInterval(() => void pollReadiness(), 5000);

/** What the browser tests read: the drawn graph, the view, timings. */
declare global {
  interface Window {
    astrolabe: unknown;
  }
}
window.astrolabe = {
  graph: () => graph.snapshot(),
  view: () => view,
  drawn: () => (drawn ? { ...drawn, ms: drawnMs } : null),
  live: () => liveState,
  cy: graph.cy,
};
