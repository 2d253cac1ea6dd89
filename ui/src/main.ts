// The explorer: Find (search), Look (a neighbourhood, namespace or release graph with a side
// panel), Ask (impact, path, dangling), Live (the change stream), History (a view at a past
// point, or a diff of two points). The URL's hash holds the view and its point.

import "./app.css";
import * as api from "./api";
import { GraphView, GROUP_MIN, edgeColour, setEdgeKinds, statusName, type Drawn } from "./graph";
import { TimeSlider, diffPoints, pointAt, readable, timeOf, type Gone } from "./history";
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
/** The point the drawing reflects; `null` while it follows the live graph. */
let asOf: api.AsOf | null = null;
/** The diff drawn, in diff mode. */
let diff: api.Diff | null = null;
/** Whether the server keeps history (its timeline answers). */
let history = true;
/** The stream's event count when the timeline was last read. */
let timelineEvents = 0;

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
  navigate(keep(resourceView(r.uid)));
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

/** `v` at the current view's point (and diff), so moving around the past stays there. */
function keep(v: View): View {
  return { ...v, at: v.at ?? view.at, diff: v.diff ?? view.diff };
}

/** The point graph answers are read at: the newer end of a diff, or the view's point. */
function drawAt(): string | undefined {
  return diffPoints(view)?.newer ?? view.at;
}

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
  asOf = null;
  diff = null;
  try {
    // A live view is drawn while the timeline is read; a past point is checked against the
    // retained history first.
    const timeline = view.mode !== "home" ? refreshTimeline() : Promise.resolve();
    if (view.at || view.diff) await timeline;
    const gone = history && (view.at || view.diff) ? slider.gone(view.at) ?? slider.gone(view.diff) : null;
    if (gone) {
      if (mine !== loads) return;
      graph.draw([], []);
      drawn = null;
      showGone(gone);
      renderPoint();
      setState("ready");
      return;
    }
    if (view.mode === "resource" && view.uid) await loadResource(view.uid);
    else if ((view.mode === "namespace" || view.mode === "release") && view.name) await loadScope(view.mode, view.name);
    else if (view.mode === "dangling") await loadDangling(view.name);
    else {
      graph.draw([], []);
      drawn = null;
      panel.innerHTML = '<p class="hint">Find a resource (press /), or pick a namespace or release.</p>';
    }
    await timeline;
    if (mine !== loads) return;
    renderLegend();
    renderPoint();
    live.follow(view);
    setState("ready");
  } catch (e) {
    if (mine !== loads) return;
    if (e instanceof api.ApiError && e.status === 410 && e.oldest) {
      // The server names the oldest point it keeps; which of the view's points was too old is
      // the one before it.
      const older = diffPoints(view)?.older;
      slider.forgetSpan();
      graph.draw([], []);
      showGone({ point: older && view.diff === older ? older : view.at ?? older ?? "", oldest: e.oldest });
      renderPoint();
      setState("ready");
      return;
    }
    show(`Could not load the view: ${(e as Error).message}`);
    setState("error");
  }
}

/** A point older than the history kept: says which is the oldest, and offers to go there. */
function showGone(g: Gone): void {
  const oldest = g.oldest.seq !== undefined ? `seq ${g.oldest.seq} at ${readable(g.oldest.time)}` : readable(g.oldest.time);
  const jump = document.createElement("button");
  jump.id = "jump-oldest";
  jump.type = "button";
  jump.textContent = "Jump to the oldest point";
  const to = g.oldest.seq !== undefined ? `seq:${g.oldest.seq}` : g.oldest.time;
  jump.addEventListener("click", () => navigate(g.point === view.diff ? { ...view, diff: to } : { ...view, at: to }));
  notice.replaceChildren(`${g.point} is older than the history this server keeps; the oldest point is ${oldest}.`, jump);
  notice.hidden = false;
  jump.focus();
}

function measureDraw(d: Drawn): void {
  drawn = d;
  drawnMs = performance.now();
}

async function loadResource(uid: string): Promise<void> {
  const at = drawAt();
  const params = { depth: view.depth, direction: view.direction, edgeKinds: view.edges.join(",") || undefined, at };
  const [sub, detail, d] = await Promise.all([
    api.get<api.Subgraph>(`api/v1/neighbors/${encodeURIComponent(uid)}`, params),
    api.get<api.Detail>(`api/v1/resources/${encodeURIComponent(uid)}`, { at }),
    view.diff ? fetchDiff({ root: uid, depth: view.depth }) : null,
  ]);
  const { nodes, edges } = d ? withRemoved(sub.nodes, sub.edges, d, () => true) : sub;
  measureDraw(graph.draw(nodes, edges, uid));
  settlePoint(sub, d);
  if (sub.truncated) show("The neighbourhood was truncated at the server's limit: lower the depth or filter edge kinds.");
  renderPanel(detail);
  if (view.impact) await showImpact(uid);
  if (view.to) await showPath(uid, view.to);
}

async function loadScope(mode: "namespace" | "release", name: string): Promise<void> {
  const [sub, d] = await Promise.all([
    api.get<api.Subgraph>("api/v1/graph", { [mode]: name, at: drawAt() }),
    view.diff ? fetchDiff(mode === "namespace" ? { namespace: name, kind: view.kind } : { kind: view.kind }) : null,
  ]);
  let nodes = sub.nodes;
  if (view.kind) nodes = nodes.filter((n) => n.kind === view.kind);
  if (view.edges.length) sub.edges = sub.edges.filter((e) => view.edges.includes(e.type));
  let edges = sub.edges;
  if (d) ({ nodes, edges } = withRemoved(nodes, edges, d, (r) => mode === "namespace" || r.release === name));
  measureDraw(graph.draw(nodes, edges));
  settlePoint(sub, d);
  const what = `${mode} ${name}${view.kind ? `, kind ${view.kind}` : ""}`;
  if (nodes.length > GROUP_MIN) {
    show(`${nodes.length} resources in ${what}: grouped by kind. Double-click a kind, or search, to narrow.`);
  }
  panel.replaceChildren(
    heading(`${mode === "namespace" ? "Namespace" : "Helm release"} ${name}`),
    para(`${nodes.length} resources, ${edges.length} edges${view.kind ? ` (only ${view.kind})` : ""}.`),
    ...diffSummary(),
    ...(view.kind ? [link("Show every kind", scopeView(mode, name))] : []),
    ...(mode === "namespace" ? [document.createElement("br"), link("Dangling references of this namespace", scopeView("dangling", name))] : []),
  );
}

async function loadDangling(ns?: string): Promise<void> {
  const list = await api.get<{ seq: number; asOf?: api.AsOf; items: api.Dangling[] }>("api/v1/dangling", { namespace: ns, at: view.at });
  asOf = answeredAt(list, view.at);
  graph.draw([], []);
  drawn = null;
  const box = $("dangling-list");
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>Source</th><th>Edge</th><th>Missing target</th><th>Optional</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const d of list.items) {
    const tr = document.createElement("tr");
    const src = document.createElement("td");
    src.append(link(label(d.source), keep(resourceView(d.source.uid))));
    tr.append(src, cell(d.edgeKind, "edge-type"), cell(d.target), cell(d.optional ? "yes" : "no"));
    body.append(tr);
  }
  table.append(body);
  box.replaceChildren(heading(`Dangling references${ns ? ` in ${ns}` : ""}: ${list.items.length}`), table);
  box.hidden = false;
  panel.replaceChildren(para("References whose target does not exist, and Services that select nothing. Each source is a link."));
}

// ---------------------------------------------------------------- history

const slider = new TimeSlider(
  { slider: $<HTMLInputElement>("at"), bars: $("timeline-bars"), mark: $("diff-mark"), label: $("at-label") },
  (at) => navigate({ ...view, at }),
);

/** Re-reads the timeline behind the slider; a server without history hides the slider. */
async function refreshTimeline(): Promise<void> {
  timelineEvents = liveState.events;
  try {
    await slider.refresh(view);
    history = true;
  } catch (e) {
    if (!(e instanceof api.ApiError)) throw e;
    history = false;
  }
  $("history").hidden = !history || view.mode === "home";
}

/** `/api/v1/diff` between the view's two points, narrowed by `filter`. */
function fetchDiff(filter: Record<string, string | number | undefined>): Promise<api.Diff> {
  const points = diffPoints(view);
  return api.get<api.Diff>("api/v1/diff", { from: points?.older, to: points?.newer ?? "now", ...filter });
}

function edgeOf(e: api.EdgeChange): api.Edge {
  return { type: e.kind, from: e.from, to: e.to };
}

/** The nodes and edges drawn in diff mode: those at the newer point, and the objects and
 * edges removed since the older one (in scope, as they were there). */
function withRemoved(nodes: api.Resource[], edges: api.Edge[], d: api.Diff, inScope: (r: api.Resource) => boolean) {
  const have = new Set(nodes.map((n) => n.uid));
  const removed = d.removed
    .filter((o) => !have.has(o.uid) && inScope(o.resource) && (!view.kind || o.kind === view.kind))
    .map((o) => o.resource);
  const all = [...nodes, ...removed];
  const ids = new Set(all.map((n) => n.uid));
  const gone = d.edgesRemoved
    .map(edgeOf)
    .filter((e) => ids.has(e.from) && ids.has(e.to) && (!view.edges.length || view.edges.includes(e.type)));
  return { nodes: all, edges: [...edges, ...gone] };
}

/** The point an answer read `at` reflects; `null` for a live view. A point at or after the
 * newest change is answered by the live graph, without `asOf`: its sequence is the answer's. */
function answeredAt(answer: { seq: number; asOf?: api.AsOf }, at: string | undefined): api.AsOf | null {
  if (answer.asOf) return answer.asOf;
  return at ? { seq: answer.seq, time: timeOf(at) === null ? pointAt(Date.now()) : at } : null;
}

/** Records the point a drawing reflects and marks a diff on it. */
function settlePoint(sub: api.Subgraph, d: api.Diff | null): void {
  diff = d;
  const at = drawAt();
  asOf = d ? d.to : answeredAt(sub, at);
  if (!d) return;
  graph.markDiff({
    added: d.added.map((o) => o.uid),
    removed: d.removed.map((o) => o.uid),
    modified: d.modified.map((o) => o.uid),
    edgesAdded: d.edgesAdded.map(edgeOf),
    edgesRemoved: d.edgesRemoved.map(edgeOf),
  });
}

/** The bar's account of the point drawn, the slider's thumb, and the history buttons. */
function renderPoint(): void {
  const live = `seq ${Math.max(liveState.seq, api.lastSeq)}`;
  const text = diff
    ? `diff: seq ${diff.from.seq} (${readable(diff.from.time)}) → seq ${diff.to.seq} (${readable(diff.to.time)})`
    : asOf
      ? `as of seq ${asOf.seq} · ${readable(asOf.time)}`
      : `live · ${live}`;
  $("at-label").textContent = text;
  const following = view.at || view.diff ? "paused (past view)" : "following";
  $("st-live").textContent = `live: ${liveState.connected ? following : liveState.events ? "reconnecting" : "connecting"}`;
  $("st-seq").textContent = diff || asOf ? text : live;
  $<HTMLButtonElement>("live").disabled = !view.at && !view.diff;
  const diffButton = $<HTMLButtonElement>("diff");
  diffButton.disabled = view.mode === "dangling" || (!view.at && !view.diff);
  diffButton.setAttribute("aria-pressed", String(Boolean(view.diff)));
  slider.show(view, asOf, diff ? diff.from : null);
}

function toggleDiff(): void {
  if (view.diff) navigate({ ...view, diff: undefined });
  else if (view.at && view.mode !== "dangling") navigate({ ...view, diff: view.at, at: undefined });
}

/** In diff mode, what happened to `uid` between the two points: a note and its field changes. */
function diffSection(uid: string): HTMLElement[] {
  if (!diff) return [];
  const points = `between seq ${diff.from.seq} and seq ${diff.to.seq}`;
  if (diff.added.some((o) => o.uid === uid)) return [noted(`Added ${points}.`, "diff-added")];
  if (diff.removed.some((o) => o.uid === uid)) return [noted(`Removed ${points} (shown as it was at seq ${diff.from.seq}).`, "diff-removed")];
  const modified = diff.modified.find((o) => o.uid === uid);
  if (!modified) return [noted(`Unchanged ${points}.`)];
  const table = document.createElement("table");
  table.className = "changes";
  table.innerHTML = "<thead><tr><th>Field</th><th>Was</th><th>Is</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const c of modified.changes) {
    const tr = document.createElement("tr");
    tr.dataset.field = c.field;
    tr.append(cell(c.field, "edge-type"), cell(shown(c.old)), cell(shown(c.new)));
    body.append(tr);
  }
  table.append(body);
  return [noted(`Modified ${points}:`, "diff-modified"), table];
}

/** The diff's counts, in a namespace or release view. */
function diffSummary(): HTMLElement[] {
  if (!diff) return [];
  return [
    heading("Diff", 3),
    para(
      `${diff.added.length} added, ${diff.removed.length} removed, ${diff.modified.length} modified; ` +
        `${diff.edgesAdded.length} edges added, ${diff.edgesRemoved.length} removed. Select a node for its changes.`,
    ),
  ];
}

function noted(text: string, cls?: string): HTMLElement {
  const p = para(text);
  p.className = `diff-note${cls ? " " + cls : ""}`;
  return p;
}

function shown(v: unknown): string {
  return v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v);
}

$("live").addEventListener("click", () => navigate({ ...view, at: undefined, diff: undefined }));
$("diff").addEventListener("click", toggleDiff);

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
  a.href = format(keep(to));
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
    ...diffSection(r.uid),
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
  const sub = await api.get<api.Subgraph>(`api/v1/impact/${encodeURIComponent(uid)}`, { at: drawAt() });
  graph.merge(sub.nodes, sub.edges);
  graph.highlight("impact", sub.nodes.map((n) => n.uid).filter((u) => u !== uid));
  show(`${sub.nodes.filter((n) => n.uid !== uid).length} resources depend on this${sub.truncated ? " (truncated)" : ""}.`);
}

async function showPath(from: string, to: string): Promise<void> {
  const sub = await api.get<api.Subgraph>("api/v1/path", { from, to, at: drawAt() });
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
  legend.hidden = (kinds.length === 0 && !diff) || !$("dangling-list").hidden;
  legend.replaceChildren(
    ...diffLegend(),
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

/** In diff mode, what the diff's colours mean. */
function diffLegend(): HTMLElement[] {
  if (!diff) return [];
  const entry = (cls: string, colour: string, text: string, dashed = false) => {
    const l = document.createElement("div");
    l.className = `diff-legend ${cls}`;
    const swatch = document.createElement("span");
    swatch.className = "node-swatch";
    swatch.style.borderColor = `var(${colour})`;
    if (dashed) swatch.style.borderStyle = "dashed";
    l.append(swatch, ` ${text}`);
    return l;
  };
  return [
    heading("Diff", 3),
    entry("diff-added", "--added", "added (node or edge)"),
    entry("diff-removed", "--removed", "removed (as it was)", true),
    entry("diff-modified", "--modified", "modified"),
  ];
}

$("depth").addEventListener("change", (ev) => navigate({ ...view, depth: Number((ev.target as HTMLInputElement).value) || DEFAULT_DEPTH }));
$("direction").addEventListener("change", (ev) => navigate({ ...view, direction: (ev.target as HTMLSelectElement).value as View["direction"] }));
$("impact").addEventListener("click", () => navigate({ ...view, impact: !view.impact, to: undefined }));
$("path-clear").addEventListener("click", () => navigate({ ...view, to: undefined }));
$("namespace").addEventListener("change", (ev) => {
  const ns = (ev.target as HTMLSelectElement).value;
  if (ns) navigate(keep(scopeView("namespace", ns)));
});
$("release").addEventListener("change", (ev) => {
  const rel = (ev.target as HTMLSelectElement).value;
  if (rel) navigate(keep(scopeView("release", rel)));
});
$("dangling").addEventListener("click", () => {
  const ns = $<HTMLSelectElement>("namespace").value || (view.mode === "dangling" ? view.name : undefined);
  navigate(keep(scopeView("dangling", ns ?? "")));
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
  if (n.hasClass("group") || (view.mode === "resource" && !diff)) return;
  // A removed node is read where it still existed.
  const at = n.hasClass("diff-removed") ? diffPoints(view)?.older : drawAt();
  void api.get<api.Detail>(`api/v1/resources/${encodeURIComponent(n.id())}`, { at }).then(renderPanel, () => {});
});
graph.cy.on("dbltap", "node", (ev) => {
  const n = ev.target;
  if (n.hasClass("group")) {
    if (view.mode === "namespace" || view.mode === "release") navigate({ ...view, kind: n.data("kind") });
    return;
  }
  if (view.mode === "resource") void expand(n.id());
  else navigate(keep(resourceView(n.id())));
});

/** Double-click in a neighbourhood: adds the node's own neighbours, in place. */
async function expand(uid: string): Promise<void> {
  const sub = await api.get<api.Subgraph>(`api/v1/neighbors/${encodeURIComponent(uid)}`, {
    at: drawAt(),
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
  else if (ev.key === "d") toggleDiff();
  else if (ev.key === "f") cy.fit(undefined, 30);
  else if (ev.key === "+" || ev.key === "=") cy.zoom({ level: cy.zoom() * 1.25, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
  else if (ev.key === "-") cy.zoom({ level: cy.zoom() / 1.25, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
});

// ---------------------------------------------------------------- live and status bar

const live = startLive({
  graph,
  onChange: (state) => {
    liveState = state;
    renderPoint();
  },
  onResync: () => void load(),
  onDetail: (uid) => {
    if (view.mode === "resource" && view.uid === uid && !view.at && !view.diff)
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
  // The counts behind the slider change only with changes: re-read when the stream brought some.
  const changed = liveState.events !== timelineEvents;
  if (history && changed && view.mode !== "home" && document.body.dataset.state !== "loading") {
    timelineEvents = liveState.events;
    await slider.refresh(view).catch(() => {});
  }
  renderPoint();
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
  asOf: () => asOf,
  diff: () => diff,
  live: () => liveState,
  cy: graph.cy,
};
