// Live: the change stream (`/api/v1/watch`, Server-Sent Events) applied to the drawn view in
// place, unless the view is drawn at a past point. Read with fetch so the bearer token can be sent; resumed with Last-Event-ID.

import { fetchEventSource } from "@microsoft/fetch-event-source";
import { BASE, authHeaders, type Edge, type Resource } from "./api";
import type { GraphView } from "./graph";
import type { View } from "./view";

export interface LiveState {
  connected: boolean;
  /** The graph sequence of the last event applied. */
  seq: number;
  events: number;
}

interface Options {
  graph: GraphView;
  onChange: (s: LiveState) => void;
  /** The server could not resume the stream: re-read the view. */
  onResync: () => void;
  /** A drawn resource changed: its details may be stale. */
  onDetail: (uid: string) => void;
}

/** Resources announced by `node-added` before an edge joins them to the view (kept briefly). */
const PENDING_MAX = 2000;

export function startLive(o: Options) {
  const state: LiveState = { connected: false, seq: 0, events: 0 };
  let view: View | null = null;
  let filter = "";
  let abort: AbortController | null = null;
  const pending = new Map<string, Resource>();

  const inScope = (r: Resource) =>
    view !== null &&
    ((view.mode === "namespace" && r.namespace === view.name) || (view.mode === "release" && r.release === view.name)) &&
    (!view.kind || r.kind === view.kind);

  function apply(event: string, data: { seq?: number; resource?: Resource; removed?: Resource; edge?: Edge }): void {
    const g = o.graph;
    if (!g.cy.nodes(".group").empty()) return; // a grouped view counts kinds; it is re-read on demand
    if (view?.at || view?.diff) return; // a view of the past (or a diff) stays as it was drawn
    const r = data.resource;
    const e = data.edge;
    if ((event === "node-added" || event === "node-updated") && r) {
      if (g.has(r.uid)) {
        g.upsertNode(r);
        o.onDetail(r.uid);
      } else if (inScope(r)) g.upsertNode(r);
      else {
        pending.set(r.uid, r);
        if (pending.size > PENDING_MAX) pending.delete(pending.keys().next().value as string);
      }
    } else if (event === "node-removed" && data.removed) {
      pending.delete(data.removed.uid);
      g.removeNode(data.removed.uid);
    } else if (event === "edge-added" && e) {
      if (view?.mode === "resource") {
        // An edge to a drawn node brings its other end into the neighbourhood.
        for (const [drawn, other] of [[e.from, e.to], [e.to, e.from]]) {
          const waiting = pending.get(other);
          if (g.has(drawn) && !g.has(other) && waiting) {
            g.upsertNode(waiting, drawn);
            pending.delete(other);
          }
        }
      }
      g.addEdge(e);
    } else if (event === "edge-removed" && e) g.removeEdge(e);
  }

  function connect(): void {
    abort?.abort();
    abort = new AbortController();
    const url = new URL("api/v1/watch", BASE);
    if (filter) url.searchParams.set("namespace", filter);
    void fetchEventSource(url.toString(), {
      signal: abort.signal,
      headers: authHeaders(),
      openWhenHidden: true,
      onopen: async (resp) => {
        if (!resp.ok) throw new Error(`watch answered ${resp.status}`);
        state.connected = true;
        o.onChange(state);
      },
      onmessage: (msg) => {
        if (!msg.event) return;
        if (msg.event === "resync") {
          o.onResync();
          return;
        }
        try {
          const data = JSON.parse(msg.data);
          apply(msg.event, data);
          if (typeof data.seq === "number") state.seq = Math.max(state.seq, data.seq);
          state.events++;
          o.onChange(state);
        } catch {
          /* an event this page does not understand */
        }
      },
      onerror: () => {
        state.connected = false;
        o.onChange(state);
        return 2000; // retry after 2 s, resuming from the last event id
      },
    }).catch(() => {
      state.connected = false;
      o.onChange(state);
    });
  }

  return {
    /** Follows the changes relevant to `v` (a namespace view reads only its namespace). */
    follow(v: View): void {
      view = v;
      const want = v.mode === "namespace" ? v.name ?? "" : "";
      if (want !== filter || !abort) {
        filter = want;
        pending.clear();
        connect();
      }
    },
    restart(): void {
      connect();
    },
  };
}
