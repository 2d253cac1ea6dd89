// History: the time slider (a range input over the span the server keeps, with the timeline's
// change counts drawn behind it) and the points a view is drawn and compared at.

import * as api from "./api";
import type { View } from "./view";

/** How many buckets the counts behind the slider are split into. */
const BUCKETS = 90;
/** Timeline requests made to find where the changes kept begin (each narrows the span). */
const WINDOW_PASSES = 3;
/** A keyboard step of the slider: one second; with Shift, PageUp or PageDown, one bucket. */
const KEY_STEP_MS = 1000;
/** Keyboard moves are committed (the view re-read) once the keys rest this long. */
const KEY_SETTLE_MS = 250;
/** How long the span is trusted before it is looked for again (the server trims its history). */
const WINDOW_TTL_MS = 60_000;

/** Milliseconds of an RFC 3339 time, `null` for any other form of point (`seq:N`, `-15m`). */
export function timeOf(point: string | undefined): number | null {
  if (!point || !/^\d{4}-\d\d-\d\d/.test(point)) return null;
  const t = Date.parse(point);
  return Number.isNaN(t) ? null : t;
}

/** A point as the URL and the API take it: an RFC 3339 time with milliseconds. */
export function pointAt(ms: number): string {
  return new Date(ms).toISOString();
}

/** The sequence of a `seq:N` point, `null` for any other form. */
function seqOf(point: string | undefined): number | null {
  const m = point ? /^seq:(\d+)$/.exec(point) : null;
  return m ? Number(m[1]) : null;
}

/**
 * The two points of a diff, older first: the view's `diff` point and its `at` (now when absent).
 * Points of one form (both times, or both sequences) are put in order; otherwise `diff` is
 * taken as the older one.
 */
export function diffPoints(v: View): { older: string; newer: string | undefined } | null {
  if (!v.diff) return null;
  const [a, b] = [v.diff, v.at];
  const ta = timeOf(a);
  const tb = timeOf(b);
  const sa = seqOf(a);
  const sb = seqOf(b);
  const swap = (ta !== null && tb !== null && tb < ta) || (sa !== null && sb !== null && sb < sa);
  return swap && b ? { older: b, newer: a } : { older: a, newer: b };
}

/** How a time reads in the bar: the local time of day, the date when it is not today. */
export function readable(time: string | number): string {
  const d = new Date(time);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** The oldest point a history span can answer, when the server has trimmed its history. */
export interface Gone {
  /** The point asked for. */
  point: string;
  /** The oldest one kept (a sequence when the server named it). */
  oldest: { seq?: number; time: string };
}

interface Elements {
  slider: HTMLInputElement;
  bars: HTMLElement;
  mark: HTMLElement;
  label: HTMLElement;
}

/** The slider and what it shows; `onPick` is given the chosen point, `undefined` for live. */
export class TimeSlider {
  private from = 0;
  private to = 0;
  /** The oldest time kept, when the server trims (its timeline starts there); else `null`. */
  private trimmedAt: number | null = null;
  private windowAt = 0;
  private dragging = false;
  private keyTimer: number | undefined;
  private bucketMs = 60_000;
  private filter: { namespace?: string; kind?: string } = {};

  constructor(
    private readonly el: Elements,
    private readonly onPick: (at: string | undefined) => void,
  ) {
    const s = el.slider;
    s.addEventListener("pointerdown", () => (this.dragging = true));
    s.addEventListener("pointerup", () => (this.dragging = false));
    s.addEventListener("pointercancel", () => (this.dragging = false));
    s.addEventListener("input", () => this.preview());
    s.addEventListener("change", () => {
      this.dragging = false;
      this.commit();
    });
    s.addEventListener("keydown", (ev) => this.key(ev));
  }

  /** Where the changes kept begin: the oldest point when the server trims, else the first
   * change (points before it are the empty graph). */
  private async findWindow(): Promise<void> {
    let from = "-24h";
    for (let pass = 0; pass < WINDOW_PASSES; pass++) {
      const t = await api.get<api.Timeline>("api/v1/timeline", { from });
      const start = Date.parse(t.from);
      const end = Date.parse(t.to);
      // The server starts a timeline at its oldest point when `from` lies before it.
      const asked = pass === 0 ? end - 24 * 3_600_000 : Date.parse(from);
      if (start > asked + 1000) {
        this.trimmedAt = start;
        this.from = start;
        break;
      }
      this.trimmedAt = null;
      const first = t.buckets.findIndex((b) => Object.keys(b.counts).length > 0);
      this.from = first < 0 ? start : Date.parse(t.buckets[first].start);
      if (first <= 0) break;
      from = pointAt(this.from);
    }
    this.windowAt = Date.now();
  }

  /** Re-reads the timeline (counts of `v`'s namespace and kind, when it has them) and redraws
   * the counts; the span is looked for again when it is old. */
  async refresh(v: View): Promise<void> {
    if (!this.windowAt || Date.now() - this.windowAt > WINDOW_TTL_MS) await this.findWindow();
    this.filter = v.mode === "namespace" ? { namespace: v.name, kind: v.kind } : {};
    const now = Date.now();
    const bucket = Math.max(1000, Math.ceil((now - this.from) / BUCKETS));
    const t = await api.get<api.Timeline>("api/v1/timeline", {
      from: pointAt(this.from),
      bucket: `${bucket}ms`,
      ...this.filter,
    });
    this.bucketMs = t.bucketMs;
    this.from = Math.min(this.from, Date.parse(t.from));
    this.to = Date.parse(t.to);
    this.drawBars(t);
  }

  private drawBars(t: api.Timeline): void {
    const totals = t.buckets.map((b) => Object.values(b.counts).reduce((a, n) => a + n, 0));
    const max = Math.max(1, ...totals);
    const span = Math.max(1, this.to - this.from);
    this.el.bars.replaceChildren(
      ...t.buckets.map((b, i) => {
        const bar = document.createElement("span");
        const start = Date.parse(b.start);
        bar.style.left = `${((start - this.from) / span) * 100}%`;
        bar.style.width = `${(t.bucketMs / span) * 100}%`;
        // On a log scale: a few changes after a full resync stay visible.
        bar.style.height = totals[i] ? `${Math.max(10, (Math.log1p(totals[i]) / Math.log1p(max)) * 100)}%` : "0";
        bar.dataset.count = String(totals[i]);
        return bar;
      }),
    );
  }

  /** Looks for the span again at the next refresh (the server has trimmed its history). */
  forgetSpan(): void {
    this.windowAt = 0;
  }

  /** A point older than the span kept, found without asking the server for it. */
  gone(point: string | undefined): Gone | null {
    const t = timeOf(point);
    if (!point || t === null || this.trimmedAt === null || t >= this.trimmedAt) return null;
    return { point, oldest: { time: pointAt(this.trimmedAt) } };
  }

  /** Puts the thumb at `v`'s point (its `asOf` when the point is not a time) and the diff's
   * older point (`diffFrom` when that point is not a time) as a mark on the track. */
  show(v: View, asOf: api.AsOf | null, diffFrom: api.AsOf | null): void {
    const s = this.el.slider;
    const at = timeOf(v.at) ?? (v.at && asOf ? Date.parse(asOf.time) : null);
    const from = Math.min(this.from, at ?? this.from);
    const to = Math.max(this.to, at ?? this.to);
    s.min = String(from);
    s.max = String(to);
    if (!this.dragging) s.value = String(at ?? to);
    s.setAttribute("aria-valuetext", at === null ? "live" : readable(at));
    const older = diffPoints(v)?.older;
    const other = diffFrom ? timeOf(older) ?? Date.parse(diffFrom.time) : null;
    this.el.mark.hidden = other === null;
    if (other !== null) this.el.mark.style.left = `${((Math.max(other, from) - from) / Math.max(1, to - from)) * 100}%`;
  }

  /** The time under the thumb, `null` at the right end (live). */
  private value(): number | null {
    const s = this.el.slider;
    const v = Number(s.value);
    return v >= Number(s.max) - 500 ? null : v;
  }

  private preview(): void {
    const v = this.value();
    this.el.label.textContent = v === null ? "live" : `to ${readable(v)} …`;
  }

  private commit(): void {
    window.clearTimeout(this.keyTimer);
    this.dragging = false;
    const v = this.value();
    this.onPick(v === null ? undefined : pointAt(v));
  }

  private key(ev: KeyboardEvent): void {
    const s = this.el.slider;
    const min = Number(s.min);
    const max = Number(s.max);
    const big = ev.shiftKey || ev.key === "PageUp" || ev.key === "PageDown";
    const step = big ? this.bucketMs : KEY_STEP_MS;
    const now = Number(s.value);
    let next: number;
    if (ev.key === "ArrowLeft" || ev.key === "ArrowDown" || ev.key === "PageDown") next = now - step;
    else if (ev.key === "ArrowRight" || ev.key === "ArrowUp" || ev.key === "PageUp") next = now + step;
    else if (ev.key === "Home") next = min;
    else if (ev.key === "End") next = max;
    else return;
    ev.preventDefault();
    this.dragging = true; // until the move is committed: a refresh must not move the thumb back
    s.value = String(Math.min(max, Math.max(min, next)));
    this.preview();
    window.clearTimeout(this.keyTimer);
    this.keyTimer = window.setTimeout(() => this.commit(), KEY_SETTLE_MS);
  }
}
