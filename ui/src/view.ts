// The view the URL holds (its hash), so a pasted link opens the same view.

/** Depth of a neighbourhood: a Deployment with its ReplicaSets and their Pods. */
export const DEFAULT_DEPTH = 2;

export type Mode = "home" | "resource" | "namespace" | "release" | "dangling";

export interface View {
  mode: Mode;
  /** The resource of a `resource` view. */
  uid?: string;
  /** The namespace of a `namespace` or `dangling` view, the release of a `release` view. */
  name?: string;
  /** Only this kind in a namespace or release view (narrowing a large one). */
  kind?: string;
  depth: number;
  direction: "both" | "in" | "out";
  /** Edge kinds followed and drawn; empty: all. */
  edges: string[];
  /** Highlight what depends on the resource. */
  impact: boolean;
  /** Highlight the shortest path from the resource to this UID. */
  to?: string;
  /** The point the view is drawn at (`seq:N` or an RFC 3339 time, as the API's `at=`); none: live. */
  at?: string;
  /** Diff mode: the other point compared with `at` (or with now when `at` is absent). */
  diff?: string;
}

export function parse(hash: string): View {
  const p = new URLSearchParams(hash.replace(/^#/, ""));
  const mode = (p.get("view") as Mode) || "home";
  const depth = Math.min(Math.max(Number(p.get("depth")) || DEFAULT_DEPTH, 1), 6);
  const dir = p.get("dir");
  return {
    mode: ["resource", "namespace", "release", "dangling"].includes(mode) ? mode : "home",
    uid: p.get("uid") || undefined,
    name: p.get("name") || undefined,
    kind: p.get("kind") || undefined,
    depth,
    direction: dir === "in" || dir === "out" ? dir : "both",
    edges: (p.get("edges") || "").split(",").filter(Boolean),
    impact: p.get("impact") === "1",
    to: p.get("to") || undefined,
    at: p.get("at") || undefined,
    diff: p.get("diff") || undefined,
  };
}

export function format(v: View): string {
  const p = new URLSearchParams();
  p.set("view", v.mode);
  if (v.uid) p.set("uid", v.uid);
  if (v.name) p.set("name", v.name);
  if (v.kind) p.set("kind", v.kind);
  if (v.mode === "resource") {
    if (v.depth !== DEFAULT_DEPTH) p.set("depth", String(v.depth));
    if (v.direction !== "both") p.set("dir", v.direction);
    if (v.impact) p.set("impact", "1");
    if (v.to) p.set("to", v.to);
  }
  if (v.edges.length) p.set("edges", v.edges.join(","));
  if (v.at) p.set("at", v.at);
  if (v.diff) p.set("diff", v.diff);
  return "#" + p.toString();
}

export function resourceView(uid: string): View {
  return { mode: "resource", uid, depth: DEFAULT_DEPTH, direction: "both", edges: [], impact: false };
}

export function scopeView(mode: "namespace" | "release" | "dangling", name: string, kind?: string): View {
  return { mode, name, kind, depth: DEFAULT_DEPTH, direction: "both", edges: [], impact: false };
}
