// "Stop this call's work": the part of AbortController/AbortSignal the call path uses, as a plain
// object. Node 20's AbortSignal is an EventTarget that survives the young generation on creation:
// one per call (two per Check, with the pipeline's own) promoted about 250 bytes each and drove a
// mark-compact every few seconds under load - the Check tail (docs/performance.md). This one is an
// ordinary short-lived object. Node APIs that want a real AbortSignal (fetch) still get one.

export interface StopSignal {
  readonly aborted: boolean;
  /** Why it stopped (an Error), once aborted. */
  readonly reason: unknown;
  /** Throws the reason once aborted, as AbortSignal.throwIfAborted does. */
  throwIfAborted(): void;
}

type Listener = ((reason: unknown) => void) | Stop;

export class Stop implements StopSignal {
  private why: unknown;
  private stopped = false;
  private listeners: Listener[] | undefined;
  /** The Stop this one follows (see follow()). */
  private leader: Stop | undefined;

  get aborted(): boolean {
    return this.stopped;
  }

  get reason(): unknown {
    return this.why;
  }

  throwIfAborted(): void {
    if (this.stopped) throw this.why;
  }

  /** Stops once (later calls do nothing); listeners run in the order they were added. */
  abort(reason: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.why = reason;
    const ls = this.listeners;
    this.listeners = undefined;
    if (!ls) return;
    for (const l of ls) {
      if (typeof l === 'function') l(reason);
      else l.abort(reason);
    }
  }

  /**
   * Stops this one when `leader` stops (at once if it has), until detach(): a call's work
   * following the call, with no closure per link.
   */
  follow(leader: Stop): void {
    if (leader.stopped) return this.abort(leader.why);
    (leader.listeners ??= []).push(this);
    this.leader = leader;
  }

  /** No longer follows its leader. */
  detach(): void {
    const ls = this.leader?.listeners;
    this.leader = undefined;
    if (!ls) return;
    const i = ls.indexOf(this);
    if (i >= 0) ls.splice(i, 1);
  }

  /** Runs `fn` when stopped (at once if already stopped); returns a function that removes it. */
  onAbort(fn: (reason: unknown) => void): () => void {
    if (this.stopped) {
      fn(this.why);
      return noop;
    }
    (this.listeners ??= []).push(fn);
    return () => {
      const ls = this.listeners;
      if (!ls) return;
      const i = ls.indexOf(fn);
      if (i >= 0) ls.splice(i, 1);
    };
  }
}

const noop = (): void => undefined;
