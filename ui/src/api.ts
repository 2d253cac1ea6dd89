// The public HTTP API, called relative to the page so a proxy may serve everything under a prefix.
// With authentication on, every call carries the bearer token the user typed (kept for the tab only).

export const BASE = new URL("../", window.location.href);

const TOKEN_KEY = "astrolabe.token";

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function authHeaders(): Record<string, string> {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** A point of the server's log: a change's sequence and when it was applied (RFC 3339). */
export interface AsOf {
  seq: number;
  time: string;
}

/** An API answer other than 2xx: its status, the server's `{error, detail}` and, for a point
 * older than the history kept (410), the oldest point it can answer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly oldest?: AsOf,
  ) {
    super(`${status}: ${detail}`);
  }
}

/** Called when the API answers 401, so the page can ask for a token. */
let onUnauthorized: (detail: string) => void = () => {};
export function whenUnauthorized(f: (detail: string) => void): void {
  onUnauthorized = f;
}

/** The sequence of the last graph answer (header `X-Astrolabe-Seq`). */
export let lastSeq = 0;

export async function get<T>(path: string, params: Record<string, string | number | undefined> = {}): Promise<T> {
  const url = new URL(path, BASE);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
  const resp = await fetch(url, { headers: { Accept: "application/json", ...authHeaders() } });
  const seq = Number(resp.headers.get("X-Astrolabe-Seq"));
  if (seq > lastSeq) lastSeq = seq;
  if (!resp.ok) {
    let detail = resp.statusText;
    let oldest: AsOf | undefined;
    try {
      const body = (await resp.json()) as { error?: string; detail?: string; oldest?: AsOf };
      detail = body.detail || body.error || detail;
      oldest = body.oldest;
    } catch {
      /* a body that is not JSON: keep the status text */
    }
    if (resp.status === 401) onUnauthorized(detail);
    throw new ApiError(resp.status, detail, oldest);
  }
  return (await resp.json()) as T;
}

// Shapes of the answers (docs/api.md).

export interface Peer {
  uid: string;
  kind: string;
  namespace: string;
  name: string;
}

export interface Resource extends Peer {
  apiVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  status: string;
  message: string;
  release?: string;
  chart?: string;
  metadata?: Record<string, unknown>;
}

export interface Edge {
  type: string;
  from: string;
  to: string;
  peer?: Peer;
}

/** Answers read `at=` a past point carry `asOf`; live answers do not. */
export interface Subgraph {
  seq: number;
  asOf?: AsOf;
  nodes: Resource[];
  edges: Edge[];
  truncated?: boolean;
  found?: boolean;
}

export interface Detail {
  seq: number;
  asOf?: AsOf;
  resource: Resource;
  incoming: Edge[];
  outgoing: Edge[];
}

export interface Page {
  seq: number;
  items: Resource[];
}

export interface EdgeKind {
  name: string;
  dependency: string;
}

export interface Dangling {
  source: Peer;
  edgeKind: string;
  target: string;
  targetKind: string;
  optional: boolean;
}

/** An object in a diff: the last change that touched it between the two points. */
export interface Touched extends Peer {
  seq: number;
  time: string;
}

export interface FieldChange {
  field: string;
  old: unknown;
  new: unknown;
}

export interface EdgeChange {
  kind: string;
  from: string;
  to: string;
  seq: number;
  time: string;
}

/** `/api/v1/diff`: added and removed objects carry the resource where it exists. */
export interface Diff {
  from: AsOf;
  to: AsOf;
  added: (Touched & { resource: Resource })[];
  removed: (Touched & { resource: Resource })[];
  modified: (Touched & { changes: FieldChange[] })[];
  edgesAdded: EdgeChange[];
  edgesRemoved: EdgeChange[];
}

/** `/api/v1/timeline`: change counts per time bucket and kind. */
export interface Timeline {
  from: string;
  to: string;
  bucketMs: number;
  buckets: { start: string; end: string; counts: Record<string, number> }[];
}

export interface Readiness {
  ready: boolean;
  graph?: { hydrated: boolean; source: string };
  persistence?: { enabled: boolean; connected: boolean; diverged: boolean; last_snapshot_age_seconds?: number | null };
}

/** `/readyz` answers 503 with the same body while not ready. */
export async function readiness(): Promise<Readiness> {
  const resp = await fetch(new URL("readyz", BASE), { headers: authHeaders() });
  return (await resp.json()) as Readiness;
}
