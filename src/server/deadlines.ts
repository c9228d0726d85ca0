// The calls' timers, on one Node timer: a min-heap of calls by the time each expires. A timer per
// call (node:timers makes a Timeout, and a list for each distinct duration - and call deadlines
// all differ) was a few hundred bytes of garbage per call. Here a call costs nothing but its heap
// slot, and the one timer is re-armed only when it fires or an earlier expiry arrives: with a
// fixed grpc-timeout (Envoy's ext_authz timeout) every new call expires after those already
// queued, so the timer fires about once per timeout, not once per call. It is not disarmed when the
// last call leaves (at low load that is after every call, and re-arming would be a timer per call
// again): it fires once more, finds nothing due and stops. It is unref'd: the listener and the
// connections keep the process alive while calls are open, never this timer.

/** What the queue holds: the call sets `expiresAt` through the queue only. */
export interface Expiring {
  /** ms on the queue's clock (performance.now(): monotonic); Infinity while not queued. */
  expiresAt: number;
  /** Its place in the heap (-1: not queued). */
  slot: number;
  /** Called once, at or after expiresAt, unless removed first. */
  expire(): void;
}

const MAX_DELAY = 2 ** 31 - 1;

export class Deadlines {
  private readonly heap: Expiring[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (Infinity: none armed). */
  private armedAt = Infinity;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Queues `e` to expire at `at` (moved there if already queued); Infinity (or NaN) removes it. */
  set(e: Expiring, at: number): void {
    if (!(at < Infinity)) return this.remove(e);
    const old = e.expiresAt;
    e.expiresAt = at;
    if (e.slot < 0) {
      e.slot = this.heap.length;
      this.heap.push(e);
      this.up(e.slot);
    } else if (at < old) {
      this.up(e.slot);
    } else {
      this.down(e.slot);
    }
    if (at < this.armedAt) this.arm(at);
  }

  remove(e: Expiring): void {
    const i = e.slot;
    e.expiresAt = Infinity;
    if (i < 0) return;
    e.slot = -1;
    const last = this.heap.pop()!;
    if (last !== e) {
      this.heap[i] = last;
      last.slot = i;
      this.up(i);
      this.down(last.slot);
    }
    // The timer stays armed: when it fires with nothing due it re-arms for what is left (or stops).
  }

  get size(): number {
    return this.heap.length;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = this.now();
    while (this.heap.length > 0 && this.heap[0]!.expiresAt <= now) {
      const e = this.heap[0]!;
      this.remove(e);
      try {
        e.expire();
      } catch {
        // One call's expiry cannot stop the others'.
      }
    }
    if (this.heap.length > 0) this.arm(this.heap[0]!.expiresAt);
  };

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedAt = at;
    // At least 1 ms (the loop's clock and ours may disagree by one), at most what setTimeout can
    // wait (2^31 - 1 ms; more would be taken as 1 ms, and the timer would spin): a call due later
    // is looked at again then.
    this.timer = setTimeout(this.fire, Math.min(MAX_DELAY, Math.max(1, at - this.now()))).unref();
  }

  private up(i: number): void {
    const h = this.heap;
    const e = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (parent.expiresAt <= e.expiresAt) break;
      h[i] = parent;
      parent.slot = i;
      i = p;
    }
    h[i] = e;
    e.slot = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]!.expiresAt < h[l]!.expiresAt ? r : l;
      if (h[c]!.expiresAt >= e.expiresAt) break;
      h[i] = h[c]!;
      h[i]!.slot = i;
      i = c;
    }
    h[i] = e;
    e.slot = i;
  }
}
