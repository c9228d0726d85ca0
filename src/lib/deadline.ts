// Bounding work by a deadline: the caller gets an UnavailableError instead of waiting past its budget.
import { UnavailableError } from './errors.js';

/** Milliseconds left for a call: our own budget, shortened by the caller's gRPC deadline minus a margin. */
export function budgetMs(ownBudgetMs: number, callerDeadline: Date | number, now = Date.now(), marginMs = 5): number {
  const deadline = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
  if (!Number.isFinite(deadline)) return ownBudgetMs;
  return Math.max(0, Math.min(ownBudgetMs, deadline - now - marginMs));
}

/**
 * Resolves like `work`, or rejects with `deadline_exceeded` once `ms` have passed; then `controller`
 * (the work's own AbortController, if given) is aborted with that error so the work stops too.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, controller?: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new UnavailableError('deadline_exceeded', `no decision within ${ms} ms`);
      controller?.abort(err);
      reject(err);
    }, ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
