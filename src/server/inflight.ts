// Counts calls in progress so shutdown can wait for exactly those (and not for idle watch streams).
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  /** A call counted here is counted by `parent` too (a config generation's calls are the service's calls). */
  constructor(private readonly parent?: InFlight) {}

  get size(): number {
    return this.count;
  }

  /** Marks a call as started; call the returned function once when it ends (later calls do nothing). */
  begin(): () => void {
    this.add(1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.add(-1);
    };
  }

  /** This count and every parent's, with one closure per call (not one per level). */
  private add(n: number): void {
    this.count += n;
    if (this.count === 0 && this.waiters.length > 0) for (const w of this.waiters.splice(0)) w();
    this.parent?.add(n);
  }

  /** Resolves true when no call is in progress, false if `timeoutMs` passes first. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== onIdle);
        resolve(false);
      }, timeoutMs);
      const onIdle = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiters.push(onIdle);
    });
  }
}
