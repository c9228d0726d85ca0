// Bounding work by a deadline: the caller gets an UnavailableError instead of waiting past its budget.
import { UnavailableError } from './errors.js';
import type { Stop } from './stop.js';

/** Milliseconds left for a call: our own budget, shortened by the caller's gRPC deadline minus a margin. */
export function budgetMs(ownBudgetMs: number, callerDeadline: Date | number, now = Date.now(), marginMs = 5): number {
  const deadline = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
  if (!Number.isFinite(deadline)) return ownBudgetMs;
  return Math.max(0, Math.min(ownBudgetMs, deadline - now - marginMs));
}

/**
 * Resolves like `work`, or rejects with `deadline_exceeded` once `ms` have passed. With the work's
 * own `stop`: the deadline stops it (so the work stops too), and a stop from elsewhere (the caller
 * cancelled) rejects at once with its reason instead of waiting for the work.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, stop?: Stop): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let unlisten: (() => void) | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new UnavailableError('deadline_exceeded', `no decision within ${ms} ms`);
      stop?.abort(err);
      reject(err);
    }, ms);
    unlisten = stop?.onAbort((reason) => reject(reason instanceof Error ? reason : new UnavailableError('cancelled', 'the call was cancelled')));
  });
  return Promise.race([work, expired]).finally(() => {
    clearTimeout(timer);
    unlisten?.();
  });
}
