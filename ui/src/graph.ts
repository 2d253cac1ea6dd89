// The graph canvas: cytoscape.js with a layered layout (dagre) for views it can lay out quickly,
// a cheap layered-by-kind placement for large ones, and one node per kind beyond GROUP_MIN nodes.

import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";
import type { Edge, Resource } from "./api";

cytoscape.use(dagre);

/** Views with more nodes than this are placed in rows by kind instead of by dagre. */
export const LAYERED_MAX = 300;
/** Views with more nodes than this are drawn as one node per kind. */
export const GROUP_MIN = 3000;

/** Kinds in the order their rows are placed: owners and entry points above what they use. */
const KIND_RANK = [
  "Namespace", "Ingress", "HorizontalPodAutoscaler", "CronJob", "Deployment", "StatefulSet", "DaemonSet",
  "Job", "ReplicaSet", "Service", "PodDisruptionBudget", "EndpointSlice", "Pod", "ServiceAccount",
  "RoleBinding", "ClusterRoleBinding", "Role", "ClusterRole", "ConfigMap", "Secret",
  "PersistentVolumeClaim", "PersistentVolume", "StorageClass", "Node",
];

/** Short kind names shown before a node's name. */
const ABBR: Record<string, string> = {
  Deployment: "Deploy", ReplicaSet: "RS", StatefulSet: "STS", DaemonSet: "DS", CronJob: "CJ", Service: "Svc",
  ConfigMap: "CM", ServiceAccount: "SA", EndpointSlice: "EPS", PersistentVolumeClaim: "PVC", PersistentVolume: "PV",
  Ingress: "Ing", HorizontalPodAutoscaler: "HPA", Namespace: "NS", RoleBinding: "RB", ClusterRole: "CR",
  ClusterRoleBinding: "CRB", StorageClass: "SC", PodDisruptionBudget: "PDB", NetworkPolicy: "NetPol",
};

export function abbr(kind: string): string {
  return ABBR[kind] ?? kind;
}

const PALETTE = [
  "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
  "#e6550d", "#31a354", "#756bb1", "#636363",
];

let edgeColours = new Map<string, string>();

/** Gives every edge kind a fixed colour, in the order the server lists them. */
export function setEdgeKinds(names: string[]): void {
  edgeColours = new Map(names.map((n, i) => [n, PALETTE[i % PALETTE.length]]));
}

export function edgeColour(kind: string): string {
  return edgeColours.get(kind) ?? "#999";
}

/** How the explorer names a status. */
export function statusName(status: string): string {
  return status === "Pending" ? "Progressing" : status === "Error" ? "Failed" : status;
}

function css(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function style(): cytoscape.StylesheetJson {
  const fg = css("--fg");
  const bg = css("--bg");
  return [
    {
      selector: "node",
      style: {
        label: "data(label)",
        "font-size": 10,
        color: fg,
        "text-valign": "bottom",
        "text-margin-y": 3,
        "text-max-width": "150px",
        "text-wrap": "ellipsis",
        width: 22,
        height: 22,
        "background-color": css("--unknown"),
        "border-width": 2,
        "border-color": bg,
        shape: "round-rectangle",
      },
    },
    { selector: 'node[status = "Ready"]', style: { "background-color": css("--ready") } },
    { selector: 'node[status = "Pending"]', style: { "background-color": css("--progressing") } },
    { selector: 'node[status = "Error"]', style: { "background-color": css("--failed") } },
    { selector: "node.group", style: { width: "mapData(count, 1, 5000, 30, 90)", height: "mapData(count, 1, 5000, 30, 90)", shape: "ellipse" } },
    { selector: "node.focus", style: { "border-color": css("--accent"), "border-width": 4 } },
    { selector: "node:selected", style: { "border-color": css("--accent"), "border-width": 4 } },
    {
      selector: "edge",
      style: {
        width: 1.5,
        "curve-style": "bezier",
        "target-arrow-shape": "triangle",
        "arrow-scale": 0.8,
        "line-color": "data(colour)",
        "target-arrow-color": "data(colour)",
      },
    },
    { selector: ".faded", style: { opacity: 0.15 } },
    { selector: "node.impact", style: { "border-color": css("--impact"), "border-width": 4 } },
    { selector: "node.path", style: { "border-color": css("--path"), "border-width": 4 } },
    { selector: "edge.path", style: { width: 4, "line-color": css("--path"), "target-arrow-color": css("--path") } },
    { selector: "node.diff-added", style: { "border-color": css("--added"), "border-width": 5 } },
    { selector: "node.diff-modified", style: { "border-color": css("--modified"), "border-width": 5 } },
    {
      selector: "node.diff-removed",
      style: { "border-color": css("--removed"), "border-width": 5, "border-style": "dashed", "background-opacity": 0.4 },
    },
    { selector: "edge.diff-added", style: { width: 3, "line-color": css("--added"), "target-arrow-color": css("--added") } },
    {
      selector: "edge.diff-removed",
      style: { width: 3, "line-style": "dashed", "line-color": css("--removed"), "target-arrow-color": css("--removed") },
    },
  ];
}

function nodeData(r: Resource): cytoscape.ElementDefinition {
  return {
    group: "nodes",
    data: { id: r.uid, label: `${abbr(r.kind)} ${r.name}`, kind: r.kind, namespace: r.namespace, name: r.name, status: r.status, message: r.message ?? "" },
  };
}

function edgeId(e: Edge): string {
  return `${e.type}|${e.from}|${e.to}`;
}

function edgeData(e: Edge): cytoscape.ElementDefinition {
  return { group: "edges", data: { id: edgeId(e), source: e.from, target: e.to, type: e.type, colour: edgeColour(e.type) } };
}

function rank(kind: string): number {
  const i = KIND_RANK.indexOf(kind);
  return i < 0 ? KIND_RANK.length : i;
}

/** Positions in rows by kind rank: owners above what they own, cheap for thousands of nodes. */
function rowsByKind(nodes: Resource[]): Map<string, cytoscape.Position> {
  const byKind = new Map<string, Resource[]>();
  for (const n of nodes) byKind.set(n.kind, [...(byKind.get(n.kind) ?? []), n]);
  const kinds = [...byKind.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const cols = Math.max(10, Math.ceil(Math.sqrt(nodes.length) * 1.5));
  const positions = new Map<string, cytoscape.Position>();
  let y = 0;
  for (const kind of kinds) {
    const members = byKind.get(kind)!.sort((a, b) => a.name.localeCompare(b.name));
    members.forEach((n, i) => positions.set(n.uid, { x: (i % cols) * 70, y: y + Math.floor(i / cols) * 50 }));
    y += Math.ceil(members.length / cols) * 50 + 80;
  }
  return positions;
}

/** What a diff marks on the drawing: node UIDs and edges. */
export interface DiffMarks {
  added: string[];
  removed: string[];
  modified: string[];
  edgesAdded: Edge[];
  edgesRemoved: Edge[];
}

export interface Drawn {
  nodes: number;
  edges: number;
  grouped: boolean;
  layout: "dagre" | "rows" | "grouped";
}

export class GraphView {
  readonly cy: cytoscape.Core;
  private tooltip: HTMLElement;

  constructor(container: HTMLElement, tooltip: HTMLElement) {
    this.tooltip = tooltip;
    this.cy = cytoscape({
      container,
      style: style(),
      wheelSensitivity: 0.3,
      minZoom: 0.05,
      maxZoom: 4,
      textureOnViewport: true,
      hideEdgesOnViewport: true,
    });
    this.cy.on("mouseover", "node", (ev) => this.showTip(ev.target as cytoscape.NodeSingular, ev.renderedPosition));
    this.cy.on("mouseout", "node", () => (this.tooltip.hidden = true));
  }

  private showTip(n: cytoscape.NodeSingular, at: cytoscape.Position): void {
    const d = n.data();
    this.tooltip.textContent = n.hasClass("group")
      ? `${d.count} ${d.kind} — double-click to list only these`
      : `${d.kind} ${d.namespace ? d.namespace + "/" : ""}${d.name}\n${statusName(d.status)}${d.message ? ": " + d.message : ""}`;
    this.tooltip.style.left = `${at.x + 12}px`;
    this.tooltip.style.top = `${at.y + 12}px`;
    this.tooltip.hidden = false;
  }

  restyle(): void {
    this.cy.style(style());
  }

  /** Replaces the drawing with `nodes` and `edges`; returns what was drawn. */
  draw(nodes: Resource[], edges: Edge[], focus?: string): Drawn {
    const cy = this.cy;
    cy.elements().remove();
    if (nodes.length > GROUP_MIN) return this.drawGrouped(nodes, edges);
    const ids = new Set(nodes.map((n) => n.uid));
    const els = [...nodes.map(nodeData), ...edges.filter((e) => ids.has(e.from) && ids.has(e.to)).map(edgeData)];
    let layout: Drawn["layout"];
    if (nodes.length > LAYERED_MAX) {
      const positions = rowsByKind(nodes);
      for (const el of els) if (el.group === "nodes") el.position = positions.get(el.data.id as string);
      cy.add(els);
      layout = "rows";
    } else {
      cy.add(els);
      cy.layout({ name: "dagre", rankDir: "TB", nodeSep: 70, rankSep: 80, animate: false } as cytoscape.LayoutOptions).run();
      layout = "dagre";
    }
    if (focus) cy.getElementById(focus).addClass("focus");
    cy.fit(undefined, 30);
    return { nodes: cy.nodes().length, edges: cy.edges().length, grouped: false, layout };
  }

  private drawGrouped(nodes: Resource[], edges: Edge[]): Drawn {
    const kindOf = new Map(nodes.map((n) => [n.uid, n.kind]));
    const counts = new Map<string, number>();
    for (const n of nodes) counts.set(n.kind, (counts.get(n.kind) ?? 0) + 1);
    const links = new Map<string, { from: string; to: string; type: string; count: number }>();
    for (const e of edges) {
      const a = kindOf.get(e.from);
      const b = kindOf.get(e.to);
      if (!a || !b) continue;
      const id = `${e.type}|kind:${a}|kind:${b}`;
      const l = links.get(id) ?? { from: `kind:${a}`, to: `kind:${b}`, type: e.type, count: 0 };
      l.count++;
      links.set(id, l);
    }
    const els: cytoscape.ElementDefinition[] = [...counts].map(([kind, count]) => ({
      group: "nodes",
      classes: "group",
      data: { id: `kind:${kind}`, label: `${kind} (${count})`, kind, count, status: "Unknown" },
    }));
    for (const [id, l] of links) els.push({ group: "edges", data: { id, source: l.from, target: l.to, type: l.type, colour: edgeColour(l.type) } });
    this.cy.add(els);
    this.cy.layout({ name: "dagre", rankDir: "TB", animate: false } as cytoscape.LayoutOptions).run();
    this.cy.fit(undefined, 30);
    return { nodes: this.cy.nodes().length, edges: this.cy.edges().length, grouped: true, layout: "grouped" };
  }

  /** Adds `nodes` and `edges` not drawn yet (e.g. an impact set) and lays the whole view out again. */
  merge(nodes: Resource[], edges: Edge[]): void {
    const cy = this.cy;
    const add = nodes.filter((n) => cy.getElementById(n.uid).empty()).map(nodeData);
    cy.add(add);
    cy.add(edges.filter((e) => cy.getElementById(edgeId(e)).empty() && !cy.getElementById(e.from).empty() && !cy.getElementById(e.to).empty()).map(edgeData));
    if (add.length) {
      if (cy.nodes().length <= LAYERED_MAX) cy.layout({ name: "dagre", rankDir: "TB", nodeSep: 70, rankSep: 80, animate: false } as cytoscape.LayoutOptions).run();
      cy.fit(undefined, 30);
    }
  }

  /** Highlights `uids` (and the edges among them) with `cls`, fading the rest; empty clears. */
  highlight(cls: "impact" | "path", uids: string[], edgeIds: string[] = []): void {
    const cy = this.cy;
    cy.elements().removeClass("faded impact path");
    if (!uids.length) return;
    const keep = new Set(uids);
    cy.nodes().forEach((n) => {
      if (keep.has(n.id())) n.addClass(cls);
      else if (!n.hasClass("focus")) n.addClass("faded");
    });
    const edgeKeep = new Set(edgeIds);
    cy.edges().forEach((e) => {
      if (edgeKeep.has(e.id())) e.addClass(cls);
      else if (!(keep.has(e.source().id()) && keep.has(e.target().id()))) e.addClass("faded");
    });
  }

  /** Marks what a diff added, removed and modified (removed elements must be drawn already). */
  markDiff(marks: DiffMarks): void {
    const cy = this.cy;
    cy.elements().removeClass("diff-added diff-removed diff-modified");
    const mark = (ids: string[], cls: string) => {
      for (const id of ids) cy.getElementById(id).addClass(cls);
    };
    mark(marks.added, "diff-added");
    mark(marks.removed, "diff-removed");
    mark(marks.modified, "diff-modified");
    mark(marks.edgesAdded.map(edgeId), "diff-added");
    mark(marks.edgesRemoved.map(edgeId), "diff-removed");
  }

  // Live changes, applied in place: no layout runs, new nodes are placed beside a neighbour.

  has(uid: string): boolean {
    return !this.cy.getElementById(uid).empty();
  }

  upsertNode(r: Resource, near?: string): void {
    const n = this.cy.getElementById(r.uid);
    if (!n.empty()) {
      n.data({ status: r.status, message: r.message ?? "", label: `${abbr(r.kind)} ${r.name}` });
      return;
    }
    const el = nodeData(r);
    el.position = this.freeSpot(near, r.kind);
    this.cy.add(el);
  }

  removeNode(uid: string): void {
    this.cy.getElementById(uid).remove();
  }

  addEdge(e: Edge): void {
    if (this.has(e.from) && this.has(e.to) && this.cy.getElementById(edgeId(e)).empty()) this.cy.add(edgeData(e));
  }

  removeEdge(e: Edge): void {
    this.cy.getElementById(edgeId(e)).remove();
  }

  private freeSpot(near: string | undefined, kind: string): cytoscape.Position {
    const anchor = near ? this.cy.getElementById(near) : this.cy.nodes(`[kind = "${kind}"]`).last();
    if (anchor && !anchor.empty()) {
      const p = anchor.position();
      const around = this.cy.nodes().filter((n) => Math.abs(n.position().y - p.y - 60) < 20 && Math.abs(n.position().x - p.x) < 400).length;
      return { x: p.x + around * 45, y: p.y + 60 };
    }
    const bb = this.cy.nodes().boundingBox();
    return this.cy.nodes().empty() ? { x: 0, y: 0 } : { x: bb.x2 + 60, y: bb.y2 };
  }

  /** What the test hook and the legend read: the drawn elements. */
  snapshot(): { nodes: Record<string, unknown>[]; edges: Record<string, unknown>[] } {
    return {
      nodes: this.cy.nodes().map((n) => ({ ...n.data(), classes: n.classes() })),
      edges: this.cy.edges().map((e) => ({ ...e.data(), classes: e.classes() })),
    };
  }
}
