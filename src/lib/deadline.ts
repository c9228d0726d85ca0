// Bounding work by a deadline: the caller gets an UnavailableError instead of waiting past its budget.
import { UnavailableError } from './errors.js';

/** Milliseconds left for a call: our own budget, shortened by the caller's gRPC deadline minus a margin. */
export function budgetMs(ownBudgetMs: number, callerDeadline: Date | number, now = Date.now(), marginMs = 5): number {
  const deadline = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
  if (!Number.isFinite(deadline)) return ownBudgetMs;
  return Math.max(0, Math.min(ownBudgetMs, deadline - now - marginMs));
}

/**
 * Resolves like `work`, or rejects with `deadline_exceeded` once `ms` have passed. With the work's
 * own `controller`: the deadline aborts it (so the work stops too), and an abort from elsewhere
 * (the caller cancelled) rejects at once with its reason instead of waiting for the work.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, controller?: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new UnavailableError('deadline_exceeded', `no decision within ${ms} ms`);
      controller?.abort(err);
      reject(err);
    }, ms);
    const signal = controller?.signal;
    if (!signal) return;
    onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new UnavailableError('cancelled', 'the call was cancelled'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, expired]).finally(() => {
    clearTimeout(timer);
    if (onAbort) controller?.signal.removeEventListener('abort', onAbort);
  });
}
