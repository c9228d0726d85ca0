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

export class Stop implements StopSignal {
  private why: unknown;
  private stopped = false;
  private listeners: ((reason: unknown) => void)[] | undefined;

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
    if (ls) for (const l of ls) l(reason);
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
